"""Figure 8: how the cost grows with the camera resolution sent to the service, the number of blocks in
the scene and the plan length (K slots).

- resolution: `plan` requests over loopback ZeroMQ to an in-process service, each with a JPEG of that
  size (``bench_service.plan_overhead_samples``); the service decodes it and the runtime squeezes it to
  the model's S x S, so only the image handling grows.
- blocks: one local plan of scenes with 1 to 8 blocks. The network's input and work are fixed-size
  (S x S image, T tokens, K slots), so this only shows that nothing else grows.
- K slots: the same network config exported with K = 1, 2, 4, 8 plan slots, random weights, FP32.
"""

from __future__ import annotations

from typing import Any

from bench_model import INSTRUCTION, random_checkpoint, scene_observation
from measure import Context, Skip, chunk_medians, measure, time_runs

RESOLUTIONS = ((320, 240), (640, 480), (1280, 720), (1920, 1080))
BLOCKS = ("red", "green", "blue", "orange", "purple", "pink", "cyan", "brown")
SLOTS = (1, 2, 4, 8)


def fig_scaling(ctx: Context) -> dict[str, Any]:
    from bench_service import plan_overhead_samples
    from edgeagent.models.manifest import load_manifest
    from edgeagent.models.runtime import ModelPlanner

    model = ctx.model("int8")
    rows, notes = [], [f"model: {model}"]
    reps = ctx.reps(200, 20)
    for w, h in RESOLUTIONS:
        overhead, rtt, setup = plan_overhead_samples(str(model), ctx.runs * reps, (w, h))
        run = f"{reps} plan requests, {setup.split(', ', 1)[1]}"
        rows.append(measure(f"camera {w}x{h}: plan request round trip", "ms", chunk_medians(rtt, ctx.runs), run))
        rows.append(measure(f"camera {w}x{h}: minus inference", "ms", chunk_medians(overhead, ctx.runs), run))
    planner = ModelPlanner(model)
    for n in range(1, len(BLOCKS) + 1):
        obs = scene_observation(BLOCKS[:n], ("yellow",))
        rows.append(measure(f"{n} block(s) in the scene: one local plan", "ms",
                            time_runs(lambda: planner.plan(obs, INSTRUCTION), ctx.runs, reps),
                            f"{reps} plans of one 640x480 frame"))
    manifest = load_manifest(model)[0]
    notes.append(f"blocks: the network's work is fixed-size (S={manifest.S} image, T={manifest.T} tokens, "
                 f"K={manifest.K} slots) whatever the scene holds")
    try:
        rows += slot_rows(ctx, manifest, reps)
        notes.append("K slots: the model's network config re-exported with K plan slots, random weights (cost "
                     "does not depend on weight values), FP32, inference only")
    except Skip as exc:
        notes.append(f"K slots not measured: {exc}")
    return {"title": "Scaling: resolution, blocks in the scene, plan length", "rows": rows, "notes": notes}


def slot_rows(ctx: Context, manifest, reps: int) -> list[dict]:
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise Skip('exporting needs torch and onnx: pip install -e ".[bench]"') from None
    from edgeagent.models.export import export_onnx
    from edgeagent.models.runtime import ModelPlanner

    net = dict(manifest.training.get("network", {}))
    net.pop("parameters", None)
    obs = scene_observation()
    rows = []
    for k in SLOTS:
        ckpt = random_checkpoint(ctx.scratch / f"slots{k}.pt", {**net, "K": k}, vocab=list(manifest.vocab),
                                 cycles=manifest.cycles)
        export_onnx(ckpt, ctx.scratch / f"slots{k}")
        planner = ModelPlanner(ctx.scratch / f"slots{k}")
        infer: list[float] = []
        time_runs(lambda: infer.append(planner.plan(obs, INSTRUCTION).timings_ms["inference"]), ctx.runs, reps)
        rows.append(measure(f"K = {k} plan slots: inference, FP32", "ms", chunk_medians(infer[3:], ctx.runs),
                            f"{reps} plans of one 640x480 frame"))
    return rows
