"""The ``train`` benchmark times the step train.py takes: its random batch must carry every key the
training loss reads, for every head the network may have, or the figure breaks (or times a different step)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_train import synthetic_batch, training_step  # noqa: E402

from edgeagent.models.net import NetConfig, PlannerNet  # noqa: E402


@pytest.mark.parametrize("heads", [{}, {"ranks": 5}, {"ranks": 5, "quadrants": 4}])
def test_a_benchmark_step_is_a_training_step_of_the_network(heads):
    torch.manual_seed(0)
    cfg = NetConfig(vocab_size=40, P=5, S=48, G=6, T=8, K=2, A=2, width=32, heads=2, layers=1, stem=(8,),
                    confidence="plan", **heads)
    net = PlannerNet(cfg)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    training_step(net, synthetic_batch(cfg, 4), bf16=False)()
    after = dict(net.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert len(changed) > len(before) // 2  # the loss reached most of the network
    assert all(torch.isfinite(p).all() for p in after.values())
    # The training-only heads the network has get their targets from the batch too.
    for head in ("aux_patch", "aux_rank", "aux_bowl"):
        if getattr(net, head) is not None:
            assert f"{head}.weight" in changed, head
