"""Services built from robot config files: the ZeroMQ bridge to an external controller, a folder camera,
and a user's own robot class by import path."""

from __future__ import annotations

import time

import cv2
import yaml

from edgeagent.bridge import BridgeController
from edgeagent.client import Client
from edgeagent.service import ServiceServer, build_service
from edgeagent.service_config import load_service_config
from edgeagent.sim.robot import SimRobot


class SlowArm(SimRobot):
    """The controller's robot: the simulator at the pace of a real arm."""

    def execute(self, call):
        time.sleep(0.3)
        return super().execute(call)


def serve_config(path):
    service, sockets = build_service(load_service_config(path))
    return ServiceServer(service, sockets["endpoint"], sockets["events"], curve=sockets["curve"])


def test_run_through_the_bridge_with_a_folder_camera(tmp_path):
    arm = SlowArm.from_scene([("red", (0.1, 0.05))], [("blue", (0.0, 0.2))], seed=1)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:03d}.png"), arm.observe().image)
    (tmp_path / "calib.yaml").write_text(yaml.safe_dump(arm.camera.to_dict()))
    with BridgeController(arm, "tcp://127.0.0.1:*", name="sim-arm") as controller:
        (tmp_path / "robot.yaml").write_text(f"""
backend: {{kind: zmq-bridge, bridge: {{endpoint: "{controller.endpoint}", timeout_s: 5}}}}
camera: {{kind: folder, folder: frames, calibration: calib.yaml}}
planner: {{kind: "plugins:Shuttle", options: {{at: [0.1, 0.05], to: [0.0, 0.2]}}}}
router: {{mode: local}}
service: {{endpoint: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*"}}
""")
        with serve_config(tmp_path / "robot.yaml") as server, Client(server.endpoint) as client:
            plan = client.plan("put the red block in the blue bowl")
            task = client.run("put the red block in the blue bowl", max_steps=2)
            events = list(client.follow(task, timeout_s=20))
            health = client.health()
            second = client.run("put the red block in the blue bowl", max_steps=3)
            client.cancel(second)
            cancelled = list(client.follow(second, timeout_s=20))
            stopped = controller.stopped
            third = client.run("put the red block in the blue bowl", max_steps=1)  # re-arms the controller
            rearmed = list(client.follow(third, timeout_s=20))
    steps = [e["result"] for e in events if e["kind"] == "step"]
    assert plan.model == "shuttle" and plan.calls[0].primitive == "pick"
    # Results and the gripper state come from the controller's robot.
    assert steps == [{"ok": True, "message": "picked red block", "holding": "red block"},
                     {"ok": True, "message": "red block now in blue bowl", "holding": None}]
    assert health["backend"] == "zmq-bridge" and health["camera"] == "folder"
    assert cancelled[-1]["kind"] == "cancelled" and stopped
    assert not controller.stopped
    assert [e["result"]["message"] for e in rearmed if e["kind"] == "step"][0].startswith("grasp failed")
    assert arm.steps == 2 + sum(e["kind"] == "step" for e in cancelled) + 1


def test_a_users_robot_class_by_import_path(tmp_path, tiny_model):
    (tmp_path / "robot.yaml").write_text(f"""
primitives: {{workspace: [-0.25, 0.25, -0.2, 0.25]}}
backend: {{kind: "plugins:TableRobot", options: {{blocks: [red, green], bowls: [blue], seed: 3}}}}
planner: {{model: {tiny_model}}}
service: {{endpoint: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*"}}
""")
    with serve_config(tmp_path / "robot.yaml") as server, Client(server.endpoint) as client:
        plan = client.plan("put the red block in the blue bowl")
        schema = {p["name"]: p for p in client.primitives()}
        health = client.health()
    y_bounds = schema["pick"]["parameters"]["properties"]["at"]["prefixItems"][1]
    assert (y_bounds["minimum"], y_bounds["maximum"]) == (-0.2, 0.25)  # the config narrowed the workspace
    assert plan.model.startswith("tiny-random@")
    assert all(-0.2 <= c.args["at"][1] <= 0.25 for c in plan.calls if "at" in c.args)
    assert health["backend"] == "plugins:TableRobot" and health["router"]["mode"] == "auto"
    assert health["link"]["state"] == "none"
