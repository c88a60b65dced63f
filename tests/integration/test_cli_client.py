"""`edgeagent run`, `edgeagent plan` and `edgeagent health` against a live service."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import cv2

from edgeagent.cli import main
from edgeagent.models.runtime import ModelPlanner
from edgeagent.router import Router
from edgeagent.service import Service, ServiceServer
from edgeagent.sim.expert import ExpertPlanner
from edgeagent.sim.robot import SimRobot
from edgeagent.sim.scenario import scenario_from_dict

from conftest import subprocess_env


class SlowRobot(SimRobot):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.stops = 0

    def execute(self, call):
        # The first step is quick; later ones slow, so Ctrl-C after the first step lands mid-run even on
        # a loaded CI machine (the run would otherwise finish before the cancel arrives).
        time.sleep(0.3 if self.steps == 0 else 1.5)
        return super().execute(call)

    def stop(self):
        self.stops += 1
        super().stop()


def expert_service(robot_cls=SimRobot):
    sc = scenario_from_dict({"name": "s", "instruction": "stack all blocks",
                             "scene": {"seed": 3, "blocks": ["red", "green", "blue"], "bowls": []},
                             "goal": [{"stacked": "all blocks"}]})
    world = sc.build_world()
    robot = robot_cls(world, seed=3)
    service = Service(robot, Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local"), camera=robot.camera)
    return robot, ServiceServer(service, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")


def test_run_follow_prints_every_step_until_done(capsys):
    robot, server = expert_service()
    with server:
        rc = main(["run", "stack all blocks", "--connect", server.endpoint, "--follow"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0].startswith("plan   [expert") and out[-1].startswith("done:")
    assert sum(line.startswith("step ") for line in out) == robot.steps >= 4


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_during_follow_cancels_the_run():
    robot, server = expert_service(SlowRobot)
    with server:
        proc = subprocess.Popen([sys.executable, "-m", "edgeagent.cli", "run", "stack all blocks", "--connect",
                                 server.endpoint, "--follow", "--json"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=subprocess_env(),
                                # A terminal user's Ctrl-C is what this test stands for: whatever the test
                                # process did with SIGINT (ignored, blocked), the child starts with the default.
                                preexec_fn=_default_sigint)
        try:
            for line in proc.stdout:
                if json.loads(line)["kind"] == "step":
                    break
            proc.send_signal(signal.SIGINT)
            rest = [json.loads(line) for line in proc.stdout]
            rc = proc.wait(20)
        finally:
            proc.kill()
    assert rc == 1
    assert rest[-1]["kind"] == "cancelled" and robot.stops >= 1
    assert "cancel requested" in proc.stderr.read()


def test_plan_and_health_commands(tiny_model, tmp_path, capsys):
    robot = SimRobot.from_scene(["red", "green"], ["blue"], seed=2)
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), robot.observe().image)
    service = Service(robot, Router(ModelPlanner(tiny_model), mode="local"), camera=robot.camera)
    with ServiceServer(service, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as server:
        assert main(["plan", "put the red block in the blue bowl", "--image", str(image), "--connect",
                     server.endpoint, "--json"]) == 0
        remote = json.loads(capsys.readouterr().out)
        assert main(["health", "--connect", server.endpoint]) == 0
        health = json.loads(capsys.readouterr().out)
    assert main(["plan", "put the red block in the blue bowl", "--image", str(image), "--model", str(tiny_model),
                 "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert remote["model"] == local["model"] == health["model"]["id"]
    assert remote["calls"] == local["calls"]  # the same model on the same frame, over the wire or not
    assert main(["plan", "go", "--model", str(tiny_model)]) == 2
    assert "needs --image" in capsys.readouterr().err
