"""``edgeagent.Client``: a synchronous client of the robot service (wire protocol v1).

    from edgeagent import Client

    with Client("tcp://127.0.0.1:5555") as robot:
        print(robot.health()["model"])
        plan = robot.plan("put the red block in the blue bowl")       # the service's camera
        task = robot.run("put the red block in the blue bowl")
        for event in robot.follow(task):
            print(event["kind"], event.get("call"))

Every call has a timeout. After a timeout the socket is replaced, so a restarted service is reached
again; idempotent requests (ping, health, primitives, plan, status, cancel) are retried once then.
An error reply raises ``ServiceError`` with its ``code``; silence raises ``ServiceTimeout``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import zmq

from edgeagent.camera import CameraModel
from edgeagent.errors import ProtocolError, ServiceError, ServiceTimeout
from edgeagent.protocol import decode_reply, encode_image, encode_request, loads, new_id
from edgeagent.transport import (CurveClient, Transport, ZmqTransport, connect_endpoint, endpoint_host, load_keypair,
                                 load_public_keys, new_socket, secure_client)
from edgeagent.types import UNKNOWN, Plan

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
#: Requests that may safely be sent twice.
IDEMPOTENT = frozenset({"ping", "health", "primitives", "plan", "status", "cancel"})
#: Event kinds that end a task.
FINAL = frozenset({"done", "max_steps", "cancelled", "error"})


class Client:
    """Talks to ``edgeagent serve`` at ``endpoint``. ``timeout_s`` bounds every request.

    CURVE: pass ``secret_key`` (this client's ``NAME.key_secret`` file) and ``server_key`` (the service's
    public key file or Z85 string), or a ready ``curve``. ``transport`` replaces the ZeroMQ socket (tests).
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, timeout_s: float = 5.0, events: str | None = None,
                 secret_key: str | Path | None = None, server_key: str | None = None,
                 curve: CurveClient | None = None, transport: Transport | None = None,
                 context: zmq.Context | None = None):
        if curve is None and (secret_key or server_key):
            if not (secret_key and server_key):
                raise ValueError("CURVE needs both secret_key (this client's key file) and server_key (the service's "
                                 "public key)")
            curve = CurveClient(load_keypair(secret_key), next(iter(load_public_keys([str(server_key)]))))
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.events = events
        self.curve = curve
        self.context = context or zmq.Context.instance()
        self.transport = transport or ZmqTransport(endpoint, curve=curve, context=self.context)

    # -- generic -----------------------------------------------------------------------------------------
    def request(self, type: str, image: bytes | None = None, *, timeout_s: float | None = None,
                nulls: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request; the reply header as a dict. Raises ServiceError / ServiceTimeout.

        Fields set to None are left out; ``nulls`` are sent as they are (None as JSON null).
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        attempts = 2 if type in IDEMPOTENT else 1
        for attempt in range(attempts):
            rid = new_id()
            frames = encode_request(type, rid, image, nulls=nulls, **fields)
            try:
                raw = self.transport.request(frames, request_id=rid, timeout_s=timeout)
            except ServiceTimeout:
                if attempt + 1 < attempts:
                    continue
                raise
            try:
                reply = decode_reply(raw)
            except ProtocolError as exc:
                raise ServiceError(exc.code, f"{self.endpoint} answered {type} {rid} with a malformed reply: {exc}",
                                   rid) from None
            if not reply["ok"]:
                err = reply["error"]
                raise ServiceError(err["code"], f"{type} failed ({err['code']}): {err['message']}", rid)
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    # -- requests ----------------------------------------------------------------------------------------
    def ping(self, *, timeout_s: float | None = None) -> dict[str, Any]:
        return self.request("ping", timeout_s=timeout_s)

    def health(self) -> dict[str, Any]:
        """Versions, model, provider in use, uptime, latency statistics, queue depth, link state."""
        return self.request("health")

    def primitives(self) -> list[dict[str, Any]]:
        """The robot's enabled primitives as JSON Schema."""
        return self.request("primitives")["primitives"]

    def plan(self, instruction: str, image: np.ndarray | bytes | None = None, *, camera: CameraModel | None = None,
             holding: str | None = UNKNOWN, deadline_ms: float | None = None, image_format: str = "jpeg") -> Plan:
        """A plan for ``instruction`` (no motion). Without ``image`` the service uses its own camera.

        ``image`` is a BGR array (sent as JPEG, or PNG with ``image_format="png"``) or encoded bytes;
        ``camera`` its calibration (default: the service camera's, scaled to the image size);
        ``holding`` what the gripper holds with that image (None: nothing; default: unknown).
        """
        data = encode_image(image, image_format) if isinstance(image, np.ndarray) else image
        timeout = max(self.timeout_s, (deadline_ms or 0) / 1e3 + 1.0)
        reply = self.request("plan", data, timeout_s=timeout, instruction=instruction, deadline_ms=deadline_ms,
                             camera=camera.to_dict() if camera is not None else None,
                             nulls=None if holding == UNKNOWN else {"holding": holding})
        return Plan.from_dict(reply["plan"])

    def run(self, instruction: str, *, max_steps: int | None = None, deadline_ms: float | None = None) -> str:
        """Start a closed-loop run; returns the task id at once (follow it with ``follow``)."""
        reply = self.request("run", instruction=instruction, max_steps=max_steps, deadline_ms=deadline_ms)
        if reply.get("events") and self.events is None:
            self.events = connect_endpoint(reply["events"], endpoint_host(self.endpoint))
        return reply["task"]

    def status(self, task: str | None = None, since: int = 0) -> dict[str, Any]:
        """The task (default: the latest) and its events with ``seq`` > ``since``."""
        return self.request("status", task=task, since=since or None)

    def cancel(self, task: str | None = None) -> dict[str, Any]:
        """Stop the task (default: the running one) after its current primitive."""
        return self.request("cancel", task=task)

    def reload(self, model: str | None = None, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """Swap the service's model (a folder on the robot; default: the configured one) without a restart."""
        return self.request("reload", timeout_s=timeout_s, model=model)

    # -- events -------------------------------------------------------------------------------------------
    def follow(self, task: str, *, timeout_s: float | None = None, poll_s: float = 0.5) -> Iterator[dict[str, Any]]:
        """Yield the task's events in order, without gaps, until its final event.

        Events come from the PUB socket when it is reachable; missed ones (a subscription starts late,
        a subscriber lags) are fetched with ``status``, which also serves when no PUB is reachable.
        ``timeout_s`` bounds the whole follow (ServiceTimeout).
        """
        end = None if timeout_s is None else time.monotonic() + timeout_s
        sub = self._subscribe(task)
        last = 0
        try:
            while True:
                # `status` is the record: what it no longer keeps (over 1000 events back) is skipped.
                for ev in self.status(task, last)["events"]:
                    if ev["seq"] > last:
                        last = ev["seq"]
                        yield ev
                        if ev["kind"] in FINAL:
                            return
                deadline_left = None if end is None else end - time.monotonic()
                if deadline_left is not None and deadline_left <= 0:
                    raise ServiceTimeout(f"task {task} did not end within {timeout_s:g} s")
                wait = poll_s if deadline_left is None else min(poll_s, deadline_left)
                if sub is None:
                    time.sleep(wait)
                    continue
                # Take events straight off PUB while they arrive in order; any gap goes back to `status`.
                while sub.poll(wait * 1e3):
                    frames = sub.recv_multipart()
                    try:
                        ev = loads(frames[-1]) if len(frames) == 2 else None
                    except ValueError:
                        continue
                    if not isinstance(ev, dict) or ev.get("task") != task:
                        continue
                    seq = ev.get("seq")
                    if not isinstance(seq, int) or seq <= last:
                        continue  # already yielded (from status)
                    if seq != last + 1:
                        break  # a gap: fetch the missing events with status
                    last = ev["seq"]
                    yield ev
                    if ev.get("kind") in FINAL:
                        return
        finally:
            if sub is not None:
                sub.close(linger=0)

    def _subscribe(self, task: str) -> zmq.Socket | None:
        if not self.events:
            bound = self.ping().get("events")  # the service says where it publishes
            if not bound:
                return None
            self.events = connect_endpoint(bound, endpoint_host(self.endpoint))
        sub = new_socket(self.context, zmq.SUB)
        secure_client(sub, self.curve)
        sub.setsockopt(zmq.SUBSCRIBE, f"task/{task}".encode())
        sub.connect(self.events)
        return sub

    # -- lifecycle ----------------------------------------------------------------------------------------
    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
