"""``edgeagent model``: train, export, quantize, check and describe planner models.

    edgeagent model train --out DIR ...          (options: edgeagent model train --help)
    edgeagent model export CHECKPOINT --out DIR [--cycles N] [--name NAME]
    edgeagent model quantize FP32_DIR --out DIR [--frames N] [--seed N] [--method minmax|percentile]
    edgeagent model confidence CHECKPOINT --out FILE [--per-family N] [--seed N] [--head plan|slot]
    edgeagent model average CHECKPOINT CHECKPOINT... --out FILE [--weights W,W,...]
    edgeagent model check FILE_OR_DIR [--fp32 DIR] [--json OUT] [--tensorrt 8.5|8.6]
    edgeagent model info [DIR]
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("model", help="train, export, quantize, check and describe planner models",
                       description=__doc__.split("\n\n")[0])
    msub = p.add_subparsers(dest="model_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    # Everything after "train" goes to the training script untouched (prefix_chars keeps argparse from
    # reading its --options here); `edgeagent model train --help` prints the script's own help.
    t = msub.add_parser("train", help="train a planner on simulator data (options: model train --help)",
                        add_help=False, prefix_chars="+")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=run_train)

    e = msub.add_parser("export", help="export a checkpoint to planner.onnx + manifest.json")
    e.add_argument("checkpoint", help="checkpoint file (or a training folder holding final.pt)")
    e.add_argument("--out", required=True, help="folder for planner.onnx + manifest.json")
    e.add_argument("--cycles", type=int, default=None, help="refinement cycles baked in (default: as trained)")
    e.add_argument("--name", default=None, help="model name recorded in the manifest")
    e.add_argument("--threshold", type=float, default=None,
                   help="confidence threshold recorded in the manifest, which routers use by default "
                        "(default: the one training calibrated; recalibrate it with 'edgeagent eval --curve')")
    e.add_argument("--no-objects", dest="objects", action="store_false",
                   help="leave out the patch_objects output, by which the runtime refuses instructions naming "
                        "objects the camera does not show (for a model whose object head is barely trained)")
    e.add_argument("--absent-below", type=float, default=None, metavar="P",
                   help="recorded in the manifest: a named object no patch of patch_objects shows with at least "
                        "this probability is refused as absent (default: the runtime's, 0.05; measure one with "
                        "python benchmarks/absent_scores.py)")
    e.set_defaults(func=run_export)

    q = msub.add_parser("quantize", help="INT8 Q/DQ quantization calibrated on simulator frames")
    q.add_argument("fp32_dir", help="FP32 model folder (from model export)")
    q.add_argument("--out", required=True, help="folder for the INT8 planner.onnx + manifest.json")
    q.add_argument("--frames", type=int, default=None, help="calibration frames (default 256)")
    q.add_argument("--seed", type=int, default=0, help="seed of the calibration scenes (default 0)")
    q.add_argument("--method", default=None, metavar="percentile|minmax",
                   help="activation ranges: clipped to their 99.999th percentile (percentile, default) or "
                        "the whole range seen (minmax)")
    q.add_argument("--keep-float", action="append", default=None, metavar="FRAGMENT",
                   help="keep nodes whose name contains FRAGMENT in float (repeatable; 'last-block' means the last "
                        "transformer layer; default: /stem/, /heads/ and last-block)")
    q.add_argument("--threshold", type=float, default=None,
                   help="confidence threshold recorded in the INT8 manifest (default: the FP32 model's; pick one "
                        "with 'edgeagent eval ... --calibrate 0.98' on the INT8 model)")
    q.add_argument("--absent-below", type=float, default=None, metavar="P",
                   help="absent-object score recorded in the INT8 manifest (default: the FP32 model's)")
    q.set_defaults(func=run_quantize)

    f = msub.add_parser("confidence", help="refit a checkpoint's confidence on closed-loop rollouts in the simulator",
                        description="Run the checkpoint closed loop on fresh scenarios and refit its confidence "
                                    "head (only) on whether each episode succeeded; see models/README.md.")
    f.add_argument("checkpoint", help="checkpoint file (or a training folder holding final.pt)")
    f.add_argument("--out", required=True, help="checkpoint file to write (then: edgeagent model export OUT ...)")
    f.add_argument("--per-family", type=int, default=None,
                   help="rollout scenarios per task family (default 100; at least 5)")
    f.add_argument("--seed", type=int, default=None, help="generator seed of the rollout scenarios (default 3000001)")
    f.add_argument("--head", default="plan", help="what the head reads: plan (every slot, default) or slot (the first)")
    f.set_defaults(func=run_confidence)

    a = msub.add_parser("average", help="average the weights of fine-tunes of one model (a model soup)",
                        description="Write the (weighted) mean of checkpoints fine-tuned from one model; "
                                    "the first decides the network. See models/average.py.")
    a.add_argument("checkpoints", nargs="+", help="checkpoint files (or training folders holding final.pt)")
    a.add_argument("--out", required=True, help="checkpoint file to write (then: model confidence, model export)")
    a.add_argument("--weights", default=None, metavar="W,W,...",
                   help="one weight per checkpoint (default: all equal)")
    a.set_defaults(func=run_average)

    c = msub.add_parser("check", help="TensorRT readiness of an ONNX planner, without a GPU (exit 1 on failure)")
    c.add_argument("path", help="planner.onnx or a model folder")
    c.add_argument("--fp32", default=None, help="FP32 model (file or folder) to compare outputs with")
    c.add_argument("--samples", type=int, default=8, help="simulator frames for the parity check (default 8)")
    c.add_argument("--tensorrt", default=None, help="TensorRT version to check operators for: 8.5 (JetPack 5) "
                   "or 8.6 (JetPack 6, default)")
    c.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON")
    c.set_defaults(func=run_check)

    i = msub.add_parser("info", help="manifest summary and the execution provider that runs the model")
    i.add_argument("path", nargs="?", default=None, help="model folder (default: the shipped INT8 model)")
    i.add_argument("--engine", default="onnxruntime", help="onnxruntime (default) or tensorrt")
    i.set_defaults(func=run_info)


def run_train(args) -> int:
    from edgeagent.models.train import main

    return int(main(list(args.train_args)) or 0)


def run_confidence(args) -> int:
    from edgeagent.models import confidence

    confidence.refit_confidence(
        args.checkpoint, args.out, head=args.head,
        per_family=confidence.DEFAULT_PER_FAMILY if args.per_family is None else args.per_family,
        seed=confidence.ROLLOUT_SEED if args.seed is None else args.seed)
    return 0


def run_average(args) -> int:
    from edgeagent.errors import ConfigError
    from edgeagent.models.average import average_checkpoints

    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise ConfigError(f"--weights {args.weights!r}: give numbers separated by commas, e.g. 1,1,2") from None
    average_checkpoints(args.checkpoints, args.out, weights)
    print(f"wrote {args.out}; refit its confidence with: edgeagent model confidence {args.out} --out FILE")
    return 0


def _check_threshold(args) -> None:
    from edgeagent.errors import ConfigError

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {args.threshold}")


def run_export(args) -> int:
    from edgeagent.models.export import export_onnx

    _check_threshold(args)
    path = export_onnx(args.checkpoint, args.out, cycles=args.cycles, name=args.name,
                       confidence_threshold=args.threshold, objects=args.objects,
                       absent_below=args.absent_below)
    print(f"wrote {path} and {path.parent / 'manifest.json'}")
    return 0


def run_quantize(args) -> int:
    from edgeagent.models.quantize import DEFAULT_FRAMES, KEEP_FLOAT, quantize

    _check_threshold(args)
    path = quantize(args.fp32_dir, args.out, calibration_frames=args.frames or DEFAULT_FRAMES, seed=args.seed,
                    keep_float=tuple(args.keep_float) if args.keep_float is not None else KEEP_FLOAT,
                    confidence_threshold=args.threshold, absent_below=args.absent_below,
                    **({"method": args.method} if args.method else {}))
    print(f"wrote {path} and {path.parent / 'manifest.json'}; check it with: edgeagent model check {path.parent} "
          f"--fp32 {args.fp32_dir}")
    return 0


def run_check(args) -> int:
    from edgeagent.models.check import DEFAULT_TENSORRT, check_model

    report = check_model(args.path, fp32_path=args.fp32, samples=args.samples,
                         tensorrt=args.tensorrt or DEFAULT_TENSORRT)
    print(report.format())
    if args.json:
        report.write_json(args.json)
    return 0 if report.ok else 1


def _int8_note(precision: str, provider: str) -> str:
    from edgeagent.cpu import int8_kernels_saturate

    if precision == "int8" and provider == "CPUExecutionProvider" and int8_kernels_saturate():
        return " (Q/DQ fusion off: this x86 CPU has no VNNI, where the fused INT8 kernels saturate)"
    return ""


def run_info(args) -> int:
    from edgeagent.models.runtime import ModelPlanner, default_model_dir

    planner = ModelPlanner(args.path or default_model_dir(), engine=args.engine)
    m = planner.manifest
    training = m.training
    lines = [
        f"model       {m.model_id} ({m.precision}), created {m.created or '?'}",
        f"file        {planner.onnx_path} ({planner.onnx_path.stat().st_size / 2**20:.2f} MB)",
        f"provider    {planner.provider}" + _int8_note(m.precision, planner.provider),
        f"sizes       S={m.S} T={m.T} K={m.K} G={m.G} A={m.A}, {m.cycles} refinement cycle(s), "
        f"{len(m.vocab)} words",
        f"view        {m.view.describe()}",
        "primitives  " + ", ".join(f"{p.name}({', '.join(p.args)})" for p in m.primitives),
        f"threshold   confidence >= {m.confidence_threshold:g}",
        "objects     " + (f"refuses a named object its map scores under {planner.absent_below:g} everywhere"
                          + ("" if m.absent_below is not None else " (the runtime's default)")
                          if m.objects else "no object map: named objects are not checked against the frame"),
    ]
    if training.get("command"):
        lines.append(f"trained     {training['command']}"
                     + (f" ({training['wall_time_s'] / 60:.1f} min)" if training.get("wall_time_s") else ""))
    if training.get("quantization"):
        q = training["quantization"]
        lines.append(f"quantized   {q.get('frames', '?')} calibration frames, seed {q.get('seed', '?')}"
                     + (f", {q['ranges']}" if q.get("ranges") else "") + f"; {len(q.get('kept_float', []))} nodes kept float")
    if m.eval:
        lines.append("eval        " + json.dumps(m.eval, sort_keys=True)[:400])
    print("\n".join(lines))
    return 0
