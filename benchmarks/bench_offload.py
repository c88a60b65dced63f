"""Figures 4 and 6 (offload part): instruction to first primitive per router mode, the offload round
trip beyond remote inference, and the offload server's throughput with 1, 4 and 16 robots.

The workstation is ``edgeagent offload-server`` in a subprocess on 127.0.0.1 (its default 2 workers),
running the FP32 model when there is one; on this one machine it shares the CPU with the robot side,
so these figures are what the software adds, not what a separate workstation would give.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from bench_model import INSTRUCTION, scene_observation
from measure import Context, chunk_medians, measure

#: How long to wait for the offload server's ready line.
READY_S = 60.0


@contextmanager
def offload_server(model: Path):
    """``edgeagent offload-server --model MODEL`` on a free loopback port; yields its endpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "edgeagent.cli", "offload-server", "--model", str(model),
                             "--endpoint", "tcp://127.0.0.1:*"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        ready: dict[str, str] = {}
        timer = threading.Timer(READY_S, proc.kill)
        timer.start()
        for line in proc.stdout:
            if ": ready " in line:
                ready = dict(p.split("=", 1) for p in line.split(": ready ", 1)[1].split() if "=" in p)
                break
        timer.cancel()
        if "endpoint" not in ready:
            raise RuntimeError(f"edgeagent offload-server --model {model} did not get ready in {READY_S:.0f} s "
                               f"(exit code {proc.poll()}); run it by hand to see why")
        yield ready["endpoint"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def workstation_model(ctx: Context) -> tuple[Path, str]:
    folder = ctx.model("fp32")
    return folder, f"workstation: edgeagent offload-server with {folder} (2 workers), subprocess on 127.0.0.1"


# -- figure 4: instruction to first primitive ------------------------------------------------------------
#: (row name, Router mode, confidence threshold: None = the model's). "auto, unsure" takes the cascade's
#: longest path: a local plan below the threshold, then the workstation.
MODES = (("local", "local", None), ("offload", "remote", None), ("auto", "auto", None),
         ("auto, unsure local plan", "auto", 1.01))
class FirstDispatch:
    """A SimRobot wrapper that notes when the first primitive is dispatched and stops the run there."""

    def __init__(self, robot):
        self.robot = robot
        self.dispatched_at: float | None = None

    def observe(self):
        return self.robot.observe()

    def execute(self, call):
        from edgeagent.errors import Cancelled

        self.dispatched_at = time.perf_counter()
        raise Cancelled("benchmark: first primitive dispatched")  # the world stays as it was

    def stop(self):
        pass


def fig_e2e(ctx: Context) -> dict[str, Any]:
    """Instruction to first primitive dispatched in the simulator, per router mode (no plan cache)."""
    from edgeagent.executor import Executor
    from edgeagent.models.runtime import ModelPlanner
    from edgeagent.offload import RemotePlanner
    from edgeagent.router import Router
    from edgeagent.sim.robot import SimRobot

    ws_model, ws_what = workstation_model(ctx)
    local = ModelPlanner(ctx.model("int8"))
    reps = ctx.reps(50, 8)
    run = f"{reps} instructions, each from the instruction to the first dispatched primitive"
    rows, notes = [], [ws_what, f"robot: {local.model_id} ({local.manifest.precision}) on onnxruntime CPU; "
                                "a run renders the 640x480 frame, plans, validates; the plan cache is off"]
    with offload_server(ws_model) as endpoint:
        for mode, router_mode, threshold in MODES:
            remote = None if mode == "local" else RemotePlanner(endpoint, registry=local.registry,
                                                                heartbeat_ms=100)
            if remote is not None and not remote.wait_ready(10):
                raise RuntimeError(f"the offload server at {endpoint} answered no heartbeat in 10 s")
            router = Router(local, remote, mode=router_mode, deadline_ms=200.0, threshold=threshold)
            robot = FirstDispatch(SimRobot.from_scene(["red", "green", "blue"], ["yellow"], seed=0))
            dispatched, sources = [0], {}

            def one():
                robot.dispatched_at = None
                t = time.perf_counter()
                result = Executor(robot, router, max_steps=5, max_replans=1).run(INSTRUCTION)
                end = robot.dispatched_at or time.perf_counter()  # no valid call: up to the first plan
                dispatched[0] += robot.dispatched_at is not None
                src = result.plans[0].source if result.plans else "none"
                sources[src] = sources.get(src, 0) + 1
                return (end - t) * 1e3

            values: list[float] = []
            for _ in range(3):
                one()  # warm-up
            dispatched[0], sources = 0, {}
            for _ in range(ctx.runs * reps):
                values.append(one())
            rows.append(measure(f"router mode {mode}: instruction to first primitive", "ms",
                                chunk_medians(values, ctx.runs), run, first_plan_from=dict(sources),
                                dispatched=f"{dispatched[0]}/{len(values)}"))
            router.close()
    notes.append("'dispatched' counts runs whose first plan had a valid call; the others are timed to the first "
                 "plan (a random-weight model may propose none); 'first_plan_from' in the JSON says which planner "
                 "answered; auto uses the model's confidence threshold, 'auto, unsure' a threshold no plan reaches")
    return {"title": "End to end in the simulator: instruction to first primitive", "rows": rows, "notes": notes}


# -- figure 6 (offload part): round trip and throughput --------------------------------------------------
def offload_rows(ctx: Context) -> tuple[list[dict], list[str]]:
    """The offload round trip beyond remote inference, and plans/s with 1, 4 and 16 concurrent robots."""
    from edgeagent.offload import RemotePlanner

    ws_model, ws_what = workstation_model(ctx)
    obs = scene_observation()
    reps = ctx.reps(200, 20)
    rows = []
    with offload_server(ws_model) as endpoint:
        remote = RemotePlanner(endpoint, heartbeat_ms=100)
        try:
            if not remote.wait_ready(10):
                raise RuntimeError(f"the offload server at {endpoint} answered no heartbeat in 10 s")
            beyond, whole = [], []
            for i in range(3 + ctx.runs * reps):
                t = time.perf_counter()
                plan = remote.plan(obs, INSTRUCTION, deadline_ms=5000)
                ms = (time.perf_counter() - t) * 1e3
                if i >= 3:  # warm-up
                    whole.append(ms)
                    beyond.append(ms - plan.timings_ms["workstation_inference"])
        finally:
            remote.close()
        run = f"{reps} offloaded plans of one 640x480 frame (JPEG q90), one at a time"
        rows.append(measure("offload round trip minus remote inference", "ms", chunk_medians(beyond, ctx.runs), run))
        rows.append(measure("  offload round trip incl. remote inference", "ms", chunk_medians(whole, ctx.runs), run))
        window_s = 1.0 if ctx.quick else 5.0
        for robots in (1, 4, 16):
            rates = [throughput(endpoint, obs, robots, window_s) for _ in range(ctx.runs)]
            rows.append(measure(f"offload server throughput, {robots} robot(s)", "plans/s", rates,
                                f"{window_s:g} s of {robots} robot(s) each sending its next plan request as soon "
                                "as the last is answered"))
    return rows, [ws_what, "round trip: RemotePlanner.plan wall time (JPEG encode, both sockets, decode, "
                           "validation) minus the workstation's reported inference time"]


def throughput(endpoint: str, obs, robots: int, window_s: float) -> float:
    """Answered plans per second with ``robots`` closed-loop DEALER clients during ``window_s``."""
    from edgeagent.protocol import decode_reply, encode_image, encode_request

    jpeg = encode_image(obs.image, "jpeg", 90)
    camera = obs.camera.to_dict()
    ctx = zmq.Context.instance()
    counts = [0] * robots
    start = threading.Barrier(robots + 1)
    stop = threading.Event()

    def robot(k: int) -> None:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvtimeo = 10_000
        sock.connect(endpoint)
        start.wait()
        i = 0
        while not stop.is_set():
            sock.send_multipart(encode_request("plan", f"r{k}-{i}", jpeg, instruction=INSTRUCTION, camera=camera))
            try:
                ok = decode_reply(sock.recv_multipart())["ok"]
            except zmq.Again:
                break
            counts[k] += (not stop.is_set()) and ok
            i += 1
        sock.close()

    threads = [threading.Thread(target=robot, args=(k,), daemon=True) for k in range(robots)]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(window_s)
    stop.set()
    for t in threads:
        t.join(15)
    return sum(counts) / window_s


def fig_service(ctx: Context) -> dict[str, Any]:
    """The `plan` request over loopback ZeroMQ beyond inference; the offload round trip and throughput."""
    from bench_service import BUDGETS, plan_overhead_samples

    model = ctx.model("int8")
    reps = ctx.reps(400, 40)
    overhead, rtt, setup = plan_overhead_samples(str(model), ctx.runs * reps)
    run = f"{reps} plan requests, {setup.split(', ', 1)[1]}, one at a time"
    rows = [measure("plan request over loopback ZeroMQ minus inference", "ms", chunk_medians(overhead, ctx.runs), run,
                    budget={"p50": BUDGETS["plan_overhead_ms"]}),
            measure("  plan request round trip incl. inference", "ms", chunk_medians(rtt, ctx.runs), run)]
    offload, notes = offload_rows(ctx)
    return {"title": "Requests over ZeroMQ: service and offload", "rows": rows + offload,
            "notes": [f"service: in-process ServiceServer, DEALER client on 127.0.0.1, model {model}", *notes]}
