"""Build a TensorRT engine from the planner's ONNX file: ``edgeagent jetson build-engine``.

Everything before the TensorRT call runs on any machine (``check_build_request``): the model exists and
is ONNX with static shapes, the output folder is writable, the workspace is positive. The build itself
(``build_engine``) parses with TensorRT's ONNX parser (each parser error reported), builds a strongly
typed network for Q/DQ models when TensorRT supports it, reuses and updates a timing cache, and writes
the serialized plan atomically so a crash never leaves a truncated engine behind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgeagent.errors import ConfigError, DependencyMissing, ModelError
from edgeagent.files import write_atomic
from edgeagent.jetson.trt_runner import import_tensorrt

log = logging.getLogger(__name__)

#: Default builder workspace cap (MiB): an Orin Nano shares 8 GB between CPU and GPU.
DEFAULT_WORKSPACE_MB = 1024

_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class BuildRequest:
    """A checked build-engine request: every path and number has been validated."""

    # The ONNX model to build from.
    model: Path
    # Where the serialized engine goes.
    out: Path
    # Allow FP16 kernels (float models on TensorRT < 11; Q/DQ models take their types from the graph).
    fp16: bool
    # Builder workspace cap in MiB.
    workspace_mb: int
    # Timing cache file read before and written after the build, or None.
    timing_cache: Path | None
    # TensorRT builder optimization level 0-5, or None for TensorRT's default.
    optimization_level: int | None
    # Input name -> static shape, as the ONNX graph declares them.
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # True when the graph has QuantizeLinear/DequantizeLinear nodes (explicit INT8).
    has_qdq: bool = False


@dataclass(frozen=True)
class BuildSettings:
    """How to configure TensorRT for one model on one TensorRT version (pure decision, no GPU)."""

    # Create the network with NetworkDefinitionCreationFlag.STRONGLY_TYPED.
    strongly_typed: bool
    # Create it with EXPLICIT_BATCH (required before TensorRT 10, deprecated after).
    explicit_batch: bool
    # Names of trt.BuilderFlag members to set.
    builder_flags: tuple[str, ...]
    # Human-readable notes on choices the user might not expect.
    notes: tuple[str, ...] = ()


def build_settings(has_qdq: bool, fp16: bool, trt_version: tuple[int, ...]) -> BuildSettings:
    """Network flags and builder flags for a model on TensorRT ``trt_version`` (e.g. ``(10, 3, 0)``)."""
    major = trt_version[0] if trt_version else 0
    explicit_batch = major < 10
    if major >= 11:
        # TensorRT 11 builds every network strongly typed and ignores the flag; precision flags are gone.
        note = "TensorRT 11 builds strongly typed: --fp16 has no effect, export an FP16 model instead"
        return BuildSettings(False, False, (), (note,) if fp16 else ())
    if has_qdq and major >= 10:
        # Strongly typed: the Q/DQ nodes fix every tensor's type; precision flags are not allowed.
        notes = ("Q/DQ model: strongly typed network, --fp16 ignored (types come from the graph)",) if fp16 else ()
        return BuildSettings(True, explicit_batch, (), notes)
    if has_qdq:
        flags = ("INT8", "FP16") if fp16 else ("INT8",)
        return BuildSettings(False, explicit_batch, flags,
                             (f"TensorRT {major} has no strongly typed networks: Q/DQ model built with the INT8 flag",))
    return BuildSettings(False, explicit_batch, ("FP16",) if fp16 else ())


def inspect_onnx(path: Path) -> tuple[dict[str, tuple[int, ...]], bool]:
    """The graph's inputs (name -> static shape) and whether it has Q/DQ nodes; ModelError if unusable."""
    try:
        import onnx
    except ImportError as exc:
        raise DependencyMissing(f"checking {path} needs the onnx package ({exc}); pip install onnx") from exc
    try:
        # External weights are not needed to read shapes and node types; TensorRT loads them itself.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, onnx raises its own types
        raise ModelError(f"{path}: not a readable ONNX model ({exc}); pass the .onnx file the exporter wrote") from exc
    graph = model.graph
    if not graph.node:
        raise ModelError(f"{path}: the ONNX graph has no nodes; pass the exported planner model")
    initializers = {init.name for init in graph.initializer}
    inputs = {}
    for value in graph.input:
        if value.name in initializers:  # old exporters list weights as inputs too
            continue
        dims = value.type.tensor_type.shape.dim
        shape = []
        for i, dim in enumerate(dims):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                label = dim.dim_param or "?"
                raise ModelError(f"{path}: input {value.name!r} dimension {i} is dynamic ({label!r}); TensorRT builds "
                                 "this planner without optimization profiles, so export it with static shapes")
            shape.append(int(dim.dim_value))
        inputs[value.name] = tuple(shape)
    if not inputs:
        raise ModelError(f"{path}: the ONNX graph declares no inputs")
    has_qdq = any(node.op_type in _QDQ_OPS for node in graph.node)
    return inputs, has_qdq


def check_build_request(model: str | Path, out: str | Path, *, fp16: bool = False,
                        workspace_mb: int = DEFAULT_WORKSPACE_MB, timing_cache: str | Path | None = None,
                        optimization_level: int | None = None) -> BuildRequest:
    """Validate a build-engine request without touching the GPU; raises ConfigError or ModelError."""
    model, out = Path(model), Path(out)
    if not model.is_file():
        raise ConfigError(f"{model}: model file not found; pass the planner's .onnx file")
    if workspace_mb <= 0:
        raise ConfigError(f"--workspace-mb must be > 0, got {workspace_mb}")
    if optimization_level is not None and not 0 <= optimization_level <= 5:
        raise ConfigError(f"--opt-level must be 0-5, got {optimization_level}")
    if out.resolve() == model.resolve():
        raise ConfigError(f"--out {out} is the model itself; write the engine to another file (e.g. planner.engine)")
    _check_writable(out, "--out")
    cache = Path(timing_cache) if timing_cache is not None else None
    if cache is not None:
        _check_writable(cache, "--timing-cache")
    inputs, has_qdq = inspect_onnx(model)
    return BuildRequest(model, out, fp16, workspace_mb, cache, optimization_level, inputs, has_qdq)


def _check_writable(path: Path, option: str) -> None:
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; give a file name inside it")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: folder {parent} does not exist; create it first (mkdir -p {parent})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: folder {parent} is not writable by this user; choose another folder "
                          "or fix its permissions")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{option} {path} exists but is not readable and writable by this user")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _parser_errors(parser) -> list[str]:
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        # node_name / node_operator exist from TensorRT 8.6 on; node() (an index) everywhere.
        where = [f"node {err.node()}"]
        for attr in ("node_operator", "node_name"):
            getter = getattr(err, attr, None)
            if getter is not None and getter():
                where.append(getter())
        lines.append(f"  {' '.join(where)}: {err.desc()} [{err.code()}]")
    return lines


def build_engine(request: BuildRequest) -> Path:
    """Build and write the engine for a checked request; needs TensorRT and a GPU. Returns ``request.out``."""
    trt = import_tensorrt()
    settings = build_settings(request.has_qdq, request.fp16, _version_tuple(trt.__version__))
    for note in settings.notes:
        log.warning("%s", note)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if settings.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    if settings.explicit_batch:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file (not parse(bytes)) so weights stored beside the model are found.
    if not parser.parse_from_file(str(request.model)):
        details = "\n".join(_parser_errors(parser)) or "  (no details)"
        raise ModelError(f"{request.model}: TensorRT {trt.__version__}'s ONNX parser rejected the model:\n{details}\n"
                         "Check the opset (17) and that every op is supported by this TensorRT version")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace_mb * 1024 * 1024)
    for name in settings.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if request.optimization_level is not None:
        config.builder_optimization_level = request.optimization_level
    if request.timing_cache is not None:
        blob = request.timing_cache.read_bytes() if request.timing_cache.is_file() else b""
        cache = config.create_timing_cache(blob)
        # A cache from another GPU or TensorRT version is rejected rather than trusted.
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            log.warning("%s: timing cache does not match this GPU/TensorRT; starting a fresh one",
                        request.timing_cache)
            config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    log.info("building %s from %s (TensorRT %s, workspace %d MiB, flags %s%s)", request.out, request.model,
             trt.__version__, request.workspace_mb, ",".join(settings.builder_flags) or "none",
             ", strongly typed" if settings.strongly_typed else "")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(f"{request.model}: TensorRT could not build an engine (see the TensorRT messages above); "
                         "a larger --workspace-mb or a lower --opt-level can help on a small board")
    write_atomic(request.out, memoryview(plan))
    if request.timing_cache is not None:
        write_atomic(request.timing_cache, memoryview(config.get_timing_cache().serialize()))
    log.info("wrote %s (%.1f MB)", request.out, request.out.stat().st_size / 1e6)
    return request.out
