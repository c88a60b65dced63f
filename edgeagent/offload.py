"""Workstation offload: the server that plans for robots, and the robot's ``RemotePlanner`` client.

``OffloadServer`` serves ``plan`` (image + camera + instruction -> plan) with any Planner (a bigger
ONNX model on CUDA, the same model with more refinement cycles, ...), answers heartbeats (``ping``)
with its queue depth and recent plan time, and serves several robots at once from a pool of workers.
A request whose deadline passed while it waited in the queue is answered ``deadline_expired``
without planning, so a backlog never delays fresh requests further.

``RemotePlanner`` talks to it over one DEALER socket owned by a background thread, which also sends
heartbeats and feeds ``LinkHealth``. ``submit`` returns at once with a ``PendingPlan``; the router
waits on it within its deadline. A remote answer is only returned when it is a well-formed plan whose
every call passes the robot's registry; anything else raises ``OffloadError`` saying what was wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import zmq

from edgeagent.errors import CallError, EdgeAgentError, OffloadError, OffloadTimeout, ProtocolError
from edgeagent.protocol import (OFFLOAD_REQUESTS, Request, decode_camera, decode_image, decode_reply, decode_request,
                                encode_error, encode_image, encode_reply, encode_request, new_id, peek_id)
from edgeagent.router import LatencyStats, LinkHealth
from edgeagent.transport import CurveClient, CurveServer, RouterServer, new_socket, secure_client
from edgeagent.types import UNKNOWN, Observation, Plan

log = logging.getLogger(__name__)


# -- workstation side --------------------------------------------------------------------------------------
class OffloadApp:
    """Answers ``ping``, ``health`` and ``plan`` with one planner (the app behind ``OffloadServer``)."""

    slow = frozenset({"plan"})

    def __init__(self, planner, *, workers: int = 1):
        self.planner = planner
        self.workers = workers
        self.started = time.time()
        self.latency = LatencyStats()
        self.plan_ms: float | None = None
        self.served = self.expired = self.failed = 0
        self.depth = lambda: 0  # set by OffloadServer to the server's queue depth

    def accept(self, frames: list[bytes]) -> Request:
        return decode_request(frames, OFFLOAD_REQUESTS)

    def handle(self, request: Request) -> list[bytes]:
        if request.type == "ping":
            return encode_reply(request.id, queue=self.depth(), workers=self.workers, plan_ms=self.plan_ms,
                                model=_model_name(self.planner), time=time.time())
        if request.type == "health":
            from edgeagent.service import versions

            return encode_reply(request.id, role="offload-server", versions=versions(), model=_model_name(self.planner),
                                provider=getattr(self.planner, "provider", None),
                                uptime_s=round(time.time() - self.started, 3), queue=self.depth(),
                                workers=self.workers, served=self.served, expired=self.expired, failed=self.failed,
                                latency_ms=self.latency.summary())
        return self._plan(request)

    def _plan(self, request: Request) -> list[bytes]:
        waited_ms = (time.monotonic() - request.received) * 1e3
        deadline = request.get("deadline_ms")
        if deadline is not None and waited_ms >= deadline:
            self.expired += 1
            return encode_error(request.id, "deadline_expired", f"request {request.id} waited {waited_ms:.0f} ms "
                                                                f"in the queue, past its {deadline:g} ms deadline")
        if request.image is None:
            raise ProtocolError("bad_request", f"request {request.id} (plan): the offload server needs the image "
                                               "frame")
        camera = decode_camera(request.get("camera"), request.id)
        image = decode_image(request.image, request.id)
        obs = Observation(image, camera, request.get("holding", UNKNOWN))
        t = time.perf_counter()
        try:
            plan = self.planner.plan(obs, request.get("instruction"), deadline_ms=deadline)
        except Exception as exc:
            self.failed += 1
            if isinstance(exc, EdgeAgentError):  # said on purpose ("names no block …"): no traceback
                log.warning("planner refused request %s: %s", request.id, exc)
            else:
                log.exception("planner failed on request %s", request.id)
            return encode_error(request.id, "planner_error", f"request {request.id}: the workstation planner "
                                                             f"failed: {type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t) * 1e3
        self.plan_ms = ms if self.plan_ms is None else self.plan_ms + 0.2 * (ms - self.plan_ms)
        self.latency.add(ms)
        self.served += 1
        return encode_reply(request.id, plan=plan.to_dict())


class OffloadServer:
    """``OffloadApp`` on a ROUTER socket. ``start()`` / ``stop()``, or use as a context manager."""

    def __init__(self, planner, endpoint: str = "tcp://127.0.0.1:5557", *, curve: CurveServer | None = None,
                 workers: int = 2, queue_size: int = 64, context: zmq.Context | None = None):
        from edgeagent.transport import start_authenticator

        self.context = context or zmq.Context()
        self._own_context = context is None
        self.auth = start_authenticator(self.context, curve) if curve is not None else None
        self.app = OffloadApp(planner, workers=workers)
        self.server = RouterServer(self.app, endpoint, curve=curve, workers=workers, queue_size=queue_size,
                                   context=self.context, name="offload")
        self.app.depth = lambda: self.server.depth
        self.endpoint = self.server.endpoint

    def start(self) -> "OffloadServer":
        self.server.start()
        return self

    def stop(self) -> None:
        finished = self.server.stop()
        if self.auth is not None:
            self.auth.stop()
        if self._own_context and finished:
            self.context.term()  # would block on the socket of a worker still planning

    def __enter__(self) -> "OffloadServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _model_name(planner: Any) -> str:
    return str(getattr(planner, "model_id", None) or type(planner).__name__)


# -- robot side -------------------------------------------------------------------------------------------
class PendingPlan:
    """A plan requested from the workstation; ``result`` validates it."""

    def __init__(self, owner: "RemotePlanner", rid: str, deadline_ms: float):
        self.owner = owner
        self.id = rid
        self.deadline_ms = deadline_ms
        self.sent = time.monotonic()
        self.future: Future = Future()

    def done(self) -> bool:
        return self.future.done()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the answer; True when it came."""
        try:
            self.future.result(timeout=max(0.0, timeout_s))
        except FutureTimeout:
            return False
        except (CancelledError, Exception):
            return True
        return True

    def cancel(self) -> None:
        """Not waited for any longer: a late answer is discarded."""
        self.owner._forget(self.id)
        self.future.cancel()

    def result(self, timeout_s: float = 0.0) -> Plan:
        """The validated remote plan; raises OffloadTimeout when it did not come in time, OffloadError else."""
        link = self.owner.link
        try:
            frames, t_reply = self.future.result(timeout=max(0.0, timeout_s))
        except FutureTimeout:
            waited = (time.monotonic() - self.sent) * 1e3
            self.cancel()
            msg = f"no answer from {self.owner.endpoint} within {waited:.0f} ms"
            link.on_outcome(False, error=msg)
            raise OffloadTimeout(msg) from None
        except CancelledError:
            raise OffloadError(f"request {self.id} was cancelled") from None
        except OffloadError as exc:
            link.on_outcome(False, error=str(exc))
            raise
        latency = (t_reply - self.sent) * 1e3
        try:
            plan = self.owner.parse(frames, self.id)
        except OffloadError as exc:
            link.on_outcome(False, error=str(exc))
            raise
        link.on_outcome(True, latency_ms=latency)
        # The workstation's own stages, named apart from the robot's (`inference` is the local model's).
        timings = {f"workstation_{k}": v for k, v in plan.timings_ms.items()}
        timings["workstation"] = plan.latency_ms
        return plan.replace(source="remote", latency_ms=latency, timings_ms=timings)


class RemotePlanner:
    """A Planner that asks a workstation's offload server; validates answers with ``registry``.

    A background thread owns the DEALER socket: it forwards requests, matches replies to pending
    requests by id, sends a heartbeat every ``heartbeat_ms`` and keeps ``link`` up to date. With
    ``ZMQ_IMMEDIATE`` set, nothing is queued for a workstation that is not connected: ``submit`` fails at
    once and the router falls back without waiting.
    """

    def __init__(self, endpoint: str, *, registry=None, heartbeat_ms: float = 500.0, timeout_ms: float | None = None,
                 curve: CurveClient | None = None, image_format: str = "jpeg", jpeg_quality: int = 90,
                 context: zmq.Context | None = None):
        if registry is None:
            from edgeagent.primitives import registry
        self.endpoint = endpoint
        self.registry = registry
        self.heartbeat_ms = float(heartbeat_ms)
        if timeout_ms is None:
            timeout_ms = max(1000.0, 4 * heartbeat_ms)
        self.link = LinkHealth(endpoint, timeout_ms=timeout_ms)
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        self.curve = curve
        self.context = context or zmq.Context.instance()
        self.model_id = f"remote:{endpoint}"
        self._pending: dict[str, PendingPlan] = {}
        self._lock = threading.Lock()
        self._out_endpoint = f"inproc://remote-planner-{id(self)}"
        self._out = self.context.socket(zmq.PUSH)
        self._out.linger = 0
        self._out.bind(self._out_endpoint)
        self._out_lock = threading.Lock()
        self._stop = threading.Event()
        self.late = 0
        self._thread = threading.Thread(target=self._io_loop, name="remote-planner", daemon=True)
        self._thread.start()

    # -- Planner --------------------------------------------------------------------------------------------
    def plan(self, obs: Observation, instruction: str, *, deadline_ms: float | None = None) -> Plan:
        """Blocking: the validated remote plan within ``deadline_ms`` (default 1 s), or OffloadError."""
        budget = float(deadline_ms) if deadline_ms else 1000.0
        pending = self.submit(obs, instruction, deadline_ms=budget)
        return pending.result(budget / 1e3)

    def submit(self, obs: Observation, instruction: str, *, deadline_ms: float) -> PendingPlan:
        """Send a plan request now; returns at once. Raises OffloadError when it cannot be sent."""
        if self._stop.is_set():
            raise OffloadError(f"the remote planner for {self.endpoint} is closed")
        rid = new_id()
        image = encode_image(obs.image, self.image_format, self.jpeg_quality)
        holding = obs.holding if obs.holding != UNKNOWN else None
        frames = encode_request("plan", rid, image, instruction=instruction, camera=obs.camera.to_dict(),
                                holding=holding, deadline_ms=round(float(deadline_ms), 3))
        pending = PendingPlan(self, rid, deadline_ms)
        with self._lock:
            self._pending[rid] = pending
        with self._out_lock:
            self._out.send_multipart(frames)
        return pending

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until a heartbeat was answered (the link is up); False after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while self.link.last_heartbeat is None:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def parse(self, frames: list[bytes], rid: str) -> Plan:
        """A reply -> a Plan whose every call the registry accepts; OffloadError says what was wrong."""
        try:
            reply = decode_reply(frames)
        except ProtocolError as exc:
            raise OffloadError(f"the workstation answered garbage to {rid}: {exc}") from None
        if not reply["ok"]:
            err = reply["error"]
            raise OffloadError(f"the workstation answered {err['code']}: {err['message'][:200]}")
        try:
            plan = Plan.from_dict(reply.get("plan"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise OffloadError(f"the workstation answered garbage to {rid}: not a plan ({exc})") from None
        for i, call in enumerate(plan.calls):
            try:
                self.registry.validate(call)
            except CallError as exc:
                raise OffloadError(f"the workstation's plan is invalid: call {i} {exc}") from None
        return plan

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        with self._out_lock:
            self._out.close(linger=0)
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for p in pending:
            if not p.future.done():
                p.future.set_exception(OffloadError(f"the remote planner for {self.endpoint} was closed"))

    def _forget(self, rid: str) -> None:
        with self._lock:
            self._pending.pop(rid, None)

    # -- I/O thread ------------------------------------------------------------------------------------------
    def _io_loop(self) -> None:
        dealer = new_socket(self.context, zmq.DEALER)
        dealer.setsockopt(zmq.IMMEDIATE, 1)
        dealer.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        secure_client(dealer, self.curve)
        dealer.connect(self.endpoint)
        pull = self.context.socket(zmq.PULL)
        pull.linger = 0
        pull.connect(self._out_endpoint)
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        heartbeats: dict[str, float] = {}
        next_beat = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self._heartbeat(dealer, heartbeats, now)
                    next_beat = now + self.heartbeat_ms / 1e3
                events = dict(poller.poll(max(1, min(100, (next_beat - time.monotonic()) * 1e3))))
                if pull in events:
                    while pull.poll(0):
                        self._forward(dealer, pull.recv_multipart())
                if dealer in events:
                    while dealer.poll(0):
                        self._on_reply(dealer.recv_multipart(), heartbeats)
        finally:
            dealer.close(linger=0)
            pull.close(linger=0)

    def _forward(self, dealer: zmq.Socket, frames: list[bytes]) -> None:
        rid = peek_id(frames)
        try:
            dealer.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError:
            with self._lock:
                pending = self._pending.pop(rid, None)
            if pending is not None and not pending.future.done():
                state, why = self.link.state()
                pending.future.set_exception(OffloadError(f"not connected to the workstation at {self.endpoint} "
                                                          f"(link {state}{': ' + why if why else ''})"))

    def _heartbeat(self, dealer: zmq.Socket, heartbeats: dict[str, float], now: float) -> None:
        for rid, sent in list(heartbeats.items()):
            if (now - sent) * 1e3 > self.link.timeout_ms:
                del heartbeats[rid]
        rid = "hb-" + new_id()[:12]
        try:
            dealer.send_multipart(encode_request("ping", rid), zmq.NOBLOCK)
            heartbeats[rid] = now
        except zmq.ZMQError:
            pass  # not connected: the heartbeat age says so

    def _on_reply(self, frames: list[bytes], heartbeats: dict[str, float]) -> None:
        now = time.monotonic()
        rid = peek_id(frames)
        if rid is not None and rid in heartbeats:
            sent = heartbeats.pop(rid)
            try:
                reply = decode_reply(frames)
                if not reply["ok"]:
                    raise ProtocolError("bad_header", reply["error"]["message"])
                self.link.on_heartbeat((now - sent) * 1e3, queue=_int(reply.get("queue")),
                                       workers=_int(reply.get("workers"), 1), plan_ms=_float(reply.get("plan_ms")))
            except ProtocolError as exc:
                self.link.on_outcome(False, error=f"heartbeat answered with garbage: {exc}")
            return
        with self._lock:
            if rid is None and self._pending:
                # No readable id: garbage. Charge it to the oldest request so the router hears of it now.
                rid = next(iter(self._pending))
            pending = self._pending.pop(rid, None) if rid is not None else None
        if pending is None:
            self.late += 1
            log.debug("discarded a late or unknown reply %s from %s", rid, self.endpoint)
            return
        if not pending.future.done():
            pending.future.set_result((frames, now))


def _int(v: Any, default: int = 0) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else default


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None
