"""Figure ``train``: what one training step costs on this CPU, and what that buys in an hour.

`edgeagent model train` takes optimizer steps of 64 samples; the issue's budget is one run within
60 minutes. This figure times the step train.py takes (forward through every refinement cycle with
the training-only heads, the loss, backward, AdamW) on a random batch of the training shapes (cost
does not depend on the values), at 1 and 2 torch threads, in the precision train.py would pick on
this CPU (bfloat16 autocast only where the CPU has it in hardware). It also counts the step's
floating-point work (matrix products and convolutions, torch's FlopCounterMode), so the rate can be
set against the CPU's peak: a training run is compute-bound, and on a CPU without bfloat16 the only
ways to more steps per hour are a cheaper network or more cores.

    python benchmarks/run.py --only train
"""

from __future__ import annotations

from typing import Any

from measure import Context, Skip, measure, time_runs, value

BATCH = 64
THREADS = (1, 2)
#: Minutes of training the default run gets after data generation (train.py's 56-minute cap, less about
#: 5 minutes of data): the steps-per-hour row uses it.
TRAIN_MINUTES = 50


def synthetic_batch(cfg, batch: int, seed: int = 0) -> dict[str, Any]:
    """A batch with every key and shape ``models.train.plan_loss`` reads, random values."""
    import torch

    g = torch.Generator().manual_seed(seed)
    K, A, GG = cfg.K, cfg.A, cfg.G * cfg.G

    def ints(hi: int, *shape: int) -> torch.Tensor:
        return torch.randint(0, max(1, hi), shape, generator=g)

    b = {"image": ints(256, batch, cfg.S, cfg.S, 3).to(torch.uint8), "tokens": ints(cfg.vocab_size, batch, cfg.T),
         "prims": ints(cfg.P, batch, K), "cells": ints(GG, batch, K, A), "offsets": torch.rand(batch, K, A, 2, generator=g),
         "points": torch.rand(batch, K, A, 2, generator=g) - 0.5, "objects": ints(cfg.objects, batch, K, A),
         "patch_objects": ints(cfg.objects, batch, GG),
         "s_to_table": torch.eye(3).expand(batch, 3, 3).clone() * 0.01}
    if cfg.ranks:
        b["patch_ranks"] = ints(cfg.ranks, batch, GG, 4)
    if cfg.quadrants:
        b["patch_bowls"] = ints(cfg.quadrants, batch, GG, (cfg.objects - 1) // 2, 2)
    return b


def training_step(net, batch: dict[str, Any], bf16: bool):
    """One optimizer step as train.py takes it; returns a callable that takes another."""
    import torch

    from edgeagent.models.train import plan_loss

    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    net.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outs = net.run(batch["image"], batch["tokens"], net.cfg.cycles, aux=True)
        outs = [[o.float() for o in cyc] for cyc in outs]
        loss, _ = plan_loss(outs, batch, net.cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    return step


def fig_train(ctx: Context) -> dict[str, Any]:
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        raise Skip('timing a training step needs torch: pip install -e ".[bench]"') from None
    from bench_model import checkpoint_or_random

    from edgeagent.cpu import native_bf16
    from edgeagent.models.export import build_net, load_checkpoint

    ckpt, weights = checkpoint_or_random(ctx, ctx.model("fp32"))
    net = build_net(load_checkpoint(ckpt))
    batch = synthetic_batch(net.cfg, BATCH)
    bf16 = native_bf16()
    precision = "bfloat16 autocast" if bf16 else "float32"
    step = training_step(net, batch, bf16)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    reps = ctx.reps(6, 2)
    run = f"{reps} training steps of {BATCH} samples ({precision})"
    rows = [value("work per sample (matrix products and convolutions, forward + backward)", "GFLOP",
                  round(flops / BATCH / 1e9, 3), "torch FlopCounterMode over one step")]
    before = torch.get_num_threads()
    try:
        for threads in THREADS:
            torch.set_num_threads(threads)
            samples = time_runs(step, ctx.runs, reps, warmup=1)
            rows.append(measure(f"training step, {threads} thread{'s' if threads > 1 else ''}", "ms", samples, run))
            rates = [BATCH / (s / 1e3) for s in samples]
            rows.append(measure(f"  samples/s, {threads} thread{'s' if threads > 1 else ''}", "samples/s", rates, run))
            rows.append(measure(f"  achieved, {threads} thread{'s' if threads > 1 else ''}", "GFLOP/s",
                                [flops / (s / 1e3) / 1e9 for s in samples], run))
        last = rows[-3]["median"]
        rows.append(value(f"steps in {TRAIN_MINUTES} min of training, {THREADS[-1]} threads", "steps",
                          int(TRAIN_MINUTES * 60e3 / last), f"{TRAIN_MINUTES} min / the median step above"))
    finally:
        torch.set_num_threads(before)
    notes = [f"network: {weights}; {sum(p.numel() for p in net.parameters()):,} parameters, "
             f"{net.cfg.cycles} refinement cycles, {net.cfg.G * net.cfg.G} patch tokens",
             f"precision: {precision} (train.py's default on this CPU: bfloat16 only where the CPU has it)",
             "the default run (`edgeagent model train`) takes 8,000 steps; the shipped model's chain took about 30,000"]
    return {"title": "One training step (CPU)", "rows": rows, "notes": notes}

