"""Core types shared by every part: observations, calls, plans, and the Robot / Planner protocols."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from edgeagent.camera import CameraModel

#: ``Observation.holding`` of a backend that cannot tell what the gripper holds.
UNKNOWN = "unknown"

#: Where a plan came from.
SOURCES = ("local", "remote", "cache", "expert")


@dataclass
class Observation:
    """One look at the scene."""

    # H x W x 3 uint8, BGR (OpenCV order).
    image: np.ndarray
    # Intrinsics/extrinsics of the camera that took ``image``; maps pixels to table points.
    camera: CameraModel
    # Name of what the gripper holds ("red block"); None when empty; UNKNOWN when the backend cannot tell
    # (then preconditions such as "place needs something held" are left to the robot).
    holding: str | None = None
    # Capture time, seconds since the epoch.
    stamp: float = field(default_factory=time.time)


def _plain(value: Any) -> Any:
    """Arguments as JSON-ready values: tuples/arrays of numbers become lists of floats."""
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class Call:
    """One primitive invocation, e.g. ``Call("pick", {"at": (0.1, -0.05)})``. Points in metres."""

    primitive: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"primitive": self.primitive, "args": {k: _plain(v) for k, v in self.args.items()}}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Call":
        if not isinstance(d, Mapping) or not isinstance(d.get("primitive"), str):
            raise ValueError(f"a call is an object with a string 'primitive' and an 'args' object, got {d!r:.200}")
        args = d.get("args", {})
        if not isinstance(args, Mapping):
            raise ValueError(f"call {d['primitive']!r}: 'args' must be an object, got {type(args).__name__}")
        return Call(d["primitive"], {str(k): (tuple(v) if isinstance(v, list) else v) for k, v in args.items()})

    def __str__(self) -> str:
        def fmt(v):
            if isinstance(v, (tuple, list)):
                return "(" + ", ".join(f"{float(x):+.3f}" for x in v) + ")"
            return repr(v)

        return f"{self.primitive}(" + ", ".join(f"{k}={fmt(v)}" for k, v in self.args.items()) + ")"


@dataclass(frozen=True)
class Plan:
    """What a planner proposes: calls to make now, or ``done`` when it believes the task is complete."""

    calls: tuple[Call, ...]
    done: bool
    # Predicted probability that executing this plan succeeds, in [0, 1].
    confidence: float
    # "local", "remote", "cache" or "expert".
    source: str
    # Which model (name/hash) or planner produced it.
    model: str = ""
    # Wall time spent producing it, milliseconds.
    latency_ms: float = 0.0
    # Why this source was chosen (router decision), or why a fallback happened.
    reason: str = ""
    # Per-stage timings, milliseconds (preprocess, inference, decode, offload, ...).
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": [c.to_dict() for c in self.calls], "done": self.done,
                "confidence": float(self.confidence), "source": self.source, "model": self.model,
                "latency_ms": float(self.latency_ms), "reason": self.reason,
                "timings_ms": {k: float(v) for k, v in self.timings_ms.items()}}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Plan":
        if not isinstance(d, Mapping) or not isinstance(d.get("calls"), list):
            raise ValueError("a plan is an object with a 'calls' list")
        conf = d.get("confidence", 0.0)
        if not isinstance(conf, (int, float)) or not 0.0 <= float(conf) <= 1.0:
            raise ValueError(f"plan confidence must be a number in [0, 1], got {conf!r:.50}")
        timings = d.get("timings_ms", {})
        return Plan(tuple(Call.from_dict(c) for c in d["calls"]), bool(d.get("done", False)), float(conf),
                    str(d.get("source", "remote")), str(d.get("model", "")), float(d.get("latency_ms", 0.0)),
                    str(d.get("reason", "")), dict(timings) if isinstance(timings, Mapping) else {})

    def replace(self, **changes: Any) -> "Plan":
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class StepResult:
    """Outcome of executing one call on a robot."""

    ok: bool
    message: str = ""
    # What the gripper holds after the call, if the backend knows.
    holding: str | None = None


@runtime_checkable
class Robot(Protocol):
    """A robot backend: the simulator, a ZeroMQ bridge, or a user's class. Use as a context manager."""

    def observe(self) -> Observation: ...

    def execute(self, call: Call) -> StepResult: ...

    def stop(self) -> None: ...

    def __enter__(self) -> "Robot": ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Planner(Protocol):
    """Turns an observation and an instruction into a Plan.

    A planner that remembers something between the plans of one task (the model planner remembers
    its failed picks and its last moves) may also define ``reset()``, which ``Executor.run`` calls when a
    task starts, ``call_done(call)``, which it calls when the robot carried out a call, and
    ``call_failed(call)``, which it calls when the robot could not carry out one.
    """

    def plan(self, obs: Observation, instruction: str, *, deadline_ms: float | None = None) -> Plan: ...
