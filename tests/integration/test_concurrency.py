"""8 concurrent clients x 500 plan requests to an `edgeagent serve` process: each answered exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import cv2
import zmq

from edgeagent.protocol import decode_reply, encode_image, encode_request
from edgeagent.sim.robot import SimRobot

CLIENTS = 8
REQUESTS = 500
#: Requests each client keeps in flight (pipelined on one DEALER socket).
WINDOW = 4


def client_run(endpoint: str, n: int, image: bytes, name: str, out: dict) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    sent, replies, errors = [], Counter(), []
    try:
        while len(sent) < n or sum(replies.values()) < len(sent):
            while len(sent) < n and len(sent) - sum(replies.values()) < WINDOW:
                rid = f"{name}-{len(sent)}"
                sock.send_multipart(encode_request("plan", rid, image, instruction="put the red block in the bowl"))
                sent.append(rid)
            if not sock.poll(10_000):
                errors.append(f"no reply for 10 s with {len(sent) - sum(replies.values())} outstanding")
                break
            reply = decode_reply(sock.recv_multipart())
            replies[reply["id"]] += 1
            if not reply["ok"]:
                errors.append(reply["error"])
        # Anything arriving later would be a duplicate.
        while sock.poll(300):
            replies[decode_reply(sock.recv_multipart())["id"]] += 1
    finally:
        sock.close(linger=0)
    out[name] = (sent, replies, errors)


def test_every_request_answered_exactly_once(tiny_model, processes, tmp_path):
    cfg = tmp_path / "robot.yaml"
    cfg.write_text(f"""
backend: {{kind: sim, sim: {{blocks: [red, green], bowls: [blue], seed: 2}}}}
planner: {{model: {tiny_model}}}
router: {{mode: local, cache: {{enabled: false}}}}
service: {{endpoint: "tcp://127.0.0.1:*", events: "tcp://127.0.0.1:*", workers: 2, queue: 64}}
""")
    serve = processes(["serve", "--config", str(cfg)])
    frame = SimRobot.from_scene(["red", "green"], ["blue"], seed=2).observe().image
    image = encode_image(cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA), "jpeg")
    out: dict = {}
    threads = [threading.Thread(target=client_run, args=(serve.ready["requests"], REQUESTS, image, f"c{i}", out))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(out) == CLIENTS
    for name, (sent, replies, errors) in out.items():
        assert not errors, (name, errors[:3])
        assert len(sent) == REQUESTS
        assert set(replies) == set(sent), f"{name}: lost or foreign replies"
        assert all(count == 1 for count in replies.values()), f"{name}: duplicated replies"
    assert serve.proc.poll() is None
