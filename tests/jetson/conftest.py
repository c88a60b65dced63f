"""Tiny real ONNX models for the Jetson tests, built with onnx.helper (no torch needed)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

IMAGE_SHAPE = [1, 8, 8, 3]
TOKENS_SHAPE = [1, 4]


def _save(model: onnx.ModelProto, path) -> str:
    model.ir_version = 8  # DESIGN §5: IR <= 9, opset 17
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def tiny_graph(image_shape=IMAGE_SHAPE, qdq: bool = False) -> onnx.ModelProto:
    """image uint8 -> scaled = float(image) * 2 ; tokens int64 -> shifted = tokens + 1.

    With ``qdq`` the float image goes through a QuantizeLinear/DequantizeLinear pair (scale 1, zero point
    0: exact for 0..127) as an explicitly quantized model would.
    """
    nodes = [helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT)]
    inits = [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
             helper.make_tensor("one", TensorProto.INT64, [], [1])]
    source = "image_f"
    if qdq:
        inits += [helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0]),
                  helper.make_tensor("zero", TensorProto.INT8, [], [0])]
        nodes += [helper.make_node("QuantizeLinear", ["image_f", "scale", "zero"], ["image_q"]),
                  helper.make_node("DequantizeLinear", ["image_q", "scale", "zero"], ["image_dq"])]
        source = "image_dq"
    nodes += [helper.make_node("Mul", [source, "two"], ["scaled"]),
              helper.make_node("Add", ["tokens", "one"], ["shifted"])]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, image_shape),
         helper.make_tensor_value_info("tokens", TensorProto.INT64, TOKENS_SHAPE)],
        [helper.make_tensor_value_info("scaled", TensorProto.FLOAT, image_shape),
         helper.make_tensor_value_info("shifted", TensorProto.INT64, TOKENS_SHAPE)],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def tiny_model(tmp_path) -> str:
    """Path of a valid static-shape float model."""
    return _save(tiny_graph(), tmp_path / "tiny.onnx")


@pytest.fixture
def qdq_model(tmp_path) -> str:
    """Path of a static-shape model with Q/DQ nodes."""
    return _save(tiny_graph(qdq=True), tmp_path / "tiny_qdq.onnx")


@pytest.fixture
def dynamic_model(tmp_path) -> str:
    """Path of a model whose image input has a symbolic batch dimension."""
    return _save(tiny_graph(image_shape=["batch", 8, 8, 3]), tmp_path / "tiny_dynamic.onnx")


@pytest.fixture
def feeds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"image": rng.integers(0, 128, IMAGE_SHAPE, dtype=np.uint8),
            "tokens": rng.integers(0, 50, TOKENS_SHAPE, dtype=np.int64)}
