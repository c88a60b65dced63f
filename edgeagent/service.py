"""The onboard service (``edgeagent serve``): the robot's planner and executor behind wire protocol v1.

``Service`` is the app: it validates requests (``protocol``) and answers ``ping``, ``health``,
``primitives``, ``plan``, ``run``, ``status``, ``cancel`` and ``reload``. It knows nothing of sockets:
tests drive it through ``InMemoryTransport``; ``ServiceServer`` puts it behind a ROUTER socket (requests)
and a PUB socket (events). ``build_service`` makes one from a robot config file.

One ``run`` at a time: the executor runs in its own thread, every step is published on topic
``task/<task id>`` and kept for ``status``; ``cancel`` stops after the current primitive and the
executor calls the robot's ``stop()``. ``plan`` never moves the robot. ``reload`` loads a model next to
the serving one and swaps it in only when it loaded, so a bad file never takes the planner down.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from edgeagent.camera import CameraModel
from edgeagent.errors import ConfigError, EdgeAgentError, ProtocolError
from edgeagent.executor import CancelToken, Event, Executor
from edgeagent.protocol import SERVICE_REQUESTS, VERSION, Request, decode_camera, decode_image, decode_request, \
    encode_reply, new_id
from edgeagent.router import LatencyStats, Router
from edgeagent.transport import CurveServer, Publish, Publisher, RouterServer, is_loopback
from edgeagent.types import UNKNOWN, Observation, Robot

log = logging.getLogger(__name__)

#: Events kept per task for ``status`` (older ones are only on the PUB socket).
MAX_TASK_EVENTS = 1000
#: Finished tasks remembered for ``status``.
MAX_TASKS = 32
#: Task states after which a task is over.
FINAL = frozenset({"done", "max_steps", "cancelled", "error"})


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, Any]:
    import platform
    from importlib import metadata

    from edgeagent import __version__

    def version(*names: str) -> str | None:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return None

    return {"edgeagent": __version__, "protocol": VERSION, "python": platform.python_version(),
            "zmq": zmq.zmq_version(), "pyzmq": zmq.__version__, "numpy": version("numpy"),
            "onnxruntime": version("onnxruntime", "onnxruntime-gpu"),
            "opencv": version("opencv-python-headless", "opencv-python", "opencv-contrib-python")}


def versions() -> dict[str, Any]:
    """Versions of edgeagent, the protocol and the libraries that matter (read once, without importing them)."""
    return dict(_versions())


@dataclass
class Task:
    """One ``run``: its events and how it ended."""

    id: str
    instruction: str
    max_steps: int
    token: CancelToken = field(default_factory=CancelToken)
    state: str = "running"
    steps: int = 0
    error: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    events: deque = field(default_factory=lambda: deque(maxlen=MAX_TASK_EVENTS))
    seq: int = 0
    thread: threading.Thread | None = None

    def summary(self) -> dict[str, Any]:
        return {"task": self.id, "instruction": self.instruction, "state": self.state, "steps": self.steps,
                "max_steps": self.max_steps, "error": self.error, "started": self.started, "ended": self.ended,
                "events": self.seq, "cancel_requested": self.token.cancelled}


class Service:
    """The robot service app: validates and answers v1 requests (see docs/protocol.md).

    ``router`` plans (wrap any Planner as ``Router(planner, mode="local")``); ``camera`` is the service
    camera's model, used for ``plan`` requests that bring an image without a ``camera`` field;
    ``load_model(path | None)`` makes a new local planner for ``reload``.
    """

    slow = frozenset({"plan", "reload"})

    def __init__(self, robot: Robot, router: Router, *, registry=None, camera: CameraModel | None = None,
                 publish: Publish | None = None, max_steps: int = 20,
                 load_model: Callable[[str | None], Any] | None = None, info: dict[str, Any] | None = None):
        if registry is None:
            from edgeagent.primitives import registry
        self.robot = robot
        self.router = router
        self.registry = registry
        self.camera = camera
        self.publish = publish
        self.max_steps = max_steps
        self.load_model = load_model
        self.info = dict(info or {})
        self.started = time.time()
        versions()  # read once now rather than in the first `health`, on the I/O thread
        self.depth: Callable[[], int] = lambda: 0
        self.events_endpoint: str | None = None
        self.latency = {"plan": LatencyStats(), "request": LatencyStats()}
        self.requests = 0
        self.errors: dict[str, int] = {}
        self._tasks: dict[str, Task] = {}
        self._current: Task | None = None
        self._task_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._handlers = {"ping": self._ping, "health": self._health, "primitives": self._primitives,
                          "plan": self._plan, "run": self._run, "status": self._status, "cancel": self._cancel,
                          "reload": self._reload}

    # -- App ---------------------------------------------------------------------------------------------
    def accept(self, frames: list[bytes]) -> Request:
        try:
            return decode_request(frames, SERVICE_REQUESTS)
        except ProtocolError as exc:
            self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
            raise

    def handle(self, request: Request) -> list[bytes]:
        t = time.perf_counter()
        self.requests += 1
        try:
            reply = self._handlers[request.type](request)
        except ProtocolError as exc:
            self.errors[exc.code] = self.errors.get(exc.code, 0) + 1
            raise
        self.latency["request"].add((time.perf_counter() - t) * 1e3)
        return reply

    def handle_frames(self, frames: list[bytes]) -> list[bytes]:
        """Validate and answer one message synchronously (in-memory use); never raises."""
        from edgeagent.transport import handle_frames

        return handle_frames(self, frames)

    # -- requests ------------------------------------------------------------------------------------------
    def _ping(self, r: Request) -> list[bytes]:
        return encode_reply(r.id, pong=True, time=time.time(), events=self.events_endpoint)

    def _health(self, r: Request) -> list[bytes]:
        local = self.router.local
        with self._task_lock:
            task = self._current.summary() if self._current is not None else None
        return encode_reply(
            r.id, versions=versions(), uptime_s=round(time.time() - self.started, 3),
            model={"id": getattr(local, "model_id", None) or type(local).__name__,
                   "provider": getattr(local, "provider", None),
                   "path": str(getattr(local, "onnx_path", "") or "") or None},
            backend=self.info.get("backend"), camera=self.info.get("camera"),
            queue={"depth": self.depth(), "capacity": self.info.get("queue")},
            latency_ms={"plan": self.latency["plan"].summary(), "request": self.latency["request"].summary()},
            requests=self.requests, errors=dict(self.errors), router=self.router.stats(),
            link=self.router.link_snapshot(), task=task, events=self.events_endpoint)

    def _primitives(self, r: Request) -> list[bytes]:
        return encode_reply(r.id, primitives=self.registry.json_schema())

    def _plan(self, r: Request) -> list[bytes]:
        obs = self._observation(r)
        try:
            plan = self.router.plan(obs, r.get("instruction"), deadline_ms=r.get("deadline_ms"))
        except EdgeAgentError as exc:
            raise ProtocolError("planner_error", f"request {r.id}: {exc}") from None
        # From receipt, so time spent waiting in the queue counts.
        self.latency["plan"].add((time.monotonic() - r.received) * 1e3)
        return encode_reply(r.id, plan=plan.to_dict())

    def _observation(self, r: Request) -> Observation:
        if r.image is None:
            try:
                return self.robot.observe()
            except EdgeAgentError as exc:
                raise ProtocolError("robot_error", f"request {r.id}: the service camera failed: {exc}") from None
        # The model sees an S x S image: decoding at a fraction of a large frame's size loses nothing it
        # uses (at least 2 S per side is kept for the INTER_AREA resize) and halves the decode + resize cost.
        # An offloaded plan sends this reduced frame on to the workstation as well.
        side = getattr(getattr(self.router.local, "manifest", None), "S", None)
        image = decode_image(r.image, r.id, at_least=2 * side if isinstance(side, int) else None)
        if r.get("camera") is not None:
            camera = decode_camera(r.get("camera"), r.id)
        elif self.camera is not None:
            camera = self.camera
        else:
            raise ProtocolError("bad_request", f"request {r.id} (plan): this service has no calibrated camera; "
                                               "send the image's 'camera' model with it")
        h, w = image.shape[:2]
        if (camera.width, camera.height) != (w, h):
            camera = camera.resized(w, h)
        holding = r.get("holding", UNKNOWN)
        return Observation(image, camera, holding)

    def _run(self, r: Request) -> list[bytes]:
        with self._task_lock:
            current = self._current
            if current is not None and current.state not in FINAL:
                raise ProtocolError("busy", f"request {r.id}: task {current.id} is still running; cancel it "
                                            "first (cancel request) or wait for it to end")
            task = Task(new_id()[:16], r.get("instruction"), r.get("max_steps") or self.max_steps)
            self._tasks[task.id] = task
            while len(self._tasks) > MAX_TASKS:
                self._tasks.pop(next(iter(self._tasks)))
            self._current = task
            task.thread = threading.Thread(target=self._execute, args=(task, r.get("deadline_ms")),
                                           name=f"run-{task.id}", daemon=True)
            task.thread.start()
        return encode_reply(r.id, task=task.id, topic=f"task/{task.id}", events=self.events_endpoint)

    def _execute(self, task: Task, deadline_ms: float | None) -> None:
        _rearm(self.robot)
        executor = Executor(self.robot, self.router, self.registry, max_steps=task.max_steps,
                            deadline_ms=deadline_ms, on_event=lambda ev: self._emit(task, ev))
        try:
            result = executor.run(task.instruction, cancel=task.token)
            task.state, task.error = result.status, result.error or task.error
        except Exception as exc:  # a backend bug: stop the robot, report, keep serving
            log.exception("task %s failed", task.id)
            try:
                self.robot.stop()
            except Exception:
                log.exception("robot stop failed after task %s", task.id)
            self._emit(task, Event("error", task.steps, f"{type(exc).__name__}: {exc}"))
        task.ended = task.ended or time.time()

    def _emit(self, task: Task, ev: Event) -> None:
        task.seq += 1
        if ev.kind == "step":
            task.steps = ev.step
        if ev.kind in FINAL:
            # Before publishing: a client that saw the final event must find the task ended in `status`.
            task.state, task.ended = ev.kind, time.time()
            if ev.kind == "error":
                task.error = ev.message
        payload = {"v": VERSION, "task": task.id, "seq": task.seq, **ev.to_dict()}
        task.events.append(payload)
        if self.publish is not None:
            self.publish(f"task/{task.id}", payload)

    def _find(self, r: Request) -> Task:
        rid = r.get("task")
        with self._task_lock:
            task = self._tasks.get(rid) if rid is not None else self._current
        if task is None:
            what = f"task {rid!r} is unknown (only the last {MAX_TASKS} are kept)" if rid else "no task has run yet"
            raise ProtocolError("not_found", f"request {r.id}: {what}")
        return task

    def _status(self, r: Request) -> list[bytes]:
        task = self._find(r)
        since = r.get("since", 0)
        events = [e for e in list(task.events) if e["seq"] > since]
        return encode_reply(r.id, task=task.summary(), events=events)

    def _cancel(self, r: Request) -> list[bytes]:
        task = self._find(r)
        if task.state in FINAL:
            return encode_reply(r.id, task=task.summary(), cancelled=False,
                                message=f"task {task.id} already ended ({task.state})")
        task.token.cancel()
        return encode_reply(r.id, task=task.summary(), cancelled=True,
                            message=f"task {task.id} stops after the current primitive; the robot is then stopped")

    def _reload(self, r: Request) -> list[bytes]:
        if self.load_model is None:
            raise ProtocolError("reload_failed", f"request {r.id}: this service was started without a model loader")
        with self._reload_lock:
            old = self.router.local
            try:
                new = self.load_model(r.get("model"))
            except (EdgeAgentError, OSError, ValueError) as exc:
                raise ProtocolError("reload_failed", f"request {r.id}: {exc}; still serving "
                                                     f"{getattr(old, 'model_id', type(old).__name__)}") from None
            self.router.swap_local(new)
        model = getattr(new, "model_id", None) or type(new).__name__
        previous = getattr(old, "model_id", None) or type(old).__name__
        log.info("reloaded model: %s -> %s", previous, model)
        if self.publish is not None:
            self.publish("service", {"kind": "reloaded", "model": model, "previous": previous})
        return encode_reply(r.id, model=model, previous=previous, provider=getattr(new, "provider", None))

    # -- lifecycle -------------------------------------------------------------------------------------------
    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel a running task (the robot stops after the current primitive) and wait for it."""
        with self._task_lock:
            task = self._current
        if task is not None and task.state not in FINAL:
            task.token.cancel()
            if task.thread is not None:
                task.thread.join(timeout_s)
        self.router.close()


def _rearm(robot: Any) -> None:
    """A new run re-arms a robot stopped by an earlier cancel (its ``reset_stop()``, when it has one)."""
    seen = 0
    while robot is not None and seen < 5:
        reset = getattr(robot, "reset_stop", None)
        if callable(reset):
            reset()
            return
        robot, seen = getattr(robot, "robot", None), seen + 1


class ServiceServer:
    """A Service on a ROUTER socket (requests) and a PUB socket (events), with CURVE when configured."""

    def __init__(self, service: Service, endpoint: str, events: str, *, curve: CurveServer | None = None,
                 workers: int = 1, queue_size: int = 32, context: zmq.Context | None = None):
        from edgeagent.transport import start_authenticator

        if curve is None:
            for what, ep in (("requests", endpoint), ("events", events)):
                if not is_loopback(ep):
                    raise ConfigError(f"{what} endpoint {ep} is reachable from other machines but no keys are "
                                      "configured; bind to 127.0.0.1 or configure security (edgeagent keys generate)")
        self.service = service
        self.context = context or zmq.Context()
        self._own_context = context is None
        self.auth = start_authenticator(self.context, curve) if curve is not None else None
        self.publisher = Publisher(events, curve=curve, context=self.context)
        try:
            self.server = RouterServer(service, endpoint, curve=curve, workers=workers, queue_size=queue_size,
                                       context=self.context, name="service")
        except ConfigError:
            self.publisher.close()
            raise
        self.endpoint = self.server.endpoint
        self.events_endpoint = self.publisher.endpoint
        service.publish = self.publisher.publish
        service.depth = lambda: self.server.depth
        service.events_endpoint = self.events_endpoint
        service.info.setdefault("queue", queue_size)
        self.secure = curve is not None

    def start(self) -> "ServiceServer":
        self.server.start()
        return self

    def stop(self) -> None:
        self.service.shutdown()
        finished = self.server.stop()
        self.publisher.close()
        if self.auth is not None:
            self.auth.stop()
        if self._own_context and finished:
            self.context.term()  # would block on the socket of a worker still planning

    def __enter__(self) -> "ServiceServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- from a config file ----------------------------------------------------------------------------------------
def build_service(cfg) -> tuple[Service, dict[str, Any]]:
    """A Service from a ``RobotServiceConfig``; also returns the socket settings for ``ServiceServer``."""
    from edgeagent.backends import build_camera, build_planner, build_robot
    from edgeagent.cache import PlanCache
    from edgeagent.offload import RemotePlanner
    from edgeagent.service_config import base_dir, resolve
    from edgeagent.transport import CurveClient, load_keypair, load_public_keys

    where = cfg.source or "config"
    registry = cfg.primitives.registry(where)
    sec = cfg.security
    curve_server = curve_client = None
    if sec.secret_key:
        keys = load_keypair(resolve(cfg, sec.secret_key), f"{where}: security.secret_key")
        allow = load_public_keys(sec.allow, f"{where}: security.allow", base_dir(cfg))
        curve_server = CurveServer(keys, allow)
    if sec.offload_server_key:
        if curve_server is None:
            raise ConfigError(f"{where}: security.offload_server_key needs security.secret_key (this robot's key pair)")
        server_public = next(iter(load_public_keys([sec.offload_server_key], f"{where}: security.offload_server_key",
                                                   base_dir(cfg))))
        curve_client = CurveClient(curve_server.keys, server_public)
    camera = build_camera(cfg)
    robot = build_robot(cfg, registry, camera)
    local = build_planner(cfg.planner, registry, source_cfg=cfg, robot=robot)
    r = cfg.router
    remote = None
    if r.offload:
        remote = RemotePlanner(r.offload, registry=registry, heartbeat_ms=r.heartbeat_ms,
                               timeout_ms=r.heartbeat_timeout_ms, curve=curve_client, image_format=r.image_format)
    cache = PlanCache(registry, size=r.cache.size, tolerance=r.cache.tolerance) if r.cache.enabled else None
    router = Router(local, remote, mode=r.mode, deadline_ms=r.deadline_ms, threshold=r.confidence_threshold,
                    cache=cache, margin_ms=r.margin_ms)

    def load_model(path: str | None):
        p = cfg.planner
        if path is not None:
            import dataclasses

            p = dataclasses.replace(p, kind="model", model=path)
        return build_planner(p, registry, source_cfg=cfg if path is None else None, robot=robot)

    camera_model = camera[1] if camera is not None else getattr(robot, "camera", None)
    service = Service(_locked(robot), router, registry=registry, camera=camera_model, max_steps=cfg.service.max_steps,
                      load_model=load_model, info={"backend": cfg.backend.kind, "camera": cfg.camera.kind,
                                                   "queue": cfg.service.queue, "config": cfg.source or None})
    sockets = {"endpoint": cfg.service.endpoint, "events": cfg.service.events, "curve": curve_server,
               "workers": cfg.service.workers, "queue_size": cfg.service.queue}
    return service, sockets


def _locked(robot: Robot) -> Robot:
    from edgeagent.backends import LockedRobot

    return LockedRobot(robot)


def serve(cfg, *, on_ready: Callable[[ServiceServer], None] | None = None, stop: threading.Event | None = None) -> None:
    """Run the service of ``cfg`` until ``stop`` is set (or SIGINT/SIGTERM in the CLI)."""
    service, sockets = build_service(cfg)
    try:
        server = ServiceServer(service, sockets["endpoint"], sockets["events"], curve=sockets["curve"],
                               workers=sockets["workers"], queue_size=sockets["queue_size"])
    except BaseException:
        service.router.close()
        raise
    stop = stop or threading.Event()
    try:
        server.start()
        if server.secure:
            log.info("CURVE on: %d allowed client key(s)", len(sockets["curve"].allow))
        else:
            log.warning("no keys configured: serving unencrypted on loopback only; to accept other machines "
                        "configure security.secret_key and security.allow (edgeagent keys generate)")
        log.info("serving requests on %s, events on %s (backend %s, camera %s, planner %s, router %s)",
                 server.endpoint, server.events_endpoint, cfg.backend.kind, cfg.camera.kind,
                 getattr(service.router.local, "model_id", type(service.router.local).__name__), cfg.router.mode)
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        try:
            service.robot.__exit__(None, None, None)
        except Exception:
            log.exception("closing the robot failed")

