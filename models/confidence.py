"""Refit the planner's confidence on closed-loop outcomes (``edgeagent model confidence``).

Training teaches the confidence head whether the first call matches the expert's. That is a strict
proxy: a plan that lays a line's blocks in another order, or puts a block a little beside the
expert's spot, still succeeds, so many good plans get a low confidence and a router sends them away
for nothing. What a router needs is P(the instruction gets carried out | this plan). This stage
measures exactly that on the simulator:

1. export the checkpoint, quantize it as the robot runs it (INT8), and run that closed loop on fresh
   scenarios (generator seeds apart from training, the held-out sets and the calibration set),
   recording for every plan request its inputs, the confidence head's input and whether that
   episode ended in success;
2. compute the head's input for the same requests with the FP32 model too (INT8 shifts the features
   a little, and one head serves both precisions);
3. fit the head alone (binary cross-entropy against the episode's outcome, both views of every
   request) on 80% of the episodes, stopping on the other 20%, and keep it only when it beats the
   old head there. The rest of the network is untouched, so the plans do not change.

The head reads either the first slot's features ("slot", as trained) or every slot's features and
how peaked each primitive and point distribution is ("plan", the default here; NetConfig.confidence).
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeagent.errors import ConfigError
from edgeagent.files import write_with_atomic

#: Generator seed of the rollout scenarios: training uses seeds below 1,000,000, the held-out sets
#: 1,000,001 and the calibration set 2,000,001.
ROLLOUT_SEED = 3_000_001
#: Scenarios per task family rolled out by default.
DEFAULT_PER_FAMILY = 100
#: Success rate the threshold recorded in the checkpoint aims at (on the validation episodes).
TARGET_SUCCESS = 0.98
#: Name of the extra graph output that exposes the confidence head's input during rollouts.
FEATURES = "confidence_features"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Recorder:
    """An engine wrapper that keeps every request's feeds and the confidence head's input."""

    def __init__(self, inner):
        self.inner, self.provider = inner, inner.provider
        self.rows: list[tuple[dict[str, np.ndarray], np.ndarray]] = []

    def run(self, feeds):
        out = self.inner.run(feeds)
        self.rows.append(({k: np.array(v) for k, v in feeds.items()}, np.array(out[FEATURES][0])))
        return out


def expose_features(onnx_path: Path, out_path: Path) -> Path:
    """A copy of ``onnx_path`` that also outputs the confidence head's input as ``FEATURES``.

    The head is the ``/heads/conf/`` MLP of net.Heads; its first layer's input is what it reads.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    first = [n for n in model.graph.node if "/heads/conf/conf.0/" in n.name and n.op_type in ("Gemm", "MatMul")]
    if len(first) != 1:
        raise ValueError(f"{onnx_path}: cannot find the confidence head's first layer (/heads/conf/conf.0/)")
    identity = helper.make_node("Identity", [first[0].input[0]], [FEATURES], name="expose_confidence_features")
    model.graph.node.append(identity)
    model.graph.output.append(helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(out_path))
    return out_path


def rollouts(model_dir: str | Path, exposed: str | Path, scenarios: list, *,
             progress: Callable[[int, int, float], None] | None = None) -> dict[str, np.ndarray]:
    """Run the model in ``model_dir`` closed loop on ``scenarios``; one row per plan request.

    ``exposed`` is that model with the confidence head's input as an extra output (``expose_features``).
    Returns ``image`` uint8 [N, S, S, 3], ``tokens`` int64 [N, T], ``features`` float32 [N, F],
    ``episode`` [N] (index into ``scenarios``), ``step`` [N] (the request's place in its episode) and
    ``success`` [N] (whether that episode succeeded).
    """
    from edgeagent.harness import run_scenario
    from edgeagent.jetson.providers import OrtBackend
    from edgeagent.models.runtime import ModelPlanner

    rec = _Recorder(OrtBackend(exposed))
    planner = ModelPlanner(model_dir, backend=rec)
    rows: dict[str, list] = {"image": [], "tokens": [], "features": [], "episode": [], "step": [], "success": []}
    t0 = time.perf_counter()
    for i, sc in enumerate(scenarios):
        rec.rows.clear()
        result, _ = run_scenario(sc, lambda scenario, robot: planner)
        for j, (feeds, feat) in enumerate(rec.rows):
            rows["image"].append(feeds["image"][0])
            rows["tokens"].append(feeds["tokens"][0])
            rows["features"].append(feat)
            rows["episode"].append(i)
            rows["step"].append(j)
            rows["success"].append(bool(result.success))
        if progress is not None:
            progress(i + 1, len(scenarios), time.perf_counter() - t0)
    if not rows["image"]:
        raise ValueError("the rollouts made no plan requests (no scenarios?)")
    return {"image": np.stack(rows["image"]), "tokens": np.stack(rows["tokens"]).astype(np.int64),
            "features": np.stack(rows["features"]).astype(np.float32),
            "episode": np.asarray(rows["episode"]), "step": np.asarray(rows["step"]),
            "success": np.asarray(rows["success"])}


def features_of(exposed: str | Path, image: np.ndarray, tokens: np.ndarray, *,
                progress: Callable[[int, int, float], None] | None = None) -> np.ndarray:
    """The confidence head's input for each row, from another exposed model (e.g. the FP32 one)."""
    from edgeagent.jetson.providers import OrtBackend

    backend = OrtBackend(exposed)
    rows, t0 = [], time.perf_counter()
    for i in range(len(image)):
        rows.append(backend.run({"image": image[i:i + 1], "tokens": tokens[i:i + 1]})[FEATURES][0])
        if progress is not None:
            progress(i + 1, len(image), time.perf_counter() - t0)
    return np.stack(rows).astype(np.float32)


def auroc(score: np.ndarray, ok: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` separating ``ok`` from not (ties count half); NaN when
    one class is missing."""
    score, ok = np.asarray(score, float), np.asarray(ok, bool)
    pos, neg = int(ok.sum()), int((~ok).sum())
    if not pos or not neg:
        return float("nan")
    # Rank of each score (1-based), tied scores sharing their group's average rank.
    _, group, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[group]
    return float((ranks[ok].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _num(x: float) -> float | None:
    """A figure for JSON: rounded, None for NaN."""
    return None if not math.isfinite(x) else round(float(x), 4)


def _logloss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def fit_head(head, X: np.ndarray, y: np.ndarray, val: np.ndarray, *, seed: int = 0, epochs: int = 300,
             patience: int = 25, lr: float = 1e-3, weight_decay: float = 1e-2):
    """Train ``head`` (a torch module, logits out) on rows ``~val`` and stop on rows ``val``.

    Returns the best module (a copy; ``head`` itself is left untouched) and its validation log loss.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(head)
    for p in model.parameters():
        p.requires_grad_(True)
    Xt, yt = torch.from_numpy(X[~val]), torch.from_numpy(y[~val].astype(np.float32))
    Xv, yv = torch.from_numpy(X[val]), y[val].astype(np.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def val_loss(m) -> float:
        with torch.no_grad():
            return _logloss(torch.sigmoid(m(Xv)[:, 0]).numpy(), yv)

    best, best_loss, since = copy.deepcopy(model), val_loss(model), 0
    for _ in range(epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(Xt)), max(1, len(Xt) // 512)):
            idx = torch.from_numpy(idx)
            loss = F.binary_cross_entropy_with_logits(model(Xt[idx])[:, 0], yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        cur = val_loss(model)
        if cur < best_loss - 1e-5:
            best, best_loss, since = copy.deepcopy(model), cur, 0
        else:
            since += 1
            if since >= patience:
                break
    return best.eval(), best_loss


def margin(conf: np.ndarray, ok: np.ndarray, target: float) -> dict[str, Any]:
    """The standard error of a success rate of ``target`` over the plans that clear the threshold picked at
    exactly ``target``, and the threshold that asks for two standard errors more (None when none
    reaches it): a threshold placed at the target lands below it on new tasks about half the time."""
    from edgeagent.harness import lowest_threshold, standard_error

    found = lowest_threshold(conf, ok, target)
    if found is None:
        return {"standard_error": None, "with_margin": None}
    se = standard_error(target, found[1])
    asked = target + 2.0 * se
    better = lowest_threshold(conf, ok, asked) if asked < 1.0 else None
    return {"standard_error": round(se, 4), "with_margin": None if better is None else round(better[0], 4)}


def rollout_scenarios(per_family: int, seed: int, families: list[str] | None = None) -> list:
    from edgeagent.sim.families import generate
    from edgeagent.sim.scenario import scenario_from_dict

    return [scenario_from_dict(d, source=f"<rollout seed {seed}>", index=i)
            for i, d in enumerate(generate(families, per_family, seed))]


def refit_confidence(checkpoint: str | Path, out: str | Path, *, per_family: int = DEFAULT_PER_FAMILY,
                     seed: int = ROLLOUT_SEED, head: str = "plan", families: list[str] | None = None,
                     progress: bool = True, keep: str | Path | None = None) -> dict[str, Any]:
    """Refit the confidence head of ``checkpoint`` (a final.pt) on closed-loop rollouts; write ``out``.

    ``out`` gets the same checkpoint with the new head (and ``confidence_threshold`` recalibrated to
    ``TARGET_SUCCESS`` on the validation episodes), or the old head when the new one is no better on
    them. Returns the report also stored in the checkpoint's training summary under ``confidence``.
    ``keep`` names an .npz file to save the rollouts' features and outcomes in (for analysis).
    """
    import torch

    from edgeagent.models.export import build_net, export_onnx, load_checkpoint
    from edgeagent.models.net import CONFIDENCE_INPUTS, NetConfig, PlannerNet
    from edgeagent.models.quantize import quantize
    from edgeagent.models.train import calibrate_threshold, save_atomic

    if head not in CONFIDENCE_INPUTS:
        raise ConfigError(f"--head must be one of {', '.join(CONFIDENCE_INPUTS)}, got {head!r}")
    if per_family < 5:
        raise ConfigError(f"--per-family must be at least 5 (a fifth of the episodes validate), got {per_family}")
    t0 = time.time()
    ck = load_checkpoint(checkpoint)
    old = build_net(ck)
    if old.cfg.confidence == "plan" and head != "plan":
        raise ConfigError(f"{checkpoint}: its confidence head reads the whole plan; refit it as --head plan")
    cfg = NetConfig.from_dict({**ck["config"], "confidence": head})
    net = PlannerNet(cfg)
    missing, unexpected = net.load_state_dict(
        ck["model"] if head == old.cfg.confidence
        else {k: v for k, v in ck["model"].items() if not k.startswith("heads.conf.")}, strict=False)
    if unexpected or any(not k.startswith("heads.conf.") for k in missing):
        raise ConfigError(f"{checkpoint}: its weights do not fit the network ({', '.join((missing + unexpected)[:4])})")
    scenarios = rollout_scenarios(per_family, seed, families)
    with tempfile.TemporaryDirectory(prefix="edgeagent-confidence-") as tmp:
        # The model with the new head's input wired up (its weights are the old ones but for the head,
        # so it plans exactly as the checkpoint does), in FP32 and in INT8 as the robot runs it.
        tmp = Path(tmp)
        save_atomic({**ck, "config": cfg.to_dict(), "model": net.state_dict()}, tmp / "start.pt")
        export_onnx(tmp / "start.pt", tmp / "fp32")
        _log("quantizing for the rollouts")
        quantize(tmp / "fp32", tmp / "int8")
        exposed = {p: expose_features(tmp / p / "planner.onnx", tmp / f"{p}-features.onnx") for p in ("fp32", "int8")}
        data = rollouts(tmp / "int8", exposed["int8"], scenarios, progress=_progress_line if progress else None)
        _log(f"the FP32 model's view of {len(data['image']):,} plan requests")
        X = {"int8": data["features"], "fp32": features_of(
            exposed["fp32"], data["image"], data["tokens"],
            progress=functools.partial(_progress_line, label="FP32 features", unit="plan requests", every=5000)
            if progress else None)}
    y = data["success"]
    if keep is not None:
        write_with_atomic(keep, lambda buf: np.savez_compressed(
            buf, fp32=X["fp32"], int8=X["int8"], success=y, episode=data["episode"], step=data["step"]))
    # Whole episodes validate: every fifth scenario (the list runs family by family, so each family
    # gives a fifth of its scenarios).
    val = data["episode"] % 5 == 4
    first = val & (data["step"] == 0)
    # The old head reads the first slot's features: the first `width` numbers of either input.
    old_in = {p: x if old.cfg.confidence == head else x[:, :cfg.width] for p, x in X.items()}
    with torch.no_grad():
        p_old = {p: torch.sigmoid(old.heads.conf(torch.from_numpy(x))[:, 0]).numpy() for p, x in old_in.items()}
    # One head for both precisions: fit on both views of every request.
    fitted, _ = fit_head(net.heads.conf, np.concatenate([X["fp32"], X["int8"]]), np.concatenate([y, y]),
                         np.concatenate([val, val]))
    with torch.no_grad():
        p_new = {p: torch.sigmoid(fitted(torch.from_numpy(x))[:, 0]).numpy() for p, x in X.items()}

    def figures(p: dict[str, np.ndarray]) -> dict[str, Any]:
        return {k: {"logloss": _num(_logloss(v[val], y[val])), "auroc": _num(auroc(v[val], y[val])),
                    "first_plan_auroc": _num(auroc(v[first], y[first]))} for k, v in p.items()}

    episodes = np.unique(data["episode"])
    report: dict[str, Any] = {
        "scenarios": len(scenarios), "seed": seed, "per_family": per_family, "plan_requests": int(len(y)),
        "rolled_out": "int8", "head": head,
        "episode_success": round(float(np.mean([y[data["episode"] == e][0] for e in episodes])), 4),
        "validation": {"episodes": int(len(np.unique(data["episode"][val]))), "requests": int(val.sum()),
                       "old": figures(p_old), "new": figures(p_new)},
    }
    loss = {k: sum(_logloss(v[val], y[val]) for v in p.values()) for k, p in (("old", p_old), ("new", p_new))}
    report["kept"] = "new" if loss["new"] < loss["old"] else "old"  # unrounded: the report's figures are rounded
    if report["kept"] == "new":
        net.heads.conf.load_state_dict(fitted.state_dict())
        conf, state, config = p_new, net.state_dict(), cfg.to_dict()
    else:
        conf, state, config = p_old, ck["model"], ck["config"]
    # The threshold routers use by default: where the robot's (INT8) first plans reach the target.
    # (Outcomes, unlike training's first-call proxy, are calibrated enough to allow thresholds near 1.)
    threshold = calibrate_threshold(conf["int8"][first], y[first], TARGET_SUCCESS, upper=0.999,
                                    fallback=float(ck.get("confidence_threshold", 0.9)))
    report["threshold"] = {"value": round(threshold, 4), "success": TARGET_SUCCESS,
                           "accepted_first_plans": {k: round(float((v[first] >= threshold).mean()), 4)
                                                    for k, v in conf.items()},
                           **margin(conf["int8"][first], y[first], TARGET_SUCCESS)}
    report["wall_time_s"] = round(time.time() - t0, 1)
    training = dict(ck.get("training", {}))
    training["confidence"] = report
    save_atomic({**ck, "config": config, "model": state, "confidence_threshold": threshold, "training": training},
                Path(out))
    v = report["validation"]
    t = report["threshold"]
    if t["standard_error"] is not None:
        _log(f"the threshold reaches {TARGET_SUCCESS:.0%} on {v['episodes']} validation episodes, exactly: on new "
             f"tasks it holds about half the time (standard error {t['standard_error']:.2%}). " +
             (f"With a margin of two standard errors it would be {t['with_margin']:.4f}; " if t["with_margin"] else
              "No threshold reaches a margin of two standard errors on so few episodes; ") +
             "to pick one for your robot, run `edgeagent eval SCENARIOS --planner model --model DIR --calibrate "
             f"{min(TARGET_SUCCESS + 2 * t['standard_error'], 0.999):.3f}` on a few thousand scenarios "
             "and export with `--threshold`")
    _log(f"confidence from {len(scenarios):,} rollouts ({report['episode_success']:.1%} succeeded, "
         f"{report['plan_requests']:,} plan requests): validation AUROC (FP32 / INT8) "
         f"{v['old']['fp32']['auroc']} / {v['old']['int8']['auroc']} -> {v['new']['fp32']['auroc']} / "
         f"{v['new']['int8']['auroc']}; kept the {report['kept']} head, threshold {threshold:.4f} "
         f"({report['threshold']['accepted_first_plans']['int8']:.0%} of INT8 first plans clear it); "
         f"wrote {out} ({report['wall_time_s'] / 60:.1f} min)")
    return report


def _progress_line(done: int, total: int, elapsed: float, label: str = "rollouts", unit: str = "scenarios",
                   every: int = 100) -> None:
    """One progress line to stderr every ``every`` items (on a terminal: redrawn in place, more often)."""
    rate = done / max(elapsed, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    tty = sys.stderr.isatty()
    if done % (max(1, every // 100) if tty else every) and done != total:
        return
    print(("\r" if tty else "") + f"{label}: {done}/{total} {unit}, {rate:.1f}/s, ETA {math.ceil(eta)}s"
          + ("\033[K" if tty else ""), end="\n" if done == total or not tty else "", file=sys.stderr, flush=True)
