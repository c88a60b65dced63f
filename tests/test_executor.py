"""The closed loop on the real simulator: events, re-planning after failures, max_steps, cancel."""

import threading

import pytest

from edgeagent.executor import CancelToken, Executor
from edgeagent.sim.expert import ExpertPlanner
from edgeagent.sim.goals import Pred, holds
from edgeagent.sim.robot import SimRobot
from edgeagent.sim.world import World
from edgeagent.types import Call, Plan


def scene(grasp_failure=0.0, seed=3):
    world = World.from_scene([("red", (0.1, 0.1)), ("green", (-0.1, -0.1))], [("blue", (0.15, -0.15))],
                             seed=seed, grasp_failure=grasp_failure)
    return world, Pred("in", ("red block", "blue bowl"))


def test_runs_to_done_and_emits_one_event_per_step():
    world, goal = scene()
    events = []
    robot = SimRobot(world)
    result = Executor(robot, ExpertPlanner(world, goal), on_event=events.append).run("put the red block in the blue bowl")
    assert result.status == "done" and holds(goal, world)
    assert result.steps == 2
    kinds = [e.kind for e in events]
    assert kinds.count("step") == 2 and kinds[-1] == "done"
    assert [e.call.primitive for e in events if e.kind == "step"] == ["pick", "place"]
    assert all(e.to_dict()["kind"] == e.kind for e in events)


def test_replans_after_injected_grasp_failure():
    world, goal = scene(grasp_failure=0.6, seed=11)
    events = []
    result = Executor(SimRobot(world), ExpertPlanner(world, goal), max_steps=30,
                      on_event=events.append).run("put the red block in the blue bowl")
    failed = [e for e in events if e.kind == "step" and not e.result.ok]
    assert failed, "the seed should inject at least one failed grasp"
    assert any(e.kind == "replan" and "failed" in e.message for e in events)
    assert result.status == "done" and holds(goal, world)


def test_stops_at_max_steps():
    world, goal = scene(grasp_failure=1.0)
    result = Executor(SimRobot(world), ExpertPlanner(world, goal), max_steps=3).run("x")
    assert result.status == "max_steps" and result.steps == 3
    assert not holds(goal, world)


class Scripted:
    """A planner that proposes fixed calls (to drive the executor into its error paths)."""

    def __init__(self, calls):
        self.calls = calls

    def plan(self, obs, instruction, *, deadline_ms=None):
        return Plan(tuple(self.calls), False, 0.5, "local")


def test_invalid_calls_never_reach_the_robot():
    world, _ = scene()
    before = {c: (b.x, b.y, b.z) for c, b in world.blocks.items()}
    robot = SimRobot(world)
    planner = Scripted([Call("place", {"at": (0.0, 0.0)})])  # nothing held: precondition fails
    result = Executor(robot, planner, max_steps=5, max_replans=3).run("x")
    assert result.status == "error"
    assert "needs something in the gripper" in result.error
    assert robot.steps == 0
    assert before == {c: (b.x, b.y, b.z) for c, b in world.blocks.items()}
    out_of_bounds = Scripted([Call("pick", {"at": (0.9, 0.0)})])
    assert Executor(SimRobot(world), out_of_bounds, max_replans=2).run("x").status == "error"


def test_cancel_stops_after_the_current_primitive_and_calls_stop():
    world, goal = scene()
    robot = SimRobot(world)
    token = CancelToken()
    stopped = threading.Event()
    original_stop = robot.stop

    def stop():
        stopped.set()
        original_stop()

    robot.stop = stop

    def on_event(ev):
        if ev.kind == "step":
            token.cancel()

    result = Executor(robot, ExpertPlanner(world, goal), on_event=on_event).run("x", cancel=token)
    assert result.status == "cancelled" and result.steps == 1
    assert stopped.is_set()
