"""INT8 quantisation of an exported planner: explicit Q/DQ that TensorRT accepts.

``quantize(fp32_dir, out_dir)`` runs onnxruntime's ``quant_pre_process`` (shape inference and basic
graph clean-up) and then ``quantize_static`` in QDQ format: per-channel symmetric int8 weights and
symmetric int8 activations, so every zero point is 0 (TensorRT rejects any other), float biases
(TensorRT's DequantizeLinear takes int8 only), calibrated on simulator frames rendered
with random styles and paired with their instructions (activation ranges clipped at their
99.999th percentile by default, ``METHODS``). Never dynamic quantisation: its
MatMulInteger/DynamicQuantizeLinear are not TensorRT operators.

What stays float: every op type outside ``OP_TYPES`` (embeddings, LayerNorm, Softmax, GELU, adds),
MatMuls between two activations (attention, ``_activation_matmuls``), and the nodes whose name contains one of
``keep_float`` (by default the output heads, whose pointing logits are the most precision-sensitive
part and cost little, the last transformer layer, ``LAST_BLOCK``, and the conv stem, a tenth of the
multiply-adds, where the blocks' pixel positions are read).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from edgeagent.errors import ModelError
from edgeagent.models.manifest import (ONNX_NAME, Manifest, absent_below_problem, file_sha256, load_manifest,
                                       now_iso, verify_file, write_manifest)

log = logging.getLogger(__name__)

#: Operator types that get Q/DQ: the ones that carry the arithmetic.
OP_TYPES = ("Conv", "MatMul", "Gemm")
#: Stands for the last transformer layer's node-name fragment (``/blocks.N/``, N the highest there).
LAST_BLOCK = "last-block"
#: Node-name fragments kept in float by default (torch export names nodes after modules: /heads/...):
#: the heads, and the last transformer layer, whose quantization cost about a point of closed-loop
#: success (placing blocks a little off: stacks falling beside, blocks just outside bowls) and
#: confident failures the router could not catch (models/README.md, "Quantization").
#: The conv stem too: a tenth of the multiply-adds, and with it float, the INT8 model's point cells
#: agree with FP32's on 94% of slots against 89% (``edgeagent model check --samples 300``).
#: And the object head behind ``patch_objects`` (a 128 x 21 product per patch, next to nothing).
KEEP_FLOAT = ("/stem/", "/heads/", "/aux_patch/", LAST_BLOCK)
DEFAULT_FRAMES = 256
#: Activation calibration methods ``quantize`` takes (onnxruntime's CalibrationMethod names, lower case):
#: ``minmax`` (the range seen) or ``percentile`` (clip the rarest outliers, ``PERCENTILE`` of them kept).
#: Percentile is the default: with it the point cells agree with FP32's more often (89% against 86%).
METHODS = ("percentile", "minmax")
PERCENTILE = 99.999
#: Render size of calibration frames: the simulator's default camera, resized by the runtime's own code.
FRAME_SIZE = (640, 480)


def simulator_feeds(manifest: Manifest, n: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """``n`` model feeds {"image", "tokens"} from simulator scenes of every task family.

    Each scene is drawn by ``sim.families.generate``, sometimes advanced to mid-task (a block lifted
    and carried, as in a closed loop), rendered with a random style, and preprocessed exactly as
    ``ModelPlanner`` does; the tokens are its instruction. Deterministic in ``seed``.
    """
    from edgeagent.models.runtime import model_input
    from edgeagent.models.tokenizer import Tokenizer
    from edgeagent.sim.families import FAMILIES, generate
    from edgeagent.sim.render import RenderStyle, default_camera, render
    from edgeagent.sim.scenario import scenario_from_dict

    if n <= 0:
        return
    rng = np.random.default_rng(seed)
    tokenizer = Tokenizer(list(manifest.vocab), manifest.T)
    camera = default_camera(*FRAME_SIZE)
    items = generate(None, math.ceil(n / len(FAMILIES)), seed)
    for i in rng.permutation(len(items))[:n]:
        item = items[int(i)]
        world = scenario_from_dict(item).build_world()
        if world.blocks and rng.random() < 0.5:
            _carry_a_block(world, rng)
        image = render(world, camera, RenderStyle.random(rng), seed=int(rng.integers(2**31)))
        yield {"image": model_input(image, camera, manifest)[0],
               "tokens": tokenizer.encode(item["instruction"])[None]}


def _carry_a_block(world, rng: np.random.Generator) -> None:
    """Pick a random block and move it to a random point above the table (a mid-task frame)."""
    from edgeagent.primitives import SAFE_Z

    block = world.blocks[list(world.blocks)[int(rng.integers(len(world.blocks)))]]
    world.move_to(block.x, block.y, SAFE_Z)
    world.open()
    world.descend()
    world.close()
    x, y = rng.uniform(-0.25, 0.25, 2)
    world.move_to(float(x), float(y), SAFE_Z)


class FeedReader:
    """onnxruntime ``CalibrationDataReader`` over an iterable of feeds (made lazily, one at a time)."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]):
        self._feeds = iter(feeds)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._feeds, None)
        if feed is not None:
            self.count += 1
        return feed

    def rewind(self) -> None:  # pragma: no cover - onnxruntime calls it only for multi-pass methods
        raise ModelError("calibration feeds can be read once; use a single-pass method (percentile, minmax)")


def quantize(fp32_dir, out_dir, *, calibration_frames: int = DEFAULT_FRAMES, seed: int = 0,
             op_types: Sequence[str] = OP_TYPES, keep_float: Sequence[str] = KEEP_FLOAT,
             feeds: Iterable[dict[str, np.ndarray]] | None = None,
             confidence_threshold: float | None = None, method: str = "percentile",
             absent_below: float | None = None) -> Path:
    """Quantise the FP32 model folder ``fp32_dir`` into ``out_dir`` (planner.onnx + manifest.json).

    ``feeds`` replaces the simulator frames (e.g. frames from the real camera, preprocessed with
    ``runtime.model_input``). ``confidence_threshold`` replaces the FP32 manifest's in the INT8 one
    (INT8 confidence differs a little; calibrate it on the INT8 model), ``absent_below`` the FP32
    manifest's absent-object score (``benchmarks/absent_scores.py``). ``method`` is one of
    ``METHODS``. Returns the INT8 ONNX path. Deterministic in ``seed``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    manifest, fp32_path = load_manifest(fp32_dir)
    if manifest.precision != "fp32":
        raise ModelError(f"{fp32_path}: the manifest says {manifest.precision}; quantize the FP32 export "
                         "(edgeagent model export), not an already quantized model")
    verify_file(manifest, fp32_path)
    out_dir = Path(out_dir)
    if out_dir.resolve() == fp32_path.parent.resolve():
        raise ModelError(f"{out_dir}: is the FP32 model's folder; write the INT8 model to another folder")
    if method not in METHODS:
        raise ModelError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    problem = absent_below_problem(absent_below, bool(manifest.objects))
    if problem:
        raise ModelError(f"{fp32_path}: absent_below {problem}")
    if calibration_frames < 1 and feeds is None:
        raise ModelError(f"calibration_frames must be >= 1, got {calibration_frames}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgeagent-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre))
        exclude = _nodes_matching(pre, keep_float)
        exclude += [n for n in _activation_matmuls(pre) if n not in exclude]
        reader = FeedReader(feeds if feeds is not None else simulator_feeds(manifest, calibration_frames, seed))
        staged = Path(tmp) / ONNX_NAME
        quantize_static(
            str(pre), str(staged), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types),
            nodes_to_exclude=exclude,
            calibrate_method=CalibrationMethod.MinMax if method == "minmax" else CalibrationMethod.Percentile,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "CalibPercentile": PERCENTILE,
                           # TensorRT's DequantizeLinear takes int8 only: keep biases float (TensorRT fuses them).
                           # (MatMulConstBOnly is not set: QDQ format ignores it; see _activation_matmuls.)
                           "QuantizeBias": False})
        if reader.count == 0:
            raise ModelError("calibration got no frames; pass calibration_frames >= 1 or non-empty feeds")
        _cap_ir_version(staged)
        target = out_dir / ONNX_NAME
        partial = out_dir / f".{ONNX_NAME}.partial"
        shutil.copyfile(staged, partial)
        os.replace(partial, target)
    ranges = "MinMax" if method == "minmax" else f"percentile {PERCENTILE}"
    int8 = manifest.replace(
        precision="int8", sha256=file_sha256(target), created=now_iso(), eval={},
        confidence_threshold=(manifest.confidence_threshold if confidence_threshold is None
                              else float(confidence_threshold)),
        absent_below=manifest.absent_below if absent_below is None else float(absent_below),
        training={**manifest.training, "quantization": {
            "method": f"onnxruntime quantize_static, QDQ, int8 symmetric, per-channel weights, {ranges}",
            "ranges": ranges,
            "calibration": "simulator frames" if feeds is None else "caller-supplied frames",
            "frames": reader.count, "seed": seed, "op_types": list(op_types), "kept_float": exclude,
            "from_sha256": manifest.sha256}})
    write_manifest(int8, out_dir)
    log.info("wrote %s (%d calibration frames, %d nodes kept float)", target, reader.count, len(exclude))
    return target


def _nodes_matching(path: Path, fragments: Sequence[str]) -> list[str]:
    """Names of the nodes of ``path`` whose name contains any of ``fragments``."""
    if not fragments:
        return []
    import re

    import onnx

    graph = onnx.load(str(path)).graph
    fragments = list(fragments)
    if LAST_BLOCK in fragments:
        layers = [int(m.group(1)) for n in graph.node for m in [re.search(r"/blocks\.(\d+)/", n.name)] if m]
        fragments.remove(LAST_BLOCK)
        if layers:
            fragments.append(f"/blocks.{max(layers)}/")
    return [n.name for n in graph.node if n.name and any(f in n.name for f in fragments)]


def _activation_matmuls(path: Path) -> list[str]:
    """Names of the MatMuls of ``path`` whose inputs are both activations (attention scores and their
    weighting of the values). Quantized, a softmax row over 180 tokens keeps only 1/127 steps of its
    largest weight, and the small ones, where a count over several blocks lives, round to 0: that
    cost rank-from-side 6 points of closed-loop success (models/README.md, "Quantization")."""
    import onnx

    graph = onnx.load(str(path)).graph
    constant = {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in graph.node
            if n.op_type == "MatMul" and n.name and not any(i in constant for i in n.input)]


def _cap_ir_version(path: Path, max_ir: int = 9) -> None:
    """Keep the IR version TensorRT 8.x parses; opset 17 needs only IR 8."""
    import onnx

    model = onnx.load(str(path))
    if model.ir_version > max_ir:
        model.ir_version = max_ir
        onnx.save(model, str(path))
