"""Transports: how requests travel. In memory for tests, ZeroMQ (optionally CurveZMQ) for real.

Client side, a transport has one method, ``request(frames, request_id=, timeout_s=) -> reply frames``
(httpx's idea): ``InMemoryTransport`` calls a server app in-process, ``ZmqTransport`` uses a DEALER
socket and re-creates it after a timeout, so a restarted server is reached again and late replies to
abandoned requests are never mistaken for new ones.

Server side, an *app* (the robot service, the offload server) validates and answers requests; a
``RouterServer`` puts it behind a ROUTER socket: fast requests are answered on the I/O thread, slow ones
(``app.slow``) go through a bounded queue to worker threads, and a full queue is answered ``busy``.

Every socket has ``linger=0`` (closing never blocks on unsent messages) and a per-frame size cap.
Keys: ``edgeagent keys generate`` writes ZeroMQ certificate files; ``CurveServer`` / ``CurveClient``
carry what a socket needs, and a ZAP handler on the server's context admits only allowed public keys.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

import zmq

from edgeagent.errors import ConfigError, ProtocolError, ServiceTimeout
from edgeagent.protocol import MAX_FRAME_BYTES, Request, encode_error, encode_event, peek_id

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(endpoint: str) -> bool:
    """True for endpoints only this machine can reach: tcp on a loopback address, ipc, inproc."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def connect_endpoint(bound: str, host: str | None = None) -> str:
    """Turn a bound endpoint (``tcp://0.0.0.0:5556``) into one a client can connect to on ``host``."""
    if not bound.startswith("tcp://"):
        return bound
    port = bound.rsplit(":", 1)[1]
    bind_host = bound[len("tcp://"):].rsplit(":", 1)[0]
    if host is None:
        host = "127.0.0.1" if bind_host in ("*", "0.0.0.0", "") else bind_host
    return f"tcp://{host}:{port}"


def endpoint_host(endpoint: str) -> str | None:
    """The host part of a tcp endpoint, or None."""
    if not endpoint.startswith("tcp://"):
        return None
    return urlsplit(endpoint).hostname


# -- keys ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair, Z85-encoded (40 characters each)."""

    public: bytes
    secret: bytes


@dataclass(frozen=True)
class CurveServer:
    """What a server socket needs for CURVE: its key pair and the allowed clients' public keys."""

    keys: KeyPair
    allow: frozenset[bytes]


@dataclass(frozen=True)
class CurveClient:
    """What a client socket needs for CURVE: its key pair and the server's public key."""

    keys: KeyPair
    server_public: bytes


def load_keypair(path: str | Path, where: str = "") -> KeyPair:
    """The key pair in a secret certificate file (``NAME.key_secret`` from ``edgeagent keys generate``)."""
    import zmq.auth

    prefix = f"{where}: " if where else ""
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{prefix}cannot read key file {path} ({exc}); make one with "
                          "`edgeagent keys generate NAME`") from exc
    if not secret:
        raise ConfigError(f"{prefix}{path} holds only a public key; give the secret file (NAME.key_secret)")
    return KeyPair(public, secret)


def load_public_keys(entries: Iterable[str], where: str = "", base: str | Path | None = None) -> frozenset[bytes]:
    """Public keys from certificate files, folders of ``*.key`` files, or 40-character Z85 strings.

    Relative paths are taken relative to ``base`` (the config file's folder) when given.
    """
    import zmq.auth

    prefix = f"{where}: " if where else ""
    keys: set[bytes] = set()
    for entry in entries:
        path = Path(entry).expanduser()
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if path.is_dir():
            files = sorted(path.glob("*.key"))
            if not files:
                raise ConfigError(f"{prefix}folder {path} holds no public key files (*.key)")
        elif path.is_file():
            files = [path]
        elif len(entry) == 40 and _is_z85_key(entry):
            keys.add(entry.encode())
            continue
        else:
            raise ConfigError(f"{prefix}{entry!r} is neither a key file, a folder of *.key files, nor a "
                              "40-character Z85 public key")
        for f in files:
            try:
                public, _ = zmq.auth.load_certificate(str(f))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{prefix}cannot read public key file {f} ({exc})") from exc
            keys.add(public)
    return frozenset(keys)


def _is_z85_key(text: str) -> bool:
    try:
        return len(zmq.utils.z85.decode(text.encode())) == 32
    except (ValueError, KeyError, TypeError):
        return False


class _AllowList:
    """ZAP credentials provider: admits exactly the configured public keys."""

    def __init__(self, allow: frozenset[bytes]):
        self.allow = allow

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key in self.allow
        if not ok:
            log.warning("refused a CURVE client with public key %s (not in the allow-list)", key.decode())
        return ok


def start_authenticator(context: zmq.Context, curve: CurveServer):
    """Start a ZAP handler on ``context`` that admits only ``curve.allow``; returns it (call ``stop()``)."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context, log=logging.getLogger("edgeagent.auth"))
    auth.start()
    auth.configure_curve_callback("*", credentials_provider=_AllowList(curve.allow))
    return auth


def secure_server(sock: zmq.Socket, curve: CurveServer | None) -> None:
    if curve is not None:
        sock.curve_secretkey = curve.keys.secret
        sock.curve_publickey = curve.keys.public
        sock.curve_server = True


def secure_client(sock: zmq.Socket, curve: CurveClient | None) -> None:
    if curve is not None:
        sock.curve_secretkey = curve.keys.secret
        sock.curve_publickey = curve.keys.public
        sock.curve_serverkey = curve.server_public


def new_socket(context: zmq.Context, kind: int) -> zmq.Socket:
    """A socket with the options every edgeagent socket has: linger 0, bounded frame size."""
    sock = context.socket(kind)
    sock.linger = 0
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    return sock


def bind(sock: zmq.Socket, endpoint: str) -> str:
    """Bind and return the actual endpoint (``tcp://127.0.0.1:*`` picks a free port)."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot bind {endpoint}: {exc.strerror}; is another process using it? choose "
                          "another endpoint (--endpoint / --events or the config's endpoint keys)") from exc
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


# -- client side --------------------------------------------------------------------------------------------
class Transport(Protocol):
    """Carries one request and returns its reply frames, or raises ServiceTimeout."""

    def request(self, frames: Sequence[bytes], *, request_id: str, timeout_s: float) -> list[bytes]: ...

    def close(self) -> None: ...


class InMemoryTransport:
    """Hands frames straight to a server app (no sockets): for tests and for embedding a service."""

    def __init__(self, app: "App"):
        self.app = app

    def request(self, frames: Sequence[bytes], *, request_id: str, timeout_s: float) -> list[bytes]:
        return handle_frames(self.app, list(frames))

    def close(self) -> None:
        pass


class ZmqTransport:
    """A DEALER socket to ``endpoint``; after a timeout the socket is replaced (lazy-pirate pattern)."""

    def __init__(self, endpoint: str, *, curve: CurveClient | None = None, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.curve = curve
        self.context = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._lock = threading.Lock()

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            sock = new_socket(self.context, zmq.DEALER)
            secure_client(sock, self.curve)
            sock.connect(self.endpoint)
            self._sock = sock
        return self._sock

    def request(self, frames: Sequence[bytes], *, request_id: str, timeout_s: float) -> list[bytes]:
        with self._lock:
            sock = self._socket()
            deadline = time.monotonic() + timeout_s
            try:
                sock.send_multipart(list(frames), flags=zmq.NOBLOCK)
            except zmq.Again:
                self._reset()
                raise ServiceTimeout(f"cannot send request {request_id} to {self.endpoint}: send queue full",
                                     request_id) from None
            while True:
                remaining_ms = (deadline - time.monotonic()) * 1e3
                if remaining_ms <= 0 or not sock.poll(remaining_ms, zmq.POLLIN):
                    self._reset()
                    raise ServiceTimeout(
                        f"no reply from {self.endpoint} within {timeout_s:g} s to request {request_id}; check that "
                        "the server runs there (edgeagent serve / offload-server) and, with CURVE, that this "
                        "client's key is allowed and the server key is right (a refused key looks like silence)",
                        request_id)
                reply = sock.recv_multipart()
                rid = peek_id(reply)
                # A reply with no readable id answers a request the server could not parse: ours, since
                # abandoned requests died with their socket.
                if rid == request_id or rid is None:
                    return reply
                log.debug("dropped a stale reply %s while waiting for %s", rid, request_id)

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._reset()


# -- server side --------------------------------------------------------------------------------------------
class App(Protocol):
    """A request handler a RouterServer can serve."""

    #: Request types answered by worker threads (they may take long: planning, loading a model).
    slow: frozenset[str]

    def accept(self, frames: list[bytes]) -> Request:
        """Validate a message; raise ProtocolError for an error reply."""

    def handle(self, request: Request) -> list[bytes]:
        """Answer a valid request with reply frames."""


def handle_frames(app: App, frames: list[bytes]) -> list[bytes]:
    """Validate and answer one message synchronously; never raises."""
    try:
        request = app.accept(frames)
    except ProtocolError as exc:
        return encode_error(peek_id(frames), exc.code, str(exc))
    return safe_handle(app, request)


def safe_handle(app: App, request: Request) -> list[bytes]:
    """``app.handle`` with any escaping exception turned into an ``internal`` error reply."""
    try:
        return app.handle(request)
    except ProtocolError as exc:
        return encode_error(request.id, exc.code, str(exc))
    except Exception as exc:  # a bug must cost one reply, not the server
        log.exception("request %s (%s) failed", request.id, request.type)
        return encode_error(request.id, "internal", f"request {request.id} ({request.type}): "
                                                    f"{type(exc).__name__}: {exc}")


class RouterServer:
    """Serves an app on a ROUTER socket: I/O thread + ``workers`` threads behind a bounded queue."""

    def __init__(self, app: App, endpoint: str, *, curve: CurveServer | None = None, workers: int = 1,
                 queue_size: int = 32, context: zmq.Context | None = None, name: str = "edgeagent"):
        if workers < 1 or queue_size < 1:
            raise ConfigError(f"workers and queue size must be >= 1, got {workers} and {queue_size}")
        self.app = app
        self.context = context or zmq.Context.instance()
        self.curve = curve
        self.workers = workers
        self.queue_size = queue_size
        self.name = name
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._busy = 0  # requests being handled by workers
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_endpoint = f"inproc://{name}-wake-{id(self)}"
        self._sock = new_socket(self.context, zmq.ROUTER)
        secure_server(self._sock, curve)
        self._wake = self.context.socket(zmq.PULL)
        self._wake.linger = 0
        self._wake.bind(self._wake_endpoint)
        try:
            self.endpoint = bind(self._sock, endpoint)
        except ConfigError:
            self._sock.close(linger=0)
            self._wake.close(linger=0)
            raise
        self._threads: list[threading.Thread] = []

    @property
    def depth(self) -> int:
        """Requests waiting in the queue plus those being handled by workers."""
        return self._jobs.qsize() + self._busy

    def start(self) -> "RouterServer":
        self._threads = [threading.Thread(target=self._io_loop, name=f"{self.name}-io", daemon=True)]
        self._threads += [threading.Thread(target=self._worker, name=f"{self.name}-worker-{i}", daemon=True)
                          for i in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop serving; True when every thread ended (a planner stuck in a request may outlive the timeout)."""
        self._stop.set()
        end = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        self._sock.close(linger=0)
        self._wake.close(linger=0)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("%s still busy after %.0f s: %s", self.name, timeout_s, ", ".join(alive))
        return not alive

    def _io_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                events = dict(poller.poll(100))
            except zmq.ZMQError:
                if self._stop.is_set():
                    return
                raise
            if self._wake in events:
                while self._wake.poll(0):
                    self._wake.recv()
                self._send_replies()
            if self._sock in events:
                # Drain what is there, but keep answering workers between messages.
                for _ in range(64):
                    try:
                        msg = self._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_message(msg)
                self._send_replies()

    def _on_message(self, msg: list[bytes]) -> None:
        # [identity, (b"" from REQ clients), header, image?]
        cut = 2 if len(msg) > 1 and msg[1] == b"" else 1
        envelope, frames = msg[:cut], msg[cut:]
        try:
            request = self.app.accept(frames)
        except ProtocolError as exc:
            self._send(envelope, encode_error(peek_id(frames), exc.code, str(exc)))
            return
        if request.type not in self.app.slow:
            self._send(envelope, safe_handle(self.app, request))
            return
        try:
            self._jobs.put_nowait((envelope, request))
        except queue.Full:
            self._send(envelope, encode_error(request.id, "busy", f"request {request.id}: {self.queue_size} "
                                                                  "requests are queued already; retry later"))

    def _send(self, envelope: list[bytes], frames: list[bytes]) -> None:
        try:
            self._sock.send_multipart(envelope + frames, zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # peer gone or its queue full: the reply is lost, the server lives
            log.debug("reply dropped: %s", exc)

    def _send_replies(self) -> None:
        while True:
            try:
                envelope, frames = self._replies.get_nowait()
            except queue.Empty:
                return
            self._send(envelope, frames)

    def _worker(self) -> None:
        wake = self.context.socket(zmq.PUSH)
        wake.linger = 0
        wake.connect(self._wake_endpoint)
        try:
            while not self._stop.is_set():
                try:
                    envelope, request = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                with self._busy_lock:
                    self._busy += 1
                try:
                    reply = safe_handle(self.app, request)
                finally:
                    with self._busy_lock:
                        self._busy -= 1
                self._replies.put((envelope, reply))
                try:
                    wake.send(b"", zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the I/O thread is already being woken
        finally:
            wake.close(linger=0)


class Publisher:
    """A PUB socket that several threads may publish on (one at a time, under a lock)."""

    def __init__(self, endpoint: str, *, curve: CurveServer | None = None, context: zmq.Context | None = None):
        self.context = context or zmq.Context.instance()
        self._sock = new_socket(self.context, zmq.PUB)
        secure_server(self._sock, curve)
        # A slow subscriber must not make the robot wait: PUB drops beyond the high-water mark.
        self._sock.sndhwm = 10_000
        try:
            self.endpoint = bind(self._sock, endpoint)
        except ConfigError:
            self._sock.close(linger=0)
            raise
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: Mapping[str, Any]) -> None:
        frames = encode_event(topic, payload)
        with self._lock:
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                log.debug("event dropped: %s", exc)

    def close(self) -> None:
        with self._lock:
            self._sock.close(linger=0)


#: Something that publishes events: ``Publisher.publish`` or any function (topic, payload).
Publish = Callable[[str, Mapping[str, Any]], None]
