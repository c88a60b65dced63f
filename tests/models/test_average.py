"""Averaging fine-tunes of one model: the mean of the weights, refused for different networks."""

import numpy as np
import pytest
import torch

from edgeagent.cli import main
from edgeagent.errors import ModelError
from edgeagent.models.average import average_checkpoints
from edgeagent.models.export import build_net, export_onnx, load_checkpoint
from edgeagent.models.runtime import SHIPPED
from edgeagent.models.train import save_atomic

SHIPPED_CKPT = SHIPPED / "final.pt"


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """The shipped checkpoint and a copy with every float weight shifted by a seeded random amount."""
    d = tmp_path_factory.mktemp("avg")
    ck = load_checkpoint(SHIPPED_CKPT)
    gen = torch.Generator().manual_seed(0)
    moved = {k: (v + 0.01 * torch.randn(v.shape, generator=gen) if torch.is_floating_point(v) else v)
             for k, v in ck["model"].items()}
    save_atomic({**ck, "model": moved}, d / "b.pt")
    return SHIPPED_CKPT, d / "b.pt"


def test_the_average_is_the_weighted_mean_and_plans(two, tmp_path):
    a, b = two
    out = tmp_path / "mean.pt"
    average_checkpoints([a, b], out, weights=[3, 1])
    wa, wb, mean = (load_checkpoint(p) for p in (a, b, out))
    for name, t in mean["model"].items():
        if torch.is_floating_point(t):
            torch.testing.assert_close(t, 0.75 * wa["model"][name] + 0.25 * wb["model"][name])
    sources = mean["training"]["averaged"]
    assert [s["weight"] for s in sources] == [3.0, 1.0] and sources[1]["checkpoint"] == str(b)
    assert sources[0]["command"] == wa["training"]["command"]  # how each ingredient was made
    assert mean["training"]["command"] == f"edgeagent model average {a} {b} --out {out} --weights 3,1"
    assert mean["vocab"] == wa["vocab"] and mean["config"] == wa["config"]
    # It is a checkpoint like any other: the network builds and exports.
    net = build_net(mean)
    with torch.no_grad():
        out_t = net(torch.zeros(1, 96, 96, 3, dtype=torch.uint8), torch.zeros(1, 32, dtype=torch.long))
    assert all(torch.isfinite(x).all() for x in out_t[:4])
    assert export_onnx(out, tmp_path / "fp32").is_file()


def test_averaging_one_model_with_itself_changes_nothing(two, tmp_path):
    a, _ = two
    average_checkpoints([a, a], tmp_path / "same.pt")
    old, new = load_checkpoint(a), load_checkpoint(tmp_path / "same.pt")
    for name, t in old["model"].items():
        torch.testing.assert_close(new["model"][name], t, rtol=0, atol=1e-7)


def test_refuses_checkpoints_of_different_networks(two, tmp_path):
    a, b = two
    ck = load_checkpoint(b)
    save_atomic({**ck, "vocab": ck["vocab"][:-1] + ["zebra"]}, tmp_path / "vocab.pt")
    with pytest.raises(ModelError, match=r"vocab\.pt: its vocab differs"):
        average_checkpoints([a, tmp_path / "vocab.pt"], tmp_path / "x.pt")
    name, w = next((k, v) for k, v in ck["model"].items() if v.ndim == 2)
    save_atomic({**ck, "model": {**ck["model"], name: w[:, :-1]}}, tmp_path / "shape.pt")
    with pytest.raises(ModelError, match=f"weight '{name}' is shape"):
        average_checkpoints([a, tmp_path / "shape.pt"], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_a_checkpoint_from_before_views_averages_with_its_camera_view_fine_tune(two, tmp_path):
    # The shipped checkpoint predates views (no "view": the camera view); a fine-tune of it records
    # {"kind": "camera"}. They are one model in one view.
    a, b = two
    ck = load_checkpoint(b)
    assert "view" not in load_checkpoint(a)
    save_atomic({**ck, "view": {"kind": "camera"}}, tmp_path / "cam.pt")
    average_checkpoints([a, tmp_path / "cam.pt"], tmp_path / "mean.pt")
    assert (tmp_path / "mean.pt").is_file()
    save_atomic({**ck, "view": {"kind": "table"}}, tmp_path / "table.pt")
    with pytest.raises(ModelError, match=r"table\.pt: it reads the table view .* the camera view"):
        average_checkpoints([a, tmp_path / "table.pt"], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_a_fine_tune_grown_by_a_layer_averages_with_the_model_it_grew_from(two, tmp_path):
    from edgeagent.models.net import NetConfig, PlannerNet
    from edgeagent.models.train import _grow

    a, _ = two
    ck = load_checkpoint(a)
    L = ck["config"]["layers"]
    torch.manual_seed(0)
    net = PlannerNet(NetConfig.from_dict({**ck["config"], "layers": L + 1}))
    net.load_state_dict(ck["model"], strict=False)
    _grow(net, range(L, L + 1))
    grown = {k: v.clone() for k, v in net.state_dict().items()}
    for k in grown:  # as if fine-tuned: the new layer's residual outputs have moved off zero
        if k.startswith(f"blocks.{L}.") and torch.is_floating_point(grown[k]):
            grown[k] += 0.01
    save_atomic({**ck, "config": {**ck["config"], "layers": L + 1}, "model": grown}, tmp_path / "grown.pt")
    average_checkpoints([tmp_path / "grown.pt", a], tmp_path / "mean.pt")
    mean = load_checkpoint(tmp_path / "mean.pt")
    assert mean["config"]["layers"] == L + 1
    new = f"blocks.{L}."
    # The smaller model counts as having the identity layer: its residual outputs' zeros are averaged in;
    # the layer's other weights, which an identity does not use, are the grown model's.
    torch.testing.assert_close(mean["model"][new + "proj.weight"], 0.5 * grown[new + "proj.weight"])
    torch.testing.assert_close(mean["model"][new + "attn.out.bias"], 0.5 * grown[new + "attn.out.bias"])
    torch.testing.assert_close(mean["model"][new + "fc.weight"], grown[new + "fc.weight"])
    torch.testing.assert_close(mean["model"]["blocks.0.fc.weight"],
                               0.5 * (grown["blocks.0.fc.weight"] + ck["model"]["blocks.0.fc.weight"]))
    # The other way round the grown layer would be dropped: refused, saying which to give first.
    with pytest.raises(ModelError, match="give the one with the most layers first"):
        average_checkpoints([a, tmp_path / "grown.pt"], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("args, match", [
    (["--weights", "1,x"], "give numbers separated by commas"),
    (["--weights", "1,1,1"], "3 weights for 2 checkpoints"),
    (["--weights=-1,2"], "weights must be >= 0"),
])
def test_command_refuses_bad_weights_and_writes_nothing(two, tmp_path, capsys, args, match):
    a, b = two
    out = tmp_path / "out.pt"
    assert main(["model", "average", str(a), str(b), "--out", str(out), *args]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_command_writes_the_average(two, tmp_path, capsys):
    a, b = two
    out = tmp_path / "out.pt"
    assert main(["model", "average", str(a), str(b), "--out", str(out)]) == 0
    assert "model confidence" in capsys.readouterr().out
    got = load_checkpoint(out)["model"]
    name = next(k for k, v in got.items() if torch.is_floating_point(v))
    np.testing.assert_allclose(got[name].numpy(), ((load_checkpoint(a)["model"][name]
                                                    + load_checkpoint(b)["model"][name]) / 2).numpy(), atol=1e-6)
