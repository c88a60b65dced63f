"""The robot service over real sockets: requests, events, run/cancel, reload, REQ clients."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
import zmq

from edgeagent.client import Client
from edgeagent.errors import ServiceError
from edgeagent.models.runtime import ModelPlanner
from edgeagent.protocol import decode_reply, encode_image, encode_request
from edgeagent.router import Router
from edgeagent.service import Service, ServiceServer
from edgeagent.sim.expert import ExpertPlanner
from edgeagent.sim.robot import SimRobot
from edgeagent.sim.scenario import scenario_from_dict
from edgeagent.types import Observation


@contextmanager
def serving(robot, router, **kw):
    service = Service(robot, router, camera=getattr(robot, "camera", None), **kw)
    with ServiceServer(service, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as server:
        with Client(server.endpoint, timeout_s=5) as client:
            yield server, client


def stack_scenario():
    return scenario_from_dict({"name": "stack", "instruction": "stack all blocks",
                               "scene": {"seed": 3, "blocks": ["red", "green", "blue"], "bowls": []},
                               "goal": [{"stacked": "all blocks"}], "max_steps": 12})


class RecordingRobot(SimRobot):
    """The simulator, slowed to real-arm pace, counting executed calls and stop() calls."""

    def __init__(self, *a, step_s: float = 0.15, **kw):
        super().__init__(*a, **kw)
        self.step_s = step_s
        self.executed = 0
        self.stops = 0

    def execute(self, call):
        time.sleep(self.step_s)
        result = super().execute(call)
        self.executed += 1
        return result

    def stop(self):
        self.stops += 1
        super().stop()


def test_health_reports_versions_model_provider_latency_queue_and_link(tiny_model):
    robot = SimRobot.from_scene(["red"], ["blue"], seed=1)
    router = Router(ModelPlanner(tiny_model), mode="local")
    with serving(robot, router) as (server, client):
        client.plan("put the red block in the blue bowl")
        h = client.health()
    assert h["versions"]["protocol"] == 1 and h["versions"]["edgeagent"]
    assert h["versions"]["onnxruntime"] and h["versions"]["zmq"]
    assert h["model"]["id"].startswith("tiny-random@")
    assert h["model"]["provider"] == "CPUExecutionProvider"
    assert h["uptime_s"] >= 0
    assert h["latency_ms"]["plan"]["count"] == 1 and h["latency_ms"]["plan"]["p50"] > 0
    assert h["queue"] == {"depth": 0, "capacity": 32}
    assert h["link"]["state"] == "none"
    assert h["events"] == server.events_endpoint


def test_plan_with_a_client_image_and_with_the_service_camera(tiny_model):
    robot = SimRobot.from_scene(["red", "green"], ["blue"], seed=2)
    router = Router(ModelPlanner(tiny_model), mode="local")
    with serving(robot, router) as (_, client):
        own = client.plan("put the red block in the blue bowl")
        sent = client.plan("put the red block in the blue bowl", robot.observe().image, image_format="png",
                           holding=robot.observe().holding)
        small = client.plan("pick up the green block", np.full((120, 160, 3), 90, np.uint8))
        schema = client.primitives()
    # The same frame (PNG is lossless) and gripper state through either path give the same plan (the
    # state matters: the first call must be one the gripper allows).
    assert own.calls == sent.calls and own.source == sent.source == "local"
    assert own.model.startswith("tiny-random@") and "inference" in own.timings_ms
    assert small.model == own.model
    assert {p["name"] for p in schema} >= {"pick", "place", "home"}
    assert robot.steps == 0  # plan never moves the robot


def test_a_large_jpeg_decoded_at_reduced_size_plans_like_the_full_frame():
    """The service decodes a 640 x 480 JPEG at half size for a 96-pixel model; the plan must not change."""
    from edgeagent.models.runtime import default_model_dir

    robot = SimRobot.from_scene(["red", "green", "blue"], ["yellow"], seed=5)
    planner = ModelPlanner(default_model_dir())
    obs = robot.observe()
    jpeg_frame = cv2.imdecode(np.frombuffer(cv2.imencode(".jpg", obs.image)[1], np.uint8), cv2.IMREAD_COLOR)
    instruction = "put the green block in the yellow bowl"
    full = planner.plan(Observation(jpeg_frame, obs.camera, obs.holding), instruction)
    with serving(robot, Router(planner, mode="local")) as (_, client):
        sent = client.plan(instruction, obs.image, image_format="jpeg")
    assert [c.primitive for c in sent.calls] == [c.primitive for c in full.calls] and sent.calls
    for a, b in zip(sent.calls, full.calls):
        for name in a.args:
            assert np.hypot(*np.subtract(a.args[name], b.args[name])) < 0.01, (a, b)
    assert abs(sent.confidence - full.confidence) < 0.05


def test_run_streams_every_event_in_order_and_status_agrees():
    sc = stack_scenario()
    world = sc.build_world()
    robot = SimRobot(world, seed=3)
    router = Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local")
    with serving(robot, router) as (_, client):
        task = client.run(sc.instruction)
        events = list(client.follow(task, timeout_s=20))
        status = client.status(task)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["kind"] == "done"
    assert status["task"]["state"] == "done" and status["task"]["steps"] == robot.steps >= 4
    assert [e["seq"] for e in status["events"]] == [e["seq"] for e in events]
    steps = [e for e in events if e["kind"] == "step"]
    assert [s["call"]["primitive"] for s in steps][:2] == ["pick", "place"]


def test_cancel_during_run_stops_within_one_primitive_and_calls_stop():
    sc = stack_scenario()
    world = sc.build_world()
    robot = RecordingRobot(world, seed=3)
    router = Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local")
    with serving(robot, router) as (_, client):
        task = client.run(sc.instruction)
        events = client.follow(task, timeout_s=20)
        for ev in events:
            if ev["kind"] == "step":
                break
        reply = client.cancel(task)
        at_cancel = robot.executed
        rest = list(events)
        executed_by_first = robot.executed
        second = client.run(sc.instruction)  # the service takes new runs afterwards
        list(client.follow(second, timeout_s=20))
    assert reply["cancelled"] is True
    assert rest[-1]["kind"] == "cancelled"
    assert robot.stops >= 1
    # stopped within one primitive: at most the one under way when the cancel arrived
    executed_after = sum(1 for e in rest if e["kind"] == "step")
    assert executed_after <= 1 and executed_by_first == at_cancel + executed_after


def test_a_second_run_while_one_runs_is_busy_and_unknown_task_is_not_found():
    sc = stack_scenario()
    world = sc.build_world()
    robot = RecordingRobot(world, seed=3, step_s=0.2)
    router = Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local")
    with serving(robot, router) as (_, client):
        task = client.run(sc.instruction)
        with pytest.raises(ServiceError) as busy:
            client.run(sc.instruction)
        with pytest.raises(ServiceError) as missing:
            client.status("no-such-task")
        client.cancel(task)
        list(client.follow(task, timeout_s=20))
    assert busy.value.code == "busy" and task in str(busy.value)
    assert missing.value.code == "not_found"


def test_reload_swaps_the_model_without_restart_and_a_bad_folder_keeps_the_old(tiny_model, tiny_model_b, tmp_path):
    robot = SimRobot.from_scene(["red"], ["blue"], seed=1)
    router = Router(ModelPlanner(tiny_model), mode="local")
    with serving(robot, router, load_model=lambda path: ModelPlanner(path or tiny_model)) as (_, client):
        before = client.plan("put the red block in the blue bowl").model
        swapped = client.reload(str(tiny_model_b))
        after = client.plan("put the red block in the blue bowl").model
        with pytest.raises(ServiceError) as bad:
            client.reload(str(tmp_path / "missing"))
        still = client.health()["model"]["id"]
    assert before.startswith("tiny-random@") and after.startswith("tiny-random-b@")
    assert swapped["previous"] == before and swapped["model"] == after
    assert bad.value.code == "reload_failed" and "still serving tiny-random-b" in str(bad.value)
    assert still == after


def test_req_clients_and_error_replies_over_the_socket(zmq_context):
    robot = SimRobot.from_scene(["red"], ["blue"], seed=1)
    world = robot.world
    sc = scenario_from_dict({"name": "x", "instruction": "x",
                             "scene": {"seed": 1, "blocks": ["red"], "bowls": ["blue"]},
                             "goal": [{"in": ["red block", "blue bowl"]}]})
    router = Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local")
    with serving(robot, router) as (server, _):
        req = zmq_context.socket(zmq.REQ)
        req.linger = 0
        req.connect(server.endpoint)
        req.send_multipart(encode_request("ping", "req-1"))
        assert req.poll(5000)
        pong = decode_reply(req.recv_multipart())
        req.send_multipart(encode_request("plan", "req-2", encode_image(robot.observe().image), instruction="go"))
        assert req.poll(5000)
        plan = decode_reply(req.recv_multipart())
        req.send_multipart([b'{"v": 1, "id": "req-3", "type": "fly"}'])
        assert req.poll(5000)
        err = decode_reply(req.recv_multipart())
        req.close()
    assert pong["id"] == "req-1" and pong["ok"]
    assert plan["id"] == "req-2" and plan["plan"]["calls"][0]["primitive"] == "pick"
    assert err == {"v": 1, "id": "req-3", "ok": False, "error": err["error"]} and err["error"]["code"] == "unknown_type"


def test_events_reach_a_plain_sub_socket(zmq_context):
    sc = stack_scenario()
    world = sc.build_world()
    robot = RecordingRobot(world, seed=3, step_s=0.05)
    router = Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local")
    with serving(robot, router) as (server, client):
        sub = zmq_context.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"task/")
        sub.connect(server.events_endpoint)
        time.sleep(0.3)  # a SUB socket only sees what is published after it joined
        task = client.run(sc.instruction)
        kinds = []
        while sub.poll(5000):
            topic, payload = sub.recv_multipart()
            from edgeagent.protocol import loads

            ev = loads(payload)
            assert topic == f"task/{task}".encode() and ev["task"] == task and ev["v"] == 1
            kinds.append(ev["kind"])
            if ev["kind"] == "done":
                break
        sub.close()
    assert kinds[0] == "plan" and kinds[-1] == "done" and "step" in kinds


def test_concurrent_plan_and_run_share_the_robot_safely():
    sc = stack_scenario()
    world = sc.build_world()
    robot = RecordingRobot(world, seed=3, step_s=0.02)
    router = Router(ExpertPlanner(world, sc.bound_goal(world)), mode="local")
    errors = []
    with serving(robot, router) as (server, client):
        task = client.run(sc.instruction)

        def planner_client():
            with Client(server.endpoint, timeout_s=5) as c:
                for _ in range(10):
                    try:
                        c.plan("stack all blocks")
                    except Exception as exc:  # noqa: BLE001 - collected and asserted below
                        errors.append(exc)

        t = threading.Thread(target=planner_client)
        t.start()
        events = list(client.follow(task, timeout_s=20))
        t.join(20)
    assert not errors
    assert events[-1]["kind"] == "done"
