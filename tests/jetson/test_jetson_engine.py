"""build-engine: argument checks and build decisions that run without a GPU; missing-dependency errors."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from edgeagent.cli import main
from edgeagent.errors import ConfigError, DependencyMissing, ModelError
from edgeagent.jetson.engine import BuildRequest, build_engine, build_settings, check_build_request
from edgeagent.jetson.trt_runner import TensorRTBackend, import_cudart

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
HAS_CUDA_PYTHON = importlib.util.find_spec("cuda") is not None


def test_valid_request_reads_shapes(tiny_model, tmp_path):
    req = check_build_request(tiny_model, tmp_path / "planner.engine", fp16=True, workspace_mb=512,
                              timing_cache=tmp_path / "trt.timing", optimization_level=4)
    assert isinstance(req, BuildRequest)
    assert req.inputs == {"image": (1, 8, 8, 3), "tokens": (1, 4)}
    assert not req.has_qdq
    assert (req.fp16, req.workspace_mb, req.optimization_level) == (True, 512, 4)
    assert req.timing_cache == tmp_path / "trt.timing"


def test_qdq_models_are_detected(qdq_model, tmp_path):
    assert check_build_request(qdq_model, tmp_path / "q.engine").has_qdq


@pytest.mark.parametrize("kwargs, message", [
    ({"workspace_mb": 0}, "--workspace-mb must be > 0"),
    ({"workspace_mb": -64}, "--workspace-mb must be > 0"),
    ({"optimization_level": 7}, "--opt-level must be 0-5"),
])
def test_bad_numbers_are_refused(tiny_model, tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        check_build_request(tiny_model, tmp_path / "x.engine", **kwargs)


def test_bad_paths_are_refused(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="model file not found"):
        check_build_request(tmp_path / "absent.onnx", tmp_path / "x.engine")
    with pytest.raises(ConfigError, match="does not exist; create it first"):
        check_build_request(tiny_model, tmp_path / "no" / "such" / "x.engine")
    with pytest.raises(ConfigError, match="is a directory"):
        check_build_request(tiny_model, tmp_path)
    with pytest.raises(ConfigError, match="is the model itself"):
        check_build_request(tiny_model, tiny_model)
    with pytest.raises(ConfigError, match="--timing-cache.*does not exist"):
        check_build_request(tiny_model, tmp_path / "x.engine", timing_cache=tmp_path / "nope" / "c.timing")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere: no unwritable folder to test with")
def test_unwritable_output_folder_is_refused(tiny_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="not writable"):
        check_build_request(tiny_model, locked / "x.engine")


def test_non_onnx_and_dynamic_models_are_refused(tmp_path, dynamic_model):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    with pytest.raises(ModelError, match="junk.onnx"):
        check_build_request(junk, tmp_path / "x.engine")
    with pytest.raises(ModelError, match=r"input 'image' dimension 0 is dynamic \('batch'\)"):
        check_build_request(dynamic_model, tmp_path / "x.engine")


@pytest.mark.parametrize("has_qdq, fp16, version, strongly, explicit, flags", [
    (False, False, (8, 6, 2), False, True, ()),
    (False, True, (8, 6, 2), False, True, ("FP16",)),
    (False, True, (10, 3, 0), False, False, ("FP16",)),
    (True, False, (10, 3, 0), True, False, ()),
    (True, True, (10, 3, 0), True, False, ()),         # strongly typed forbids precision flags
    (True, False, (8, 6, 2), False, True, ("INT8",)),  # no strongly typed networks before 10
    (True, True, (8, 6, 2), False, True, ("INT8", "FP16")),
    (False, True, (11, 0), False, False, ()),          # TensorRT 11: always strongly typed
])
def test_build_settings(has_qdq, fp16, version, strongly, explicit, flags):
    s = build_settings(has_qdq, fp16, version)
    assert (s.strongly_typed, s.explicit_batch, s.builder_flags) == (strongly, explicit, flags)


def test_ignored_fp16_is_explained():
    assert any("--fp16 ignored" in n for n in build_settings(True, True, (10, 3)).notes)
    assert any("no effect" in n for n in build_settings(False, True, (11, 0)).notes)
    assert build_settings(False, True, (10, 3)).notes == ()


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here: the missing-dependency path cannot occur")
def test_build_without_tensorrt_says_what_to_install(tiny_model, tmp_path):
    req = check_build_request(tiny_model, tmp_path / "x.engine")
    with pytest.raises(DependencyMissing, match="python3-libnvinfer.*--system-site-packages"):
        build_engine(req)
    assert not (tmp_path / "x.engine").exists()


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here: the missing-dependency path cannot occur")
def test_native_backend_without_tensorrt_says_what_to_install(tmp_path):
    engine = tmp_path / "planner.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(DependencyMissing, match="python3-libnvinfer"):
        TensorRTBackend(engine)


@pytest.mark.skipif(HAS_CUDA_PYTHON, reason="cuda-python is installed here: the missing-dependency path cannot occur")
def test_missing_cuda_python_says_what_to_install():
    with pytest.raises(DependencyMissing, match="pip install 'cuda-python"):
        import_cudart()


def test_cli_reports_argument_errors(tiny_model, tmp_path, capsys):
    rc = main(["jetson", "build-engine", tiny_model, "--out", str(tmp_path / "x.engine"), "--workspace-mb", "0"])
    assert rc == 2
    assert "--workspace-mb must be > 0" in capsys.readouterr().err
    rc = main(["jetson", "build-engine", str(tmp_path / "absent.onnx"), "--out", str(tmp_path / "x.engine")])
    assert rc == 2
    assert "absent.onnx: model file not found" in capsys.readouterr().err


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here: the build would run")
def test_cli_checks_pass_then_names_tensorrt(tiny_model, tmp_path, capsys):
    rc = main(["jetson", "build-engine", tiny_model, "--out", str(tmp_path / "x.engine"), "--fp16",
               "--timing-cache", str(tmp_path / "trt.timing")])
    assert rc == 2
    assert "TensorRT Python bindings are not importable" in capsys.readouterr().err
    assert not Path(tmp_path / "x.engine").exists()
