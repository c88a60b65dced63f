"""GPU-only tests: a real TensorRT build and run, and onnxruntime's TensorRT provider.

They need an NVIDIA GPU with TensorRT, cuda-python and onnxruntime-gpu (a Jetson with JetPack 6, or a
CUDA workstation) and are skipped elsewhere with the reason.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime
import pytest

from edgeagent.jetson import OrtBackend, ProviderConfig, TensorRTBackend, create_session, make_backend
from edgeagent.jetson.engine import build_engine, check_build_request


def _cuda_device() -> bool:
    if importlib.util.find_spec("tensorrt") is None or importlib.util.find_spec("cuda") is None:
        return False
    try:
        from edgeagent.jetson.trt_runner import import_cudart

        cudart = import_cudart()
        err, count = cudart.cudaGetDeviceCount()
        return err == cudart.cudaError_t.cudaSuccess and count > 0
    except Exception:
        return False


needs_trt = pytest.mark.skipif(not _cuda_device(),
                               reason="needs TensorRT, cuda-python and an NVIDIA GPU (run on a Jetson or CUDA box)")
needs_trt_ep = pytest.mark.skipif("TensorrtExecutionProvider" not in onnxruntime.get_available_providers(),
                                  reason="needs onnxruntime-gpu with the TensorRT execution provider")

pytestmark = pytest.mark.gpu


@needs_trt
@pytest.mark.parametrize("fixture, fp16", [("tiny_model", False), ("tiny_model", True), ("qdq_model", False)])
def test_native_engine_matches_onnxruntime(request, tmp_path, feeds, fixture, fp16):
    model = request.getfixturevalue(fixture)
    cache = tmp_path / "trt.timing"
    out = build_engine(check_build_request(model, tmp_path / "tiny.engine", fp16=fp16, workspace_mb=256,
                                           timing_cache=cache))
    assert out.stat().st_size > 0 and cache.stat().st_size > 0
    reference = OrtBackend(model, ProviderConfig(order=("cpu",))).run(feeds)
    with TensorRTBackend(out) as backend:
        assert backend.provider == "tensorrt-native"
        assert set(backend.inputs) == {"image", "tokens"} and set(backend.outputs) == {"scaled", "shifted"}
        got = backend.run(feeds)
    np.testing.assert_allclose(got["scaled"].astype(np.float32), reference["scaled"], rtol=1e-2)
    np.testing.assert_array_equal(got["shifted"].astype(np.int64), reference["shifted"])


@needs_trt
def test_make_backend_tensorrt(tiny_model, tmp_path, feeds):
    engine = build_engine(check_build_request(tiny_model, tmp_path / "tiny.engine"))
    backend = make_backend("tensorrt", engine)
    assert backend.provider == "tensorrt-native"
    np.testing.assert_array_equal(backend.run(feeds)["shifted"].astype(np.int64), feeds["tokens"] + 1)


@needs_trt_ep
def test_onnxruntime_tensorrt_provider_runs_and_caches(tiny_model, tmp_path, feeds, monkeypatch):
    monkeypatch.delenv("EDGEAGENT_PROVIDERS", raising=False)
    cfg = ProviderConfig(order=("tensorrt", "cpu"), engine_cache_dir=str(tmp_path / "engines"),
                         timing_cache_dir=str(tmp_path / "timing"), workspace_mb=256)
    session, in_use = create_session(tiny_model, cfg)
    assert in_use == "TensorrtExecutionProvider"
    scaled, _ = session.run(None, feeds)
    np.testing.assert_allclose(scaled, feeds["image"].astype(np.float32) * 2, rtol=1e-2)
    assert any((tmp_path / "engines").iterdir())  # the built engine was cached for the next start
