"""Router: link health, the decision, each mode's choices and reasons, the cache in the loop."""

from __future__ import annotations

import socket

import pytest

from edgeagent.cache import PlanCache
from edgeagent.errors import ConfigError
from edgeagent.offload import OffloadServer, RemotePlanner
from edgeagent.router import LinkHealth, Router
from edgeagent.sim.robot import SimRobot
from edgeagent.types import Call, Plan


class Clock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FixedPlanner:
    """A planner that answers the same plan, counting calls."""

    def __init__(self, confidence: float, at=(0.1, 0.05), name: str = "fixed"):
        self.confidence, self.at, self.model_id, self.calls = confidence, at, name, 0

    def plan(self, obs, instruction, *, deadline_ms=None):
        self.calls += 1
        return Plan((Call("pick", {"at": self.at}),), False, self.confidence, "local", self.model_id, 1.0)


class ThresholdModel(FixedPlanner):
    class manifest:
        confidence_threshold = 0.8


@pytest.fixture(scope="module")
def obs():
    return SimRobot.from_scene([("red", (0.1, 0.05))], ["blue"], seed=0).observe()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- link health ---------------------------------------------------------------------------------------
def test_rtt_ewma_jitter_and_expected_time():
    clock = Clock()
    link = LinkHealth(timeout_ms=1000, alpha=0.5, clock=clock)
    link.on_heartbeat(10.0, queue=0, workers=2, plan_ms=20.0)
    link.on_heartbeat(20.0, queue=4, workers=2, plan_ms=20.0)
    assert link.rtt_ms == 15.0 and link.jitter_ms == 5.0
    # no offload measured yet: rtt + plan + 2 x jitter + queueing (4 waiting over 2 workers x 20 ms)
    assert link.expected_ms() == pytest.approx(15 + 20 + 10 + 40)
    link.on_outcome(True, latency_ms=30.0)
    assert link.expected_ms() == pytest.approx(30 + 10 + 40)


def test_link_states_follow_heartbeat_age_and_failures():
    clock = Clock()
    link = LinkHealth("tcp://ws:5557", timeout_ms=1000, window_s=30, clock=clock)
    assert link.state() == ("unknown", "no heartbeat answered yet")
    clock.t += 1.5
    state, why = link.state()
    assert state == "down" and "no heartbeat answered in 1.5 s" in why
    link.on_heartbeat(5.0)
    assert link.state()[0] == "up"
    link.on_outcome(False, error="garbage")
    link.on_outcome(False, error="late")
    link.on_outcome(True, latency_ms=9.0)
    state, why = link.state()
    assert state == "degraded" and "67% of the last 3 offloads failed (last: late)" in why
    clock.t += 0.5
    link.on_heartbeat(5.0)
    clock.t += 31  # failures age out of the window; the heartbeat is old now too
    assert link.state()[0] == "down" and "last heartbeat answered 31.0 s ago" in link.state()[1]
    link.on_heartbeat(5.0)
    assert link.state() == ("up", "")
    snap = link.snapshot()
    assert snap["endpoint"] == "tcp://ws:5557" and snap["failures"] == 2 and snap["last_error"] == "late"


# -- decision -------------------------------------------------------------------------------------------------
class LinkOnly:
    """The part of a RemotePlanner the decision reads."""

    def __init__(self, link):
        self.link = link


def test_decide_keeps_confident_plans_and_offloads_only_when_it_fits():
    clock = Clock()
    link = LinkHealth(timeout_ms=1000, clock=clock)
    router = Router(FixedPlanner(0.3), LinkOnly(link), mode="auto", threshold=0.5, margin_ms=5, clock=clock)
    assert router.decide(0.7, 100)[0] == "local"
    route, why = router.decide(0.3, 100)
    assert route == "local" and "link is unknown (no heartbeat answered yet)" in why
    link.on_heartbeat(20.0, plan_ms=30.0)
    route, why = router.decide(0.3, 100)
    assert route == "remote" and "remote expected ~50 ms fits the 100 ms left" in why
    route, why = router.decide(0.3, 40)
    assert route == "local" and "would take ~50 ms and 40 ms are left" in why
    clock.t += 2
    assert "link is down" in router.decide(0.3, 100)[1]


def test_threshold_defaults_to_the_models_calibrated_value():
    assert Router(ThresholdModel(0.5), mode="local").threshold == 0.8
    assert Router(FixedPlanner(0.5), mode="local").threshold == 0.5
    assert Router(ThresholdModel(0.5), mode="local", threshold=0.3).threshold == 0.3


def test_modes_that_need_a_workstation_say_so():
    for mode in ("remote", "hedge"):
        with pytest.raises(ConfigError, match="needs a workstation"):
            Router(FixedPlanner(0.5), mode=mode)
    with pytest.raises(ConfigError, match="unknown; choose one of local, remote, auto, hedge"):
        Router(FixedPlanner(0.5), mode="fast")


# -- modes over loopback sockets ---------------------------------------------------------------------------
def test_local_and_auto_without_a_workstation(obs):
    local = Router(FixedPlanner(0.2), mode="local").plan(obs, "go")
    assert local.source == "local" and local.reason.startswith("local mode")
    auto = Router(FixedPlanner(0.2), mode="auto").plan(obs, "go")
    assert auto.source == "local" and "no workstation configured" in auto.reason
    assert {"local", "decision"} <= set(auto.timings_ms)


def test_auto_offloads_and_caches_the_remote_plan(obs):
    with OffloadServer(FixedPlanner(0.99, at=(0.1, 0.05), name="big"), "tcp://127.0.0.1:*") as ws:
        remote = RemotePlanner(ws.endpoint, heartbeat_ms=50)
        assert remote.wait_ready(5)
        local = FixedPlanner(0.2, at=(0.0, 0.0))
        router = Router(local, remote, mode="auto", threshold=0.5, deadline_ms=2000, cache=PlanCache())
        first = router.plan(obs, "Pick the red block")
        again = router.plan(obs, "pick the red block!")
        router.close()
    assert first.source == "remote" and first.model == "big" and first.calls[0].args["at"] == (0.1, 0.05)
    assert again.source == "cache" and again.calls == first.calls
    assert local.calls == 1  # the cache answered before any planner ran
    assert router.stats()["counts"] == {"local": 0, "remote": 1, "cache": 1, "fallback": 0}


@pytest.mark.parametrize("hook", ["call_failed", "call_done"])
def test_a_cached_call_tried_in_this_task_is_planned_again_not_replayed(obs, hook):
    # The same scene after trying a call means it got nowhere (a missed pick, a block put back where it
    # was): the cache would replay it forever. Once the executor reports it, the local planner (which
    # remembers misses and put-backs) answers instead, and hears of it.
    local = FixedPlanner(0.99)
    local.heard = []
    setattr(local, hook, local.heard.append)
    router = Router(local, mode="auto", threshold=0.5, cache=PlanCache())
    first = router.plan(obs, "pick the red block")
    assert router.plan(obs, "pick the red block").source == "cache"  # nothing tried yet
    getattr(router, hook)(first.calls[0])
    assert router.plan(obs, "pick the red block").source == "local" and local.heard == [first.calls[0]]
    router.reset()  # a new task: the cache serves it again
    assert router.plan(obs, "pick the red block").source == "cache"


def test_remote_mode_with_the_link_down_answers_locally_without_waiting(obs):
    remote = RemotePlanner(f"tcp://127.0.0.1:{free_port()}", heartbeat_ms=50, timeout_ms=100)
    router = Router(FixedPlanner(0.2), remote, mode="remote", deadline_ms=5000)
    first = router.plan(obs, "go")  # link still unknown: sending fails at once (nobody connected)
    assert first.source == "local" and "not connected to the workstation" in first.reason
    import time

    time.sleep(0.2)
    later = router.plan(obs, "go")
    router.close()
    assert "link is down" in later.reason
    assert first.latency_ms < 5000 and later.latency_ms < 5000  # never waited for the deadline
    assert router.stats()["last_fallback"]["reason"] in later.reason


def test_hedge_returns_a_confident_local_plan_without_waiting_for_the_remote(obs):
    import time

    class Slow(FixedPlanner):
        def plan(self, *a, **kw):
            time.sleep(1.0)
            return super().plan(*a, **kw)

    with OffloadServer(Slow(0.99, name="slow"), "tcp://127.0.0.1:*") as ws:
        remote = RemotePlanner(ws.endpoint, heartbeat_ms=50)
        assert remote.wait_ready(5)
        router = Router(FixedPlanner(0.9), remote, mode="hedge", threshold=0.5, deadline_ms=3000)
        plan = router.plan(obs, "go")
        router.close()
    assert plan.source == "local" and plan.reason.startswith("hedge: local answered first")
    assert plan.latency_ms < 1000
