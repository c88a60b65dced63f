"""Export a trained checkpoint to the shipped form: ``planner.onnx`` + ``manifest.json`` (DESIGN §5).

The graph is batch 1 with static shapes, opset 17, IR version <= 9, one forward pass with a fixed
number of refinement cycles (any number: the weights are shared across cycles). The manifest records
everything the runtime needs to use the file without torch: sizes, vocabulary, primitive table,
the file's sha256, input/output shapes, the training summary.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import warnings
from pathlib import Path
from typing import Any

from edgeagent.errors import ModelError
from edgeagent.files import write_atomic

OPSET = 17
MAX_IR_VERSION = 9
ONNX_NAME, MANIFEST_NAME = "planner.onnx", "manifest.json"  # as in edgeagent.models.manifest
OUTPUT_NAMES = ("prim_logits", "point_logits", "point_offset", "confidence")
#: Default routing threshold when the export is not told one (train.py calibrates a better one).
DEFAULT_CONFIDENCE_THRESHOLD = 0.5


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by ``train.py`` (a plain dict of tensors, lists and numbers)."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "final.pt"
    if not path.is_file():
        raise ModelError(f"{path}: no checkpoint there; train one with `edgeagent model train --out DIR` "
                         "and pass DIR/final.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"{path}: not a readable checkpoint ({exc}); re-run training or pick another file") from exc
    for key in ("config", "model", "vocab", "primitives"):
        if key not in ckpt:
            raise ModelError(f"{path}: checkpoint lacks {key!r}; it was not written by edgeagent.models.train")
    return ckpt


def build_net(ckpt: dict[str, Any]):
    """The PlannerNet of a checkpoint, in eval mode."""
    from edgeagent.models.net import NetConfig, PlannerNet

    net = PlannerNet(NetConfig.from_dict(ckpt["config"]))
    net.load_state_dict(ckpt["model"])
    return net.eval()


def onnx_bytes(net, cycles: int, objects: bool = True) -> bytes:
    """The serialized, checked ONNX model of ``net`` running ``cycles`` cycles (IR version <= 9); with
    ``objects``, the ``patch_objects`` output too."""
    import onnx
    import torch

    from edgeagent.models.net import ExportWrapper

    cfg = net.cfg
    image = torch.zeros(1, cfg.S, cfg.S, 3, dtype=torch.uint8)
    tokens = torch.zeros(1, cfg.T, dtype=torch.int64)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        names = [*OUTPUT_NAMES, "patch_objects"] if objects else list(OUTPUT_NAMES)
        torch.onnx.export(ExportWrapper(net.eval(), cycles, objects), (image, tokens), buf, opset_version=OPSET,
                          input_names=["image", "tokens"], output_names=names,
                          do_constant_folding=True, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    # TensorRT 8.x parsers and older onnxruntime builds reject IR 10; opset 17 only needs IR 8.
    if model.ir_version > MAX_IR_VERSION:
        model.ir_version = MAX_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def export_onnx(checkpoint: str | Path, out_dir: str | Path, *, cycles: int | None = None,
                name: str | None = None, confidence_threshold: float | None = None,
                eval_figures: dict | None = None, objects: bool = True,
                absent_below: float | None = None) -> Path:
    """Write ``out_dir/planner.onnx`` and ``out_dir/manifest.json``; returns the ONNX path.

    ``objects`` (default on) adds the ``patch_objects`` output, the object head training fits, by
    which the runtime refuses instructions naming objects not in view; off for a net whose object head
    was never trained (random weights), whose map would call everything absent. ``absent_below`` is the
    map's score under which the runtime calls a named object absent, measured on this model
    (``benchmarks/absent_scores.py``); None leaves the runtime's default.

    ``cycles`` defaults to the checkpoint's training setting. Refuses a non-empty ``out_dir`` that
    does not already hold an export (so a typo never overwrites unrelated files).
    """
    from edgeagent.models.manifest import Manifest, PrimitiveSpec, absent_below_problem, write_manifest
    from edgeagent.models.net import count_params
    from edgeagent.models.view import View

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"{out_dir}: exists and is not a folder; choose a folder for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
        raise ModelError(f"{out_dir}: folder is not empty and holds no previous export ({MANIFEST_NAME}); "
                         "choose an empty or new folder")
    ckpt = load_checkpoint(checkpoint)
    net = build_net(ckpt)
    cfg = net.cfg
    problem = absent_below_problem(absent_below, bool(objects and cfg.objects))
    if problem:
        why = "this export is --no-objects" if cfg.objects else f"{checkpoint} was trained without an object map"
        raise ModelError(f"absent_below {problem} ({why})")
    cycles = int(cycles if cycles is not None else ckpt.get("cycles", cfg.cycles))
    if cycles < 1:
        raise ModelError(f"cycles must be >= 1, got {cycles}")
    data = onnx_bytes(net, cycles, objects=objects)
    threshold = confidence_threshold if confidence_threshold is not None else ckpt.get(
        "confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD)
    training = dict(ckpt.get("training", {}))
    training["network"] = {**cfg.to_dict(), "parameters": count_params(net)}
    manifest = Manifest(
        name=name or f"edgeagent-planner-w{cfg.width}l{cfg.layers}-c{cycles}",
        S=cfg.S, T=cfg.T, K=cfg.K, G=cfg.G, A=cfg.A, cycles=cycles,
        vocab=tuple(ckpt["vocab"]),
        primitives=tuple(PrimitiveSpec(p["name"], tuple(p["args"])) for p in ckpt["primitives"]),
        precision="fp32", sha256=hashlib.sha256(data).hexdigest(),
        confidence_threshold=float(threshold), training=training, eval=dict(eval_figures or {}),
        view=View.from_dict(ckpt.get("view")), objects=cfg.objects if objects else 0,
        absent_below=None if absent_below is None else float(absent_below))
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_NAME
    write_atomic(onnx_path, data)
    write_manifest(manifest, out_dir)
    return onnx_path


def main(argv: list[str] | None = None) -> int:
    """``python -m edgeagent.models.export CKPT OUT [--cycles N]``."""
    p = argparse.ArgumentParser(prog="edgeagent model export", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="checkpoint file (or training folder holding final.pt)")
    p.add_argument("out", help="folder for planner.onnx + manifest.json (empty, or a previous export)")
    p.add_argument("--cycles", type=int, default=None, help="refinement cycles (default: as trained)")
    p.add_argument("--name", default=None, help="model name recorded in the manifest")
    args = p.parse_args(argv)
    path = export_onnx(args.checkpoint, args.out, cycles=args.cycles, name=args.name)
    print(f"wrote {path} and {path.parent / MANIFEST_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
