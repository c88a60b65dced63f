"""A compound instruction routed to a workstation over real sockets: the workstation plans single tasks,
the robot keeps track of the parts and sends the arm home between them."""

from __future__ import annotations

import threading

from edgeagent.executor import Executor
from edgeagent.models.runtime import ModelPlanner, default_model_dir
from edgeagent.offload import OffloadServer, RemotePlanner
from edgeagent.router import Router
from edgeagent.sim.goals import holds
from edgeagent.sim.robot import SimRobot
from edgeagent.sim.scenario import load_scenarios

SCENARIO = """
- name: two-to-one-corner
  instruction: move the red and the green blocks to the top left corner
  scene: {seed: 5, blocks: [red, green, cyan]}
  goal: [{at: [red block, top left corner]}, {at: [green block, top left corner]}]
"""


class Recording:
    """The workstation's planner, noting every instruction it is asked to plan."""

    def __init__(self, planner):
        self.planner, self.asked, self.lock = planner, [], threading.Lock()
        self.registry = planner.registry

    def plan(self, obs, instruction, *, deadline_ms=None):
        with self.lock:
            self.asked.append(instruction)
        return self.planner.plan(obs, instruction, deadline_ms=deadline_ms)


def test_a_compound_instruction_reaches_the_workstation_one_task_at_a_time(tmp_path):
    path = tmp_path / "compound.yaml"
    path.write_text(SCENARIO)
    scenario = load_scenarios([path])[0]
    workstation = Recording(ModelPlanner(default_model_dir("fp32")))
    local = ModelPlanner(default_model_dir())
    with OffloadServer(workstation, "tcp://127.0.0.1:*", workers=1) as ws:
        remote = RemotePlanner(ws.endpoint, registry=local.registry, heartbeat_ms=100, timeout_ms=2000)
        router = Router(local, remote, mode="remote", deadline_ms=2000.0)
        try:
            assert remote.wait_ready(5), "the workstation never answered a heartbeat"
            world = scenario.build_world()
            robot = SimRobot(world, seed=scenario.scene.seed)
            with robot:
                run = Executor(robot, router, max_steps=scenario.max_steps).run(scenario.instruction)
        finally:
            router.close()
    assert run.status == "done" and holds(scenario.bound_goal(world), world), [p.reason for p in run.plans]
    assert set(workstation.asked) == {"move the red block to the top left corner",
                                      "move the green block to the top left corner"}
    calls = [p.calls[0].primitive for p in run.plans if p.calls]
    assert calls.count("home") == 1 and {p.source for p in run.plans if p.calls and p.calls[0].primitive != "home"} \
        == {"remote"}
