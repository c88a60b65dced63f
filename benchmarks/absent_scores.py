"""The score under which a model's object map calls a named object absent: measure it for a new model
before writing it in its manifest (``edgeagent model export --absent-below P``).

For the first frame of every scenario of a scenario file, the model's ``patch_objects`` output (ONNX,
as the robot runs it) gives each object class its largest probability over the patches. Every block
and bowl colour the scene holds is "present", every other is "absent". A threshold refuses the
instructions naming an object scoring under it: it should sit under every present object's score
and over as many absent ones as it can. Prints both tails and, per threshold, what it costs and what
it catches; suggests the largest of those thresholds that no present object scores under: a ceiling,
which a few scenes set too high (run 250 or more; the default takes every third of the 750 held-out).

    python benchmarks/absent_scores.py [MODEL_DIR] [--scenarios FILE] [--every N]

v15's INT8 file, every third held-out scene: every present object scores 0.056 or more, 99.8% of
the absent ones under 0.05, the value in its manifests (models/README.md, "Instructions it cannot
act on").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

LADDER = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def scores(model_dir, scenario_files: list[str], every: int) -> tuple[list, list]:
    """``(present, absent)``: ``(score, kind, colour, scenario name)`` for each scene's every palette colour."""
    from edgeagent.errors import ModelError
    from edgeagent.models.dataset import object_class
    from edgeagent.models.runtime import ModelPlanner, model_input
    from edgeagent.sim.robot import SimRobot
    from edgeagent.sim.scenario import load_scenarios
    from edgeagent.sim.world import COLORS

    planner = ModelPlanner(model_dir)
    if not planner.manifest.objects:
        raise ModelError(f"{planner.onnx_path}: has no patch_objects output (exported with --no-objects, or "
                         "before it existed); nothing to measure")
    present, absent = [], []
    chosen = load_scenarios(scenario_files)[::every]
    for n, sc in enumerate(chosen, 1):
        world = sc.build_world()
        obs = SimRobot(world, seed=sc.scene.seed).observe()
        image, _ = model_input(obs.image, obs.camera, planner.manifest)
        out = planner.backend.run({"image": image, "tokens": planner.tokens(sc.instruction)})
        best = np.asarray(out["patch_objects"], np.float32).reshape(-1, planner.manifest.objects).max(axis=0)
        there = {("block", b.color) for b in world.blocks.values()} | {("bowl", b.color) for b in world.bowls.values()}
        for color in COLORS:
            for kind in ("block", "bowl"):
                row = (float(best[object_class(kind, color)]), kind, color, sc.name)
                (present if (kind, color) in there else absent).append(row)
        if n % 50 == 0 or n == len(chosen):
            print(f"{n}/{len(chosen)} scenes", file=sys.stderr)
    return present, absent


def main(argv: list[str] | None = None) -> int:
    from edgeagent.errors import EdgeAgentError
    from edgeagent.models.runtime import default_model_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=None, help="model folder (default: the shipped INT8 model)")
    p.add_argument("--scenarios", action="append", default=None,
                   help="scenario file (repeatable; default sim/scenarios/heldout.yaml)")
    p.add_argument("--every", type=int, default=3, help="use every Nth scenario (default 3)")
    args = p.parse_args(argv)
    files = args.scenarios or [str(Path(__file__).resolve().parents[1] / "sim" / "scenarios" / "heldout.yaml")]
    try:
        present, absent = scores(args.model or default_model_dir(), files, max(1, args.every))
    except EdgeAgentError as exc:  # a missing or malformed scenario file or model folder: its own message
        print(exc, file=sys.stderr)
        return 2
    present.sort()
    absent.sort(reverse=True)
    print(f"present: {len(present)} objects, lowest scores:")
    for s, kind, color, name in present[:5]:
        print(f"  {s:.3f}  {color} {kind}  ({name})")
    print(f"absent: {len(absent)} colour-and-kind pairs, highest scores:")
    for s, kind, color, name in absent[:5]:
        print(f"  {s:.3f}  {color} {kind}  ({name})")
    print("threshold  present refused  absent caught")
    suggest = None
    for t in LADDER:
        refused = sum(s < t for s, *_ in present)
        caught = sum(s < t for s, *_ in absent)
        print(f"{t:9.2f}  {refused:15d}  {caught:6d} ({100 * caught / max(1, len(absent)):.1f}%)")
        if refused == 0:
            suggest = t
    if suggest is None:
        print("every threshold refuses an object that is there: export with --no-objects, or train the object "
              "head longer")
    else:
        print(f"suggested: --absent-below {suggest} (the largest that refuses no object present here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
