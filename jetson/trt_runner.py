"""Run a serialized TensorRT engine natively (no onnxruntime): the ``tensorrt`` engine choice.

``TensorRTBackend`` meets the same backend protocol as ``providers.OrtBackend`` (``provider`` and
``run(feeds) -> outputs``), so the model runtime's pre- and post-processing are shared. Device memory
and the stream come from cuda-python; ``tensorrt`` and ``cuda`` are imported inside the constructor so
this module imports anywhere.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgeagent.errors import DependencyMissing, ModelError

log = logging.getLogger(__name__)

TENSORRT_INSTALL = ("on a Jetson: sudo apt install python3-libnvinfer (JetPack's TensorRT), then create the venv with "
                    "--system-site-packages so it sees it (jetson/README.md); on x86: pip install tensorrt")
CUDA_PYTHON_INSTALL = ("pip install 'cuda-python>=12,<13' (match the CUDA major version: JetPack 6 has CUDA 12)")


def import_tensorrt():
    """The ``tensorrt`` module, or DependencyMissing saying how to install it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise DependencyMissing(f"the TensorRT Python bindings are not importable ({exc}); {TENSORRT_INSTALL}") from exc
    except OSError as exc:  # the bindings exist but libnvinfer.so does not load
        raise DependencyMissing(f"the TensorRT libraries do not load ({exc}); reinstall JetPack's TensorRT "
                                f"(sudo apt install --reinstall tensorrt python3-libnvinfer)") from exc
    return tensorrt


def import_cudart():
    """cuda-python's CUDA runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""
    try:
        from cuda.bindings import runtime
        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart
    except ImportError as exc:
        raise DependencyMissing(f"cuda-python is not installed ({exc}); {CUDA_PYTHON_INSTALL}") from exc
    return cudart


def _check(cudart, result, what: str):
    """Unpack a cuda-python call's ``(err, *values)`` tuple, raising ModelError on a CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(err)
        raise ModelError(f"CUDA {what} failed: {name.decode() if isinstance(name, bytes) else name}; check that the "
                         "GPU is visible (`edgeagent jetson check`) and not out of memory (tegrastats)")
    return values[0] if len(values) == 1 else values


class TensorRTBackend:
    """Runs a TensorRT engine file built by ``edgeagent jetson build-engine`` on this board.

    One device buffer per I/O tensor (by name, static shapes), one stream; ``run`` copies the inputs up,
    calls ``execute_async_v3`` and copies the outputs back. Engines are specific to the TensorRT version
    and GPU that built them. ``provider`` is ``"tensorrt-native"``.
    """

    provider = "tensorrt-native"

    def __init__(self, engine_path: str | Path):
        trt = import_tensorrt()
        cudart = import_cudart()
        self.engine_path = Path(engine_path)
        if not self.engine_path.is_file():
            raise ModelError(f"{self.engine_path}: engine file not found; build it on this board with "
                             "`edgeagent jetson build-engine MODEL.onnx --out ENGINE`")
        self._cudart = cudart
        self._buffers: dict[str, int] = {}
        self._stream = None
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise ModelError(f"{self.engine_path}: TensorRT {trt.__version__} could not deserialize the engine "
                             "(built by another TensorRT version or for another GPU?); rebuild it on this board "
                             "with `edgeagent jetson build-engine`")
        self.context = self.engine.create_execution_context()
        self.inputs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._outputs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        try:
            self._allocate(trt)
        except BaseException:
            self.close()
            raise
        self.outputs = list(self._outputs)
        log.info("%s: TensorRT %s engine, inputs %s, outputs %s", self.engine_path.name, trt.__version__,
                 {k: v[0] for k, v in self.inputs.items()}, self.outputs)

    def _allocate(self, trt) -> None:
        cudart = self._cudart
        self._stream = _check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            if any(d < 0 for d in shape):
                raise ModelError(f"{self.engine_path}: tensor {name!r} has a dynamic shape {list(shape)}; the model "
                                 "contract needs static shapes (re-export the ONNX with fixed sizes)")
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self._outputs)[name] = (shape, dtype)
            nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
            ptr = _check(cudart, cudart.cudaMalloc(nbytes), f"cudaMalloc({nbytes}) for {name!r}")
            self._buffers[name] = int(ptr)
            self.context.set_tensor_address(name, int(ptr))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One forward pass: output name -> array (fresh host arrays the caller may keep)."""
        cudart = self._cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        hosts = []  # keep the converted inputs alive until the stream has consumed them
        for name, (shape, dtype) in self.inputs.items():
            if name not in feeds:
                raise ModelError(f"{self.engine_path.name}: missing input {name!r}; the engine takes "
                                 f"{', '.join(self.inputs)}")
            # TensorRT < 10 turns int64 inputs into int32; the cast is exact for token ids.
            host = np.ascontiguousarray(feeds[name], dtype=dtype)
            if host.shape != shape:
                raise ModelError(f"{self.engine_path.name}: input {name!r} has shape {host.shape}, the engine "
                                 f"was built for {shape}")
            hosts.append(host)
            _check(cudart, cudart.cudaMemcpyAsync(self._buffers[name], host.ctypes.data, host.nbytes, h2d,
                                                  self._stream), f"copy of {name!r} to the GPU")
        if not self.context.execute_async_v3(int(self._stream)):
            raise ModelError(f"{self.engine_path.name}: TensorRT execute_async_v3 failed (see the TensorRT log)")
        results = {}
        for name, (shape, dtype) in self._outputs.items():
            out = np.empty(shape, dtype)
            _check(cudart, cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name], out.nbytes, d2h,
                                                  self._stream), f"copy of {name!r} from the GPU")
            results[name] = out
        _check(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return results

    def close(self) -> None:
        """Free the device buffers and the stream (idempotent)."""
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(ptr)
        self._buffers = {}
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __enter__(self) -> "TensorRTBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: CUDA may already be gone
            pass

    def __repr__(self) -> str:
        return f"TensorRTBackend({str(self.engine_path)!r})"
