"""INT8 quantisation: explicit Q/DQ with zero points 0, calibrated on simulator frames, TensorRT-ready."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from tiny_planner import camera, scene_image, write_model

from edgeagent.errors import ModelError
from edgeagent.models.check import check_model
from edgeagent.models.manifest import file_sha256, load_manifest
from edgeagent.models.quantize import quantize, simulator_feeds
from edgeagent.models.runtime import ModelPlanner
from edgeagent.types import Observation

FRAMES = 6


@pytest.fixture(scope="module")
def fp32_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("fp32"))


@pytest.fixture(scope="module")
def int8_dir(fp32_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    quantize(fp32_dir, out, calibration_frames=FRAMES, seed=3)
    return out


def test_writes_an_int8_model_folder(fp32_dir, int8_dir):
    fp32, _ = load_manifest(fp32_dir)
    int8, path = load_manifest(int8_dir)
    assert int8.precision == "int8" and int8.sha256 == file_sha256(path) != fp32.sha256
    assert (int8.name, int8.vocab, int8.primitives, int8.outputs) == (fp32.name, fp32.vocab, fp32.primitives,
                                                                       fp32.outputs)
    q = int8.training["quantization"]
    assert q["frames"] == FRAMES and q["seed"] == 3 and q["from_sha256"] == fp32.sha256
    assert int8.eval == {}  # FP32 figures do not describe the INT8 model


def test_graph_is_explicit_qdq_with_zero_points_zero(int8_dir):
    graph = onnx.load(str(int8_dir / "planner.onnx")).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) >= 4  # the mixer's weight and input (the tiny planner's /stem/ stays float by default)
    for node in qdq:
        zp = inits[node.input[2]]
        assert zp.dtype == np.int8 and not zp.any()
        assert (inits[node.input[1]] > 0).all()
    ops = {n.op_type for n in graph.node}
    assert not ops & {"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul"}
    # Weights are int8 per channel: the primitive mixer's 12 output columns each get their own scale.
    weight_dq = [n for n in qdq if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None]
    assert any(inits[n.input[0]].dtype == np.int8 and inits[n.input[1]].size == 12 for n in weight_dq)
    # The output head named /heads/ keeps its float weight.
    head = next(n for n in graph.node if n.name == "/heads/conf/MatMul")
    assert inits[head.input[1]].dtype == np.float32


def test_quantized_model_passes_the_tensorrt_check(fp32_dir, int8_dir):
    report = check_model(int8_dir, fp32_path=fp32_dir, samples=6)
    assert report.ok, report.format()
    assert report.info["parity"]["slot_agreement"] == 1.0


def test_int8_plans_like_fp32(fp32_dir, int8_dir):
    cam = camera()
    obs = Observation(scene_image(cam, (-0.12, 0.08)), cam)
    a = ModelPlanner(fp32_dir).plan(obs, "pick up the red block and put it down")
    b = ModelPlanner(int8_dir).plan(obs, "pick up the red block and put it down")
    assert [c.primitive for c in a.calls] == [c.primitive for c in b.calls] == ["pick", "place"]
    assert np.allclose(a.calls[0].args["at"], b.calls[0].args["at"], atol=1e-6)
    assert b.model.endswith(load_manifest(int8_dir)[0].sha256[:8])


def test_calibration_feeds_are_simulator_frames_with_instructions(fp32_dir):
    manifest, _ = load_manifest(fp32_dir)
    feeds = list(simulator_feeds(manifest, 4, seed=11))
    again = list(simulator_feeds(manifest, 4, seed=11))
    assert len(feeds) == 4
    for f, g in zip(feeds, again):
        assert f["image"].shape == (1, manifest.S, manifest.S, 3) and f["image"].dtype == np.uint8
        assert f["tokens"].shape == (1, manifest.T) and f["tokens"].dtype == np.int64
        assert np.array_equal(f["image"], g["image"]) and np.array_equal(f["tokens"], g["tokens"])
        assert f["image"].std() > 5 and f["tokens"][0, 0] != 0  # a rendered scene and a real instruction
    assert not np.array_equal(feeds[0]["image"], feeds[1]["image"])


def test_quantization_is_deterministic(fp32_dir, int8_dir, tmp_path):
    path = quantize(fp32_dir, tmp_path, calibration_frames=FRAMES, seed=3)
    assert file_sha256(path) == load_manifest(int8_dir)[0].sha256


def test_refuses_to_quantize_twice_or_in_place(fp32_dir, int8_dir, tmp_path):
    with pytest.raises(ModelError, match="says int8; quantize the FP32 export"):
        quantize(int8_dir, tmp_path, calibration_frames=2)
    with pytest.raises(ModelError, match="is the FP32 model's folder"):
        quantize(fp32_dir, fp32_dir, calibration_frames=2)


def test_last_block_stands_for_the_deepest_transformer_layer(tmp_path):
    from onnx import TensorProto, helper

    from edgeagent.models.quantize import KEEP_FLOAT, LAST_BLOCK, _nodes_matching

    names = ["/net/blocks.0/fc/MatMul", "/net/blocks.2/fc/MatMul", "/net/blocks.10/fc/MatMul_1",
             "/net/blocks.1/attn/MatMul", "/net/heads/conf/conf.0/Gemm", "/net/stem/convs/Conv"]
    nodes = [helper.make_node("Identity", [f"t{i}"], [f"t{i + 1}"], name=n) for i, n in enumerate(names)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(f"t{len(names)}", TensorProto.FLOAT, [1])])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert LAST_BLOCK in KEEP_FLOAT
    assert _nodes_matching(path, KEEP_FLOAT) == ["/net/blocks.10/fc/MatMul_1", "/net/heads/conf/conf.0/Gemm",
                                                 "/net/stem/convs/Conv"]
    assert _nodes_matching(path, [LAST_BLOCK]) == ["/net/blocks.10/fc/MatMul_1"]
    assert _nodes_matching(path, ["/stem/"]) == ["/net/stem/convs/Conv"]


def test_command_records_the_int8_threshold_and_refuses_one_outside_0_1(fp32_dir, int8_dir, tmp_path, capsys):
    from edgeagent.cli import main

    assert load_manifest(int8_dir)[0].confidence_threshold == load_manifest(fp32_dir)[0].confidence_threshold
    assert main(["model", "quantize", str(fp32_dir), "--out", str(tmp_path / "a"), "--frames", "2",
                 "--threshold", "0.7"]) == 0
    assert load_manifest(tmp_path / "a")[0].confidence_threshold == 0.7
    assert main(["model", "quantize", str(fp32_dir), "--out", str(tmp_path / "c"), "--absent-below", "0.1"]) == 2
    assert "absent_below needs the patch_objects output, and the graph has none" in \
        capsys.readouterr().err  # the tiny planner has no object map
    assert main(["model", "quantize", str(fp32_dir), "--out", str(tmp_path / "c"), "--absent-below", "1.5"]) == 2
    assert "absent_below must be a probability in [0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    assert main(["model", "quantize", str(fp32_dir), "--out", str(tmp_path / "b"), "--threshold", "1.5"]) == 2
    assert "--threshold must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_matmuls_between_two_activations_are_found_to_stay_float(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from edgeagent.models.quantize import _activation_matmuls

    f = TensorProto.FLOAT
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["q"], name="/net/blocks.0/attn/q/MatMul"),
             helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones((4, 4), np.float32))),
             helper.make_node("MatMul", ["q", "c"], ["k"], name="/net/heads/MatMul"),
             helper.make_node("MatMul", ["q", "k"], ["s"], name="/net/blocks.0/attn/MatMul"),
             helper.make_node("MatMul", ["s", "x"], ["y"], name="/net/blocks.0/attn/MatMul_1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, [4, 4])],
                              [helper.make_tensor_value_info("y", f, [4, 4])], initializer=[w])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert _activation_matmuls(path) == ["/net/blocks.0/attn/MatMul", "/net/blocks.0/attn/MatMul_1"]


def test_both_calibration_methods_quantize_and_an_unknown_one_is_refused(fp32_dir, int8_dir, tmp_path):
    minmax = tmp_path / "minmax"
    quantize(fp32_dir, minmax, calibration_frames=FRAMES, seed=3, method="minmax")
    assert load_manifest(minmax)[0].training["quantization"]["ranges"] == "MinMax"
    assert load_manifest(int8_dir)[0].training["quantization"]["ranges"] == "percentile 99.999"
    assert check_model(minmax, fp32_path=fp32_dir, samples=4).ok
    with pytest.raises(ModelError, match="percentile, minmax"):
        quantize(fp32_dir, tmp_path / "other", calibration_frames=FRAMES, method="entropy")
