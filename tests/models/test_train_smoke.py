"""A training run on tiny data: checkpoints, summary, resume, determinism, export of the result."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgeagent.errors import ConfigError, ModelError
from edgeagent.models import dataset as ds
from edgeagent.models import train as train_mod
from edgeagent.models.export import export_onnx
from edgeagent.models.net import NetConfig, PlannerNet
from edgeagent.models.tokenizer import Tokenizer
from edgeagent.models.train import main, train

TINY = dict(batch=4, width=32, layers=1, heads=2, S=48, G=6, T=16, K=3, cycles=2, lr=3e-3, workers=1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    ds.generate_dataset(out, families=["pick-place-bowl", "pick-place-block"], scenarios=4, seed=5, S=48, G=6,
                        K=3, workers=1, progress=False)
    return out


def test_tiny_run_writes_checkpoint_and_summary_then_exports(tmp_path, data_dir):
    final = train(tmp_path / "run", data_dir=data_dir, steps=4, seed=1, **TINY)
    summary = json.loads((tmp_path / "run" / "training.json").read_text())
    assert summary["steps"] == 4 and summary["seed"] == 1 and summary["wall_time_s"] > 0
    assert "closed-loop expert states" in summary["data"] and summary["command"]
    assert set(summary["val_first_call"]) == {"1", "2", "3", "4"}
    ckpt = torch.load(final, weights_only=True)
    assert ckpt["vocab"][:2] == ["<pad>", "<unk>"] and ckpt["config"]["S"] == 48
    onnx_path = export_onnx(final, tmp_path / "model")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    tokens = Tokenizer(ckpt["vocab"], 16).encode("put the red block in the blue bowl")[None]
    outs = sess.run(None, {"image": np.zeros((1, 48, 48, 3), np.uint8), "tokens": tokens})
    assert outs[0].shape == (1, 3, 1 + len(ckpt["primitives"])) and outs[3].shape == (1, 1)
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["cycles"] == 2 and "absent_below" not in manifest  # the runtime's default
    # The absent-object score measured on this model goes in its manifest; not for one without the map.
    export_onnx(final, tmp_path / "model", absent_below=0.07)
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["absent_below"] == 0.07
    with pytest.raises(ModelError, match=r"absent_below needs the patch_objects output"):
        export_onnx(final, tmp_path / "bare", absent_below=0.07, objects=False)


def test_same_seed_same_weights_and_resume_continues_exactly(tmp_path, data_dir, monkeypatch):
    a = torch.load(train(tmp_path / "a", data_dir=data_dir, steps=6, seed=2, **TINY), weights_only=True)
    b = torch.load(train(tmp_path / "b", data_dir=data_dir, steps=6, seed=2, **TINY), weights_only=True)
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0)
    # A run that crashes during step 4 (checkpointing every step) resumes and ends where the
    # uninterrupted run ended.
    real_loss, calls = train_mod.plan_loss, []

    def crash_on_fourth(*args, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("simulated crash")
        return real_loss(*args, **kw)

    monkeypatch.setattr(train_mod, "plan_loss", crash_on_fourth)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "c", data_dir=data_dir, steps=6, seed=2, ckpt_every_s=0.0, **TINY)
    monkeypatch.setattr(train_mod, "plan_loss", real_loss)
    assert torch.load(tmp_path / "c" / "last.pt", weights_only=True)["step"] == 3
    c = torch.load(train(tmp_path / "c", data_dir=data_dir, steps=6, seed=2, **TINY), weights_only=True)
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], c["model"][k], rtol=0, atol=0)
    d = torch.load(train(tmp_path / "d", data_dir=data_dir, steps=6, seed=3, **TINY), weights_only=True)
    assert any(not torch.equal(a["model"][k], d["model"][k]) for k in a["model"])


def test_command_line_generates_data_when_none_is_given(tmp_path, capsys):
    rc = main(["--out", str(tmp_path / "run"), "--families", "pick-place-bowl", "--scenarios", "2", "--steps", "2",
               "--batch", "2", "--width", "32", "--layers", "1", "--workers", "1", "--seed", "4",
               "--confidence-per-family", "5"])
    assert rc == 0
    assert ds.is_complete(tmp_path / "run" / "data")
    summary = json.loads((tmp_path / "run" / "training.json").read_text())
    assert summary["command"].startswith("edgeagent model train --out")
    # The run ends with the confidence refit on closed-loop rollouts of the trained families.
    assert summary["confidence"]["scenarios"] == 5 and summary["confidence"]["plan_requests"] >= 5
    ckpt = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert ckpt["training"]["confidence"] == summary["confidence"]
    assert ckpt["confidence_threshold"] == pytest.approx(summary["confidence_threshold"], abs=1e-4)
    assert "step 2/2" in capsys.readouterr().err


def test_init_fine_tunes_a_trained_model_keeping_its_sizes_and_vocabulary(tmp_path, data_dir):
    base = train(tmp_path / "base", data_dir=data_dir, steps=2, seed=1, **TINY)
    start = torch.load(base, weights_only=True)
    # Sizes given to the fine-tuning run are ignored: the network is the one being fine-tuned.
    tuned = train(tmp_path / "tuned", data_dir=data_dir, steps=2, seed=2, init=base, **{**TINY, "width": 64})
    ck = torch.load(tuned, weights_only=True)
    assert ck["config"] == start["config"] and ck["vocab"] == start["vocab"]
    # A model trained before the rank and bowl heads existed gets them.
    old = {**start, "config": {k: v for k, v in start["config"].items() if k not in ("ranks", "quadrants")},
           "model": {k: v for k, v in start["model"].items() if not k.startswith(("aux_rank.", "aux_bowl."))}}
    torch.save(old, tmp_path / "old.pt")
    again = torch.load(train(tmp_path / "again", data_dir=data_dir, steps=1, seed=2, init=tmp_path / "old.pt", **TINY),
                       weights_only=True)
    assert again["config"]["ranks"] == ds.RANKS and again["config"]["quadrants"] == ds.QUADRANTS
    assert "aux_bowl.weight" in again["model"] and "aux_bowl.weight" not in old["model"]
    assert any(not torch.equal(ck["model"][k], start["model"][k]) for k in ck["model"])
    assert ck["training"]["init"]["from"] == str(base)


def test_init_with_more_layers_adds_layers_that_start_as_identities(tmp_path, data_dir):
    base = train(tmp_path / "base", data_dir=data_dir, steps=2, seed=1, **TINY)
    start = torch.load(base, weights_only=True)
    # Grown but not yet trained, the network plans exactly as the one it was loaded from.
    small = PlannerNet(NetConfig.from_dict(start["config"]))
    small.load_state_dict(start["model"])
    big = PlannerNet(NetConfig.from_dict({**start["config"], "layers": 2}))
    big.load_state_dict(start["model"], strict=False)
    train_mod._grow(big, range(1, 2))
    image = torch.randint(0, 256, (2, 48, 48, 3), dtype=torch.uint8)
    tokens = torch.randint(2, len(start["vocab"]), (2, 16))
    with torch.no_grad():
        for a, b in zip(small.eval()(image, tokens), big.eval()(image, tokens)):
            assert torch.allclose(a, b, atol=1e-6)
    # Fine-tuned with one layer more: the new layer trains and the result exports.
    tuned = torch.load(train(tmp_path / "tuned", data_dir=data_dir, steps=3, seed=2, init=base,
                             **{**TINY, "layers": 2}), weights_only=True)
    assert tuned["config"]["layers"] == 2
    assert tuned["model"]["blocks.1.proj.weight"].abs().sum() > 0
    export_onnx(tmp_path / "tuned" / "final.pt", tmp_path / "onnx")
    # Fewer layers than the init has would throw trained weights away: refused, naming both counts.
    with pytest.raises(ConfigError, match="--layers 1: .* has 2 transformer layers"):
        train(tmp_path / "less", data_dir=data_dir, steps=1, init=tmp_path / "tuned" / "final.pt", **TINY)


def test_init_keeps_a_refit_plan_confidence_head(tmp_path, data_dir):
    # The shipped model's confidence was refit with the head that reads every slot; fine-tuning it
    # must train that head, not fail on its shape.
    base = torch.load(train(tmp_path / "base", data_dir=data_dir, steps=1, seed=1, **TINY), weights_only=True)
    cfg = NetConfig.from_dict({**base["config"], "confidence": "plan"})
    state = {**PlannerNet(cfg).state_dict(), **{k: v for k, v in base["model"].items() if not k.startswith("heads.conf")}}
    torch.save({**base, "config": cfg.to_dict(), "model": state}, tmp_path / "plan.pt")
    tuned = torch.load(train(tmp_path / "tuned", data_dir=data_dir, steps=2, seed=2, init=tmp_path / "plan.pt", **TINY),
                       weights_only=True)
    assert tuned["config"]["confidence"] == "plan"
    assert tuned["model"]["heads.conf.0.weight"].shape == state["heads.conf.0.weight"].shape


def test_init_errors_name_the_file_and_what_to_give(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="no such file.*final.pt"):
        train(tmp_path / "x", data_dir=data_dir, steps=1, init=tmp_path / "missing.pt", **TINY)
    torch.save({"model": {}}, tmp_path / "odd.pt")
    with pytest.raises(ConfigError, match="lacks config, vocab, primitives"):
        train(tmp_path / "x", data_dir=data_dir, steps=1, init=tmp_path / "odd.pt", **TINY)


def test_family_weights_option_is_parsed_and_checked():
    assert train_mod.parse_weights("line=3, stack=1.5") == {"line": 3.0, "stack": 1.5}
    assert train_mod.parse_weights("") is None and train_mod.parse_weights("uniform") is None
    # Without the option a run weights the hard families up, only those it generates.
    assert train_mod.family_weights(None, None) == train_mod.DEFAULT_FAMILY_WEIGHTS
    assert train_mod.family_weights(None, ["line", "stack"]) == {"line": 3.0, "stack": 1.5}
    assert train_mod.family_weights(None, ["pick-place-bowl"]) is None
    assert train_mod.family_weights("uniform", None) is None
    for bad in ("line", "line=x", "line=-1", "=2"):
        with pytest.raises(ConfigError, match="FAMILY=WEIGHT"):
            train_mod.parse_weights(bad)


def test_validation_holds_out_whole_scenarios_of_every_family():
    scenario = np.repeat(np.arange(12), 3)
    family = np.repeat(np.array(["line"] * 9 + ["stack"] * 3), 3)
    mask = train_mod._validation_mask(scenario, family, 0.1)
    assert set(scenario[mask]) == {8, 11}  # the last line scenario and the last stack one, all their rows


def test_first_call_right_judges_slot_zero_only_to_two_centimetres():
    """The confidence target: the first call's primitive (END included) and its points within 2 cm of
    the expert's; later slots do not count."""
    cfg = type("Cfg", (), {"G": 4, "S": 8})()
    B, K, A, P, GG = 1, 3, 2, 3, 16
    prims = torch.tensor([[1, 2, 0]])
    prim_logits = torch.nn.functional.one_hot(prims, P).float()
    # Image pixels are table metres here (identity camera), cells 2 px wide; points at cell centres.
    cell = torch.tensor([[[5, -1], [10, -1], [-1, -1]]])
    point_logits = torch.full((B, K, A, GG), -9.0)
    point_logits.scatter_(3, cell.clamp(min=0)[..., None], 9.0)
    point_offset = torch.full((B, K, A, GG, 2), 0.5)
    centre = torch.stack([(cell % 4 + 0.5) * 2, (cell // 4 + 0.5) * 2], -1).float()
    right = lambda logits, pts: bool(train_mod.first_call_right(  # noqa: E731
        logits, point_logits, point_offset, {"prims": prims, "cells": cell, "s_to_table": torch.eye(3)[None],
                                             "points": pts}, cfg)[0])
    assert right(prim_logits, centre)
    off = centre.clone()
    off[0, 1, 0, 0] += 0.05  # the place is off: still right
    assert right(prim_logits, off)
    off = centre.clone()
    off[0, 0, 0, 0] += 0.015  # the pick 1.5 cm off: right; 3 cm off: wrong
    assert right(prim_logits, off)
    off[0, 0, 0, 0] += 0.015
    assert not right(prim_logits, off)
    ends = prim_logits.clone()
    ends[0, 0] = torch.tensor([1.0, 0.0, 0.0])  # END where the expert picks
    assert not right(ends, centre)


def test_final_holds_the_moving_average_of_the_weights(tmp_path, data_dir):
    # With the average on, final.pt is not the last step's weights (last.pt holds those) but lies
    # between the start and them; with it off, final.pt is the last step.
    on = train(tmp_path / "on", data_dir=data_dir, steps=6, seed=2, ema_decay=0.5, **TINY)
    last = torch.load(tmp_path / "on" / "last.pt", weights_only=True)
    avg = torch.load(on, weights_only=True)
    assert avg["training"]["ema_decay"] == 0.5
    assert any(not torch.equal(avg["model"][k], last["model"][k]) for k in last["model"] if k.endswith("weight"))
    names = [k for k, _ in PlannerNet(NetConfig.from_dict(avg["config"])).named_parameters()]
    assert len(names) == len(last["ema"])
    for k, t in zip(names, last["ema"]):
        torch.testing.assert_close(avg["model"][k], t, rtol=0, atol=0)
    off = train(tmp_path / "off", data_dir=data_dir, steps=6, seed=2, ema_decay=0.0, **TINY)
    last_off = torch.load(tmp_path / "off" / "last.pt", weights_only=True)
    for k, t in torch.load(off, weights_only=True)["model"].items():
        torch.testing.assert_close(t, last_off["model"][k], rtol=0, atol=0)


def test_precision_flags_parse_and_exclude_each_other():
    parser = train_mod.build_parser()
    assert parser.parse_args(["--out", "x"]).bf16 is None
    assert parser.parse_args(["--out", "x", "--fp32"]).bf16 is False
    assert parser.parse_args(["--out", "x", "--bf16"]).bf16 is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x", "--fp32", "--bf16"])


def test_summary_records_precision_and_cpu(tmp_path, data_dir):
    train(tmp_path / "run", data_dir=data_dir, steps=2, seed=1, bf16=False, **TINY)
    summary = json.loads((tmp_path / "run" / "training.json").read_text())
    assert summary["precision"] == "float32" and summary["cpu"]


def test_a_table_view_run_exports_a_table_view_model_and_fine_tunes_keep_it(tmp_path):
    from edgeagent.models.manifest import load_manifest
    from edgeagent.models.runtime import ModelPlanner
    from edgeagent.models.view import View
    from edgeagent.sim.families import generate
    from edgeagent.sim.render import default_camera, render
    from edgeagent.sim.scenario import scenario_from_dict
    from edgeagent.types import Observation

    data = tmp_path / "data"
    ds.generate_dataset(data, families=["pick-place-block"], scenarios=2, seed=4, S=48, G=6, K=3, workers=1,
                        progress=False, view=View("table"))
    final = train(tmp_path / "run", data_dir=data, steps=2, seed=1, view="table", **TINY)
    assert torch.load(final, weights_only=True)["view"]["kind"] == "table"
    export_onnx(final, tmp_path / "model")
    assert load_manifest(tmp_path / "model")[0].view == View("table")
    # The runtime rectifies the frame itself: any camera frame plans (valid calls, or done).
    item = generate(["pick-place-block"], 1, 8)[0]
    camera = default_camera(320, 240)
    frame = render(scenario_from_dict(item).build_world(), camera, None, seed=0)
    plan = ModelPlanner(tmp_path / "model").plan(Observation(frame, camera), item["instruction"])
    assert plan.source == "local" and (plan.calls or plan.done or plan.reason)
    # A fine-tune keeps the view; asking it for another is refused, naming both.
    with pytest.raises(ConfigError, match="--view camera: .* trained on the table view"):
        train(tmp_path / "tune", data_dir=data, steps=1, init=final, view="camera", **TINY)
    # It may widen a table view's square, on data made in the wider view (the old data is refused).
    wide = View("table", half_extent_m=0.42, centre_m=(0.0, 0.05))
    with pytest.raises(ConfigError, match="regenerate the data"):
        train(tmp_path / "wide", data_dir=data, steps=1, init=final, view=wide, **TINY)
    ds.generate_dataset(tmp_path / "wide-data", families=["pick-place-block"], scenarios=2, seed=4, S=48, G=6, K=3,
                        workers=1, progress=False, view=wide)
    tuned = train(tmp_path / "wide", data_dir=tmp_path / "wide-data", steps=1, init=final, view=wide, **TINY)
    assert View.from_dict(torch.load(tuned, weights_only=True)["view"]) == wide


def test_cap_warning_says_where_the_time_cap_stops_training_and_what_to_do():
    # 2 steps/s with 1,000 s left reaches step 2,100 of 8,000: say so, with both ways out.
    note = train_mod.cap_warning(100, 8000, 2.0, 1000.0, 56)
    assert "56-minute cap stops training near step 2,100 of 8,000 (26%)" in note
    assert "--minutes 0 (about 66 more minutes here)" in note and "--steps" in note
    assert train_mod.cap_warning(100, 2000, 2.0, 1000.0, 56) is None  # every step fits


def test_a_run_the_cap_will_cut_short_says_so_early(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setattr(train_mod, "CAP_CHECK_STEPS", 2)
    train(tmp_path / "run", data_dir=data_dir, steps=10**7, seed=1, minutes=0.1, **TINY)
    err = capsys.readouterr().err
    assert "0.1-minute cap stops training near step" in err and "of 10,000,000" in err
    summary = json.loads((tmp_path / "run" / "training.json").read_text())
    assert summary["stopped_early_by_time_budget"] is True
