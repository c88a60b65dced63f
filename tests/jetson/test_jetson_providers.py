"""Provider lists, sessions, warm-up and backends on the real onnxruntime (CPU here)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from edgeagent.config import from_mapping
from edgeagent.errors import ConfigError, DependencyMissing, ModelError
from edgeagent.jetson import Backend, OrtBackend, ProviderConfig, create_session, make_backend, provider_list, warm_up
from edgeagent.jetson.providers import PROVIDERS_ENV, input_feeds, on_jetson

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
CPU_ONLY = ["AzureExecutionProvider", "CPUExecutionProvider"]
GPU_PRESENT = {"TensorrtExecutionProvider", "CUDAExecutionProvider"} & set(onnxruntime.get_available_providers())


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(PROVIDERS_ENV, raising=False)


def test_default_order_and_tensorrt_options():
    providers = provider_list(ProviderConfig(), available=ALL)
    assert [name for name, _ in providers] == ALL
    trt = providers[0][1]
    assert trt["trt_fp16_enable"] == "True" and trt["trt_int8_enable"] == "False"
    assert trt["trt_max_workspace_size"] == str(1024 * 1024 * 1024)
    assert trt["trt_builder_optimization_level"] == "3"
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_timing_cache_enable"] == "True"
    # "~" is expanded: onnxruntime would create a literal "~" folder otherwise.
    assert Path(trt["trt_engine_cache_path"]).is_absolute() and "~" not in trt["trt_engine_cache_path"]
    assert Path(trt["trt_timing_cache_path"]).is_absolute()
    assert providers[1] == ("CUDAExecutionProvider", {"device_id": "0"})
    assert providers[2] == ("CPUExecutionProvider", {})


def test_options_follow_the_config(tmp_path):
    cfg = ProviderConfig(fp16=False, int8=True, engine_cache_dir=None, timing_cache_dir=str(tmp_path / "t"),
                         workspace_mb=256, builder_optimization_level=5, device_id=1)
    trt = dict(provider_list(cfg, available=ALL))["TensorrtExecutionProvider"]
    assert trt["trt_fp16_enable"] == "False" and trt["trt_int8_enable"] == "True"
    assert trt["trt_engine_cache_enable"] == "False" and "trt_engine_cache_path" not in trt
    assert trt["trt_timing_cache_path"] == str(tmp_path / "t")
    assert trt["trt_max_workspace_size"] == str(256 * 1024 * 1024)
    assert trt["trt_builder_optimization_level"] == "5" and trt["device_id"] == "1"


def test_unavailable_providers_are_skipped_with_a_note(caplog):
    with caplog.at_level(logging.INFO, logger="edgeagent.jetson.providers"):
        providers = provider_list(ProviderConfig(), available=CPU_ONLY)
    assert providers == [("CPUExecutionProvider", {})]
    notes = " ".join(r.getMessage() for r in caplog.records)
    assert "skipping TensorrtExecutionProvider" in notes and "skipping CUDAExecutionProvider" in notes


def test_nothing_available_names_the_install_command():
    with pytest.raises(DependencyMissing, match="onnxruntime-gpu"):
        provider_list(ProviderConfig(order=("tensorrt", "cuda")), available=CPU_ONLY)


@pytest.mark.parametrize("value, expected", [
    ("cpu", ["CPUExecutionProvider"]),
    ("tensorrt,cpu", ["TensorrtExecutionProvider", "CPUExecutionProvider"]),
    (" CUDA , cpu ", ["CUDAExecutionProvider", "CPUExecutionProvider"]),
])
def test_environment_overrides_the_order(monkeypatch, value, expected):
    monkeypatch.setenv(PROVIDERS_ENV, value)
    assert [name for name, _ in provider_list(ProviderConfig(), available=ALL)] == expected


def test_bad_environment_override_names_the_variable(monkeypatch):
    monkeypatch.setenv(PROVIDERS_ENV, "tensorrt,gpu")
    with pytest.raises(ConfigError, match=f"{PROVIDERS_ENV}.*'gpu'"):
        provider_list(ProviderConfig(), available=ALL)


def test_config_validation_and_yaml_loading():
    with pytest.raises(ValueError, match="unknown provider 'rocm'"):
        ProviderConfig(order=("rocm", "cpu"))
    with pytest.raises(ValueError, match="workspace_mb"):
        ProviderConfig(workspace_mb=0)
    with pytest.raises(ValueError, match="builder_optimization_level"):
        ProviderConfig(builder_optimization_level=6)
    cfg = from_mapping(ProviderConfig, {"order": ["cuda", "cpu"], "workspace_mb": 512}, "robot.yaml: providers")
    assert cfg.order == ("cuda", "cpu") and cfg.workspace_mb == 512
    with pytest.raises(ConfigError, match="robot.yaml: providers.*'fp32'"):
        from_mapping(ProviderConfig, {"fp32": True}, "robot.yaml: providers")
    with pytest.raises(ConfigError, match="robot.yaml: providers.*workspace_mb"):
        from_mapping(ProviderConfig, {"workspace_mb": -1}, "robot.yaml: providers")


def test_create_session_reports_the_provider_that_runs(tiny_model, tmp_path):
    cfg = ProviderConfig(order=("cpu",))
    session, in_use = create_session(tiny_model, cfg)
    assert in_use == "CPUExecutionProvider" == session.get_providers()[0]


@pytest.mark.skipif(bool(GPU_PRESENT), reason="this onnxruntime really has GPU providers: no fallback to provoke")
@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_silent_fallback_to_cpu_is_warned(tiny_model, tmp_path, caplog):
    # Claim the GPU providers are there: this CPU-only onnxruntime then drops them with only a Python
    # warning, as a GPU build does when TensorRT or CUDA cannot start. The check must notice.
    cfg = ProviderConfig(engine_cache_dir=str(tmp_path / "e"), timing_cache_dir=str(tmp_path / "t"))
    with caplog.at_level(logging.WARNING, logger="edgeagent.jetson.providers"):
        _, in_use = create_session(tiny_model, cfg, available=ALL)
    assert in_use == "CPUExecutionProvider"
    assert (tmp_path / "e").is_dir() and (tmp_path / "t").is_dir()  # cache folders exist before TensorRT needs them
    assert any("runs on the CPU although it asked for TensorrtExecutionProvider and CUDAExecutionProvider"
               in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.skipif(bool(GPU_PRESENT) or on_jetson(), reason="needs a CPU-only onnxruntime off a Jetson")
def test_cpu_only_build_on_a_pc_is_not_a_warning(tiny_model, caplog):
    with caplog.at_level(logging.INFO, logger="edgeagent.jetson.providers"):
        _, in_use = create_session(tiny_model, ProviderConfig())
    assert in_use == "CPUExecutionProvider"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cpu_by_choice_is_not_warned(tiny_model, monkeypatch, caplog):
    monkeypatch.setenv(PROVIDERS_ENV, "cpu")
    with caplog.at_level(logging.INFO, logger="edgeagent.jetson.providers"):
        _, in_use = create_session(tiny_model, ProviderConfig())
    assert in_use == "CPUExecutionProvider"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("runs on CPUExecutionProvider" in r.getMessage() for r in caplog.records)


def test_missing_and_broken_models_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        create_session(tmp_path / "absent.onnx", ProviderConfig(order=("cpu",)))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match=r"broken.onnx.*first error \(CPUExecutionProvider\)") as info:
        create_session(broken, ProviderConfig(order=("cpu",)))
    assert info.value.__cause__ is not None  # the original onnxruntime error is kept


def test_ort_backend_runs_the_model(tiny_model, feeds):
    backend = OrtBackend(tiny_model, ProviderConfig(order=("cpu",)))
    assert isinstance(backend, Backend)
    assert backend.provider == "CPUExecutionProvider"
    assert backend.outputs == ["scaled", "shifted"]
    assert backend.inputs == {"image": ((1, 8, 8, 3), np.dtype(np.uint8)), "tokens": ((1, 4), np.dtype(np.int64))}
    out = backend.run(feeds)
    np.testing.assert_array_equal(out["scaled"], feeds["image"].astype(np.float32) * 2)
    np.testing.assert_array_equal(out["shifted"], feeds["tokens"] + 1)
    with pytest.raises(ModelError, match="missing input.*tokens"):
        backend.run({"image": feeds["image"]})


def test_ort_backend_refuses_dynamic_shapes(dynamic_model):
    with pytest.raises(ModelError, match="'image' has a dynamic shape"):
        OrtBackend(dynamic_model, ProviderConfig(order=("cpu",)))


def test_warm_up_runs_sessions_and_backends(tiny_model, feeds):
    session, _ = create_session(tiny_model, ProviderConfig(order=("cpu",)))
    zeros = input_feeds(session)
    assert {k: (v.shape, v.dtype) for k, v in zeros.items()} == {
        "image": ((1, 8, 8, 3), np.uint8), "tokens": ((1, 4), np.int64)}
    assert len(warm_up(session, feeds, runs=3)) == 3
    backend = OrtBackend(tiny_model, ProviderConfig(order=("cpu",)))
    latencies = warm_up(backend, runs=2)  # feeds default to zeros of the input shapes
    assert len(latencies) == 2 and all(ms >= 0 for ms in latencies)


def test_make_backend_looks_up_the_engine(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv(PROVIDERS_ENV, "cpu")
    assert isinstance(make_backend("onnxruntime", tiny_model), OrtBackend)
    with pytest.raises(ConfigError, match="unknown engine 'tflite'.*onnxruntime, tensorrt"):
        make_backend("tflite", tiny_model)
