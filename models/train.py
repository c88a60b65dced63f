"""Train the planner on CPU: ``edgeagent model train --out DIR`` (or ``python -m edgeagent.models.train``).

Deterministic by seed: the data order, text augmentation and cycle counts of step ``i`` come from
``numpy.random.default_rng([seed, i])`` (or ``[seed, epoch]``), so a resumed run continues exactly as an
uninterrupted one would; torch runs on 2 threads with a fixed seed. When ``--minutes`` runs out
before ``--steps`` the run stops early (and says so in the summary: the result then depends on speed).

Writes into ``out``: ``data/`` (generated shards, unless ``--data`` is given), ``last.pt`` (atomic
checkpoint, resumed from automatically), ``final.pt`` (weights + config + vocabulary + primitive table +
summary, what ``export_onnx`` reads) and ``training.json`` (command, wall time, data, seed, figures).

Losses, per refinement cycle (deep supervision, so fewer or more cycles still plan):
- primitives: cross-entropy on all K slots (END after the plan ends), slot 0 weighted up;
- points: cross-entropy over the G x G cells against a small Gaussian around the true point, and L1
  on the sub-cell offset at the true cell and its neighbours (targets clipped to the cell), so the
  decoded point is right even when the argmax lands on a neighbouring cell;
- confidence: BCE against whether the cycle's own first call is right (detached): same primitive
  (END included) and every point within 0.02 m of the expert's (a target of the first two calls
  was tried and routed worse: models/README.md, "v5"). That is a strict proxy for success, so a
  command-line run ends by refitting the confidence head on closed-loop rollouts
  (``--confidence-per-family``, models/confidence.py);
- auxiliary (training-only heads): the object each patch shows and the object each slot's point
  lands on, from the simulator's state. They make colour words and pixels meet much sooner.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeagent.cpu import cpu_name, native_bf16
from edgeagent.files import write_json_atomic, write_with_atomic
from edgeagent.models.tokenizer import UNK, Tokenizer, build_vocab
from edgeagent.models.view import View

#: A first call is right when each point lies within this distance (m) of the expert's.
POINT_TOLERANCE_M = 0.02
#: Loss weight of plan slot k: the first call is what the executor runs.
SLOT_WEIGHTS = (2.0, 1.0, 0.6, 0.4)
#: Defaults of a full run, sized for the hour on a 2-core x86 CPU (AVX512-BF16): data generation
#: ~350 states/s with 2 workers (~100k states, ~5 min), training ~190 samples/s (8,000 steps of 64,
#: ~45 min; the 9,000 of the run measured in models/README.md took 51), then the confidence refit
#: (~3 min), so the schedule ends inside the time cap below instead of being cut off mid-decay.
DEFAULT_SCENARIOS = 20000
DEFAULT_STEPS = 8000
#: Transformer layers per refinement cycle of a model trained from scratch.
DEFAULT_LAYERS = 2
#: Wall-time cap of data generation and training, so a slower or busier machine still ends within the
#: hour with the confidence refit (~3 minutes) after it.
DEFAULT_MINUTES = 53.0
#: Scenario weights of a default run: the families whose plans depend on counting, ranking or laying
#: out blocks need more examples than one pick and place (measured on planners v1-v3, models/README.md).
DEFAULT_FAMILY_WEIGHTS = {"rank-from-side": 3.0, "relation-to-bowl": 3.0, "line": 3.0, "corner-relative": 2.0,
                          "stack": 1.5, "offset": 1.2, "all-into-bowl": 1.2}
#: Decay of the moving average of the weights that final.pt holds (about the last 1,000 steps).
DEFAULT_EMA = 0.999
#: Closed-loop rollouts per family that refit the confidence at the end of a command-line run.
DEFAULT_CONFIDENCE_PER_FAMILY = 100
#: Weight of the auxiliary object-classification losses (patches and slot arguments).
AUX_WEIGHT = 1.0
#: Width (in cells) of the Gaussian target around the true point.
HEATMAP_SIGMA = 0.6
#: Words often dropped by the augmentation (they carry no meaning here).
_DROPPABLE = ("a", "the", "that", "is", "which", "please", "it", "and", "to")


#: Steps after which training checks whether the time cap will cut it short (and says so).
CAP_CHECK_STEPS = 30


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data ---------------------------------------------------------------------------------------------
class Batches:
    """Deterministic minibatches with text augmentation; everything derives from (seed, step)."""

    def __init__(self, data: dict[str, Any], tok: Tokenizer, indices: np.ndarray, batch: int, seed: int,
                 augment: bool = True):
        self.data, self.tok, self.idx, self.batch, self.seed, self.augment = data, tok, indices, batch, seed, augment
        self.ids = [tok.ids(t) for t in data["texts"]]
        self.per_epoch = max(1, len(indices) // batch)
        self._perm_epoch, self._perm = -1, indices
        filler = ("please", "now", "carefully", "robot", "ok", "so", "well", "then", "um")
        self.filler_ids = sorted({tok.word_id(w) for w in filler} | {UNK})

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = self.idx[np.random.default_rng([self.seed, 1, epoch]).permutation(len(self.idx))]
            self._perm_epoch = epoch
        return self._perm

    def tokens(self, rows: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        out = np.zeros((len(rows), self.tok.T), np.int64)
        for i, r in enumerate(rows):
            ids = self.ids[r]
            if rng is not None:
                ids = augment_ids(ids, rng, self.filler_ids, self.tok)
            ids = ids[: self.tok.T]
            out[i, : len(ids)] = ids
        return out

    def get(self, step: int) -> dict[str, np.ndarray]:
        epoch, k = divmod(step, self.per_epoch)
        rows = np.sort(self.order(epoch)[k * self.batch:(k + 1) * self.batch])
        rng = np.random.default_rng([self.seed, 2, step]) if self.augment else None
        return self.rows(rows, rng)

    def rows(self, rows: np.ndarray, rng=None) -> dict[str, np.ndarray]:
        d = self.data
        return {"image": d["images"][rows], "tokens": self.tokens(rows, rng), "prims": d["prims"][rows],
                "cells": d["cells"][rows], "offsets": d["offsets"][rows], "points": d["points"][rows],
                "s_to_table": d["s_to_table"][rows], "objects": d["objects"][rows],
                "patch_objects": d["patch_objects"][rows],
                **{k: d[k][rows].astype(np.int64) for k in ("patch_ranks", "patch_bowls") if k in d}}


def augment_ids(ids: list[int], rng: np.random.Generator, filler_ids: list[int], tok: Tokenizer) -> list[int]:
    """Phrasing noise: drop filler words, replace a word by UNK, insert unknown/filler words.

    Teaches the model to read the words that matter and ignore the rest, for phrasings it never saw.
    """
    if rng.random() < 0.3:
        return list(ids)
    droppable = {tok.word_id(w) for w in _DROPPABLE}
    out = []
    for i in ids:
        r = rng.random()
        if i in droppable and r < 0.15:
            continue
        if r > 0.95:  # an unseen synonym: the context must carry the meaning
            out.append(UNK)
            continue
        out.append(i)
        if rng.random() < 0.04:
            out.append(int(rng.choice(filler_ids)))
    if rng.random() < 0.2:
        out.insert(int(rng.integers(0, len(out) + 1)), int(rng.choice(filler_ids)))
    return out


# -- losses -------------------------------------------------------------------------------------------
def plan_loss(outs, batch, cfg, *, cycle_weights=None):
    """Total loss over the cycles' outputs and the final cycle's metrics (dict of floats)."""
    import torch
    import torch.nn.functional as F

    B, K, G = batch["prims"].shape[0], cfg.K, cfg.G
    prims, cells, offsets = batch["prims"], batch["cells"], batch["offsets"]
    valid = cells >= 0  # [B, K, A]
    # True point in grid units and the Gaussian cell target around it.
    g = torch.stack([cells % G, cells // G], -1).float() + offsets  # [B, K, A, 2] (x=col, y=row)
    centres = torch.stack(torch.meshgrid(torch.arange(G), torch.arange(G), indexing="ij")[::-1], -1)
    centres = centres.reshape(-1, 2).float() + 0.5  # [GG, 2], (col, row) + 0.5
    d2 = ((g[:, :, :, None, :] - centres) ** 2).sum(-1)  # [B, K, A, GG]
    heat = torch.softmax(-d2 / (2 * HEATMAP_SIGMA ** 2), -1)
    # Offset targets for every cell (clipped to the cell) and where they count: the true cell's 3x3.
    origin = centres - 0.5
    off_target = (g[:, :, :, None, :] - origin).clamp(0.0, 1.0)  # [B, K, A, GG, 2]
    near = ((g[:, :, :, None, :].floor() - origin).abs().amax(-1) <= 1.0) & valid[..., None]
    slot_w = torch.tensor(SLOT_WEIGHTS[:K] + (SLOT_WEIGHTS[-1],) * max(0, K - len(SLOT_WEIGHTS)))
    vw = valid.float() * slot_w[None, :, None]
    n_cycles = len(outs)
    cycle_weights = cycle_weights or [0.5 + 0.5 * (c + 1) / n_cycles for c in range(n_cycles)]
    total = 0.0
    for out, cw in zip(outs, cycle_weights):
        prim_logits, point_logits, point_offset, conf = out[:4]
        l_prim = (F.cross_entropy(prim_logits.reshape(-1, cfg.P), prims.reshape(-1), reduction="none")
                  .reshape(B, K) * slot_w).sum(1).mean() / slot_w.sum()
        ce = -(heat * F.log_softmax(point_logits, -1)).sum(-1)  # [B, K, A]
        l_point = (ce * vw).sum() / vw.sum().clamp(min=1.0)
        l1 = (point_offset - off_target).abs().sum(-1)  # [B, K, A, GG]
        nw = near.float() * slot_w[None, :, None, None]
        l_off = (l1 * nw).sum() / nw.sum().clamp(min=1.0)
        right = first_call_right(prim_logits, point_logits, point_offset, batch, cfg)
        l_conf = F.binary_cross_entropy(conf[:, 0].clamp(1e-6, 1 - 1e-6), right.float())
        total = total + cw * (l_prim + l_point + 2.0 * l_off + 0.5 * l_conf)
        if len(out) > 4:  # auxiliary object classification (training only)
            patch_cls, slot_cls = out[4], out[5]
            # Most cells show bare table: weight them down so objects dominate the patch loss.
            cls_w = torch.ones(cfg.objects)
            cls_w[0] = 0.2
            l_aux = (F.cross_entropy(patch_cls.reshape(-1, cfg.objects), batch["patch_objects"].reshape(-1),
                                     weight=cls_w)
                     + F.cross_entropy(slot_cls.reshape(-1, cfg.objects), batch["objects"].reshape(-1),
                                       ignore_index=-1))
            if len(out) > 6 and "patch_ranks" in batch:
                l_aux = l_aux + F.cross_entropy(out[6].reshape(-1, cfg.ranks), batch["patch_ranks"].reshape(-1),
                                                ignore_index=-1)
            if len(out) > 7 and "patch_bowls" in batch:
                logits, target = out[7], batch["patch_bowls"]
                for part, lo, hi in ((0, 0, cfg.ranks), (1, cfg.ranks, cfg.ranks + cfg.quadrants)):
                    l_aux = l_aux + F.cross_entropy(logits[..., lo:hi].reshape(-1, hi - lo),
                                                    target[..., part].reshape(-1), ignore_index=-1)
            total = total + cw * AUX_WEIGHT * l_aux
    metrics = {"loss": float(total.detach()) / sum(cycle_weights), "prim": float(l_prim.detach()),
               "point": float(l_point.detach()), "offset": float(l_off.detach()), "conf": float(l_conf.detach()),
               "right": float(right.float().mean())}
    return total / sum(cycle_weights), metrics


def decode_points(point_logits, point_offset, s_to_table, cfg):
    """Argmax cell + offset of every (slot, arg) -> table points [B, K, A, 2] (the contract's decoding)."""
    import torch

    G, S = cfg.G, cfg.S
    cell = point_logits.argmax(-1)  # [B, K, A]
    off = torch.gather(point_offset, 3, cell[..., None, None].expand(*cell.shape, 1, 2))[:, :, :, 0]
    u = (cell % G + off[..., 0]) * (S / G)
    v = (cell // G + off[..., 1]) * (S / G)
    uv1 = torch.stack([u, v, torch.ones_like(u)], -1)  # model-image pixels
    xyw = torch.einsum("bij,bkaj->bkai", s_to_table, uv1)
    return xyw[..., :2] / xyw[..., 2:3]


def first_call_right(prim_logits, point_logits, point_offset, batch, cfg):
    """[B] bool: slot 0's primitive is the expert's (END included) and each of its points is within
    tolerance."""
    import torch

    with torch.no_grad():
        prim_ok = prim_logits[:, 0].argmax(-1) == batch["prims"][:, 0]
        pts = decode_points(point_logits[:, :1], point_offset[:, :1], batch["s_to_table"], cfg)[:, 0]
        err = (pts - batch["points"][:, 0]).norm(dim=-1)  # [B, A]
        valid = batch["cells"][:, 0] >= 0
        pts_ok = ((err <= POINT_TOLERANCE_M) | ~valid).all(-1)
        return prim_ok & pts_ok


def _to_torch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


# -- evaluation ---------------------------------------------------------------------------------------
def evaluate_first_call(net, batches: Batches, rows: np.ndarray, cfg, cycles_list, bs: int = 256) -> dict:
    """First-call accuracy (and confidence stats) on ``rows`` for each cycle count in ``cycles_list``."""
    import torch

    out: dict[str, Any] = {}
    net.eval()
    with torch.no_grad():
        for cyc in cycles_list:
            right, conf = [], []
            for i in range(0, len(rows), bs):
                b = _to_torch(batches.rows(rows[i:i + bs]))
                o = net(b["image"], b["tokens"], cyc)
                right.append(first_call_right(o[0], o[1], o[2], b, cfg).numpy())
                conf.append(o[3][:, 0].numpy())
            r, c = np.concatenate(right), np.concatenate(conf)
            out[str(cyc)] = {"first_call_accuracy": round(float(r.mean()), 4), "confidence": c, "right": r}
    net.train()
    return out


def calibrate_threshold(conf: np.ndarray, right: np.ndarray, precision: float = 0.98, *, upper: float = 0.95,
                        fallback: float = 0.9) -> float:
    """Lowest threshold whose accepted plans are right (``right``) at least ``precision`` of the time,
    clipped to [0.05, ``upper``]; ``fallback`` when none is. ``edgeagent eval --calibrate`` picks one
    closed loop."""
    from edgeagent.harness import lowest_threshold

    found = lowest_threshold(conf, right, precision)
    return fallback if found is None else float(np.clip(found[0], 0.05, upper))


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save, atomically: never a half-written checkpoint."""
    import torch

    write_with_atomic(path, lambda buf: torch.save(obj, buf))


# -- training -----------------------------------------------------------------------------------------
def train(out_dir: str | Path, *, data_dir: str | Path | None = None, steps: int = DEFAULT_STEPS, batch: int = 64,
          lr: float = 2e-3, seed: int = 0, cycles: int = 2, minutes: float | None = None,
          families: list[str] | None = None, scenarios: int = DEFAULT_SCENARIOS, width: int = 128, layers: int | None = None,
          heads: int = 4, S: int = 96, G: int = 12, T: int = 32, K: int = 4, workers: int = 2,
          val_fraction: float = 0.03, ckpt_every_s: float = 120.0, val_every: int = 0, threads: int = 2, bf16: bool | None = None,
          family_weights: dict[str, float] | None = None, init: str | Path | None = None, command: str | None = None,
          ema_decay: float = DEFAULT_EMA, confidence_per_family: int = 0, progress: Callable[[str], None] | None = None,
          policy: str | Path | None = None, policy_share: float | None = None, view: str | View | None = None,
          in_bowl: float = 0.0, crowded: float = 0.0) -> Path:
    """Train a planner into ``out_dir``; returns the path of ``final.pt``.

    Without ``data_dir`` the data is generated into ``out_dir/data`` from ``scenarios`` scenarios of
    ``families`` (default: all) with scenario seeds derived from ``seed`` (always below the held-out
    range), ``family_weights`` giving some families more. Resumes from ``out_dir/last.pt`` when it
    exists and matches these settings.

    ``init`` (a ``final.pt``) fine-tunes that model instead of starting from random weights: its
    network sizes and vocabulary are kept (the size arguments are ignored), and the optimizer starts
    afresh with this run's schedule.

    ``ema_decay`` > 0 keeps an exponential moving average of the weights (warmed up over the first
    steps); validation and ``final.pt`` use the averaged weights, which are smoother than the last
    step's. 0 turns it off.

    ``bf16`` trains under bfloat16 autocast; None (the default) does so only where the CPU has it in
    hardware (``native_bf16``), float32 elsewhere.

    ``policy`` (an exported model folder, usually of the ``init`` model) drives ``policy_share`` (default
    ``dataset.POLICY_SHARE``) of the generated episodes, the expert labelling every state it reaches (DAgger; see ``dataset``).

    ``view`` ("camera", "table" or a ``View``, models/view.py) is what the model sees of a frame; default
    the init's, else "camera". A fine-tune keeps its init's kind of view (a ``View`` may change a table
    view's square), and data of another view is refused.

    ``confidence_per_family`` > 0 ends the run by refitting the confidence head on that many closed-loop
    rollouts per family (``confidence.refit_confidence``); the command line does so by default.
    """
    import torch

    from edgeagent.errors import ConfigError
    from edgeagent.models import dataset as ds
    from edgeagent.models.net import NetConfig, PlannerNet, count_params

    t_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = _load_init(init) if init is not None else None
    if start is not None:
        sizes = NetConfig.from_dict(start["config"])
        S, G, T, K, width, heads = sizes.S, sizes.G, sizes.T, sizes.K, sizes.width, sizes.heads
        if layers is not None and layers < sizes.layers:
            raise ConfigError(f"--layers {layers}: {init} has {sizes.layers} transformer layers; a fine-tune "
                              f"keeps them all (or adds more: --layers {sizes.layers + 1})")
        grown = range(sizes.layers, sizes.layers if layers is None else layers)
        layers = sizes.layers if layers is None else layers
    elif layers is None:
        layers = DEFAULT_LAYERS
    asked = view if isinstance(view, View) or view is None else View(view)
    seen = View.from_dict(start.get("view")) if start is not None else (asked or View())
    if asked is not None and asked.kind != seen.kind:
        raise ConfigError(f"--view {asked.kind}: {init} was trained on the {seen.kind} view and a fine-tune keeps it "
                          f"(drop --view, or train afresh without --init)")
    if isinstance(view, View):
        seen = view
    if (policy is not None or policy_share is not None) and data_dir is not None:
        raise ConfigError(f"--policy drives episodes while data is generated; it cannot be combined with "
                          f"--data {data_dir} (drop one)")
    if data_dir is None:
        data_dir = out / "data"
        if not ds.is_complete(data_dir):
            ds.generate_dataset(data_dir, families=families, scenarios=scenarios, seed=seed, S=S, G=G, K=K,
                                workers=workers, weights=family_weights, policy=policy, policy_share=policy_share,
                                view=seen, in_bowl=in_bowl, crowded=crowded)
    data = ds.load_dataset(data_dir)
    meta = data["meta"]
    made = View.from_dict(meta.get("view"))
    if made != seen:
        raise ConfigError(f"{data_dir}: data was made in the {made.describe()} but training is in the "
                          f"{seen.describe()}; regenerate the data (or pass --view to match)")
    if (meta["S"], meta["G"], meta["K"]) != (S, G, K):
        raise ConfigError(f"{data_dir}: data was made for S={meta['S']}, G={meta['G']}, K={meta['K']} but "
                          f"training asks for S={S}, G={G}, K={K}; regenerate the data or match the sizes")
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if bf16 is None:
        bf16 = native_bf16()
        _log("bfloat16 autocast (this CPU has bfloat16 in hardware)" if bf16 else
             "float32 (this CPU has no AVX512-BF16 or AMX, where bfloat16 would be emulated and ~18x slower)")
    vocab = build_vocab(data["texts"], min_count=2) if start is None else list(start["vocab"])
    tok = Tokenizer(vocab, T)
    primitives = meta["primitives"]
    if start is not None and start["primitives"] != primitives:
        raise ConfigError(f"{init}: the model was trained for primitives {_names(start['primitives'])} but the "
                          f"data in {data_dir} has {_names(primitives)}; regenerate the data or start afresh")
    # The rank and bowl heads are trained when the data has their labels (data made before has none).
    ranks = ds.RANKS if "patch_ranks" in data else 0
    # A fine-tune keeps the init's confidence head (a refit one reads every slot: models/confidence.py).
    cfg = NetConfig(vocab_size=len(vocab), P=1 + len(primitives), S=S, G=G, T=T, K=K, A=meta["A"],
                    width=width, heads=heads, layers=layers, cycles=cycles, ranks=ranks,
                    quadrants=ds.QUADRANTS if ranks and "patch_bowls" in data else 0,
                    confidence=sizes.confidence if start is not None else "slot")
    net = PlannerNet(cfg)
    if start is not None:
        # A model trained without the rank or bowl heads gets fresh ones; every other weight must match.
        missing, unexpected = net.load_state_dict(start["model"], strict=False)
        new_heads = ("aux_rank.", "aux_bowl.", *(f"blocks.{i}." for i in grown))
        bad = [k for k in missing if not k.startswith(new_heads)] + [k for k in unexpected
                                                                     if not k.startswith(new_heads)]
        if bad:
            raise ConfigError(f"--init {init}: its weights do not fit the network ({', '.join(bad[:4])}...)")
        if grown:
            _grow(net, grown)
            _log(f"added transformer layer{'s' if len(grown) > 1 else ''} {', '.join(str(i + 1) for i in grown)} "
                 f"to the {grown.start} of {init}, starting as identities")
        before = start.get("training", {})
        if "averaged" in before:
            _log(f"fine-tuning {init} (an average of {len(before['averaged'])} checkpoints)")
        else:
            _log(f"fine-tuning {init} ({before.get('steps', '?')} steps before)")
    val_mask = _validation_mask(data["scenario"], data["family"], val_fraction)
    train_rows, val_rows = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    batches = Batches(data, tok, train_rows, batch, seed)
    plain = Batches(data, tok, val_rows, batch, seed, augment=False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.05, betas=(0.9, 0.98))
    warmup = min(500, max(1, steps // 20))

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        return lr * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup)))))

    settings = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "cycles": cycles, "bf16": bf16,
                "ema": ema_decay, "init": str(init) if init is not None else None,
                "config": cfg.to_dict(), "view": seen.to_dict(),
                "data": meta.get("description", str(data_dir))}
    step, trained_s = 0, 0.0
    params = list(net.parameters())
    avg = [p.detach().clone() for p in params] if ema_decay > 0 else None
    last = out / "last.pt"
    if last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        if ck.get("settings") == settings and ck.get("vocab") == vocab:
            net.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if avg is not None:
                avg = [t.clone() for t in ck["ema"]]
            step, trained_s = int(ck["step"]), float(ck.get("trained_s", 0.0))
            _log(f"resuming from {last} at step {step}")
        else:
            _log(f"{last} was written with other settings or data; starting afresh")

    say = progress or (lambda line: print(line, end="", file=sys.stderr, flush=True))
    _log(f"training {count_params(net):,} parameters on {len(train_rows):,} samples "
         f"({len(val_rows):,} held out), vocab {len(vocab)}, {steps} steps of {batch}, cycles {cycles}")
    deadline = None if not minutes else t_start + 60.0 * minutes
    smooth: dict[str, float] = {}
    t_loop, step0, t_ckpt, t_print = time.time(), step, time.time(), 0.0
    stopped_early = False
    net.train()
    while step < steps:
        if deadline is not None and time.time() >= deadline:
            stopped_early = True
            break
        b = _to_torch(batches.get(step))
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step)
        # bfloat16 matmuls run about 1.5x faster on CPUs with AVX512-BF16; weights stay float32.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outs = net.run(b["image"], b["tokens"], cycles, aux=True)
        outs = [[o.float() for o in cyc] for cyc in outs]
        loss, m = plan_loss(outs, b, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if avg is not None:
            keep = min(ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for a, p in zip(avg, params):
                    a.lerp_(p, 1.0 - keep)
        step += 1
        for k, v in m.items():
            smooth[k] = v if k not in smooth else 0.98 * smooth[k] + 0.02 * v
        now = time.time()
        if now - t_print >= (2.0 if sys.stderr.isatty() else 15.0) or step == steps:
            t_print = now
            rate = (step - step0) * batch / max(1e-9, now - t_loop)
            eta = (steps - step) * batch / max(rate, 1e-9)
            if deadline is not None:
                eta = min(eta, max(0.0, deadline - now))
            line = (f"step {step}/{steps}  loss {smooth['loss']:.3f}  first-call right {smooth['right']:.3f}  "
                    f"{rate:.0f} samples/s  ETA {_hms(eta)}")
            say(("\r" + line + "\033[K") if sys.stderr.isatty() else line + "\n")
        if deadline is not None and step - step0 == CAP_CHECK_STEPS:
            note = cap_warning(step, steps, (step - step0) / max(1e-9, now - t_loop), deadline - now, minutes)
            if note:
                _log(("\n" if sys.stderr.isatty() else "") + note)
        if val_every and step % val_every == 0 and len(val_rows):
            _swap(params, avg)
            v = evaluate_first_call(net, plain, val_rows, cfg, [cycles])[str(cycles)]
            _swap(params, avg)
            net.train()
            fam = _per_family(v["right"], data["family"][val_rows])
            _log(f"\nstep {step}: held-out first-call accuracy {v['first_call_accuracy']:.3f}  "
                 + " ".join(f"{f}={a:.2f}" for f, a in fam.items()))
        if now - t_ckpt >= ckpt_every_s:
            t_ckpt = now
            save_atomic({"settings": settings, "vocab": vocab, "model": net.state_dict(),
                         "optimizer": opt.state_dict(), "step": step, "ema": avg,
                         "trained_s": trained_s + now - t_loop}, last)
    if sys.stderr.isatty():
        say("\n")
    trained_s += time.time() - t_loop
    save_atomic({"settings": settings, "vocab": vocab, "model": net.state_dict(), "optimizer": opt.state_dict(),
                 "step": step, "ema": avg, "trained_s": trained_s}, last)
    _swap(params, avg)  # from here on the net holds the averaged weights (validated and saved)

    # Held-out first-call accuracy per cycle count, and a confidence threshold from it.
    cycles_list = sorted({1, cycles, cycles + 1, cycles + 2})
    val = evaluate_first_call(net, plain, val_rows, cfg, cycles_list) if len(val_rows) else {}
    threshold = (calibrate_threshold(val[str(cycles)]["confidence"], val[str(cycles)]["right"])
                 if val else 0.5)
    figures = {c: {"first_call_accuracy": v["first_call_accuracy"],
                   "accepted_at_threshold": round(float((v["confidence"] >= threshold).mean()), 4),
                   "per_family": _per_family(v["right"], data["family"][val_rows])}
               for c, v in val.items()}
    wall = time.time() - t_start
    summary = {
        "command": command or "edgeagent.models.train.train(" + ", ".join(
            f"{k}={v!r}" for k, v in (("out_dir", str(out)), ("steps", steps), ("batch", batch), ("seed", seed),
                                      ("cycles", cycles))) + ")",
        "wall_time_s": round(wall, 1), "train_time_s": round(trained_s, 1),
        "data": meta.get("description", str(data_dir)), "data_dir": str(data_dir),
        "samples": int(len(train_rows)), "val_samples": int(len(val_rows)), "seed": seed,
        "steps": step, "steps_planned": steps, "stopped_early_by_time_budget": stopped_early,
        "batch": batch, "lr": lr, "cycles": cycles, "ema_decay": ema_decay, "parameters": count_params(net),
        "precision": "bfloat16" if bf16 else "float32", "cpu": cpu_name(), "threads": threads,
        "init": None if start is None else {"from": str(init), "training": start.get("training", {})},
        "view": seen.to_dict(), "val_first_call": figures, "confidence_threshold": threshold,
        "final_loss": round(smooth.get("loss", float("nan")), 4),
    }
    final = out / "final.pt"
    save_atomic({"config": cfg.to_dict(), "model": net.state_dict(), "vocab": vocab, "primitives": primitives,
                 "view": seen.to_dict(), "cycles": cycles, "confidence_threshold": threshold, "training": summary}, final)
    write_json_atomic(out / "training.json", summary)
    _log(f"trained in {_hms(wall)}: {step} steps, held-out first-call accuracy "
         + ", ".join(f"{c} cycles {v['first_call_accuracy']:.3f}" for c, v in figures.items()))
    if confidence_per_family > 0:
        from edgeagent.models.confidence import refit_confidence

        _log(f"refitting the confidence on {confidence_per_family} closed-loop rollouts per family")
        summary["confidence"] = refit_confidence(final, final, per_family=confidence_per_family, families=families)
        summary["confidence_threshold"] = summary["confidence"]["threshold"]["value"]
        summary["wall_time_s"] = round(time.time() - t_start, 1)
        write_json_atomic(out / "training.json", summary)
    _log(f"done in {_hms(time.time() - t_start)}; wrote {final}")
    return final


def _swap(params: list, avg: list | None) -> None:
    """Exchange the network's weights with the moving average (no-op without one)."""
    if avg is None:
        return
    import torch

    with torch.no_grad():
        for p, a in zip(params, avg):
            tmp = p.detach().clone()
            p.copy_(a)
            a.copy_(tmp)


def cap_warning(step: int, steps: int, steps_per_s: float, seconds_left: float, minutes: float) -> str | None:
    """What to tell the user when the time cap will stop training short of ``steps``; None when it will not."""
    reach = step + int(steps_per_s * max(0.0, seconds_left))
    if reach >= steps:
        return None
    need = (steps - step) / max(steps_per_s, 1e-9) / 60.0
    return (f"note: at {steps_per_s:.2f} steps/s the {minutes:g}-minute cap stops training near step {reach:,} of "
            f"{steps:,} ({reach / steps:.0%}); fewer steps give a weaker planner (models/README.md, \"The one-hour "
            f"run\"). To train them all, pass --minutes 0 (about {need:.0f} more minutes here) or fewer --steps.")


def _validation_mask(scenario: np.ndarray, family: np.ndarray, fraction: float) -> np.ndarray:
    """Rows held out for validation: whole scenarios (so near-duplicate frames never leak), the last
    ``fraction`` of each family's (so weighted families do not crowd the others out of it)."""
    held = []
    for fam in np.unique(family):
        uniq = np.unique(scenario[family == fam])
        n = max(1, int(round(len(uniq) * fraction))) if len(uniq) > 1 and fraction > 0 else 0
        if n:
            held.extend(uniq[len(uniq) - n:])
    return np.isin(scenario, held)


def _grow(net, layers: range) -> None:
    """Make the transformer layers ``layers`` of ``net`` identities: their residual branches' output
    projections start at zero, so the grown network plans exactly as the one it was loaded from and
    the new layers learn from there (their gradients are not zero: each projection sees its input)."""
    import torch

    with torch.no_grad():
        for i in layers:
            for lin in (net.blocks[i].attn.out, net.blocks[i].proj):
                lin.weight.zero_()
                lin.bias.zero_()


def _load_init(path: str | Path) -> dict[str, Any]:
    """The checkpoint a fine-tuning run starts from (a ``final.pt``), with a clear error otherwise."""
    import torch

    from edgeagent.errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--init {p}: no such file; give a final.pt written by 'edgeagent model train' "
                          "(the shipped one is models/shipped/final.pt)")
    ck = torch.load(p, map_location="cpu", weights_only=True)
    missing = [k for k in ("config", "model", "vocab", "primitives") if k not in ck]
    if missing:
        raise ConfigError(f"--init {p}: not a final.pt of 'edgeagent model train' (lacks {', '.join(missing)}); "
                          "last.pt files are resumed automatically by training into their folder instead")
    return ck


def _names(prims: list[dict]) -> str:
    return "[" + ", ".join(p["name"] for p in prims) + "]"


def _per_family(right: np.ndarray, family: np.ndarray) -> dict[str, float]:
    return {f: round(float(right[family == f].mean()), 3) for f in sorted(set(family.tolist()))}


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# -- command line -------------------------------------------------------------------------------------
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Options of ``edgeagent model train`` (added to ``parser`` when given)."""
    p = parser or argparse.ArgumentParser(prog="edgeagent model train", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for data, checkpoints, final.pt and training.json")
    p.add_argument("--data", default=None, help="existing dataset folder (default: generate into OUT/data)")
    p.add_argument("--families", default=None, help="comma-separated task families (default: all)")
    p.add_argument("--family-weights", default=None, metavar="F=W,...",
                   help="relative number of scenarios per family, e.g. line=3,stack=2, or 'uniform' (default: "
                        + ",".join(f"{f}={w:g}" for f, w in DEFAULT_FAMILY_WEIGHTS.items()) + ", others 1)")
    p.add_argument("--init", default=None, metavar="FINAL_PT",
                   help="fine-tune this trained model (a final.pt) instead of starting from random weights")
    p.add_argument("--view", choices=("camera", "table"), default=None,
                   help="what the model sees of a frame (models/view.py): the frame squeezed to S x S, or the table "
                        "rectified top-down through the camera model (default: --init's view, else camera)")
    p.add_argument("--view-extent", type=float, default=None, metavar="M",
                   help="table view: half the side of the square of table shown, metres (default 0.34)")
    p.add_argument("--view-centre", default=None, metavar="X,Y",
                   help="table view: the table point at the view's centre, metres (default 0,0)")
    p.add_argument("--policy", default=None, metavar="MODEL_DIR",
                   help="an exported model (e.g. of --init) that drives --policy-share of the generated episodes, "
                        "the expert labelling the states it reaches, so the data shows the model's own mistakes")
    p.add_argument("--policy-share", type=float, default=None, metavar="P",
                   help="share of episodes --policy drives (default: half)")
    p.add_argument("--start-in-bowl", type=float, default=0.0, metavar="P",
                   help="share of the pick-and-place scenes whose block to move starts inside a bowl (default 0; "
                        "the generator never starts one so)")
    p.add_argument("--crowded", type=float, default=0.0, metavar="P",
                   help="share of the scenes that name their objects (pick and place, offset, named stacks) "
                        "given more blocks and bowls around them, up to 7 and 4 (default 0; the generator "
                        "draws at most 5 and 4)")
    p.add_argument("--scenarios", type=int, default=DEFAULT_SCENARIOS,
                   help=f"scenarios to generate data from (default {DEFAULT_SCENARIOS}, about 5 states each)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"optimizer steps (default {DEFAULT_STEPS})")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cycles", type=int, default=2, help="refinement cycles trained (and exported by default)")
    p.add_argument("--minutes", type=float, default=DEFAULT_MINUTES,
                   help="stop training this many minutes after the start, data generation included "
                        f"(default {DEFAULT_MINUTES:g}, so the whole run ends within the hour; 0 = no limit)")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--layers", type=int, default=None,
                   help=f"transformer layers per cycle (default {DEFAULT_LAYERS}; with --init: the init's, or more "
                        "to add layers that start as identities)")
    p.add_argument("--workers", type=int, default=2, help="processes generating data")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--val-every", type=int, default=1000, help="report held-out accuracy every N steps (0: never)")
    p.add_argument("--ema", type=float, default=DEFAULT_EMA,
                   help=f"decay of the weights' moving average saved as final.pt (default {DEFAULT_EMA:g}; 0: off)")
    p.add_argument("--confidence-per-family", type=int, default=DEFAULT_CONFIDENCE_PER_FAMILY, metavar="N",
                   help="finally refit the confidence on N closed-loop rollouts per task family (default "
                        f"{DEFAULT_CONFIDENCE_PER_FAMILY}, about 3 minutes; 0: keep the confidence trained on first calls)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp32", dest="bf16", action="store_false", default=None,
                           help="train in float32 (default: bfloat16 autocast where the CPU has it in hardware, "
                                "AVX512-BF16 or AMX, else float32)")
    precision.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                           help="train under bfloat16 autocast even where the CPU emulates it")
    return p


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``"line=3,stack=2"`` -> {"line": 3.0, "stack": 2.0}; None for None, empty or ``uniform``."""
    from edgeagent.errors import ConfigError

    if not text or text.strip() == "uniform":
        return None
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, eq, value = part.partition("=")
        try:
            w = float(value)
        except ValueError:
            w = float("nan")
        if not part or not eq or not name.strip() or not w > 0:
            raise ConfigError(f"--family-weights: {part!r} is not FAMILY=WEIGHT with a weight > 0 "
                              "(e.g. --family-weights line=3,rank-from-side=2)")
        out[name.strip()] = w
    return out


def family_weights(text: str | None, families: list[str] | None) -> dict[str, float] | None:
    """The weights a run uses: ``--family-weights`` when given, else the defaults of the families
    being generated (``families``; None: all)."""
    if text is not None:
        return parse_weights(text)
    return {f: w for f, w in DEFAULT_FAMILY_WEIGHTS.items() if families is None or f in families} or None


def view_arg(args: argparse.Namespace):
    """``--view`` with ``--view-extent`` / ``--view-centre``: a kind, a table ``View``, or None (the init's)."""
    from edgeagent.errors import ConfigError

    if args.view_extent is None and args.view_centre is None:
        return args.view
    if args.view != "table":
        raise ConfigError("--view-extent and --view-centre shape the table view; add --view table")
    geometry: dict = {}
    if args.view_extent is not None:
        geometry["half_extent_m"] = args.view_extent
    if args.view_centre is not None:
        try:
            geometry["centre_m"] = tuple(float(v) for v in args.view_centre.split(","))
        except ValueError:
            raise ConfigError(f"--view-centre {args.view_centre!r}: give X,Y in metres, e.g. 0,0.06") from None
    try:
        return View("table", **geometry)
    except ValueError as exc:
        raise ConfigError(f"--view-extent/--view-centre: {exc}") from None


def run_args(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    weights = family_weights(args.family_weights, families)
    command = "edgeagent model train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    train(args.out, data_dir=args.data, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
          cycles=args.cycles, minutes=args.minutes, families=families, scenarios=args.scenarios,
          width=args.width, layers=args.layers, workers=args.workers, threads=args.threads, bf16=args.bf16,
          val_every=args.val_every, family_weights=weights, init=args.init, ema_decay=args.ema,
          confidence_per_family=args.confidence_per_family, policy=args.policy, policy_share=args.policy_share,
          view=view_arg(args), in_bowl=args.start_in_bowl, crowded=args.crowded, command=command)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m edgeagent.models.train --out DIR [...]``."""
    args = build_parser().parse_args(argv)
    return run_args(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
