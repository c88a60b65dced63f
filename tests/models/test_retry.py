"""A move that gets nowhere is not repeated forever (models/retry.py), in the real simulator: after two
misses at one spot the model planner tries its next-best pick spot, and a block it has just taken up
again is not set back down where it was."""

from __future__ import annotations

import numpy as np
import pytest

from edgeagent.executor import Executor
from edgeagent.harness import run_scenario
from edgeagent.models.manifest import load_manifest
from edgeagent.models.retry import AFTER, FailedPicks, PutBacks
from edgeagent.models.runtime import ModelPlanner, default_model_dir, model_input
from edgeagent.sim.robot import SimRobot
from edgeagent.sim.scenario import scenario_from_dict

EMPTY, RED = (-0.15, 0.15), (0.1, -0.05)


# -- the memory -------------------------------------------------------------------------------------

def test_two_failed_picks_at_a_spot_mark_it_and_a_pick_elsewhere_does_not():
    m = FailedPicks()
    m.failed((0.1, 0.1))
    assert m.avoid((0.1, 0.1)) == []
    m.failed((0.11, 0.09))  # within 2.5 cm: the same spot
    assert m.avoid((0.09, 0.1)) == [(0.1, 0.1)]
    assert m.avoid((0.2, 0.1)) == []


def test_after_the_alternative_the_first_spot_gets_one_more_try_so_a_chance_miss_is_retried():
    m = FailedPicks()
    for _ in range(AFTER):
        m.failed((0.1, 0.1))
    m.moved(m.avoid((0.1, 0.1)))
    m.failed((0.2, 0.2))  # the alternative failed as well
    assert m.avoid((0.1, 0.1)) == [] and sorted(m.spots()) == [(0.1, 0.1), (0.2, 0.2)]
    m.failed((0.1, 0.1))  # and the first spot once more: the next alternative
    assert m.avoid((0.1, 0.1)) == [(0.1, 0.1)]


def test_reset_forgets_the_failures():
    m = FailedPicks()
    for _ in range(AFTER):
        m.failed((0.1, 0.1))
    m.reset()
    assert m.avoid((0.1, 0.1)) == [] and m.failures() == {}


def test_a_block_taken_up_where_it_was_just_set_down_is_not_put_back_there():
    m = PutBacks()
    m.done("pick", (0.2, 0.2))
    m.done("place", (0.1, 0.1))
    assert m.put_back((0.1, 0.1)) == []  # nothing taken up again yet
    m.done("pick", (0.13, 0.09))  # within a block's width of the place: the same block
    assert m.put_back((0.3, 0.0)) == []  # set down elsewhere: fine
    assert m.would_put_back((0.11, 0.11)) and m.spots() == []  # asking remembers nothing
    assert m.put_back((0.11, 0.11)) == [(0.1, 0.1), (0.13, 0.09)]  # back where it was: keep clear
    assert m.spots() == [(0.1, 0.1)]


def test_a_block_taken_up_elsewhere_may_go_on_the_last_one():
    # Stacking: set a block down, pick another one, set it down on the first.
    m = PutBacks()
    m.done("place", (0.1, 0.1))
    m.done("pick", (-0.2, 0.1))
    assert m.put_back((0.1, 0.1)) == []


def test_a_spot_caught_once_stays_caught_so_two_spot_cycles_end_too():
    m = PutBacks()
    m.done("place", (0.1, 0.1))
    m.done("pick", (0.1, 0.1))
    assert m.put_back((0.1, 0.1))
    m.done("place", (0.1, 0.2))  # the alternative
    m.done("pick", (0.1, 0.2))  # taken up again, and headed back to the first spot
    assert m.put_back((0.1, 0.1)) == [(0.1, 0.1), (0.1, 0.2), (0.1, 0.2)]


def test_another_call_a_failure_or_a_new_task_breaks_the_chain():
    for interrupt in (lambda m: m.done("push", None), lambda m: m.failed(), lambda m: m.reset()):
        m = PutBacks()
        m.done("place", (0.1, 0.1))
        interrupt(m)
        m.done("pick", (0.1, 0.1))
        assert m.put_back((0.1, 0.1)) == []


# -- the planner in the simulator -------------------------------------------------------------------

class Scripted:
    """Model outputs whose pick scores an empty spot first and the red block's spot second, then END.

    Stands in for the network only to make the miss certain; decoding, validation, the simulator and
    the executor are the real ones."""

    provider = "scripted"

    def __init__(self, manifest, camera, picks: int):
        self.m, self.cam, self.picks, self.calls = manifest, camera, picks, 0

    def _cell(self, xy):
        S, G = self.m.S, self.m.G
        u, v = self.cam.table_to_pixel(np.asarray(xy, float)) * G / S
        return int(v) * G + int(u), (u % 1.0, v % 1.0)

    def run(self, feeds):
        m = self.m
        self.calls += 1
        prim = np.zeros((1, m.K, 1 + len(m.primitives)), np.float32)
        prim[0, :, 0] = 5.0  # END everywhere ...
        if self.calls <= self.picks:
            prim[0, 0, 0], prim[0, 0, 1] = 0.0, 5.0  # ... but a pick in slot 0
        pts = np.zeros((1, m.K, m.A, m.G * m.G), np.float32)
        off = np.full((1, m.K, m.A, m.G * m.G, 2), 0.5, np.float32)
        for xy, score in ((EMPTY, 6.0), (RED, 4.0)):
            c, frac = self._cell(xy)
            pts[0, 0, 0, c] = score
            off[0, 0, 0, c] = frac
        return {"prim_logits": prim, "point_logits": pts, "point_offset": off,
                "confidence": np.array([[0.9]], np.float32)}


def scripted_planner(robot, n: int, outputs=None, **kw) -> ModelPlanner:
    """The shipped model's manifest and decoding, with ``outputs`` (default ``Scripted``, ``n`` picks)
    standing in for the network."""
    manifest, _ = load_manifest(default_model_dir())
    look = robot.observe()
    _, cam = model_input(look.image, look.camera, manifest)
    return ModelPlanner(default_model_dir(), backend=(outputs or Scripted)(manifest, cam, n), **kw)


def test_after_two_misses_the_planner_picks_at_its_next_best_spot():
    robot = SimRobot.from_scene([("red", RED)], [])
    planner = scripted_planner(robot, AFTER + 1)
    events = []
    with robot:
        result = Executor(robot, planner, max_steps=10, on_event=events.append).run("pick up the red block")
    steps = [e for e in events if e.kind == "step"]
    assert [e.result.ok for e in steps] == [False] * AFTER + [True]
    assert robot.holding == "red block" and result.status == "done"
    plans = [e.plan for e in events if e.kind == "plan"]
    assert "next-best spot" in plans[AFTER].reason and "next-best" not in plans[0].reason


def test_without_the_memory_the_same_miss_repeats_until_the_steps_run_out():
    robot = SimRobot.from_scene([("red", RED)], [])
    planner = scripted_planner(robot, 99, remember_failures=False)
    with robot:
        result = Executor(robot, planner, max_steps=6).run("pick up the red block")
    assert result.status == "max_steps" and robot.holding is None


def test_each_run_of_the_executor_starts_the_planner_afresh():
    robot = SimRobot.from_scene([("red", RED)], [])
    planner = scripted_planner(robot, AFTER)  # two misses, then END: the task "ends" unpicked
    with robot:
        Executor(robot, planner, max_steps=10).run("pick up the red block")
        assert planner.failed_picks.failures()  # the two misses are remembered ...
        planner.backend.calls = 0
        events = []
        Executor(robot, planner, max_steps=10, on_event=events.append).run("pick up the red block")
    # ... but the next task starts afresh: its first pick goes to the top-scoring spot again.
    first = next(e for e in events if e.kind == "step")
    assert first.call.args["at"] == pytest.approx(EMPTY, abs=0.01)


def test_plans_that_are_never_executed_change_nothing():
    # A client asking for the same plan again and again (a `plan` request) gets the same plan.
    robot = SimRobot.from_scene([("red", RED)], [])
    planner = scripted_planner(robot, 99)
    look = robot.observe()
    plans = [planner.plan(look, "pick up the red block") for _ in range(2 * AFTER + 1)]
    assert all(p.calls == plans[0].calls for p in plans) and plans[0].calls[0].args["at"] == pytest.approx(EMPTY, abs=0.01)


def test_the_shipped_model_does_not_repeat_a_missed_pick_forever():
    # A calibration scene where the shipped model reads the far red block 3.5 cm off and, without the
    # memory, tried the same empty spot until its 16 steps ran out.
    sc = scenario_from_dict({
        "name": "far-red", "family": "stack", "instruction": "would you stack all of the blocks?",
        "scene": {"seed": 1029893394,
                  "blocks": [{"color": "cyan", "at": [-0.206, 0.146]}, {"color": "red", "at": [-0.089, 0.195]},
                             {"color": "blue", "at": [0.177, 0.002]}, {"color": "orange", "at": [0.116, -0.169]}],
                  "bowls": [{"color": "purple", "at": [-0.094, -0.019]}]},
        "goal": [{"stacked": "all blocks"}], "max_steps": 16})
    planner = ModelPlanner(default_model_dir())
    failed = []
    result, run = run_scenario(sc, lambda s, robot: planner,
                               on_event=lambda e: failed.append(e.call) if e.kind == "step" and not e.result.ok else None)
    assert result.success, result.unmet
    spots = [c.args["at"] for c in failed]
    for p in spots:
        same = [q for q in spots if abs(q[0] - p[0]) < 0.025 and abs(q[1] - p[1]) < 0.025]
        assert len(same) <= 2 * AFTER, spots


class PutBackScripted(Scripted):
    """Model outputs that always score the red block's spot first and an empty spot second, for
    picks and places alike (decoding takes whichever the gripper state allows), then END."""

    def __init__(self, manifest, camera, plans: int):
        super().__init__(manifest, camera, picks=0)
        self.plans = plans

    def run(self, feeds):
        out = super().run(feeds)  # END in slot 0, red first, the empty spot second
        names = [p.name for p in self.m.primitives]
        if self.calls <= self.plans:
            prim = out["prim_logits"]
            prim[0, 0, 0] = 0.0
            prim[0, 0, 1 + names.index("pick")], prim[0, 0, 1 + names.index("place")] = 5.0, 4.0
        out["point_logits"][0, 0, 0] *= np.where(out["point_logits"][0, 0, 0] == 6.0, 4 / 6, 6 / 4)
        return out


@pytest.mark.parametrize("remember", [True, False])
def test_a_block_taken_up_again_goes_to_the_next_best_spot_not_back(remember):
    robot = SimRobot.from_scene([("red", RED)], [])
    planner = scripted_planner(robot, 4, PutBackScripted, remember_failures=remember)
    events = []
    with robot:
        Executor(robot, planner, max_steps=10, on_event=events.append).run("move the red block a little")
        steps = [(e.call.primitive, e.result.ok) for e in events if e.kind == "step"]
    # pick it, set it down where it was (a first place is not a put-back), pick it again, then ...
    assert steps == [("pick", True), ("place", True), ("pick", True), ("place", True)]
    last = [e.call.args["at"] for e in events if e.kind == "step"][-1]
    if remember:  # ... the next-best spot
        assert last == pytest.approx(EMPTY, abs=0.01)
        assert "next-best spot" in [e.plan for e in events if e.kind == "plan"][3].reason
    else:  # ... back where it was: the same scene again, and the cycle would go on
        assert last == pytest.approx(RED, abs=0.01)


@pytest.mark.parametrize("mode", ["remote", "hedge"])
def test_a_workstation_plan_that_repeats_a_missed_pick_is_not_taken(mode):
    # The workstation plans from the frame alone and never hears which picks failed on the robot, so it
    # proposes the same empty spot every time; after two misses the router takes the robot's own plan,
    # which moved to the next-best spot, over real sockets.
    from edgeagent.offload import OffloadServer, RemotePlanner
    from edgeagent.router import Router

    robot = SimRobot.from_scene([("red", RED)], [])
    workstation = scripted_planner(robot, 99, remember_failures=False)
    local = scripted_planner(robot, AFTER + 1)
    events = []
    with OffloadServer(workstation, "tcp://127.0.0.1:*", workers=1) as ws:
        remote = RemotePlanner(ws.endpoint, registry=local.registry, heartbeat_ms=100, timeout_ms=2000)
        # hedge waits for the remote only while the local plan is unsure
        router = Router(local, remote, mode=mode, deadline_ms=2000.0, threshold=0.95)
        try:
            assert remote.wait_ready(5), "the workstation never answered a heartbeat"
            with robot:
                result = Executor(robot, router, max_steps=8, on_event=events.append).run("pick up the red block")
        finally:
            router.close()
    plans = [e.plan for e in events if e.kind == "plan"]
    assert [e.result.ok for e in events if e.kind == "step"] == [False] * AFTER + [True]
    assert [p.source for p in plans[:AFTER + 1]] == ["remote"] * AFTER + ["local"], [p.reason for p in plans]
    assert f"failed {AFTER} times in this task" in plans[AFTER].reason and "next-best spot" in plans[AFTER].reason
    assert result.status == "done" and robot.holding == "red block"
