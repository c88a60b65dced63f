"""The service app in memory (no sockets): the same client, an in-memory transport."""

from __future__ import annotations

import numpy as np
import pytest

from edgeagent.client import Client
from edgeagent.errors import ServiceError
from edgeagent.router import Router
from edgeagent.service import Service
from edgeagent.sim.robot import SimRobot
from edgeagent.transport import InMemoryTransport
from edgeagent.types import Call, Plan


class Pointing:
    """Plans a pick at the image's brightest pixel, mapped to the table with the observation's camera."""

    model_id = "pointing"
    holding: list = []

    def plan(self, obs, instruction, *, deadline_ms=None):
        self.holding.append(obs.holding)
        if instruction == "explode":
            raise RuntimeError("boom")
        v, u = np.unravel_index(obs.image.sum(axis=2).argmax(), obs.image.shape[:2])
        x, y = obs.camera.pixel_to_table((float(u), float(v)))
        return Plan((Call("pick", {"at": (float(x), float(y))}),), False, 0.9, "local", self.model_id)


@pytest.fixture
def client():
    robot = SimRobot.from_scene(["red"], ["blue"], seed=1)
    service = Service(robot, Router(Pointing(), mode="local"), camera=robot.camera)
    with Client("inproc://unused", transport=InMemoryTransport(service)) as c:
        yield c, robot


def test_plan_maps_the_image_through_the_camera(client):
    c, robot = client
    cam = robot.camera
    img = np.zeros((cam.height, cam.width, 3), np.uint8)
    u, v = np.round(cam.table_to_pixel((0.12, -0.08))).astype(int)
    img[v - 1:v + 2, u - 1:u + 2] = 255  # 3 x 3: one pixel survives taking every other row and column
    plan = c.plan("pick it", img, image_format="png")
    assert plan.calls[0].primitive == "pick"
    assert np.allclose(plan.calls[0].args["at"], (0.12, -0.08), atol=0.005)
    half = c.plan("pick it", img[::2, ::2].copy(), image_format="png")  # the camera model is scaled to fit
    assert np.allclose(half.calls[0].args["at"], (0.12, -0.08), atol=0.01)


def test_holding_travels_as_unknown_nothing_or_a_name(client):
    c, robot = client
    img = robot.observe().image
    Pointing.holding.clear()
    c.plan("pick it", img)
    c.plan("pick it", img, holding=None)
    c.plan("pick it", img, holding="red block")
    c.plan("pick it")  # the service camera: the robot knows
    assert Pointing.holding == ["unknown", None, "red block", None]


def test_error_replies_raise_with_code_and_request_id(client):
    c, _ = client
    with pytest.raises(ServiceError) as err:
        c.status("nope")
    assert err.value.code == "not_found" and err.value.request_id in str(err.value)
    with pytest.raises(ServiceError) as err:
        c.plan("pick it", b"\x89PNG\r\n\x1a\n-not-really")
    assert err.value.code == "bad_image"
    with pytest.raises(ServiceError) as err:
        c.plan("pick it", np.zeros((10, 10, 3), np.uint8), camera=None, deadline_ms=0.5)
    assert err.value.code == "bad_request" and "deadline_ms" in str(err.value)
    with pytest.raises(ServiceError) as err:
        c.reload()
    assert err.value.code == "reload_failed" and "without a model loader" in str(err.value)


def test_a_planner_bug_costs_one_internal_error_not_the_service(client):
    c, _ = client
    with pytest.raises(ServiceError) as err:
        c.plan("explode")
    assert err.value.code == "internal" and "RuntimeError: boom" in str(err.value)
    assert c.ping()["pong"] is True
    assert c.health()["errors"] == {}  # protocol errors are counted; a bug is logged instead


def test_cancel_without_any_task(client):
    c, _ = client
    with pytest.raises(ServiceError, match="no task has run yet") as err:
        c.cancel()
    assert err.value.code == "not_found"
