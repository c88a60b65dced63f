"""SimRobot: the simulator as a Robot backend, driven only through observe() and execute()."""

import numpy as np
import pytest

from edgeagent.errors import InvalidCall, PreconditionFailed, SafetyLimit, UnknownPrimitive
from edgeagent.primitives import registry
from edgeagent.sim.render import RenderStyle, default_camera
from edgeagent.sim.robot import SimRobot
from edgeagent.types import Call, Observation, Robot

RED, GREEN, BLUE_BOWL = (0.1, -0.1), (-0.15, 0.05), (0.15, 0.15)


@pytest.fixture
def robot() -> SimRobot:
    return SimRobot.from_scene([("red", RED), ("green", GREEN)], [("blue", BLUE_BOWL)], seed=3)


def snapshot(robot: SimRobot):
    w = robot.world
    return ({c: (b.x, b.y, b.z) for c, b in w.blocks.items()}, w.gripper, w.closed, w.held)


def test_is_a_robot_and_observes_the_scene(robot):
    assert isinstance(robot, Robot)
    obs = robot.observe()
    assert isinstance(obs, Observation)
    assert obs.image.shape == (480, 640, 3) and obs.image.dtype == np.uint8
    assert obs.camera == robot.camera == default_camera()
    assert obs.holding is None
    assert np.array_equal(obs.image, robot.observe().image)


def test_pick_place_into_bowl_round_trip(robot):
    r = robot.execute(Call("pick", {"at": RED}))
    assert r.ok and r.holding == "red block" and robot.world.held == "red"
    assert robot.observe().holding == "red block"
    r = robot.execute(Call("place", {"at": BLUE_BOWL}))
    assert r.ok and r.holding is None
    assert r.message == "red block now in blue bowl"
    assert robot.world.support("red") == "bowl:blue"
    assert robot.steps == 2
    assert robot.observe().holding is None


def test_stack_and_unstack(robot):
    robot.execute(Call("pick", {"at": GREEN}))
    r = robot.execute(Call("place", {"at": RED}))
    assert r.ok and r.message == "green block now on red block"
    assert robot.world.support("green") == "block:red"
    # Picking at the stack takes the top block.
    assert robot.execute(Call("pick", {"at": RED})).holding == "green block"
    r = robot.execute(Call("place", {"at": (-0.2, -0.2)}))
    assert r.ok and r.message == "green block now on the table"
    g = robot.world.blocks["green"]
    assert (g.x, g.y, g.z) == (-0.2, -0.2, 0.0)


def test_observation_follows_the_world(robot):
    before = robot.observe().image
    robot.execute(Call("pick", {"at": RED}))
    assert not np.array_equal(before, robot.observe().image)


def test_failed_grasp_reports_not_ok():
    robot = SimRobot.from_scene([("red", RED)], [], grasp_failure=1.0)
    r = robot.execute(Call("pick", {"at": RED}))
    assert not r.ok and r.holding is None and r.message.startswith("grasp failed: nothing held")
    assert robot.world.held is None and robot.world.blocks["red"].x == RED[0]


def test_pick_at_an_empty_spot_fails(robot):
    r = robot.execute(Call("pick", {"at": (-0.25, -0.25)}))
    assert not r.ok and "grasp failed" in r.message


@pytest.mark.parametrize("call, error", [
    (Call("pick", {"at": (0.5, 0.0)}), InvalidCall),
    (Call("pick", {"where": RED}), InvalidCall),
    (Call("place", {"at": RED}), PreconditionFailed),
    (Call("fly", {}), UnknownPrimitive),
])
def test_invalid_call_raises_and_leaves_world_unchanged(robot, call, error):
    before = snapshot(robot)
    with pytest.raises(error):
        robot.execute(call)
    assert snapshot(robot) == before and robot.steps == 0


def test_pick_while_holding_is_refused(robot):
    robot.execute(Call("pick", {"at": RED}))
    before = snapshot(robot)
    with pytest.raises(PreconditionFailed, match="holding red block"):
        robot.execute(Call("pick", {"at": GREEN}))
    assert snapshot(robot) == before


def test_registry_subset_limits_what_runs():
    robot = SimRobot.from_scene(["red"], [], registry=registry.subset(["pick", "place"]))
    with pytest.raises(UnknownPrimitive):
        robot.execute(Call("push", {"start": (0, 0), "end": (0.1, 0)}))


def test_push_reports_what_moved(robot):
    r = robot.execute(Call("push", {"start": RED, "end": (0.2, -0.1)}))
    assert r.ok and "moved red block" in r.message
    assert robot.world.blocks["red"].x == pytest.approx(0.2)


def test_stop_blocks_execution_until_reset(robot):
    with robot as r:
        assert r is robot
    with pytest.raises(SafetyLimit, match="robot stopped"):
        robot.execute(Call("home", {}))
    assert robot.steps == 0
    robot.reset_stop()
    assert robot.execute(Call("home", {})).ok


def test_random_style_is_seeded():
    a = SimRobot.from_scene(["red"], ["blue"], seed=1, style="random")
    b = SimRobot.from_scene(["red"], ["blue"], seed=1, style="random")
    c = SimRobot.from_scene(["red"], ["blue"], seed=1)
    assert isinstance(a.style, RenderStyle) and a.style == b.style
    assert np.array_equal(a.observe().image, b.observe().image)
    assert not np.array_equal(a.observe().image, c.observe().image)
    with pytest.raises(ValueError, match="style"):
        SimRobot.from_scene(["red"], [], style="fancy")


def test_custom_camera_resolution():
    robot = SimRobot.from_scene(["red"], [], camera=default_camera().resized(128, 128))
    assert robot.observe().image.shape == (128, 128, 3)
