"""Figures 1 and 3: one plan (ONNX FP32 / INT8 on onnxruntime CPU, the same network in torch eager), and
success and latency against the number of refinement cycles.

Also the helpers that make model variants when a figure needs one the model folder does not hold: a
random-weight checkpoint of a given config (``random_checkpoint``; what a network costs does not
depend on its weight values) and export + quantisation per cycle count (``export_variant``).

    python benchmarks/bench_model.py random-model /tmp/benchmodel   # final.pt + fp32/ + int8/, random weights
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from measure import ROOT, Context, Skip, chunk_medians, measure, percentile, time_runs, value

INSTRUCTION = "put the red block in the yellow bowl"
#: Closed-loop scenarios of the cycles figure: the first of each family in the held-out set.
HELDOUT = ROOT / "sim" / "scenarios" / "heldout.yaml"
PER_FAMILY, QUICK_PER_FAMILY = 10, 1


def scene_observation(blocks=("red", "green", "blue"), bowls=("yellow",), size=(640, 480)):
    """A rendered simulator frame (the default 640 x 480 camera unless ``size``)."""
    from edgeagent.sim.render import default_camera
    from edgeagent.sim.robot import SimRobot

    return SimRobot.from_scene(list(blocks), list(bowls), seed=0, camera=default_camera(*size)).observe()


# -- model variants -------------------------------------------------------------------------------------
def random_checkpoint(path: Path, config: dict | None = None, *, vocab: list[str] | None = None,
                      seed: int = 0, cycles: int | None = None) -> Path:
    """A ``final.pt`` in train.py's format with freshly initialised weights (default: the default-size net).

    ``config`` is a ``NetConfig`` dict (vocab_size and P are filled in); the vocabulary defaults to the
    held-out instructions' words, the primitive table to the registry's.
    """
    import torch

    from edgeagent.models.dataset import primitive_table
    from edgeagent.models.net import NetConfig, PlannerNet
    from edgeagent.models.tokenizer import build_vocab
    from edgeagent.sim.scenario import load_scenarios

    if vocab is None:
        vocab = build_vocab([s.instruction for s in load_scenarios([HELDOUT])], min_count=2)
    prims = primitive_table()
    cfg = {**(config or {}), "vocab_size": len(vocab), "P": 1 + len(prims)}
    cfg = NetConfig.from_dict(cfg)
    torch.manual_seed(seed)
    net = PlannerNet(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "model": net.state_dict(), "vocab": vocab, "primitives": prims,
                "cycles": cycles or cfg.cycles, "confidence_threshold": 0.5,
                "training": {"data": "none: random weights (benchmarks/bench_model.py)"}}, path)
    return path


def checkpoint_or_random(ctx: Context, folder: Path) -> tuple[Path, str]:
    """The model's checkpoint, else a random-weight one of the manifest's network config; and which."""
    if ctx.checkpoint is not None:
        return ctx.checkpoint, f"the weights of {ctx.checkpoint}"
    from edgeagent.models.manifest import load_manifest

    manifest = load_manifest(folder)[0]
    net = dict(manifest.training.get("network", {}))
    net.pop("parameters", None)
    if not net:
        raise Skip(f"{folder}: no checkpoint given (--checkpoint) and the manifest records no network config")
    path = random_checkpoint(ctx.scratch / "random-of-manifest.pt", net, vocab=list(manifest.vocab),
                             cycles=manifest.cycles)
    return path, ("random weights of the manifest's network config (no checkpoint found: pass --checkpoint "
                  "final.pt for trained weights; cost does not depend on weight values, success does)")


def export_variant(checkpoint: Path, out: Path, *, cycles: int | None = None, int8: bool = True,
                   frames: int = 64) -> tuple[Path, Path | None]:
    """FP32 export of ``checkpoint`` with ``cycles`` into ``out/fp32`` (and INT8 into ``out/int8``)."""
    from edgeagent.models.export import export_onnx

    export_onnx(checkpoint, out / "fp32", cycles=cycles)
    if not int8:
        return out / "fp32", None
    from edgeagent.models.quantize import quantize

    quantize(out / "fp32", out / "int8", calibration_frames=frames)
    return out / "fp32", out / "int8"


def make_random_model(out: Path) -> None:
    """``out/final.pt`` (random, default size), ``out/fp32`` and ``out/int8`` made by the project's tools."""
    import subprocess

    ckpt = random_checkpoint(out / "final.pt")
    edgeagent = [sys.executable, "-m", "edgeagent.cli", "model"]
    subprocess.run([*edgeagent, "export", str(ckpt), "--out", str(out / "fp32")], check=True)
    subprocess.run([*edgeagent, "quantize", str(out / "fp32"), "--out", str(out / "int8")], check=True)


# -- figure 1: one plan -----------------------------------------------------------------------------------
def fig_plan(ctx: Context) -> dict[str, Any]:
    """One plan on the default 640 x 480 frame: ORT FP32 and INT8 (whole plan and inference), torch eager."""
    from edgeagent.models.runtime import ModelPlanner

    obs = scene_observation()
    reps = ctx.reps(200, 20)
    run = f"{reps} plans of one 640x480 frame"
    rows, notes = [], []
    for precision, folder in (("FP32", ctx.fp32), ("INT8", ctx.int8)):
        if folder is None:
            notes.append(f"no {precision} model folder: not measured")
            continue
        planner = ModelPlanner(folder)
        infer: list[float] = []
        pooled: list[float] = []

        def one():
            infer.append(planner.plan(obs, INSTRUCTION).timings_ms["inference"])

        samples = time_runs(one, ctx.runs, reps, pooled=pooled)
        budget = {"p50": 10.0, "p99": 25.0} if precision == "INT8" else None
        rows.append(measure(f"plan, ONNX {precision}, onnxruntime {planner.provider}", "ms", samples, run,
                            p99_all_calls=percentile(pooled, 99), budget=budget, model=planner.model_id))
        rows.append(measure(f"  of which inference, ONNX {precision}", "ms",
                            chunk_medians(infer[3:], ctx.runs), run))  # [3:]: the warm-up calls
    try:
        rows.append(torch_eager(ctx, obs, reps, run, notes))
    except Skip as exc:
        notes.append(f"torch eager not measured: {exc}")
    return {"title": "One plan (CPU)", "rows": rows, "notes": notes}


def torch_eager(ctx: Context, obs, reps: int, run: str, notes: list[str]) -> dict[str, Any]:
    """The same network's forward pass in torch eager, 2 threads, on the inputs the ONNX model gets."""
    try:
        import torch
    except ImportError:
        raise Skip('torch is not installed: pip install -e ".[bench]"') from None
    from edgeagent.models.export import build_net, load_checkpoint
    from edgeagent.models.manifest import load_manifest
    from edgeagent.models.runtime import model_input
    from edgeagent.models.tokenizer import Tokenizer

    folder = ctx.model("fp32")
    manifest = load_manifest(folder)[0]
    ckpt_path, weights = checkpoint_or_random(ctx, folder)
    net = build_net(load_checkpoint(ckpt_path))
    torch.set_num_threads(2)
    notes.append(f"torch eager: {weights}, 2 threads, inference only (no pre/post-processing): compare with "
                 "the 'of which inference' rows")
    image = torch.from_numpy(model_input(obs.image, obs.camera, manifest)[0])
    tokens = torch.from_numpy(Tokenizer(list(manifest.vocab), manifest.T).encode(INSTRUCTION)[None])

    def one():
        with torch.inference_mode():
            net(image, tokens, manifest.cycles, batch=1)

    return measure(f"inference, torch {torch.__version__} eager FP32", "ms", time_runs(one, ctx.runs, reps), run)


# -- figure 3: refinement cycles --------------------------------------------------------------------------
def cycle_scenarios(quick: bool):
    from edgeagent.sim.scenario import load_scenarios

    k = QUICK_PER_FAMILY if quick else PER_FAMILY
    seen: dict[str, int] = {}
    out = []
    for sc in load_scenarios([HELDOUT]):
        if seen.get(sc.family, 0) < k:
            seen[sc.family] = seen.get(sc.family, 0) + 1
            out.append(sc)
    return out


def fig_cycles(ctx: Context) -> dict[str, Any]:
    """Closed-loop success and plan latency for 1..4 refinement cycles (exports of the same weights)."""
    try:
        import torch  # noqa: F401 - the export needs it
    except ImportError:
        raise Skip('exporting per cycle count needs torch and onnx: pip install -e ".[bench]"') from None
    from edgeagent.harness import evaluate, summarize
    from edgeagent.models.runtime import ModelPlanner

    ckpt, weights = checkpoint_or_random(ctx, ctx.model("fp32"))
    scenarios = cycle_scenarios(ctx.quick)
    precisions = ("int8",) if ctx.quick else ("fp32", "int8")
    obs = scene_observation()
    reps = ctx.reps(100, 20)
    run = f"{reps} plans of one 640x480 frame"
    slice_ = f"{len(scenarios)} held-out scenarios (the first {len(scenarios) // 15} of each of the 15 families)"
    rows = []
    for cycles in (1, 2, 3, 4):
        print(f"  cycles {cycles}: export{' + quantize' if 'int8' in precisions else ''}", file=sys.stderr)
        fp32, int8 = export_variant(ckpt, ctx.scratch / f"cycles{cycles}", cycles=cycles,
                                    int8="int8" in precisions, frames=ctx.reps(64, 16))
        for precision, folder in (("fp32", fp32), ("int8", int8)):
            if precision not in precisions:
                continue
            planner = ModelPlanner(folder)
            summary = summarize(evaluate(scenarios, lambda sc, robot: planner))["overall"]
            label = f"{cycles} cycle{'s' if cycles > 1 else ''}, {precision.upper()}"
            rows.append(value(f"{label}: closed-loop success", "%",
                              round(100 * summary["success_rate"], 1), slice_,
                              closed_loop_plan_ms=summary["plan_latency_ms"], mean_steps=summary["mean_steps"]))
            rows.append(measure(f"{label}: plan latency", "ms",
                                time_runs(lambda: planner.plan(obs, INSTRUCTION), ctx.runs, reps), run))
    return {"title": "Success and latency against refinement cycles", "rows": rows,
            "notes": [f"weights: {weights}", f"success on {slice_}, closed loop in the simulator (edgeagent.harness)",
                      f"INT8 calibrated on {ctx.reps(64, 16)} simulator frames per export"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "random-model":
        print(__doc__, file=sys.stderr)
        return 2
    make_random_model(Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
