"""The TensorRT-readiness checker flags each kind of graph TensorRT would reject, and the CLI's exit codes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tiny_planner import build_model, write_model

from edgeagent.cli import main as cli
from edgeagent.errors import ModelError
from edgeagent.models.check import check_model

F = TensorProto.FLOAT


def small_model(nodes, inits=(), *, inputs=None, y_shape=(1, 4), opset=17, ir=9) -> onnx.ModelProto:
    """x float [1, 4] -> nodes -> y float ``y_shape``."""
    graph = helper.make_graph(
        nodes, "t", inputs or [helper.make_tensor_value_info("x", F, [1, 4])],
        [helper.make_tensor_value_info("y", F, list(y_shape))],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)


def qdq_model(zero_point=np.int8(0), scale=np.float32(0.1)) -> onnx.ModelProto:
    inits = [("s", scale)] + ([("zp", zero_point)] if zero_point is not None else [])
    q_inputs = ["x", "s", "zp"] if zero_point is not None else ["x", "s"]
    return small_model([helper.make_node("QuantizeLinear", q_inputs, ["q"], name="q"),
                        helper.make_node("DequantizeLinear", ["q", *q_inputs[1:]], ["y"], name="dq")], inits)


def run(tmp_path, model, **kw):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return check_model(path, **kw)


def failed(report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if not c.ok}


def test_a_clean_qdq_graph_passes(tmp_path):
    report = run(tmp_path, qdq_model())
    assert report.ok, report.format()
    assert "2 Q/DQ nodes, all int8 with zero point 0" in report.format()


@pytest.mark.parametrize("zero_point, scale, expect", [
    (np.int8(3), np.float32(0.1), "zero point [3] is not 0"),
    (np.uint8(0), np.float32(0.1), "zero point is uint8, TensorRT needs int8"),
    (None, np.float32(0.1), "no zero point (defaults to uint8)"),
    (np.int8(0), np.float32(-0.1), "scale has values <= 0"),
])
def test_zero_points_and_scales_tensorrt_rejects(tmp_path, zero_point, scale, expect):
    problems = failed(run(tmp_path, qdq_model(zero_point, scale)))
    assert list(problems) == ["Q/DQ zero points 0, scales > 0"]
    assert expect in problems["Q/DQ zero points 0, scales > 0"]


def test_an_int32_bias_dequantize_is_flagged(tmp_path):
    model = small_model([helper.make_node("DequantizeLinear", ["b", "s", "zp"], ["bf"]),
                         helper.make_node("Add", ["x", "bf"], ["y"])],
                        [("b", np.array([1, 2, 3, 4], np.int32)), ("s", np.float32(0.01)), ("zp", np.int32(0))])
    detail = failed(run(tmp_path, model))["Q/DQ zero points 0, scales > 0"]
    assert "dequantizes int32 data" in detail and "QuantizeBias off" in detail


def test_a_dynamic_shape_is_flagged(tmp_path):
    model = small_model([helper.make_node("Relu", ["x"], ["y"])],
                        inputs=[helper.make_tensor_value_info("x", F, ["batch", 4])])
    detail = failed(run(tmp_path, model))["static shapes"]
    assert "input x ['batch', 4]" in detail


@pytest.mark.parametrize("op, expect", [
    ("Det", "Det: not supported by TensorRT's ONNX parser"),
    ("Loop", "Loop: control flow"),
])
def test_unsupported_operators_are_flagged(tmp_path, op, expect):
    if op == "Det":
        model = small_model([helper.make_node("Reshape", ["x", "shape"], ["m"]), helper.make_node("Det", ["m"], ["y"])],
                            [("shape", np.array([2, 2], np.int64))], y_shape=())
    else:
        body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                                  helper.make_node("Identity", ["v_in"], ["v_out"])], "body",
                                 [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                  helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
                                  helper.make_tensor_value_info("v_in", F, [1, 4])],
                                 [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                                  helper.make_tensor_value_info("v_out", F, [1, 4])])
        model = small_model([helper.make_node("Loop", ["n", "", "x"], ["y"], body=body)],
                            [("n", np.array(2, np.int64))])
    detail = failed(run(tmp_path, model))["TensorRT 8.6 operators"]
    assert expect in detail


def test_layer_norm_needs_tensorrt_8_6(tmp_path):
    model = small_model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
                        [("g", np.ones(4, np.float32)), ("b", np.zeros(4, np.float32))])
    assert run(tmp_path, model).ok
    detail = failed(run(tmp_path, model, tensorrt="8.5"))["TensorRT 8.5 operators"]
    assert "LayerNormalization: needs TensorRT >= 8.6" in detail


def test_a_computed_slice_axis_is_flagged(tmp_path):
    # axes = base + zero: a computed tensor, not an initializer (what a non-folded export produces).
    model = small_model([helper.make_node("Add", ["axes_base", "zero"], ["axes"]),
                         helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="cut")],
                        [("axes_base", np.array([1], np.int64)), ("zero", np.array([0], np.int64)),
                         ("starts", np.array([0], np.int64)), ("ends", np.array([2], np.int64))], y_shape=(1, 2))
    problems = failed(run(tmp_path, model))
    assert list(problems) == ["constant axes"]
    assert "Slice cut: axes is computed (axes)" in problems["constant axes"]


def test_constant_node_axes_count_as_constant(tmp_path):
    model = small_model([helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(
                            np.array([0], np.int64))),
                         helper.make_node("Unsqueeze", ["x", "axes"], ["y"])], y_shape=(1, 1, 4))
    assert run(tmp_path, model).ok


def test_dynamic_quantization_ops_are_flagged(tmp_path):
    model = small_model(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
         helper.make_node("MatMulInteger", ["xq", "w", "xz"], ["acc"]),
         helper.make_node("Cast", ["acc"], ["y"], to=F)],
        [("w", np.ones((4, 2), np.uint8))], y_shape=(1, 2))
    problems = failed(run(tmp_path, model))
    assert "DynamicQuantizeLinear, MatMulInteger found" in problems["no integer/dynamic quantisation ops"]
    assert "MatMulInteger: not supported" in problems["TensorRT 8.6 operators"]


def test_newer_opset_and_ir_version_are_flagged(tmp_path):
    model = small_model([helper.make_node("Relu", ["x"], ["y"])], opset=18, ir=10)
    assert set(failed(run(tmp_path, model))) == {"opset <= 17", "IR version <= 9"}


def test_tiny_planner_passes_and_a_stale_manifest_fails(tmp_path):
    folder = write_model(tmp_path / "m")
    report = check_model(folder)
    assert report.ok, report.format()
    assert "no Q/DQ nodes (float model)" in report.format()
    onnx.save(build_model(verb_gain=9.0), folder / "planner.onnx")
    detail = failed(check_model(folder))["manifest matches file"]
    assert "sha256" in detail


def test_parity_fails_when_the_models_disagree(tmp_path):
    fp32 = write_model(tmp_path / "fp32")
    other = write_model(tmp_path / "other", build_model(verb_gain=0.0))
    report = check_model(other, fp32_path=fp32, samples=6)
    assert "FP32 parity" in failed(report)
    assert report.info["parity"]["slot_agreement"] < 0.9


def test_cli_exit_codes_and_json(tmp_path, capsys):
    good = write_model(tmp_path / "good")
    assert cli(["model", "check", str(good), "--fp32", str(good), "--json", str(tmp_path / "r.json")]) == 0
    assert "PASS  FP32 parity" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    onnx.save(qdq_model(np.int8(5)), tmp_path / "bad.onnx")
    assert cli(["model", "check", str(tmp_path / "bad.onnx"), "--json", str(tmp_path / "b.json")]) == 1
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["ok"] is False and any(not c["ok"] and "zero point [5]" in c["detail"] for c in report["checks"])
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    assert cli(["model", "check", str(tmp_path / "junk.onnx")]) == 2
    assert "not a readable ONNX file" in capsys.readouterr().err
    assert cli(["model", "check", str(tmp_path / "absent")]) == 2


def test_unusable_input_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such ONNX file"):
        check_model(tmp_path / "nothing.onnx")
