"""``edgeagent model check``: is this ONNX planner ready for TensorRT? Answered without a GPU.

The checks (each PASS/FAIL with a detail line):

- the file is valid ONNX; opset <= 17 and IR version <= 9 (what TensorRT 8.5/8.6 parse);
- every graph input and output has a static shape (one engine, no optimisation profiles);
- only operators TensorRT's ONNX parser supports (``TENSORRT_OPS`` below, from onnx-tensorrt's
  docs/operators.md), no control flow (the contract is one forward pass), no custom domains;
- no dynamic or operator-oriented quantisation (QLinear*, MatMulInteger, ConvInteger,
  DynamicQuantizeLinear): TensorRT only takes explicit Q/DQ;
- every QuantizeLinear/DequantizeLinear has an int8 zero point that is 0 and positive finite scales
  (TensorRT rejects any other zero point);
- axes of Slice/Squeeze/Unsqueeze/Reduce*/Split (and TopK's K, CumSum's axis) are constants, not
  computed tensors;
- the file is at most 20 MB (DESIGN §10);
- with a manifest beside the file (or given): its sha256 and I/O shapes match, its primitives exist
  in the standard registry;
- with ``fp32_path``: FP32-vs-this-model parity on simulator frames (same primitive per slot,
  confidence close).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgeagent.errors import DependencyMissing, EdgeAgentError, ModelError

MAX_OPSET = 17
MAX_IR_VERSION = 9
MAX_FILE_MB = 20.0

#: Operators TensorRT 8.5's ONNX parser supports (onnx-tensorrt docs/operators.md, "Y" rows, opset <= 17).
_TRT_8_5 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSigmoid HardSwish Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range
Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())
#: TensorRT version -> the operators its ONNX parser supports. 8.5 ships with JetPack 5.1, 8.6 with
#: JetPack 6 (the onnx-tensorrt changelog: 8.6 added GroupNormalization, LayerNormalization, IsInf).
TENSORRT_OPS: dict[str, frozenset[str]] = {
    "8.5": _TRT_8_5,
    "8.6": _TRT_8_5 | {"GroupNormalization", "LayerNormalization", "IsInf"},
}
DEFAULT_TENSORRT = "8.6"
#: Supported by TensorRT, excluded by the model contract (one forward pass, no loops).
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
#: Integer-arithmetic ops of dynamic / QOperator quantisation: onnxruntime-only, not TensorRT.
INTEGER_OPS = frozenset({"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QGemm", "QAttention",
                         "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "DynamicQuantizeLSTM"})
#: Inputs that TensorRT needs as constants: op type -> (input index, what it is).
CONSTANT_INPUTS = {
    "Slice": ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")),
    "Squeeze": ((1, "axes"),), "Unsqueeze": ((1, "axes"),), "Split": ((1, "split"),),
    "TopK": ((1, "K"),), "CumSum": ((1, "axis"),),
}


@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """Everything ``check_model`` found. ``ok`` when every check passed."""

    path: str
    checks: list[Check] = field(default_factory=list)
    # Figures worth printing that are not pass/fail: opset, IR, node counts, parity numbers.
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, bool(ok), detail))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "checks": [asdict(c) for c in self.checks], "info": self.info}

    def format(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [f"model check: {self.path}"]
        lines += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        failed = sum(not c.ok for c in self.checks)
        lines.append(f"{'ready for TensorRT' if self.ok else f'{failed} check(s) failed'}: "
                     + ", ".join(f"{k} {v}" for k, v in self.info.items() if not isinstance(v, dict)))
        return "\n".join(lines)

    def write_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def check_model(onnx_path, *, manifest=None, fp32_path=None, samples: int = 8, tensorrt: str = DEFAULT_TENSORRT,
                min_agreement: float = 0.9, max_confidence_diff: float = 0.1, seed: int = 1234) -> Report:
    """Check ``onnx_path`` (a file or model folder) for TensorRT readiness; see the module docstring.

    ``manifest`` is a Manifest, a path, or None to use ``manifest.json`` beside the file when present.
    ``fp32_path`` (file or folder) enables the parity check on ``samples`` simulator frames. Raises
    ModelError when the file cannot be read as ONNX at all (the CLI exits 2 then).
    """
    onnx = _onnx()
    from edgeagent.models.manifest import load_manifest, model_paths

    path = _onnx_file(onnx_path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX file ({exc}); check the path or re-export") from exc
    if tensorrt not in TENSORRT_OPS:
        raise ValueError(f"unknown TensorRT version {tensorrt!r}; known: {', '.join(TENSORRT_OPS)}")
    report = Report(str(path))
    graph = model.graph
    consts = _constants(graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    report.info.update(opset=opset, ir_version=model.ir_version, nodes=len(graph.node),
                       size_mb=round(path.stat().st_size / 2**20, 2), tensorrt=tensorrt)

    try:
        onnx.checker.check_model(model)
        report.add("valid ONNX", True, "onnx.checker passes")
    except Exception as exc:  # onnx.checker.ValidationError and protobuf errors
        report.add("valid ONNX", False, str(exc).splitlines()[0][:200])
    report.add(f"opset <= {MAX_OPSET}", 0 < opset <= MAX_OPSET, f"opset {opset}")
    report.add(f"IR version <= {MAX_IR_VERSION}", model.ir_version <= MAX_IR_VERSION,
               f"IR version {model.ir_version}")
    report.add("static shapes", *_static_io(graph))
    report.add(f"TensorRT {tensorrt} operators", *_operators(graph, tensorrt))
    report.add("no integer/dynamic quantisation ops", *_integer_ops(graph))
    report.add("Q/DQ zero points 0, scales > 0", *_qdq(graph, consts))
    report.add("constant axes", *_constant_axes(graph, consts))
    size_mb = path.stat().st_size / 2**20
    report.add(f"file <= {MAX_FILE_MB:g} MB", size_mb <= MAX_FILE_MB, f"{size_mb:.2f} MB")

    man = _manifest_for(manifest, path, load_manifest, model_paths)
    if man is not None:
        report.add("manifest matches file", *_manifest_matches(man, path, graph))
    if fp32_path is not None:
        ok, detail, figures = _parity(path, _onnx_file(fp32_path), man, samples, seed, min_agreement,
                                      max_confidence_diff)
        report.add("FP32 parity", ok, detail)
        report.info["parity"] = figures
    return report


# -- helpers ------------------------------------------------------------------------------------------
def _onnx():
    try:
        import onnx
    except ImportError:
        raise DependencyMissing("edgeagent model check needs the onnx package: pip install 'edgeagent[train]' "
                                "(or pip install onnx)") from None
    return onnx


def _onnx_file(path) -> Path:
    from edgeagent.models.manifest import model_paths

    p = Path(path)
    if p.is_dir() or p.name == "manifest.json":
        p = model_paths(p)[1]
    if not p.is_file():
        raise ModelError(f"{p}: no such ONNX file; pass a planner.onnx or a model folder holding one")
    return p


def _constants(graph) -> dict[str, np.ndarray]:
    """Tensors whose value is known without running the graph: initializers and Constant outputs."""
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
                elif attr.name in ("value_int", "value_float"):
                    out[node.output[0]] = np.asarray(attr.i if attr.name == "value_int" else attr.f)
                elif attr.name in ("value_ints", "value_floats"):
                    out[node.output[0]] = np.asarray(list(attr.ints or attr.floats))
    return out


def _listed(items: list[str], limit: int = 6) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


def _static_io(graph) -> tuple[bool, str]:
    bad = []
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for v in values:
            if not v.type.HasField("tensor_type"):
                bad.append(f"{kind} {v.name} is not a tensor")
                continue
            dims = v.type.tensor_type.shape.dim
            shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            if not v.type.tensor_type.HasField("shape") or any(
                    not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
                bad.append(f"{kind} {v.name} {shown}")
    if bad:
        return False, "dynamic: " + _listed(bad) + "; export with fixed sizes (batch 1, no dynamic_axes)"
    return True, f"{len(graph.input)} inputs, {len(graph.output)} outputs, all fixed"


def _all_nodes(graph) -> Iterator:
    """Every node, including those in If/Loop/Scan bodies."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and len(attr.g.node):
                yield from _all_nodes(attr.g)
            for g in attr.graphs:
                yield from _all_nodes(g)


def _operators(graph, tensorrt: str) -> tuple[bool, str]:
    supported = TENSORRT_OPS[tensorrt]
    bad: dict[str, str] = {}
    types = set()
    for node in _all_nodes(graph):
        op = node.op_type
        types.add(op if node.domain in ("", "ai.onnx") else f"{node.domain}.{op}")
        if node.domain not in ("", "ai.onnx"):
            bad[f"{node.domain}.{op}"] = "custom domain, not an ONNX operator"
        elif op in CONTROL_FLOW:
            bad[op] = "control flow; the contract is one forward pass"
        elif op not in supported:
            later = [v for v, ops in TENSORRT_OPS.items() if op in ops]
            bad[op] = f"needs TensorRT >= {later[0]}" if later else "not supported by TensorRT's ONNX parser"
    if bad:
        return False, _listed([f"{op}: {why}" for op, why in sorted(bad.items())])
    return True, f"{len(types)} op types: {', '.join(sorted(types))}"


def _integer_ops(graph) -> tuple[bool, str]:
    bad = sorted({n.op_type for n in _all_nodes(graph) if n.op_type.startswith("QLinear") or n.op_type in INTEGER_OPS})
    if bad:
        return False, (f"{', '.join(bad)} found: TensorRT takes explicit Q/DQ only; quantize with "
                       "edgeagent model quantize (static, QDQ), never dynamic quantization")
    return True, "none"


def _qdq(graph, consts: dict[str, np.ndarray]) -> tuple[bool, str]:
    bad = []
    count = 0
    for node in _all_nodes(graph):
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        count += 1
        where = f"{node.op_type} {node.name or node.output[0]}"
        scale = consts.get(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            bad.append(f"{where}: scale is not a constant")
        elif not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            bad.append(f"{where}: scale has values <= 0 or non-finite")
        zp_name = node.input[2] if len(node.input) > 2 else ""
        zp = consts.get(zp_name) if zp_name else None
        if not zp_name:
            # Without a zero point QuantizeLinear produces uint8; TensorRT needs int8 with zero point 0.
            if node.op_type == "QuantizeLinear":
                bad.append(f"{where}: no zero point (defaults to uint8); give an int8 zero point of 0")
        elif zp is None:
            bad.append(f"{where}: zero point is not a constant")
        elif zp.dtype != np.int8:
            bad.append(f"{where}: zero point is {zp.dtype}, TensorRT needs int8")
        elif np.any(zp != 0):
            bad.append(f"{where}: zero point {np.unique(zp)[:4].tolist()} is not 0")
        if node.op_type == "DequantizeLinear" and node.input[0] in consts and consts[node.input[0]].dtype != np.int8:
            # e.g. an int32-quantised bias: onnxruntime runs it, TensorRT's DequantizeLinear takes int8 only.
            bad.append(f"{where}: dequantizes {consts[node.input[0]].dtype} data; TensorRT takes int8 only "
                       "(quantize with QuantizeBias off)")
    if bad:
        return False, _listed(bad) + "; re-quantize with symmetric int8 activations and weights"
    return True, f"{count} Q/DQ nodes, all int8 with zero point 0" if count else "no Q/DQ nodes (float model)"


def _constant_axes(graph, consts: dict[str, np.ndarray]) -> tuple[bool, str]:
    bad = []
    for node in _all_nodes(graph):
        wanted = CONSTANT_INPUTS.get(node.op_type)
        if wanted is None and node.op_type.startswith("Reduce"):
            wanted = ((1, "axes"),)
        for index, what in wanted or ():
            if len(node.input) > index and node.input[index] and node.input[index] not in consts:
                bad.append(f"{node.op_type} {node.name or node.output[0]}: {what} is computed ({node.input[index]})")
    if bad:
        return False, _listed(bad) + "; TensorRT needs them as initializers: export with constant folding and " \
                                     "static shapes"
    return True, "all constant"


def _manifest_for(manifest, path: Path, load_manifest, model_paths):
    from edgeagent.models.manifest import Manifest

    if isinstance(manifest, Manifest):
        return manifest
    if manifest is not None:
        return load_manifest(manifest)[0]
    if model_paths(path)[0].is_file():
        return load_manifest(path)[0]
    return None


def _manifest_matches(man, path: Path, graph) -> tuple[bool, str]:
    from onnx import helper

    from edgeagent.models.manifest import verify_file, verify_registry
    from edgeagent.primitives import registry

    io = {}
    for v in (*graph.input, *graph.output):
        tt = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
        io[v.name] = (np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name, dims)
    try:
        verify_file(man, path, io=io)
        verify_registry(man, registry)
    except EdgeAgentError as exc:
        return False, str(exc)
    return True, f"{man.model_id} ({man.precision}), sha256 and I/O match, primitives registered"


def _session(path: Path):
    import onnxruntime as ort

    from edgeagent.jetson.providers import session_options

    opts = session_options(ort)
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _parity(path: Path, fp32: Path, man, samples: int, seed: int, min_agreement: float,
            max_confidence_diff: float) -> tuple[bool, str, dict]:
    """Same primitive per slot and close confidence between the FP32 model and this one."""
    try:
        quant, ref = _session(path), _session(fp32)
        feeds = list(_parity_feeds(quant, man, samples, seed))
        prim_same, cell_same, cell_total, conf_diff = [], 0, 0, []
        for feed in feeds:
            a = dict(zip([o.name for o in quant.get_outputs()], quant.run(None, feed)))
            b = dict(zip([o.name for o in ref.get_outputs()], ref.run(None, feed)))
            pa, pb = a["prim_logits"][0].argmax(-1), b["prim_logits"][0].argmax(-1)
            prim_same.extend((pa == pb).tolist())
            real = (pa == pb) & (pa != 0)
            ca, cb = a["point_logits"][0].argmax(-1)[real], b["point_logits"][0].argmax(-1)[real]
            cell_same += int((ca == cb).sum())
            cell_total += ca.size
            conf_diff.append(abs(float(a["confidence"].ravel()[0]) - float(b["confidence"].ravel()[0])))
    except EdgeAgentError:
        raise
    except Exception as exc:  # onnxruntime errors: shapes or names that differ between the two files
        return False, f"cannot compare with {fp32}: {exc}", {}
    agreement = float(np.mean(prim_same))
    mean_diff = float(np.mean(conf_diff))
    figures = {"samples": len(feeds), "slot_agreement": round(agreement, 4),
               "point_cell_agreement": round(cell_same / cell_total, 4) if cell_total else None,
               "mean_confidence_diff": round(mean_diff, 4), "max_confidence_diff": round(max(conf_diff), 4)}
    ok = agreement >= min_agreement and mean_diff <= max_confidence_diff
    detail = (f"{len(feeds)} samples: same primitive on {agreement:.1%} of slots (need {min_agreement:.0%}), "
              f"point cell on {figures['point_cell_agreement']}, mean |confidence diff| {mean_diff:.3f} "
              f"(need <= {max_confidence_diff})")
    return ok, detail, figures


def _parity_feeds(sess, man, samples: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Simulator frames + instructions when the manifest is known; random images and UNK tokens otherwise."""
    if man is not None:
        from edgeagent.models.quantize import simulator_feeds

        yield from simulator_feeds(man, samples, seed)
        return
    rng = np.random.default_rng(seed)
    shapes = {i.name: i.shape for i in sess.get_inputs()}
    for _ in range(samples):
        yield {"image": rng.integers(0, 256, shapes["image"], dtype=np.uint8),
               "tokens": np.ones(shapes["tokens"], np.int64)}
