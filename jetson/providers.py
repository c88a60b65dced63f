"""onnxruntime execution providers: TensorRT -> CUDA -> CPU, one override, the fallback logged.

onnxruntime silently falls back to the CPU when a GPU provider cannot start (missing libnvinfer, wrong
CUDA), so after creating a session we read ``session.get_providers()[0]`` and say which provider
actually runs. ``OrtBackend`` wraps that session in the backend protocol the model runtime uses::

    backend.provider: str                                   # e.g. "TensorrtExecutionProvider"
    backend.run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]

``EDGEAGENT_PROVIDERS=cpu`` (or ``tensorrt,cpu``) overrides the configured order; it is a debug switch.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgeagent.errors import ConfigError, DependencyMissing, ModelError

log = logging.getLogger(__name__)

#: Environment variable overriding ``ProviderConfig.order`` (comma-separated short names).
PROVIDERS_ENV = "EDGEAGENT_PROVIDERS"

#: Short name -> onnxruntime provider name.
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}

#: What to run when onnxruntime lacks the GPU providers (the Jetson index serves JetPack 6 / CUDA 12.6).
ORT_GPU_INSTALL = ("pip uninstall -y onnxruntime && pip install onnxruntime-gpu "
                   "--index-url https://pypi.jetson-ai-lab.io/jp6/cu126 (on a Jetson; see jetson/README.md), "
                   "or pip install onnxruntime-gpu on an x86 workstation with CUDA 12")


@dataclass(frozen=True)
class ProviderConfig:
    """How onnxruntime should run a model: which providers to try, in order, and their options."""

    # Providers to try, first that starts wins: any of "tensorrt", "cuda", "cpu". Ones the installed
    # onnxruntime lacks are skipped with a log line. EDGEAGENT_PROVIDERS overrides this (debug switch).
    order: tuple[str, ...] = ("tensorrt", "cuda", "cpu")
    # Let TensorRT choose FP16 kernels where they are faster (Orin GPUs run FP16 at twice the FP32 rate).
    fp16: bool = True
    # Enable INT8 in TensorRT. Needed for Q/DQ-quantized models: TensorRT then takes the scales from the
    # graph (no calibration table). Leave off for float models.
    int8: bool = False
    # Where the TensorRT provider keeps built engines, so only the first start pays for a build
    # (minutes on an Orin Nano). "~" expands to the service user's home. None disables the cache.
    engine_cache_dir: str | None = "~/.cache/edgeagent/trt-engines"
    # Where the TensorRT provider keeps its timing cache (speeds up rebuilds after a model update).
    timing_cache_dir: str | None = "~/.cache/edgeagent/trt-timing"
    # Cap on TensorRT's builder workspace in MiB. An Orin Nano shares 8 GB between CPU and GPU, and the
    # OS, camera and service need most of it; 1 GiB is plenty for the planner's layers.
    workspace_mb: int = 1024
    # TensorRT builder optimization level 0-5: higher searches longer for faster kernels (3 is
    # TensorRT's default; the build happens once thanks to the engine cache).
    builder_optimization_level: int = 3
    # CUDA device index (always 0 on a Jetson).
    device_id: int = 0

    def __post_init__(self):
        # ValueError so config.from_mapping reports it with the file and section.
        unknown = [name for name in self.order if name not in PROVIDER_NAMES]
        if unknown or not self.order:
            raise ValueError(f"order: unknown provider {unknown[0] if unknown else '(empty list)'!r}; "
                             f"use some of {', '.join(PROVIDER_NAMES)}")
        if self.workspace_mb <= 0:
            raise ValueError(f"workspace_mb must be > 0, got {self.workspace_mb}")
        if not 0 <= self.builder_optimization_level <= 5:
            raise ValueError(f"builder_optimization_level must be 0-5, got {self.builder_optimization_level}")
        if self.device_id < 0:
            raise ValueError(f"device_id must be >= 0, got {self.device_id}")


def effective_order(cfg: ProviderConfig, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The provider order to use: ``cfg.order`` unless EDGEAGENT_PROVIDERS overrides it."""
    environ = os.environ if environ is None else environ
    raw = environ.get(PROVIDERS_ENV, "").strip()
    if not raw:
        return cfg.order
    names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    bad = [n for n in names if n not in PROVIDER_NAMES]
    if bad or not names:
        raise ConfigError(f"{PROVIDERS_ENV}={raw!r}: unknown provider {bad[0] if bad else '(empty)'!r}; "
                          f"use a comma-separated list of {', '.join(PROVIDER_NAMES)}, e.g. tensorrt,cpu")
    log.info("%s=%s overrides the configured provider order %s", PROVIDERS_ENV, raw, ",".join(cfg.order))
    return names


def _expand(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser())


def _flag(value: bool) -> str:
    # onnxruntime's Python binding accepts only the strings "True"/"False" for TensorRT's bool options.
    return "True" if value else "False"


def _tensorrt_options(cfg: ProviderConfig) -> dict[str, str]:
    engine_dir, timing_dir = _expand(cfg.engine_cache_dir), _expand(cfg.timing_cache_dir)
    options = {
        "device_id": str(cfg.device_id),
        "trt_fp16_enable": _flag(cfg.fp16),
        "trt_int8_enable": _flag(cfg.int8),
        "trt_max_workspace_size": str(cfg.workspace_mb * 1024 * 1024),
        "trt_builder_optimization_level": str(cfg.builder_optimization_level),
        "trt_engine_cache_enable": _flag(engine_dir is not None),
        "trt_timing_cache_enable": _flag(timing_dir is not None),
    }
    if engine_dir is not None:
        options["trt_engine_cache_path"] = engine_dir
    if timing_dir is not None:
        options["trt_timing_cache_path"] = timing_dir
    return options


def _cuda_options(cfg: ProviderConfig) -> dict[str, str]:
    return {"device_id": str(cfg.device_id)}


def _cpu_options(cfg: ProviderConfig) -> dict[str, str]:
    return {}


_OPTIONS = {"tensorrt": _tensorrt_options, "cuda": _cuda_options, "cpu": _cpu_options}


def provider_list(cfg: ProviderConfig, available: list[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> list[tuple[str, dict[str, str]]]:
    """onnxruntime ``providers`` argument for ``cfg``: ``[(name, options), ...]`` in order.

    Providers missing from ``available`` (default: ``onnxruntime.get_available_providers()``) are
    skipped with a logged note. Raises DependencyMissing when none of the requested ones is available.
    """
    order = effective_order(cfg, environ)
    if available is None:
        available = _ort().get_available_providers()
    result = []
    for short in order:
        name = PROVIDER_NAMES[short]
        if name not in available:
            log.info("skipping %s: not in this onnxruntime build (available: %s)", name, ", ".join(available))
            continue
        result.append((name, _OPTIONS[short](cfg)))
    if not result:
        raise DependencyMissing(
            f"none of the requested execution providers ({', '.join(PROVIDER_NAMES[s] for s in order)}) is in "
            f"this onnxruntime build (it has {', '.join(available)}). Install one that has them: "
            f"{ORT_GPU_INSTALL}; or add 'cpu' to the provider order")
    return result


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise DependencyMissing(f"onnxruntime is not installed ({exc}); pip install onnxruntime "
                                f"(x86) or {ORT_GPU_INSTALL}") from exc
    return onnxruntime


def session_options(ort: Any = None):
    """``onnxruntime.SessionOptions`` for every session of a planner model.

    Where onnxruntime's fused INT8 CPU kernels saturate (x86 without VNNI, ``cpu.int8_kernels_saturate``)
    its Q/DQ fusion is turned off: an INT8 model then computes what its graph says (weights dequantized,
    float arithmetic; measured no slower there) instead of wrong sums. FP32 models have no Q/DQ nodes
    and are unaffected; TensorRT and CUDA take the Q/DQ graph themselves.
    """
    from edgeagent.cpu import int8_kernels_saturate

    global _SAID_UNFUSED
    ort = ort or _ort()
    opts = ort.SessionOptions()
    if int8_kernels_saturate():
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        if not _SAID_UNFUSED:
            _SAID_UNFUSED = True
            log.info("this x86 CPU has no VNNI, where onnxruntime's fused INT8 kernels saturate: "
                     "INT8 models run with Q/DQ fusion off")
    return opts


_SAID_UNFUSED = False


def create_session(model_path: str | Path, cfg: ProviderConfig | None = None, *,
                   environ: Mapping[str, str] | None = None, available: list[str] | None = None) -> tuple[Any, str]:
    """An ``onnxruntime.InferenceSession`` for ``model_path`` and the provider that actually runs it.

    Tries the provider list from ``provider_list``; if session creation fails it drops the first
    provider and tries again, so a broken TensorRT install still leaves CUDA or the CPU. Logs the
    provider in use, and warns when a GPU provider was requested and offered but the CPU runs the model
    (or, on a Jetson, when onnxruntime has no GPU provider at all). When nothing works, raises ModelError
    carrying the first real error and the install command. ``available`` is passed to ``provider_list``.
    """
    cfg = cfg or ProviderConfig()
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found; check the path (or the model folder in the config)")
    ort = _ort()
    providers = provider_list(cfg, available, environ)
    _make_cache_dirs(providers)
    errors: list[tuple[str, Exception]] = []
    session = None
    for start in range(len(providers)):
        attempt = providers[start:]
        try:
            session = ort.InferenceSession(str(model_path), session_options(ort), providers=attempt)
            break
        except Exception as exc:  # onnxruntime raises several unrelated pybind exception types
            errors.append((attempt[0][0], exc))
            log.warning("%s: %s could not start (%s); trying %s", model_path.name, attempt[0][0],
                        _first_line(exc), ", ".join(p[0] for p in attempt[1:]) or "nothing else")
    if session is None:
        failed_name, first = errors[0]
        hint = f" To run on the GPU: {ORT_GPU_INSTALL}." if failed_name != PROVIDER_NAMES["cpu"] else ""
        raise ModelError(f"{model_path}: onnxruntime could not create a session with any of "
                         f"{', '.join(p[0] for p in providers)}; first error ({failed_name}): {_first_line(first)}."
                         f"{hint} If the CPU failed too, the model file itself is broken: re-export it.") from first
    in_use = session.get_providers()[0]
    _report(model_path.name, in_use, providers, effective_order(cfg, environ))
    return session, in_use


def on_jetson() -> bool:
    """Whether this machine runs Jetson Linux (L4T), where a GPU provider is expected to work."""
    return Path("/etc/nv_tegra_release").exists()


def _report(model: str, in_use: str, tried: list[tuple[str, dict[str, str]]], order: tuple[str, ...]) -> None:
    cpu = PROVIDER_NAMES["cpu"]
    offered_gpu = [name for name, _ in tried if name != cpu]
    wanted_gpu = [PROVIDER_NAMES[s] for s in order if s != "cpu"]
    if in_use == cpu and offered_gpu:
        # The build has the GPU provider but it did not start: the silent fallback this check exists for.
        log.warning("%s runs on the CPU although it asked for %s: onnxruntime fell back (check CUDA/TensorRT "
                    "with `edgeagent jetson check`)", model, " and ".join(offered_gpu))
    elif in_use == cpu and wanted_gpu and on_jetson():
        # On a board, a CPU-only onnxruntime is a deployment mistake; on a PC it is the normal case.
        log.warning("%s runs on the CPU: this onnxruntime has no %s. Install the GPU build: %s", model,
                    " or ".join(wanted_gpu), ORT_GPU_INSTALL)
    else:
        log.info("%s runs on %s", model, in_use)


def _make_cache_dirs(providers: list[tuple[str, dict[str, str]]]) -> None:
    for _, options in providers:
        for key in ("trt_engine_cache_path", "trt_timing_cache_path"):
            if key in options:
                try:
                    Path(options[key]).mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(f"{key} {options[key]}: cannot create the cache directory ({exc.strerror}); "
                                      "set engine_cache_dir / timing_cache_dir to a writable folder") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def input_feeds(session_or_backend: Any) -> dict[str, np.ndarray]:
    """Zero-filled feeds matching a session's (or backend's) static input shapes, for warm-up."""
    specs = getattr(session_or_backend, "inputs", None)
    if isinstance(specs, dict):  # a backend: name -> (shape, dtype)
        return {name: np.zeros(shape, dtype) for name, (shape, dtype) in specs.items()}
    return {i.name: np.zeros(_static_shape(i), _ORT_TYPES.get(i.type, np.float32))
            for i in session_or_backend.get_inputs()}


#: onnxruntime's type strings -> numpy dtypes (the ones a planner can take as input).
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
              "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def _static_shape(node_arg) -> tuple[int, ...]:
    shape = tuple(node_arg.shape)
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelError(f"input {node_arg.name!r} has a dynamic shape {list(shape)}; the model contract needs "
                         "static shapes (re-export with fixed sizes)")
    return shape


def warm_up(session: Any, feeds: dict[str, np.ndarray] | None = None, runs: int = 3) -> list[float]:
    """Run ``session`` ``runs`` times so engine builds and allocations happen now, not in a request.

    ``session`` is an ``onnxruntime.InferenceSession`` or a backend (anything with ``provider`` and
    ``run(feeds)``); ``feeds`` defaults to zeros of the input shapes. Returns each run's latency in ms
    (the first one includes the TensorRT engine build, or the cache load).
    """
    feeds = input_feeds(session) if feeds is None else feeds
    # A backend's run takes only the feeds; an InferenceSession's takes output names first.
    run = session.run if hasattr(session, "provider") else (lambda f: session.run(None, f))
    latencies = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        run(feeds)
        latencies.append((time.perf_counter() - t0) * 1e3)
    log.info("warm-up: %d runs, first %.1f ms, last %.1f ms", len(latencies), latencies[0], latencies[-1])
    return latencies


class OrtBackend:
    """Runs an ONNX model with onnxruntime on the best available provider (see ``create_session``).

    ``provider`` is the provider actually in use; ``inputs`` maps input name -> (shape, dtype);
    ``outputs`` lists output names in graph order.
    """

    def __init__(self, model_path: str | Path, cfg: ProviderConfig | None = None):
        self.model_path = Path(model_path)
        self.session, self.provider = create_session(self.model_path, cfg or ProviderConfig())
        self.inputs = {i.name: (_static_shape(i), np.dtype(_ORT_TYPES.get(i.type, np.float32)))
                       for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One forward pass: output name -> array."""
        missing = [name for name in self.inputs if name not in feeds]
        if missing:
            raise ModelError(f"{self.model_path.name}: missing input(s) {', '.join(missing)}; the model takes "
                             f"{', '.join(self.inputs)}")
        values = self.session.run(self.outputs, {name: feeds[name] for name in self.inputs})
        return dict(zip(self.outputs, values))

    def __repr__(self) -> str:
        return f"OrtBackend({str(self.model_path)!r}, provider={self.provider!r})"
