"""A ROS-free ZeroMQ bridge from the service to an external robot controller.

``BridgeRobot`` is a ``Robot`` whose ``execute``/``stop`` travel to a controller process (written in any
language) and whose images come from a camera the service owns. ``BridgeController`` is the other end
in Python: it exposes any ``Robot`` on a socket, as a reference implementation and for tests.

Message format (docs/protocol.md, "Robot bridge"): the controller binds a REP (or ROUTER) socket; each
request is one JSON frame after the usual empty delimiter frame, ``{"v": 1, "id": ..., "type": ...}``:

- ``hello``   -> ``{"ok": true, "name": "...", "primitives": [...]}`` (checked once at start)
- ``execute`` with ``"call": {"primitive": "pick", "args": {"at": [0.1, -0.05]}}``
              -> ``{"ok": true, "result": {"ok": true, "message": "...", "holding": "red block" | null}}``
- ``state``   -> ``{"ok": true, "holding": "red block" | null | "unknown"}``
- ``stop``    -> ``{"ok": true}``; the controller halts motion and refuses further ``execute`` until ``reset``.
- ``reset``   -> ``{"ok": true}``; accept ``execute`` again (sent when a new run starts after a stop).

Errors: ``{"ok": false, "error": {"code": "...", "message": "..."}}``. Calls reaching the controller
have been validated against the robot's registry (names, bounds, preconditions) already.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import numpy as np
import zmq

from edgeagent.camera import CameraModel
from edgeagent.errors import EdgeAgentError, ProtocolError, SafetyLimit, ServiceError, ServiceTimeout
from edgeagent.protocol import decode_reply, dumps, encode_error, encode_reply, loads, new_id, VERSION
from edgeagent.transport import bind, new_socket
from edgeagent.types import UNKNOWN, Call, Observation, Robot, StepResult

log = logging.getLogger(__name__)


class BridgeRobot:
    """A Robot that forwards calls to an external controller at ``endpoint``; images from ``frames()``."""

    def __init__(self, endpoint: str, *, frames: Callable[[], np.ndarray], camera: CameraModel,
                 timeout_s: float = 30.0, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.frames = frames
        self.camera = camera
        self.timeout_s = timeout_s
        self.context = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._lock = threading.Lock()
        self.name = ""

    def connect(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Say hello; returns the controller's reply. Raises ServiceTimeout when nobody answers."""
        reply = self._request({"type": "hello"}, timeout_s)
        self.name = str(reply.get("name", ""))
        return reply

    # -- Robot --------------------------------------------------------------------------------------------
    def observe(self) -> Observation:
        image = self.frames()
        h, w = image.shape[:2]
        camera = self.camera if (self.camera.width, self.camera.height) == (w, h) else self.camera.resized(w, h)
        holding = self._request({"type": "state"}, min(self.timeout_s, 5.0)).get("holding", UNKNOWN)
        return Observation(image, camera, holding if isinstance(holding, str) or holding is None else UNKNOWN)

    def execute(self, call: Call) -> StepResult:
        reply = self._request({"type": "execute", "call": call.to_dict()}, self.timeout_s)
        result = reply.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
            raise ServiceError("bad_header", f"controller at {self.endpoint} answered execute without a "
                                             f"result {{ok, message, holding}}: {str(reply)[:120]}")
        holding = result.get("holding")
        return StepResult(result["ok"], str(result.get("message", "")), holding if isinstance(holding, str) else None)

    def stop(self) -> None:
        try:
            self._request({"type": "stop"}, 2.0)
        except EdgeAgentError as exc:
            # Stopping must be loud when it fails: the arm may still be moving.
            raise SafetyLimit(f"stop could not be delivered to the controller at {self.endpoint}: {exc}; use the "
                              "robot's emergency stop") from exc

    def reset_stop(self) -> None:
        """Re-arm the controller after ``stop()`` (a new run starts)."""
        self._request({"type": "reset"}, 2.0)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=0)
                self._sock = None

    def __enter__(self) -> "BridgeRobot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------------------------------------
    def _request(self, fields: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        rid = new_id()
        msg = dumps({"v": VERSION, "id": rid, **fields})
        with self._lock:
            if self._sock is None:
                self._sock = new_socket(self.context, zmq.DEALER)
                self._sock.connect(self.endpoint)
            sock = self._sock
            sock.send_multipart([b"", msg])
            deadline = time.monotonic() + timeout_s
            while True:
                left = (deadline - time.monotonic()) * 1e3
                if left <= 0 or not sock.poll(left):
                    sock.close(linger=0)
                    self._sock = None
                    raise ServiceTimeout(f"robot controller at {self.endpoint} did not answer {fields['type']} "
                                         f"within {timeout_s:g} s; is it running?", rid)
                frames = sock.recv_multipart()
                if frames and frames[0] == b"":
                    frames = frames[1:]
                try:
                    reply = decode_reply(frames)
                except ProtocolError as exc:
                    raise ServiceError(exc.code, f"robot controller at {self.endpoint}: {exc}", rid) from None
                if reply.get("id") not in (rid, None):
                    continue  # a late answer to an abandoned request
                if not reply["ok"]:
                    err = reply["error"]
                    raise ServiceError(err["code"], f"robot controller at {self.endpoint}: {err['message']}", rid)
                return reply


class BridgeController:
    """Exposes a ``Robot`` on a ROUTER socket with the bridge protocol (reference controller)."""

    def __init__(self, robot: Robot, endpoint: str = "tcp://127.0.0.1:5560", *, name: str = "python-controller",
                 context: zmq.Context | None = None):
        self.robot = robot
        self.name = name
        self.context = context or zmq.Context.instance()
        self._sock = new_socket(self.context, zmq.ROUTER)
        self.endpoint = bind(self._sock, endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bridge-controller", daemon=True)
        self.stopped = False

    def start(self) -> "BridgeController":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close(linger=0)

    def __enter__(self) -> "BridgeController":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(100):
                continue
            msg = self._sock.recv_multipart()
            cut = 2 if len(msg) > 2 and msg[1] == b"" else 1
            envelope, frames = msg[:cut], msg[cut:]
            self._sock.send_multipart(envelope + self._answer(frames))

    def _answer(self, frames: list[bytes]) -> list[bytes]:
        try:
            req = loads(frames[0]) if len(frames) == 1 else None
        except (ValueError, RecursionError):
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("id"), str):
            return encode_error(None, "bad_header", "a bridge request is one JSON object frame with an 'id'")
        rid, kind = req["id"], req.get("type")
        try:
            if kind == "hello":
                from edgeagent.primitives import registry

                names = [p.name for p in getattr(self.robot, "registry", registry)]
                return encode_reply(rid, name=self.name, primitives=names)
            if kind == "state":
                holding = getattr(self.robot, "holding", UNKNOWN) if hasattr(self.robot, "holding") else \
                    self.robot.observe().holding
                return encode_reply(rid, holding=holding)
            if kind == "stop":
                self.robot.stop()
                self.stopped = True
                return encode_reply(rid)
            if kind == "reset":
                reset = getattr(self.robot, "reset_stop", None)
                if callable(reset):
                    reset()
                self.stopped = False
                return encode_reply(rid)
            if kind == "execute":
                result = self.robot.execute(Call.from_dict(req.get("call")))
                return encode_reply(rid, result={"ok": result.ok, "message": result.message, "holding": result.holding})
        except (EdgeAgentError, ValueError) as exc:
            return encode_error(rid, "robot_error", f"{type(exc).__name__}: {exc}")
        return encode_error(rid, "unknown_type", f"unknown bridge request type {kind!r}; use hello, execute, state, "
                                                 "stop or reset")
