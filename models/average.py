"""Average the weights of fine-tunes of one model (a "model soup", Wortsman et al. 2022).

Fine-tunes that start from the same checkpoint stay in one basin of the loss, so the mean of their
weights is a model too, and usually a better one than each: each fine-tune leans towards the families
its data weighted up, and the mean keeps what they share. ``edgeagent model average A B ... --out FILE``
writes a checkpoint like the ones ``train.py`` writes, so export, quantize and the confidence refit
take it as they take any other.

The first checkpoint decides the network (its config, vocabulary and primitive table); the others
must plan with the same network: same vocabulary, same primitive table, and every one of the first's
weights with the same shape. Training-only heads that only the others have are left out.

A fine-tune grown by transformer layers (``edgeagent model train --init A --layers N``) averages with
the model it grew from: there, the missing layers count as the identities the fine-tune started
from (their residual outputs zero), and their other weights, which an identity layer does not use,
are the mean over the checkpoints that have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from edgeagent.errors import ModelError


def average_checkpoints(paths: Sequence[str | Path], out: str | Path,
                        weights: Sequence[float] | None = None) -> dict[str, Any]:
    """Write the weighted mean of the checkpoints ``paths`` to ``out``; returns the checkpoint written."""
    import torch

    from edgeagent.models.export import load_checkpoint
    from edgeagent.models.train import save_atomic
    from edgeagent.models.view import View

    if len(paths) < 2:
        raise ModelError("averaging needs at least two checkpoints (fine-tunes of one model)")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise ModelError(f"{len(weights)} weights for {len(paths)} checkpoints; give one weight per checkpoint")
    if min(weights) < 0 or sum(weights) <= 0:
        raise ModelError(f"weights must be >= 0 with a positive sum, got {weights}")
    cks = [load_checkpoint(p) for p in paths]
    first = cks[0]
    for path, ck in zip(paths[1:], cks[1:]):
        for key in ("vocab", "primitives"):
            if ck.get(key) != first.get(key):
                raise ModelError(f"{path}: its {key} differs from {paths[0]}'s; only fine-tunes of one model "
                                 "(edgeagent model train --init) can be averaged")
        # A checkpoint from before views were recorded has none: it is the camera view.
        view, first_view = View.from_dict(ck.get("view")), View.from_dict(first.get("view"))
        if view != first_view:
            raise ModelError(f"{path}: it reads the {view.describe()}, {paths[0]} the {first_view.describe()}; "
                             "only fine-tunes of one model in one view can be averaged")
        if ck["config"].get("layers", 0) > first["config"].get("layers", 0):
            raise ModelError(f"{path} has {ck['config']['layers']} transformer layers, {paths[0]} "
                             f"{first['config'].get('layers')}: the first checkpoint decides the network, so "
                             "give the one with the most layers first")
        for name, tensor in first["model"].items():
            other = ck["model"].get(name)
            if other is None and _grown_layer(name, first, ck):
                continue
            if other is None or other.shape != tensor.shape:
                got = "missing" if other is None else f"shape {tuple(other.shape)}"
                raise ModelError(f"{path}: weight {name!r} is {got}, {paths[0]} has shape {tuple(tensor.shape)}; "
                                 "only checkpoints of the same network can be averaged")
    total = sum(weights)
    state = {}
    for name, tensor in first["model"].items():
        if torch.is_floating_point(tensor):
            have = [(w, ck["model"][name]) for w, ck in zip(weights, cks) if name in ck["model"]]
            if len(have) < len(cks) and name.endswith(_RESIDUAL_OUT):
                mean = sum(w * t.double() for w, t in have) / total  # the identity layers' zeros count
            else:
                mean = sum(w * t.double() for w, t in have) / sum(w for w, _ in have)
            state[name] = mean.to(tensor.dtype)
        else:
            state[name] = tensor
    command = "edgeagent model average " + " ".join(str(p) for p in paths) + f" --out {out}"
    if len(set(weights)) > 1:
        command += " --weights " + ",".join(f"{w:g}" for w in weights)
    training = {"command": command, "averaged": [_source(p, w, ck.get("training", {}))
                                                 for p, w, ck in zip(paths, weights, cks)]}
    # The averaged network's confidence has not been calibrated: the refit (models/confidence.py)
    # or `edgeagent eval --calibrate` picks its threshold.
    ck = {**first, "model": state, "training": training}
    save_atomic(ck, Path(out))
    return ck


#: The weights of a transformer layer's residual outputs, zero in a layer grown as an identity.
_RESIDUAL_OUT = tuple(f".{m}.{p}" for m in ("attn.out", "proj") for p in ("weight", "bias"))


def _grown_layer(name: str, first: dict[str, Any], ck: dict[str, Any]) -> bool:
    """Whether weight ``name`` of ``first`` belongs to a transformer layer that ``ck`` lacks because
    ``first`` was grown from it: same network but for more layers."""
    if not name.startswith("blocks."):
        return False
    a, b = dict(first["config"]), dict(ck["config"])
    layers_a, layers_b = a.pop("layers", None), b.pop("layers", None)
    return a == b and layers_b is not None and layers_a > layers_b and int(name.split(".")[1]) >= layers_b


def _source(path: str | Path, weight: float, training: dict[str, Any]) -> dict[str, Any]:
    """What the averaged checkpoint records of one ingredient: how it was made (nested for averages)."""
    keep = ("command", "wall_time_s", "data", "seed", "steps", "lr", "averaged")
    return {"checkpoint": str(path), "weight": weight, **{k: training[k] for k in keep if k in training}}
