"""Every benchmark figure in one command: ``benchmarks/results/<figure>.json`` plus ``RESULTS.md``.

    python benchmarks/run.py [--quick] [--only plan,router] [--model DIR] [--checkpoint final.pt] [--out DIR]

``--model`` is a model folder (planner.onnx + manifest.json) or a folder holding ``fp32/`` and ``int8/``
(like models/shipped, the default); its ``final.pt``, when there, is the checkpoint the figures that
re-export the network use. Each figure's JSON holds the machine, the library versions, what a run
is, and per measure its unit and the median, min and max over the runs. RESULTS.md is made from every
figure JSON in ``--out``, so a subset re-run keeps the other figures. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_service import machine  # noqa: E402
from edgeagent.files import write_atomic, write_json_atomic  # noqa: E402
from measure import QUICK_RUNS, ROOT, RUNS, Context, Skip  # noqa: E402

#: Figure name -> (module, function, what it shows), in the order of the README.
FIGURES = {
    "plan": ("bench_model", "fig_plan", "one plan: ONNX FP32 / INT8 on onnxruntime CPU, the network in torch eager"),
    "vlm": ("vlm_baseline", "fig_vlm", "a SmolVLM-256M-shaped generative VLM writing the same plan, vs ours"),
    "cycles": ("bench_model", "fig_cycles", "closed-loop success and plan latency for 1 to 4 refinement cycles"),
    "e2e": ("bench_offload", "fig_e2e", "instruction to first primitive in the simulator per router mode"),
    "router": ("bench_onboard", "fig_router", "router decision and a plan-cache hit"),
    "service": ("bench_offload", "fig_service", "plan request over ZeroMQ, offload round trip and throughput"),
    "startup": ("bench_onboard", "fig_startup", "service start to first answer and peak RSS"),
    "scaling": ("bench_scaling", "fig_scaling", "latency against resolution, blocks in the scene, plan slots"),
    "train": ("bench_train", "fig_train", "one training step at 1 and 2 threads, its work and the steps in an hour"),
}
RUN_IS = ("A run is a batch of repetitions of one call; the run's sample is the median time per call over the "
          "batch (for throughput: plans per second over one window; for success: one closed-loop evaluation). "
          "Each row gives the median, min and max of the run samples.")
DEFAULT_OUT = ROOT / "benchmarks" / "results"


def resolve_models(arg: str | None, checkpoint: str | None) -> tuple[Path | None, Path | None, Path | None]:
    """(fp32 folder, int8 folder, checkpoint) from ``--model`` (default: models/shipped)."""
    from edgeagent.models.manifest import MANIFEST_NAME, load_manifest

    root = Path(arg) if arg else ROOT / "models" / "shipped"
    found: dict[str, Path] = {}
    if (root / MANIFEST_NAME).is_file():
        found[load_manifest(root)[0].precision] = root
    else:
        for precision in ("fp32", "int8"):
            if (root / precision / MANIFEST_NAME).is_file():
                found[precision] = root / precision
    if arg and not found:
        raise SystemExit(f"--model {arg}: neither a model folder ({MANIFEST_NAME} + planner.onnx) nor a folder "
                         "holding fp32/ and int8/ model folders")
    ckpt = Path(checkpoint) if checkpoint else next(
        (p for p in (root / "final.pt", root.parent / "final.pt") if p.is_file() and found), None)
    return found.get("fp32"), found.get("int8"), ckpt


def run_figure(name: str, ctx: Context) -> dict[str, Any]:
    module, function, what = FIGURES[name]
    record: dict[str, Any] = {"figure": name, "what": what, "quick": ctx.quick,
                              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
                              "model": {"fp32": _str(ctx.fp32), "int8": _str(ctx.int8),
                                        "checkpoint": _str(ctx.checkpoint)},
                              "runs_per_measure": ctx.runs, "run_is": RUN_IS}
    t = time.perf_counter()
    try:
        result = getattr(importlib.import_module(module), function)(ctx)
        record.update(title=result["title"], rows=result["rows"], notes=result.get("notes", []))
    except Skip as exc:
        record.update(title=what, skipped=str(exc))
    except Exception as exc:  # one broken figure must not cost the others
        traceback.print_exc()
        record.update(title=what, error=f"{type(exc).__name__}: {exc}")
    record["wall_s"] = round(time.perf_counter() - t, 1)
    return record


def repo_relative(obj: Any) -> Any:
    """``obj`` with this checkout's absolute path dropped from every string (``models/shipped/int8``, not
    ``/home/me/edgeagent/models/shipped/int8``), so the records read the same on any machine."""
    if isinstance(obj, str):
        return obj.replace(f"{ROOT}{os.sep}", "")
    if isinstance(obj, dict):
        return {k: repo_relative(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [repo_relative(v) for v in obj]
    return obj


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


# -- RESULTS.md ---------------------------------------------------------------------------------------------
def _num(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "" if v is None else str(v)
    a = abs(v)
    if a == 0:
        return "0"
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"


def _budget(row: dict) -> str:
    b = row.get("budget") or {}
    parts = []
    for key, limit in b.items():
        got = {"p50": row.get("median"), "p99": row.get("p99_all_calls"), "max": row.get("max")}[key]
        ok = "" if got is None else (" ✓" if got <= limit else " ✗")
        parts.append(f"{key} ≤ {_num(limit)}{ok}")
    return ", ".join(parts)


def machine_line(m: dict) -> str:
    libs = ", ".join(f"{k} {m.get(k) or '—'}" for k in ("python", "numpy", "onnxruntime", "torch", "transformers",
                                                         "pyzmq"))
    cpu = f"{m['cpu']}, {m['cores']} cores"
    if "int8_qdq_fusion" in m:  # records from before 2026-12-02 lack it (they were all VNNI machines)
        cpu += ", INT8 Q/DQ fused" if m["int8_qdq_fusion"] else ", no VNNI: INT8 Q/DQ unfused"
    return f"{cpu}, {m['platform']}; {libs}"


def results_markdown(records: list[dict]) -> str:
    first = records[0]["machine"]
    lines = ["<!-- written by benchmarks/run.py; rerun it rather than editing this file -->", "",
             f"Machine: {machine_line(first)}.", "", RUN_IS, "",
             "| figure | measure | unit | median | min | max | runs | a run | budget |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for rec in records:
        label = rec["figure"] + (" (quick)" if rec.get("quick") else "")
        if "rows" not in rec:
            why = rec.get("skipped") or rec.get("error")
            lines.append(f"| {label} | {'skipped' if 'skipped' in rec else 'FAILED'}: {why} | | | | | | | |")
            continue
        for row in rec["rows"]:
            name = row["name"].replace("|", "\\|")
            name = "↳ " + name.strip() if name.startswith(" ") else name  # a part of the row above
            lines.append(f"| {label} | {name} | {row['unit']} | {_num(row['median'])} | {_num(row['min'])} | "
                         f"{_num(row['max'])} | {row.get('runs') or ''} | {row.get('run', '')} | {_budget(row)} |")
        extra = list(rec.get("notes", []))
        if rec["machine"] != first:
            extra.append(f"measured on another machine: {machine_line(rec['machine'])}")
        extra.append(f"measured {rec['created']}{', --quick' if rec.get('quick') else ''}")
        notes.append(f"- **{rec['figure']}** ({rec['title']}): " + "; ".join(extra))
    return "\n".join(lines + ["", "Notes:", ""] + notes) + "\n"


def write_results_md(out: Path) -> Path:
    records = []
    for name in FIGURES:
        path = out / f"{name}.json"
        if path.is_file():
            records.append(json.loads(path.read_text()))
    return write_atomic(out / "RESULTS.md", results_markdown(records) if records else "No figures measured yet.\n")


# -- command line -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"few repetitions and {QUICK_RUNS} runs instead of {RUNS} (smoke test; marked quick)")
    p.add_argument("--only", default=None, metavar="NAME[,NAME]",
                   help=f"figures to run (default all): {', '.join(FIGURES)}")
    p.add_argument("--model", default=None,
                   help="model folder, or a folder with fp32/ and int8/ (default: models/shipped)")
    p.add_argument("--checkpoint", default=None,
                   help="the model's training checkpoint (default: final.pt in the --model folder, if any)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder (default {DEFAULT_OUT})")
    args = p.parse_args(argv)
    names = list(FIGURES) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        p.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    fp32, int8, ckpt = resolve_models(args.model, args.checkpoint)
    out = Path(args.out)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="edgeagent-bench-") as scratch:
        ctx = Context(fp32, int8, ckpt, quick=args.quick, scratch=Path(scratch))
        print(f"models: fp32 {fp32}, int8 {int8}, checkpoint {ckpt}; {ctx.runs} runs per measure"
              f"{' (quick)' if args.quick else ''}", file=sys.stderr)
        for i, name in enumerate(names, 1):
            print(f"[{i}/{len(names)}] {name}: {FIGURES[name][2]} ...", file=sys.stderr, flush=True)
            sub = Path(scratch) / name
            sub.mkdir()
            record = repo_relative(run_figure(name, replace(ctx, scratch=sub)))
            write_json_atomic(out / f"{name}.json", record)
            for row in record.get("rows", []):
                spread = f" (min {_num(row['min'])}, max {_num(row['max'])})" if row["min"] is not None else ""
                print(f"    {row['name']}: {_num(row['median'])} {row['unit']}{spread}", file=sys.stderr)
            status = record.get("skipped") and f"skipped: {record['skipped']}" or record.get("error") and \
                f"FAILED: {record['error']}" or "done"
            failed += "error" in record
            print(f"    {status} in {record['wall_s']} s -> {out / (name + '.json')}", file=sys.stderr, flush=True)
    print(f"wrote {write_results_md(out)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
