"""Does a plan that moves when the frame is cropped a little fail more often? A test of one more
confidence signal, measured against the outcomes of a closed-loop run.

For the first frame of each scenario of a scenario file, the model (ONNX, as the robot runs it) plans
on the whole frame and on five crops of it (8 to 24 pixels off one or two sides, the camera model
shifted to match, so a point means the same table spot in every crop). A plan's *movement* is how
far (m) any point of its first two calls lands from the whole frame's, across the crops (0.5 when a
crop changes a primitive or the number of calls). ``edgeagent eval --json`` of the same file gives
each episode's outcome and first confidence. Printed: the movement of episodes that succeeded and
failed, and the routing at the clearance of ``--clear``: by confidence alone, by the crops' mean
confidence, and by a logistic mix of confidence and movement fitted on one half of the scenarios and
tested on the other (both ways).

    edgeagent eval FILE --planner model --model MODEL --quiet --json RUN.json
    python benchmarks/crop_agreement.py FILE RUN.json [--model MODEL] [--every N] [--clear 0.889]

v15's INT8 file on fresh-b's 18,000 (models/README.md, "Confidence and routing"): no gain.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

#: Pixels cut off (left, top, right, bottom) of a 640 x 480 frame; the first is the whole frame.
CROPS = ((0, 0, 0, 0), (16, 0, 0, 12), (0, 12, 16, 0), (8, 6, 8, 6), (24, 18, 0, 0), (0, 0, 24, 18))
#: Movement given to a plan whose primitives change across crops.
CHANGED = 0.5


def crop(image: np.ndarray, camera, left: int, top: int, right: int, bottom: int):
    """The frame with those pixels cut off, and the camera model of what is left."""
    H, W = image.shape[:2]
    K = np.array(camera.K, float)
    K[0, 2] -= left
    K[1, 2] -= top
    cam = dataclasses.replace(camera, width=W - left - right, height=H - top - bottom,
                              K=tuple(tuple(float(v) for v in row) for row in K))
    return np.ascontiguousarray(image[top:H - bottom, left:W - right]), cam


def movement(plans: list[list]) -> float:
    """How far (m) any point of the first two calls moves from the first plan's across the others."""
    base = plans[0][:2]
    worst = 0.0
    for plan in plans[1:]:
        plan = plan[:2]
        if len(plan) != len(base) or any(a[0] != b[0] for a, b in zip(plan, base)):
            return CHANGED
        for (_, *pa), (_, *pb) in zip(plan, base):
            for u, v in zip(pa, pb):
                worst = max(worst, float(np.hypot(u[0] - v[0], u[1] - v[1])))
    return worst


def measure(scenario_file: str, model_dir, every: int) -> list[dict]:
    """Per chosen scenario: name, the confidence and plan on the whole frame and every crop."""
    from edgeagent.models.runtime import ModelPlanner, decode, model_input
    from edgeagent.sim.robot import SimRobot
    from edgeagent.sim.scenario import load_scenarios

    planner = ModelPlanner(model_dir)
    S = planner.manifest.S
    rows = []
    chosen = load_scenarios([scenario_file])[::every]
    for n, sc in enumerate(chosen, 1):
        obs = SimRobot(sc.build_world(), seed=sc.scene.seed).observe()
        tokens = planner.tokens(sc.instruction)
        conf, plans = [], []
        for cut in CROPS:
            image, camera = crop(obs.image, obs.camera, *cut)
            x, model_camera = model_input(image, camera, planner.manifest)
            out = planner.backend.run({"image": x, "tokens": tokens})
            calls, _, c, _ = decode(out, planner.manifest, model_camera, (S, S), planner.registry, None)
            conf.append(c)
            plans.append([[call.primitive, *[tuple(map(float, v)) for v in call.args.values()]] for call in calls])
        rows.append({"name": sc.name, "conf": conf, "move": movement(plans)})
        if n % 500 == 0 or n == len(chosen):
            print(f"{n}/{len(chosen)} scenes", file=sys.stderr, flush=True)
    return rows


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _features(conf: np.ndarray, move: np.ndarray) -> np.ndarray:
    return np.column_stack([_logit(conf), 10 * np.minimum(move, 0.2), (move >= CHANGED).astype(float),
                            np.ones(len(conf))])


def _fit(X: np.ndarray, y: np.ndarray, steps: int = 3000, lr: float = 0.1) -> np.ndarray:
    """Logistic regression by gradient descent (a handful of features, no regularisation needed)."""
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        w -= lr * X.T @ (1 / (1 + np.exp(-X @ w)) - y) / len(y)
    return w


def _routing(score_fit: np.ndarray, score: np.ndarray, ok: np.ndarray, clear: float) -> str:
    """Clearance and success where the threshold clears ``clear`` of the fitting half."""
    t = np.quantile(score_fit, 1 - clear)
    m = score >= t
    return f"{m.mean() * 100:5.1f}% clear, {ok[m].mean() * 100:.2f}% of those succeed ({int((~ok[m]).sum())} fail)"


def main(argv: list[str] | None = None) -> int:
    from edgeagent.errors import EdgeAgentError
    from edgeagent.models.runtime import default_model_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenarios", help="scenario file the eval ran")
    p.add_argument("run", help="its `edgeagent eval --json` output (same model)")
    p.add_argument("--model", default=None, help="model folder (default: the shipped INT8 model)")
    p.add_argument("--every", type=int, default=1, help="use every Nth scenario (default 1)")
    p.add_argument("--clear", type=float, default=0.889, help="share of first plans to clear (default 0.889)")
    args = p.parse_args(argv)
    if not 0.0 < args.clear < 1.0:
        p.error(f"--clear is a share of first plans in (0, 1), got {args.clear}")
    try:
        outcome = {s["name"]: bool(s["success"]) for s in json.load(open(args.run))["scenarios"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{args.run}: not an `edgeagent eval --json` output ({exc})", file=sys.stderr)
        return 2
    try:
        rows = measure(args.scenarios, args.model or default_model_dir(), max(1, args.every))
    except EdgeAgentError as exc:  # a missing or malformed scenario file or model folder: its own message
        print(exc, file=sys.stderr)
        return 2
    missing = [r["name"] for r in rows if r["name"] not in outcome]
    if missing:
        print(f"{args.run}: has no episode {missing[0]!r} (and {len(missing) - 1} more); run the eval on "
              f"{args.scenarios}", file=sys.stderr)
        return 2
    ok = np.array([outcome[r["name"]] for r in rows])
    conf = np.array([r["conf"] for r in rows])
    move = np.array([r["move"] for r in rows])
    print(f"{len(rows)} scenes, {ok.mean() * 100:.1f}% succeeded")
    print(f"movement across crops, median: succeeded {np.median(move[ok]) * 100:.1f} cm, "
          f"failed {np.median(move[~ok]) * 100:.1f} cm")
    halves = np.arange(len(rows)) % 2 == 0
    for fit_half, test_half in ((halves, ~halves), (~halves, halves)):
        X = _features(conf[:, 0], move)
        w = _fit(X[fit_half], ok[fit_half].astype(float))
        mix = X @ w
        print(f"fitted on one half, tested on the other (weights {np.round(w, 2).tolist()}):")
        for name, s in (("confidence", conf[:, 0]), ("crops' mean confidence", conf.mean(axis=1)),
                        ("confidence + movement", mix)):
            print(f"  {name:24s} {_routing(s[fit_half], s[test_half], ok[test_half], args.clear)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
