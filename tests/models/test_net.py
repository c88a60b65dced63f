"""The network's outputs follow the model contract, and its ONNX export runs the same in onnxruntime."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgeagent.errors import ModelError
from edgeagent.models.dataset import primitive_table
from edgeagent.models.export import export_onnx
from edgeagent.models.manifest import load_manifest, verify
from edgeagent.models.net import NetConfig, PlannerNet
from edgeagent.primitives import registry

#: What TensorRT's ONNX parser takes and the brief allows; anything else in the graph is a regression.
ALLOWED_OPS = {"Add", "Cast", "Concat", "Constant", "Conv", "Div", "Erf", "Gather", "Gemm", "Identity",
               "LayerNormalization", "MatMul", "Mul", "Relu", "Reshape", "Sigmoid", "Slice", "Softmax", "Split",
               "Squeeze", "Transpose", "Sub"}
VOCAB = ["<pad>", "<unk>", "put", "red", "block", "in", "blue", "bowl", "stack"]


def small_cfg(**kw):
    base = dict(vocab_size=len(VOCAB), P=1 + len(primitive_table()), S=32, G=4, T=8, K=3, A=2, width=32, heads=2,
                layers=1, cycles=2, stem=(8,))
    base.update(kw)
    return NetConfig(**base)


def inputs(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (batch, cfg.S, cfg.S, 3), dtype=torch.uint8, generator=g)
    tokens = torch.randint(2, cfg.vocab_size, (batch, cfg.T), generator=g)
    tokens[:, 5:] = 0  # padding at the end, as the tokenizer makes it
    return image, tokens


def test_output_shapes_and_ranges_match_the_contract():
    cfg = small_cfg()
    torch.manual_seed(0)
    net = PlannerNet(cfg).eval()
    prim, point, offset, conf = net(*inputs(cfg))
    GG = cfg.G * cfg.G
    assert prim.shape == (2, cfg.K, cfg.P)
    assert point.shape == (2, cfg.K, cfg.A, GG)
    assert offset.shape == (2, cfg.K, cfg.A, GG, 2)
    assert conf.shape == (2, 1)
    assert 0 <= offset.min() and offset.max() <= 1 and 0 <= conf.min() and conf.max() <= 1


def test_padding_words_are_masked():
    # Whatever the PAD embedding holds, patches and slots never attend to padding.
    cfg = small_cfg()
    torch.manual_seed(0)
    net = PlannerNet(cfg).eval()
    image, tokens = inputs(cfg)
    before = net(image, tokens)
    with torch.no_grad():
        net.word.weight[0].normal_(0, 5.0)
    after = net(image, tokens)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    tokens2 = tokens.clone()
    tokens2[:, 2] = 3  # a real word does change the plan
    assert not torch.allclose(net(image, tokens2)[0], before[0])


def test_cycles_share_weights_and_deep_supervision_returns_every_cycle():
    cfg = small_cfg()
    torch.manual_seed(0)
    net = PlannerNet(cfg).eval()
    x = inputs(cfg)
    outs = net(*x, 3, all_cycles=True)
    assert len(outs) == 3
    torch.testing.assert_close(outs[0][0], net(*x, 1)[0])
    torch.testing.assert_close(outs[2][0], net(*x, 3)[0])
    assert not torch.allclose(outs[0][0], outs[2][0])
    with pytest.raises(ValueError):
        net(*x, 0)


def save_checkpoint(path, cfg, seed=0):
    torch.manual_seed(seed)
    net = PlannerNet(cfg)
    torch.save({"config": cfg.to_dict(), "model": net.state_dict(), "vocab": VOCAB, "primitives": primitive_table(),
                "cycles": cfg.cycles, "training": {"command": "test", "seed": seed}}, path)
    return net.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    cfg = small_cfg()
    net = save_checkpoint(d / "final.pt", cfg)
    path = export_onnx(d / "final.pt", d / "model", cycles=3, name="tiny")
    return net, cfg, path


def test_export_is_a_valid_static_opset17_graph_with_trt_friendly_ops(exported):
    _, cfg, path = exported
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 9
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    ops = {n.op_type for n in model.graph.node}
    assert ops <= ALLOWED_OPS, ops - ALLOWED_OPS
    for v in list(model.graph.input) + list(model.graph.output):
        dims = v.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), v.name
    names = [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    assert names == (["image", "tokens"], ["prim_logits", "point_logits", "point_offset", "confidence",
                                           "patch_objects"])


def test_onnxruntime_matches_torch(exported):
    net, cfg, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in range(3):
        image, tokens = inputs(cfg, batch=1, seed=seed)
        got = sess.run(None, {"image": image.numpy(), "tokens": tokens.numpy()})
        with torch.no_grad():
            want = net(image, tokens, 3)
            objects = net.run(image, tokens, 3, all_cycles=False, aux=True)[-1][4].softmax(-1)
        for g, w in zip(got, (*want, objects)):
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=1e-4)
        assert got[4].shape == (1, cfg.G * cfg.G, cfg.objects)
        np.testing.assert_allclose(got[4].sum(-1), 1.0, atol=1e-5)  # a distribution over classes per patch


def test_manifest_is_accepted_by_the_runtime_contract(exported):
    _, cfg, path = exported
    manifest, onnx_path = load_manifest(path.parent)
    verify(manifest, onnx_path, registry)
    assert (manifest.S, manifest.G, manifest.T, manifest.K, manifest.A, manifest.cycles) == (32, 4, 8, 3, 2, 3)
    assert list(manifest.vocab) == VOCAB and manifest.name == "tiny"
    assert [p.name for p in manifest.primitives] == registry.names()
    assert manifest.training["seed"] == 0


def test_export_refuses_unrelated_folders_and_replaces_a_previous_export(tmp_path):
    cfg = small_cfg()
    save_checkpoint(tmp_path / "final.pt", cfg)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="not empty"):
        export_onnx(tmp_path / "final.pt", busy)
    out = tmp_path / "model"
    export_onnx(tmp_path / "final.pt", out, cycles=1)
    export_onnx(tmp_path / "final.pt", out, cycles=2)
    assert json.loads((out / "manifest.json").read_text())["cycles"] == 2
    with pytest.raises(ModelError, match="no checkpoint"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "other")


def test_an_export_without_the_object_map_has_the_four_plan_outputs(tmp_path):
    save_checkpoint(tmp_path / "final.pt", small_cfg())
    path = export_onnx(tmp_path / "final.pt", tmp_path / "model", objects=False)
    assert [o.name for o in onnx.load(path).graph.output] == ["prim_logits", "point_logits", "point_offset",
                                                             "confidence"]
    assert load_manifest(path.parent)[0].objects == 0
