"""The closed loop: observe -> plan -> validate -> execute the first call -> observe -> re-plan.

Stops when the planner says done, after ``max_steps`` executed calls, on cancel, or on an error it
cannot recover from. A failed primitive (the robot reports ``ok=False``) or a plan whose first call is
invalid leads to a fresh look and a re-plan, not a crash. Every step emits one ``Event``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edgeagent.errors import CallError, Cancelled, EdgeAgentError
from edgeagent.types import UNKNOWN, Call, Observation, Plan, Planner, Robot, StepResult


@dataclass(frozen=True)
class Event:
    """One step of a run, as emitted to listeners (and published by the service)."""

    # "plan", "step", "replan", "done", "error", "cancelled", "max_steps"
    kind: str
    step: int
    message: str = ""
    call: Call | None = None
    plan: Plan | None = None
    result: StepResult | None = None
    stamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "step": self.step, "message": self.message, "stamp": self.stamp}
        if self.call is not None:
            d["call"] = self.call.to_dict()
        if self.plan is not None:
            d["plan"] = self.plan.to_dict()
        if self.result is not None:
            d["result"] = {"ok": self.result.ok, "message": self.result.message, "holding": self.result.holding}
        return d


@dataclass
class RunResult:
    """How a run ended."""

    # "done", "max_steps", "cancelled", "error"
    status: str
    steps: int
    events: list[Event]
    plans: list[Plan]
    error: str = ""

    @property
    def plan_latencies_ms(self) -> list[float]:
        return [p.latency_ms for p in self.plans]


class CancelToken:
    """Thread-safe cancel flag; ``cancel()`` stops a run after the current primitive."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Executor:
    """Runs one instruction closed loop on a robot with a planner."""

    def __init__(self, robot: Robot, planner: Planner, registry=None, *, max_steps: int = 20,
                 max_replans: int | None = None, deadline_ms: float | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 on_observation: Callable[[Observation], None] | None = None):
        from edgeagent.primitives import registry as standard

        self.robot = robot
        self.planner = planner
        self.registry = registry if registry is not None else standard
        self.max_steps = max_steps
        # Plans that yield nothing executable in a row before giving up (default: max_steps).
        self.max_replans = max_replans if max_replans is not None else max_steps
        self.deadline_ms = deadline_ms
        self.on_event = on_event
        self.on_observation = on_observation

    def run(self, instruction: str, cancel: CancelToken | None = None) -> RunResult:
        events: list[Event] = []
        plans: list[Plan] = []
        steps = 0
        idle = 0  # consecutive plans that produced nothing executed

        def emit(ev: Event) -> None:
            events.append(ev)
            if self.on_event is not None:
                self.on_event(ev)

        def end(status: str, message: str = "", error: str = "") -> RunResult:
            emit(Event(status, steps, message))
            return RunResult(status, steps, events, plans, error)

        reset = getattr(self.planner, "reset", None)
        if callable(reset):
            reset()  # a planner that remembers things between plans starts this task afresh
        try:
            while True:
                if cancel is not None and cancel.cancelled:
                    self.robot.stop()
                    return end("cancelled", "cancelled by request; robot stopped")
                obs = self.robot.observe()
                if self.on_observation is not None:
                    self.on_observation(obs)
                plan = self.planner.plan(obs, instruction, deadline_ms=self.deadline_ms)
                plans.append(plan)
                emit(Event("plan", steps, plan.reason, plan=plan))
                if plan.done:
                    return end("done", "planner reports the task complete")
                if steps >= self.max_steps:
                    return end("max_steps", f"stopped after {steps} steps without the planner reporting done")
                if not plan.calls:
                    idle += 1
                    emit(Event("replan", steps, f"plan has no executable call ({plan.reason or 'no reason given'})"))
                    if idle >= self.max_replans:
                        return end("error", "planner produced no executable call", "no executable call")
                    continue
                call = plan.calls[0]
                try:
                    known = obs.holding != UNKNOWN
                    call = self.registry.validate(call, holding=obs.holding if known else None, check_state=known)
                except CallError as exc:
                    idle += 1
                    emit(Event("replan", steps, f"invalid call {call}: {exc}", call=call))
                    if idle >= self.max_replans:
                        return end("error", f"planner kept proposing invalid calls: {exc}", str(exc))
                    continue
                result = self.robot.execute(call)
                steps += 1
                idle = 0
                emit(Event("step", steps, result.message, call=call, result=result))
                if result.ok:
                    done = getattr(self.planner, "call_done", None)
                    if callable(done):
                        done(call)  # a planner that remembers moves (the model planner's put-backs)
                else:
                    failed = getattr(self.planner, "call_failed", None)
                    if callable(failed):
                        failed(call)  # a planner that learns from misses (the model planner's picks)
                    emit(Event("replan", steps, f"{call.primitive} failed ({result.message}); looking again"))
        except Cancelled as exc:
            self.robot.stop()
            return end("cancelled", str(exc))
        except EdgeAgentError as exc:
            return end("error", str(exc), str(exc))

