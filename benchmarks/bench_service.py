"""Service budgets (DESIGN §10): plan request overhead, router decision, start to first answer, peak RSS.

    python benchmarks/bench_service.py [--model DIR] [--requests 2000] [--out benchmarks/results]

- ``plan overhead``: `plan` requests over loopback ZeroMQ, each with the same 640 x 480 JPEG, from a
  DEALER client to an in-process service; per request the client's round-trip time minus the model's
  inference time as the plan reports it (``timings_ms.inference``). Budget: p50 <= 2 ms.
- ``router decision``: ``Router.decide`` with a healthy link, the path that weighs the link (the
  longest). Budget: p50 <= 50 us.
- ``start to first answer``: ``edgeagent serve`` as a process, from spawn until a `ping` is answered.
  Budget: <= 3 s.
- ``peak RSS``: that process's VmHWM after it answered as many `plan` requests. Budget: <= 400 MB.

The model: ``--model``, else the shipped one; without any, the service plans with the simulator's
expert (no inference: the overhead is then the whole round trip). Writes JSON and a Markdown table
with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = {"plan_overhead_ms": 2.0, "router_decision_us": 50.0, "start_to_first_answer_s": 3.0, "peak_rss_mb": 400.0}


def machine() -> dict:
    from importlib import metadata

    from edgeagent.cpu import cpu_name, int8_kernels_saturate, native_bf16
    from edgeagent.service import versions

    extra = {}
    for name in ("torch", "transformers"):  # benchmark-only libraries: read without importing them
        try:
            extra[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            extra[name] = None
    # INT8 figures depend on VNNI (without it onnxruntime's Q/DQ fusion is turned off), training on bf16.
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
            "int8_qdq_fusion": not int8_kernels_saturate(), "bf16_in_hardware": native_bf16(),
            **versions(), **extra}


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4),
            "p90": round(sorted(values)[int(0.9 * (len(values) - 1))], 4), "n": len(values)}


def model_dir(arg: str | None) -> str | None:
    if arg:
        return arg
    try:
        from edgeagent.models.runtime import default_model_dir

        return str(default_model_dir())
    except Exception:  # noqa: BLE001 - no shipped model: fall back to the expert
        return None


def make_router(model: str | None, robot):
    from edgeagent.router import Router

    if model:
        from edgeagent.models.runtime import ModelPlanner

        return Router(ModelPlanner(model), mode="local"), ModelPlanner.__name__
    from edgeagent.sim.expert import ExpertPlanner

    world = robot.world
    return Router(ExpertPlanner(world, _goal(world)), mode="local"), "expert (no inference)"


def _goal(world):
    from edgeagent.sim.scenario import scenario_from_dict

    sc = scenario_from_dict({"name": "b", "instruction": "b",
                             "scene": {"seed": 0, "blocks": ["red"], "bowls": ["blue"]},
                             "goal": [{"in": ["red block", "blue bowl"]}]})
    return sc.bound_goal(world)


def bench_plan_overhead(model: str | None, n: int) -> tuple[dict, dict, str]:
    overhead, rtt, setup = plan_overhead_samples(model, n)
    return summary(overhead), summary(rtt), setup


def plan_overhead_samples(model: str | None, n: int, size: tuple[int, int] = (640, 480)
                          ) -> tuple[list[float], list[float], str]:
    """Per request (after 50 warm-up ones): round trip minus inference (ms), round trip (ms), the setup."""
    from edgeagent.protocol import decode_reply, encode_image, encode_request
    from edgeagent.service import Service, ServiceServer
    from edgeagent.sim.render import default_camera
    from edgeagent.sim.robot import SimRobot

    robot = SimRobot.from_scene(["red"], ["blue"], seed=0, camera=default_camera(*size))
    router, what = make_router(model, robot)
    jpeg = encode_image(robot.observe().image, "jpeg", 90)
    service = Service(robot, router, camera=robot.camera)
    overhead, rtt = [], []
    with ServiceServer(service, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as server:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(server.endpoint)
        for i in range(n + 50):
            frames = encode_request("plan", f"b{i}", jpeg, instruction="put the red block in the blue bowl")
            t = time.perf_counter()
            sock.send_multipart(frames)
            reply = decode_reply(sock.recv_multipart())
            ms = (time.perf_counter() - t) * 1e3
            if i < 50:
                continue  # warm-up
            inference = reply["plan"]["timings_ms"].get("inference", 0.0)
            rtt.append(ms)
            overhead.append(ms - inference)
        sock.close()
    return overhead, rtt, f"{what}, JPEG {len(jpeg)} bytes {size[0]}x{size[1]}"


def bench_decision(n: int, runs: int = 20) -> dict:
    return summary(decision_samples(n, runs))


def decision_samples(n: int, runs: int = 20) -> list[float]:
    """Per run of ``n // runs`` decisions, the mean time of one (us)."""
    from edgeagent.router import LinkHealth, Router
    from edgeagent.types import Plan

    class Local:
        def plan(self, obs, instruction, *, deadline_ms=None):
            return Plan((), True, 1.0, "local")

    class Remote:
        link = LinkHealth()

    Remote.link.on_heartbeat(2.0, plan_ms=20.0)
    router = Router(Local(), Remote(), mode="auto", threshold=0.6)
    batches = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(n // runs):
            router.decide(0.4, 150.0)
        batches.append((time.perf_counter() - t) / (n // runs) * 1e6)
    return batches


def bench_process(model: str | None, n: int, starts: int = 3) -> tuple[dict, dict]:
    start, rss = process_samples(model, n, starts)
    return summary(start), summary(rss)


def process_samples(model: str | None, n: int, starts: int = 3) -> tuple[list[float], list[float]]:
    """Per start of ``edgeagent serve``: seconds to the first answered ping, peak RSS (MB) after ``n`` plans."""
    from edgeagent.protocol import decode_reply, encode_image, encode_request
    from edgeagent.sim.robot import SimRobot

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "robot.yaml"
        planner = f"planner: {{model: {model}}}" if model else \
            f"planner: {{kind: expert}}\nbackend: {{kind: sim, sim: {{scenario_file: {ROOT}/sim/scenarios/demo.yaml}}}}"
        cfg.write_text(f"{planner}\nrouter: {{mode: local}}\n"
                       "service: {endpoint: 'tcp://127.0.0.1:*', events: 'tcp://127.0.0.1:*'}\n")
        start_s, rss = [], []
        for _ in range(starts):
            t = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "edgeagent.cli", "serve", "--config", str(cfg)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                line = proc.stdout.readline()
                endpoint = line.split("requests=")[1].split()[0]
                sock = zmq.Context.instance().socket(zmq.DEALER)
                sock.linger = 0
                sock.connect(endpoint)
                sock.send_multipart(encode_request("ping", "p"))
                decode_reply(sock.recv_multipart())
                start_s.append(time.perf_counter() - t)
                jpeg = encode_image(SimRobot.from_scene(["red"], ["blue"]).observe().image)
                for i in range(n):
                    sock.send_multipart(encode_request("plan", f"r{i}", jpeg, instruction="put the red block away"))
                    decode_reply(sock.recv_multipart())
                rss.append(_peak_rss_mb(proc.pid))
                sock.close()
            finally:
                proc.terminate()
                proc.wait(10)
    return start_s, rss


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the shipped one; none: the expert)")
    p.add_argument("--requests", type=int, default=2000, help="plan requests measured (default 2000)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for bench_service.json/.md")
    args = p.parse_args(argv)
    model = model_dir(args.model)
    overhead, rtt, setup = bench_plan_overhead(model, args.requests)
    decision = bench_decision(200_000)
    start, rss = bench_process(model, min(args.requests, 500))
    results = {
        "machine": machine(), "setup": setup, "model": model,
        "plan_overhead_ms": overhead, "plan_round_trip_ms": rtt, "router_decision_us": decision,
        "start_to_first_answer_s": start, "peak_rss_mb": rss, "budgets": BUDGETS,
    }
    rows = [("plan request beyond inference (ms)", overhead, BUDGETS["plan_overhead_ms"]),
            ("plan round trip incl. inference (ms)", rtt, None),
            ("router decision (us)", decision, BUDGETS["router_decision_us"]),
            ("service start to first answer (s)", start, BUDGETS["start_to_first_answer_s"]),
            ("service peak RSS (MB)", rss, BUDGETS["peak_rss_mb"])]
    lines = [f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
             f"{results['machine']['platform']}; onnxruntime {results['machine']['onnxruntime']}; {setup}", "",
             "| measure | median | min | max | budget | within |", "|---|---|---|---|---|---|"]
    for name, s, budget in rows:
        ok = "" if budget is None else ("yes" if s["median"] <= budget else "NO")
        lines.append(f"| {name} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} | "
                     f"{'' if budget is None else budget} | {ok} |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_service.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "bench_service.md").write_text(table + "\n")
    print(f"wrote {out / 'bench_service.json'} and {out / 'bench_service.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
