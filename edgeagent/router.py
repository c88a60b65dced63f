"""The router: which planner answers, within the request's deadline (DESIGN §6).

Modes:

- ``local``  the onboard planner only.
- ``remote`` send to the workstation at once, plan locally meanwhile as insurance, take the remote plan
  if it is valid before the deadline, else the local one. A link known to be down is not tried.
- ``auto``   the cascade: a cached plan for the same instruction and scene; else the local plan if its
  confidence reaches the threshold; else, if the link is healthy and the expected remote time fits the
  remaining deadline, offload; a late, failed, invalid or garbage remote answer falls back to the local
  plan already in hand.
- ``hedge``  send to the workstation and plan locally at once; the first valid answer wins, where a local
  plan below the threshold only wins when the remote one has not come by the deadline.

Every Plan leaves with ``source`` (local / remote / cache), ``reason`` (the decision in words) and
``timings_ms`` per stage. ``decide`` is a pure function of a few numbers: microseconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

from edgeagent.cache import PlanCache, scene_signature
from edgeagent.errors import ConfigError, OffloadError, OffloadTimeout
from edgeagent.types import Observation, Plan, Planner

MODES = ("local", "remote", "auto", "hedge")
#: Link states, best to worst. "none": no workstation configured.
LINK_STATES = ("up", "degraded", "unknown", "down", "none")
DEFAULT_THRESHOLD = 0.5


class LatencyStats:
    """The last ``n`` latencies (ms) of something, with percentiles. Thread-safe enough: appends are atomic."""

    def __init__(self, n: int = 2048):
        self._values: deque[float] = deque(maxlen=n)
        self.count = 0

    def add(self, ms: float) -> None:
        self._values.append(float(ms))
        self.count += 1

    def summary(self) -> dict[str, Any]:
        values = sorted(self._values)
        if not values:
            return {"count": self.count, "p50": None, "p90": None, "p99": None, "max": None}

        def pct(q: float) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))], 3)

        return {"count": self.count, "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": round(values[-1], 3)}


class LinkHealth:
    """What the robot knows about its link to the workstation, from heartbeats and offload outcomes.

    Heartbeat age, RTT EWMA and jitter (EWMA of successive RTT differences, as RFC 3550), the recent
    failure rate of offloads (last ``window`` outcomes younger than ``window_s``), and the remote queue
    depth and plan time reported by the workstation in its heartbeat replies.
    """

    def __init__(self, endpoint: str | None = None, *, timeout_ms: float = 2000.0, alpha: float = 0.2,
                 window: int = 20, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.alpha = alpha
        self.window_s = window_s
        self.clock = clock
        self.started = clock()
        self.last_heartbeat: float | None = None
        self.rtt_ms: float | None = None
        self.jitter_ms = 0.0
        self._last_rtt: float | None = None
        self.remote_queue = 0
        self.remote_workers = 1
        self.remote_plan_ms: float | None = None
        self.offload_ms: float | None = None
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=window)
        self.last_error = ""
        self.last_error_at: float | None = None
        self.heartbeats = self.offloads = self.failures = 0
        self._lock = threading.Lock()

    def on_heartbeat(self, rtt_ms: float, *, queue: int = 0, workers: int = 1, plan_ms: float | None = None,
                     now: float | None = None) -> None:
        """A heartbeat was answered after ``rtt_ms``; the workstation reports its queue and plan time."""
        a = self.alpha
        with self._lock:
            self.last_heartbeat = self.clock() if now is None else now
            self.heartbeats += 1
            if self._last_rtt is not None:
                self.jitter_ms += a * (abs(rtt_ms - self._last_rtt) - self.jitter_ms)
            self._last_rtt = rtt_ms
            self.rtt_ms = rtt_ms if self.rtt_ms is None else self.rtt_ms + a * (rtt_ms - self.rtt_ms)
            self.remote_queue = max(0, int(queue))
            self.remote_workers = max(1, int(workers))
            if plan_ms is not None:
                self.remote_plan_ms = float(plan_ms)

    def on_outcome(self, ok: bool, *, latency_ms: float | None = None, error: str = "",
                   now: float | None = None) -> None:
        """An offload request ended: answered with a valid plan in ``latency_ms``, or failed with ``error``."""
        now = self.clock() if now is None else now
        with self._lock:
            self._outcomes.append((now, ok))
            self.offloads += 1
            if ok and latency_ms is not None:
                a = self.alpha
                prev = self.offload_ms
                self.offload_ms = latency_ms if prev is None else prev + a * (latency_ms - prev)
            if not ok:
                self.failures += 1
                self.last_error, self.last_error_at = error, now

    def failure_rate(self, now: float | None = None) -> tuple[float, int]:
        """(share of recent offloads that failed, how many recent offloads there were)."""
        now = self.clock() if now is None else now
        recent = [ok for t, ok in list(self._outcomes) if now - t <= self.window_s]
        if not recent:
            return 0.0, 0
        return 1.0 - sum(recent) / len(recent), len(recent)

    def state(self, now: float | None = None) -> tuple[str, str]:
        """(state, why): up, degraded (recent offloads mostly failed), unknown (starting), down."""
        now = self.clock() if now is None else now
        if self.last_heartbeat is None:
            waited = (now - self.started) * 1e3
            if waited < self.timeout_ms:
                return "unknown", "no heartbeat answered yet"
            return "down", f"no heartbeat answered in {waited / 1e3:.1f} s since start"
        age = (now - self.last_heartbeat) * 1e3
        if age > self.timeout_ms:
            return "down", f"last heartbeat answered {age / 1e3:.1f} s ago"
        rate, n = self.failure_rate(now)
        if n >= 2 and rate > 0.5:
            return "degraded", f"{rate:.0%} of the last {n} offloads failed (last: {self.last_error})"
        return "up", ""

    def expected_ms(self) -> float | None:
        """Expected wall time of an offload now: transfer + remote plan + queueing + 2 x jitter; None if unknown."""
        if self.rtt_ms is None:
            return None
        plan_ms = self.remote_plan_ms or 0.0
        base = self.offload_ms if self.offload_ms is not None else self.rtt_ms + plan_ms
        return base + 2.0 * self.jitter_ms + plan_ms * self.remote_queue / self.remote_workers

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Everything above as JSON-ready values (for ``health``)."""
        now = self.clock() if now is None else now
        state, why = self.state(now)
        rate, n = self.failure_rate(now)
        expected = self.expected_ms()
        return {"endpoint": self.endpoint, "state": state, "why": why,
                "heartbeat_age_ms": None if self.last_heartbeat is None else
                round((now - self.last_heartbeat) * 1e3, 1),
                "rtt_ewma_ms": _r(self.rtt_ms), "jitter_ms": _r(self.jitter_ms), "failure_rate": round(rate, 3),
                "recent_offloads": n, "remote_queue_depth": self.remote_queue,
                "remote_plan_ms": _r(self.remote_plan_ms),
                "expected_remote_ms": _r(expected), "heartbeats": self.heartbeats, "offloads": self.offloads,
                "failures": self.failures, "last_error": self.last_error,
                "last_error_age_s": None if self.last_error_at is None else round(now - self.last_error_at, 1)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


class Router:
    """A Planner that chooses between the local planner, the workstation and the plan cache.

    ``local`` is any Planner (required: it is the fallback); ``remote`` a ``RemotePlanner`` or None;
    ``threshold`` defaults to the local model's calibrated one (its manifest), else 0.5.
    ``margin_ms`` is kept free before the deadline to hand the answer back.
    """

    def __init__(self, local: Planner, remote=None, *, mode: str = "auto", deadline_ms: float = 200.0,
                 threshold: float | None = None, cache: PlanCache | None = None, margin_ms: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        if mode not in MODES:
            raise ConfigError(f"router mode {mode!r} is unknown; choose one of {', '.join(MODES)}")
        if mode in ("remote", "hedge") and remote is None:
            raise ConfigError(f"router mode {mode!r} needs a workstation: set router.offload (or --offload / "
                              "--connect) to the offload server's endpoint, or use mode 'local' or 'auto'")
        if deadline_ms <= 0:
            raise ConfigError(f"router deadline_ms must be > 0, got {deadline_ms}")
        self.local = local
        self.remote = remote
        self.mode = mode
        self.deadline_ms = float(deadline_ms)
        self._threshold_from_model = threshold is None
        self.threshold = float(threshold if threshold is not None else _model_threshold(local))
        self.cache = cache
        self.margin_ms = margin_ms
        self.clock = clock
        self._local_lock = threading.Lock()
        # Calls of this task the robot tried, carried out or not (``call_done``, ``call_failed``).
        self._tried: list = []
        self._mode_fn = {"local": self._plan_local, "remote": self._plan_remote, "auto": self._plan_auto,
                         "hedge": self._plan_hedge}[mode]
        self.counts = {"local": 0, "remote": 0, "cache": 0, "fallback": 0}
        self.last_fallback: dict[str, Any] | None = None
        self.last_reason = ""
        # A compound instruction is routed part by part, so the workstation and the cache see single
        # tasks too (models/clauses.py); ``home`` from the local planner's registry, else the standard one.
        from edgeagent.models.clauses import Compound, home_call

        registry = getattr(local, "registry", None)
        if registry is None:
            from edgeagent.primitives import registry
        self._compound = Compound(home_call(registry))

    # -- decision -----------------------------------------------------------------------------------------
    def decide(self, confidence: float, remaining_ms: float, now: float | None = None) -> tuple[str, str]:
        """("local" | "remote", why) for a local plan of ``confidence`` with ``remaining_ms`` left."""
        thr = self.threshold
        if confidence >= thr:
            return "local", f"local confidence {confidence:.2f} >= threshold {thr:.2f}"
        if self.remote is None:
            return "local", f"local confidence {confidence:.2f} < {thr:.2f}; no workstation configured"
        link = self.remote.link
        state, why = link.state(now)
        if state != "up":
            return "local", f"local confidence {confidence:.2f} < {thr:.2f} but the link is {state} ({why})"
        expected = link.expected_ms()
        if expected is None or expected > remaining_ms - self.margin_ms:
            return "local", (f"local confidence {confidence:.2f} < {thr:.2f} but the remote would take "
                             f"~{expected or 0:.0f} ms and {remaining_ms:.0f} ms are left")
        return "remote", (f"local confidence {confidence:.2f} < {thr:.2f}; remote expected ~{expected:.0f} ms "
                          f"fits the {remaining_ms:.0f} ms left")

    # -- planning -----------------------------------------------------------------------------------------
    def plan(self, obs: Observation, instruction: str, *, deadline_ms: float | None = None) -> Plan:
        """A plan within ``deadline_ms`` (default: the router's), saying where it came from and why; a
        compound instruction one part at a time, each part routed on its own."""
        return self._compound.plan(obs, instruction, lambda o, part: self._plan_part(o, part, deadline_ms))

    def _plan_part(self, obs: Observation, instruction: str, deadline_ms: float | None) -> Plan:
        t0 = self.clock()
        deadline = float(deadline_ms) if deadline_ms else self.deadline_ms
        timings: dict[str, float] = {}
        sig = None
        if self.cache is not None:
            sig = scene_signature(obs)
            hit = self.cache.get(instruction, obs, sig)
            timings["cache"] = (self.clock() - t0) * 1e3
            # A cached call tried before in this task, in a scene that looks the same, got nowhere (it failed,
            # or it put a block back where it was): replayed, it would repeat forever. The planner knows
            # better (the model planner moves a missed pick or a put-back, models/retry.py).
            if hit is not None and not (hit.calls and hit.calls[0] in self._tried):
                return self._finish(hit, t0, timings)
        plan = self._mode_fn(obs, instruction, deadline, t0, timings)
        if self.cache is not None and (plan.calls or plan.done) and (
                plan.source == "remote" or plan.confidence >= self.threshold):
            self.cache.put(instruction, obs, plan, sig)
        return self._finish(plan, t0, timings)

    def _finish(self, plan: Plan, t0: float, timings: dict[str, float]) -> Plan:
        total = (self.clock() - t0) * 1e3
        self.counts[plan.source] = self.counts.get(plan.source, 0) + 1
        self.last_reason = plan.reason
        return plan.replace(latency_ms=total, timings_ms={**plan.timings_ms, **timings})

    def _local(self, obs: Observation, instruction: str, deadline: float, timings: dict[str, float]) -> Plan:
        t = self.clock()
        # One inference at a time: concurrent runs of one model only slow each other down on the board.
        with self._local_lock:
            plan = self.local.plan(obs, instruction, deadline_ms=deadline)
        timings["local"] = (self.clock() - t) * 1e3
        return plan

    def _plan_local(self, obs, instruction, deadline, t0, timings) -> Plan:
        plan = self._local(obs, instruction, deadline, timings)
        return plan.replace(reason=_join("local mode", plan.reason))

    def _plan_auto(self, obs, instruction, deadline, t0, timings) -> Plan:
        local = self._local(obs, instruction, deadline, timings)
        t = self.clock()
        remaining = deadline - (t - t0) * 1e3
        route, why = self.decide(local.confidence, remaining, t)
        timings["decision"] = (self.clock() - t) * 1e3
        if route == "local":
            return local.replace(reason=_join(why, local.reason))
        pending, failed = self._try_submit(obs, instruction, remaining - self.margin_ms, why)
        return self._await(pending, local, failed or why, t0, deadline, timings)

    def _plan_remote(self, obs, instruction, deadline, t0, timings) -> Plan:
        state, why = self.remote.link.state()
        pending = None
        if state == "down":
            reason = f"remote mode, but the link is down ({why})"
        else:
            pending, reason = self._try_submit(obs, instruction, deadline - self.margin_ms, "remote mode")
        local = self._local(obs, instruction, deadline, timings)
        if pending is None:
            return self._fallback(local, f"{reason}; local plan")
        return self._await(pending, local, "remote mode", t0, deadline, timings)

    def _plan_hedge(self, obs, instruction, deadline, t0, timings) -> Plan:
        state, why = self.remote.link.state()
        pending, reason = (None, f"hedge, but the link is down ({why})") if state == "down" else \
            self._try_submit(obs, instruction, deadline - self.margin_ms, "hedge")
        local = self._local(obs, instruction, deadline, timings)
        if pending is not None and pending.done():
            try:
                plan = pending.result(0.0)
                timings["remote"] = (self.clock() - pending.sent) * 1e3
                nowhere = self._gets_nowhere(plan)
                if not nowhere:
                    return plan.replace(source="remote", reason=f"hedge: the remote answered first, in "
                                                                f"{plan.latency_ms:.1f} ms")
                pending, reason = None, f"hedge: the remote plan's {nowhere}"
            except OffloadError as exc:
                pending, reason = None, f"hedge: remote failed: {exc}"
        if local.confidence >= self.threshold:
            if pending is not None:
                pending.cancel()
            return local.replace(reason=_join(f"hedge: local answered first with confidence {local.confidence:.2f} "
                                              f">= {self.threshold:.2f}", local.reason))
        if pending is None:
            return self._fallback(local, f"{reason}; local plan")
        return self._await(pending, local, f"hedge: local confidence {local.confidence:.2f} < "
                                           f"{self.threshold:.2f}", t0, deadline, timings)

    # -- remote helpers ------------------------------------------------------------------------------------
    def _submit(self, obs, instruction, budget_ms):
        return self.remote.submit(obs, instruction, deadline_ms=max(1.0, budget_ms))

    def _try_submit(self, obs, instruction, budget_ms, what):
        try:
            return self._submit(obs, instruction, budget_ms), ""
        except OffloadError as exc:
            return None, f"{what}, but the request could not be sent ({exc})"

    def _await(self, pending, local: Plan, why: str, t0: float, deadline: float, timings) -> Plan:
        if pending is None:
            return self._fallback(local, why)
        wait_ms = deadline - self.margin_ms - (self.clock() - t0) * 1e3
        pending.wait(max(0.0, wait_ms) / 1e3)
        return self._take(pending, local, why, timings)

    def _take(self, pending, local: Plan, why: str, timings) -> Plan:
        try:
            plan = pending.result(0.0)
        except OffloadTimeout as exc:
            return self._fallback(local, f"{why}; remote late: {exc}; local fallback")
        except OffloadError as exc:
            return self._fallback(local, f"{why}; remote failed: {exc}; local fallback")
        finally:
            timings["remote"] = (self.clock() - pending.sent) * 1e3
        nowhere = self._gets_nowhere(plan)
        if nowhere:
            return self._fallback(local, f"{why}; the remote plan's {nowhere}; local plan")
        return plan.replace(source="remote", reason=f"{why}; remote answered in {plan.latency_ms:.1f} ms")

    def _gets_nowhere(self, plan: Plan) -> str | None:
        """Why the remote ``plan``'s first call would get nowhere, by what the local planner remembers of
        this task; None when it would not (or the local planner remembers nothing). The workstation plans
        from the frame alone: it never hears which calls failed here, so it repeats a missed pick or a
        put-back that the local planner has learnt to move (models/retry.py)."""
        check = getattr(self.local, "gets_nowhere", None)
        if not plan.calls or not callable(check):
            return None
        return check(plan.calls[0])

    def _fallback(self, local: Plan, reason: str) -> Plan:
        self.counts["fallback"] += 1
        self.last_fallback = {"reason": reason, "at": time.time()}
        return local.replace(reason=_join(reason, local.reason))

    def swap_local(self, planner: Planner) -> None:
        """Serve with another local planner from the next request on (``reload``); the cache is cleared."""
        with self._local_lock:
            self.local = planner
            if self._threshold_from_model:
                self.threshold = _model_threshold(planner)
        if self.cache is not None:
            self.cache.clear()

    def reset(self) -> None:
        """A new task starts (``Executor.run``): the local planner forgets what it kept from the last one."""
        self._tried.clear()
        self._compound.reset()
        reset = getattr(self.local, "reset", None)
        if callable(reset):
            reset()

    def call_done(self, call) -> None:
        """The robot carried out ``call`` (``Executor.run``): never replay it from the cache in this task,
        and tell the local planner."""
        self._tried.append(call)
        self._compound.call_done(call)
        done = getattr(self.local, "call_done", None)
        if callable(done):
            done(call)

    def call_failed(self, call) -> None:
        """The robot could not carry out ``call`` (``Executor.run``): never replay it from the cache in this
        task, and tell the local planner."""
        self._tried.append(call)
        failed = getattr(self.local, "call_failed", None)
        if callable(failed):
            failed(call)

    # -- introspection -------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Mode, threshold, counts per source, the last fallback and the cache (for ``health``)."""
        last = dict(self.last_fallback) if self.last_fallback else None
        if last:
            last["age_s"] = round(time.time() - last.pop("at"), 1)
        return {"mode": self.mode, "deadline_ms": self.deadline_ms, "threshold": self.threshold,
                "counts": dict(self.counts), "last_reason": self.last_reason, "last_fallback": last,
                "cache": self.cache.stats() if self.cache is not None else None}

    def link_snapshot(self) -> dict[str, Any]:
        if self.remote is None:
            return {"state": "none", "why": "no workstation configured", "endpoint": None}
        return self.remote.link.snapshot()

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()


def _model_threshold(planner: Any) -> float:
    manifest = getattr(planner, "manifest", None)
    value = getattr(manifest, "confidence_threshold", None)
    return float(value) if isinstance(value, (int, float)) else DEFAULT_THRESHOLD


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b
