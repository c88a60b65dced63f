"""A tiny hand-weighted planner that honours the model contract, built with onnx.helper (test helper).

It behaves predictably, so tests can assert what a correct runtime must return:
- points: every slot's point logits are the "redness" (R - (B + G) / 2) of each grid cell, so each
  point argument lands on the reddest patch of the image; offsets are 0.5 (cell centres);
- primitives from a bag of words: "pick" -> pick in slot 0, "put" (place/move/...) -> place (in slot 0
  alone, in slot 1 after a pick), "push" -> push, "done" -> END; no keyword -> END;
- confidence sigmoid(2) ~ 0.88 for "pick"/"done", 0.5 otherwise.
It has a Conv, MatMuls, a Gather, ReduceSum and Unsqueeze with constant axes: what quantisation and
the TensorRT checker look at.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeagent.camera import CameraModel
from edgeagent.models.manifest import Manifest, PrimitiveSpec, file_sha256, write_manifest

S, G, T, K, A = 32, 8, 8, 3, 2
VOCAB = ("<pad>", "<unk>", "pick", "put", "push", "done", "red", "block", "the", "bowl", "in", "it", "and")
PRIMITIVES = (PrimitiveSpec("pick", ("at",)), PrimitiveSpec("place", ("at",)),
              PrimitiveSpec("push", ("start", "end")))
P = 1 + len(PRIMITIVES)


def camera(width: int = 640, height: int = 480) -> CameraModel:
    """A camera that sees the whole workspace; image rows above ~28% of the height lie beyond y = 0.3."""
    return CameraModel.look_at((0.0, -0.6, 0.7), (0.0, 0.0, 0.0), fov_y_deg=50, width=width, height=height)


def scene_image(cam: CameraModel, red_xy=None, *, red_pixel=None, size_m: float = 0.06) -> np.ndarray:
    """A grey table frame with a red square centred on table point ``red_xy`` (or at pixel ``red_pixel``)."""
    img = np.full((cam.height, cam.width, 3), 90, np.uint8)
    if red_xy is not None:
        h = size_m / 2
        corners = np.array([[-h, -h], [h, -h], [h, h], [-h, h]]) + np.asarray(red_xy)
        poly = np.round(cam.table_to_pixel(corners)).astype(np.int32)
        cv2.fillConvexPoly(img, poly, (30, 30, 230))
    if red_pixel is not None:
        u, v = red_pixel
        r = max(cam.width, cam.height) // 20
        cv2.rectangle(img, (u - r, v - r), (u + r, v + r), (30, 30, 230), -1)
    return img


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def build_model(verb_gain: float = 10.0) -> onnx.ModelProto:
    """The tiny planner graph (opset 17, IR 9, static shapes); ``verb_gain`` 0 makes slot 0 always END."""
    word = {w: i for i, w in enumerate(VOCAB)}
    emb = np.zeros((len(VOCAB), P), np.float32)
    emb[word["pick"], 1] = emb[word["put"], 2] = emb[word["push"], 3] = emb[word["done"], 0] = 1.0
    w_prim = np.zeros((P, K, P), np.float32)
    w_prim[:, 0, :] = np.diag([10.0, 10.0, 8.0, 10.0]) * verb_gain / 10.0  # slot 0: the verb (pick beats put)
    w_prim[1, 1, 2] = w_prim[2, 1, 2] = 5.0  # slot 1: place, only when "pick" and "put" both appear
    b_prim = np.zeros((K, P), np.float32)
    b_prim[0, 0] = 1.0
    b_prim[1:, 0] = 7.0
    w_conf = np.zeros((P, 1), np.float32)
    w_conf[0, 0] = w_conf[1, 0] = 2.0
    red = np.zeros((1, 3, S // G, S // G), np.float32)
    red[0, 2], red[0, 0], red[0, 1] = 1.0, -0.5, -0.5  # BGR input: channel 2 is red
    red /= (S // G) ** 2
    inits = [
        _const("inv255", np.float32(1 / 255)), _const("w_red", red), _const("b_red", np.zeros(1, np.float32)),
        _const("cells_shape", np.array([1, 1, 1, G * G], np.int64)), _const("gain", np.float32(20.0)),
        _const("slot_zeros", np.zeros((1, K, A, G * G), np.float32)), _const("axis4", np.array([4], np.int64)),
        _const("zero", np.float32(0.0)), _const("offset_bias", np.zeros((1, K, A, G * G, 2), np.float32)),
        _const("emb", emb), _const("axis1", np.array([1], np.int64)),
        _const("w_prim", w_prim.reshape(P, K * P)), _const("b_prim", b_prim.reshape(K * P)),
        _const("prim_shape", np.array([1, K, P], np.int64)), _const("w_conf", w_conf),
        _const("b_conf", np.zeros(1, np.float32)),
    ]
    n = helper.make_node
    nodes = [
        n("Cast", ["image"], ["img_f"], to=TensorProto.FLOAT),
        n("Transpose", ["img_f"], ["img_t"], perm=[0, 3, 1, 2]),
        n("Mul", ["img_t", "inv255"], ["img_n"]),
        n("Conv", ["img_n", "w_red", "b_red"], ["redness"], name="/stem/Conv", kernel_shape=[S // G, S // G],
          strides=[S // G, S // G]),
        n("Reshape", ["redness", "cells_shape"], ["red_flat"]),
        n("Mul", ["red_flat", "gain"], ["red_gain"]),
        n("Add", ["red_gain", "slot_zeros"], ["point_logits"]),
        n("Unsqueeze", ["point_logits", "axis4"], ["pl5"]),
        n("Mul", ["pl5", "zero"], ["pl5_zero"]),
        n("Add", ["pl5_zero", "offset_bias"], ["off_pre"]),
        n("Sigmoid", ["off_pre"], ["point_offset"]),
        n("Gather", ["emb", "tokens"], ["words"]),
        n("ReduceSum", ["words", "axis1"], ["bag"], keepdims=0),
        n("MatMul", ["bag", "w_prim"], ["prim_mm"], name="/mix/MatMul"),
        n("Add", ["prim_mm", "b_prim"], ["prim_flat"], name="/mix/Add"),
        n("Reshape", ["prim_flat", "prim_shape"], ["prim_logits"]),
        n("MatMul", ["bag", "w_conf"], ["conf_mm"], name="/heads/conf/MatMul"),
        n("Add", ["conf_mm", "b_conf"], ["conf_pre"], name="/heads/conf/Add"),
        n("Sigmoid", ["conf_pre"], ["confidence"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "tiny_planner",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, S, S, 3]),
         helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, T])],
        [helper.make_tensor_value_info("prim_logits", f, [1, K, P]),
         helper.make_tensor_value_info("point_logits", f, [1, K, A, G * G]),
         helper.make_tensor_value_info("point_offset", f, [1, K, A, G * G, 2]),
         helper.make_tensor_value_info("confidence", f, [1, 1])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9,
                              producer_name="edgeagent-tests")
    onnx.checker.check_model(model, full_check=True)
    return model


def write_model(folder: Path, model: onnx.ModelProto | None = None, **manifest_changes) -> Path:
    """Save ``model`` (default: the tiny planner) as a model folder with a manifest; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model if model is not None else build_model(), folder / "planner.onnx")
    manifest = Manifest(name="tiny", S=S, T=T, K=K, G=G, A=A, vocab=VOCAB, primitives=PRIMITIVES,
                        precision="fp32", sha256=file_sha256(folder / "planner.onnx"), cycles=1,
                        training={"command": "tests/models/tiny_planner.py", "data": "hand-set weights"})
    write_manifest(manifest.replace(**manifest_changes), folder)
    return folder
