"""Refitting the confidence on closed-loop rollouts: only the confidence changes, and it is exported."""

import itertools

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgeagent.cli import main
from edgeagent.harness import lowest_threshold
from edgeagent.models.confidence import auroc, margin, refit_confidence
from edgeagent.models.export import build_net, export_onnx, load_checkpoint
from edgeagent.models.runtime import SHIPPED

SHIPPED_CKPT = SHIPPED / "final.pt"


def test_auroc_counts_correctly_ordered_pairs_with_ties_as_half():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 6, 40).astype(float)  # many ties
    ok = rng.random(40) < 0.6
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0)
             for p, n in itertools.product(score[ok], score[~ok])]
    assert auroc(score, ok) == pytest.approx(np.mean(pairs))
    assert auroc(np.arange(4.0), np.array([0, 0, 1, 1], bool)) == 1.0
    assert np.isnan(auroc(np.arange(3.0), np.ones(3, bool)))


def test_margin_asks_two_standard_errors_over_the_target():
    # 1,000 plans in order of confidence: the top 500 succeed, then every 25th fails, the last 100 all fail.
    conf = np.linspace(1.0, 0.0, 1000)
    ok = np.ones(1000, bool)
    ok[510:900:25] = False
    ok[900:] = False
    exact, n, _ = lowest_threshold(conf, ok, 0.98)
    m = margin(conf, ok, 0.98)
    assert m["standard_error"] == pytest.approx(np.sqrt(0.98 * 0.02 / n), abs=1e-4)
    with_margin = lowest_threshold(conf, ok, 0.98 + 2 * m["standard_error"])[0]
    assert m["with_margin"] == pytest.approx(with_margin, abs=1e-4) and with_margin > exact
    assert margin(conf, np.zeros(1000, bool), 0.98) == {"standard_error": None, "with_margin": None}


@pytest.fixture(scope="module")
def refit(tmp_path_factory):
    out = tmp_path_factory.mktemp("conf") / "final.pt"
    report = refit_confidence(SHIPPED_CKPT, out, per_family=5, families=["pick-place-block", "stack"],
                              progress=False)
    return out, report


def test_refit_reports_the_rollouts_and_keeps_the_better_head(refit):
    out, report = refit
    ck = load_checkpoint(out)
    assert ck["training"]["confidence"] == report
    assert report["scenarios"] == 10 and report["plan_requests"] >= 10
    assert report["validation"]["episodes"] == 2
    # The head kept is the one the checkpoint's network reads with.
    assert ck["config"]["confidence"] == ("plan" if report["kept"] == "new" else "slot")
    assert 0.05 <= ck["confidence_threshold"] <= 0.999
    assert ck["confidence_threshold"] == report["threshold"]["value"]
    assert {"standard_error", "with_margin"} <= set(report["threshold"])


def test_refit_changes_only_the_confidence_and_exports_it(refit, tmp_path):
    out, _ = refit
    old, new = build_net(load_checkpoint(SHIPPED_CKPT)), build_net(load_checkpoint(out))
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8))
    tokens = torch.from_numpy(rng.integers(2, 50, (3, 32))).long()
    with torch.no_grad():
        a, b = old(image, tokens), new(image, tokens)
    for x, y in zip(a[:3], b[:3]):  # primitive, point and offset outputs: the plans
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    onnx_path = export_onnx(out, tmp_path / "fp32")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    conf = sess.run(["confidence"], {"image": image[:1].numpy(), "tokens": tokens[:1].numpy()})[0]
    np.testing.assert_allclose(conf, b[3][:1].numpy(), atol=1e-4)


@pytest.mark.parametrize("args, match", [
    (["--head", "words"], "--head must be one of slot, plan"),
    (["--per-family", "2"], "--per-family must be at least 5"),
])
def test_command_refuses_bad_options_and_writes_nothing(tmp_path, capsys, args, match):
    out = tmp_path / "out.pt"
    assert main(["model", "confidence", str(SHIPPED_CKPT), "--out", str(out), *args]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_progress_lines_in_a_log_come_every_so_many_items_and_at_the_end(capsys):
    from edgeagent.models.confidence import _progress_line

    for i in range(1, 13):
        _progress_line(i, 12, elapsed=i / 4, label="FP32 features", unit="plan requests", every=5)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"FP32 features: {n}/12 plan requests, 4.0/s, ETA {e}s" for n, e in ((5, 2), (10, 1), (12, 0))]
