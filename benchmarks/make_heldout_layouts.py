"""Write the held-out layout sets: the held-out tasks, their objects laid out unlike the generator does.

The task families lay a scene out by spreading its objects over the workspace, each well clear of the
others and a margin in from the edges (``sim/families.py``). People set scenes up otherwise: everything
pushed together in one part of the table, or along its edges. This script takes the held-out
scenarios (``sim/scenarios/heldout.yaml``) of the families whose goal names its objects rather than
depending on where they stand (so a new layout keeps the goal right), keeps the instruction and the
goal, and lays the objects out again:

- ``cluster``: every object within a 0.32 m square at a random spot of the workspace, objects only 1 cm
  clear of each other (the generator keeps 3 cm);
- ``edge``: every object in the band along one of the four edges, centres out to the workspace's
  limit (blocks 0.28 m from the centre, the generator 0.25; bowls 0.24 m, the generator 0.23).

- ``crowded``: the tasks whose goal names only the objects it is about (pick and place, offset, a stack
  in a named order), their objects where they were, with blocks of unused colours added up to
  ``CROWD_BLOCKS`` and, where the instruction already has to tell bowls apart (two or more), bowls up
  to ``CROWD_BOWLS`` (``sim.families.crowd``; the generator makes at most 5 blocks and 4 bowls).

- ``in-bowl``: the pick-and-place tasks (block, bowl, place) whose scene has a bowl the block is not
  bound for, with the block to move starting inside that bowl ("the red block is in the blue bowl;
  put it in the yellow one"); everything else stays where it was.

A layout where the goal already holds is drawn again. Training never reads these files.

    python benchmarks/make_heldout_layouts.py --layout cluster -o sim/scenarios/heldout-cluster.yaml
    python benchmarks/make_heldout_layouts.py --layout edge -o sim/scenarios/heldout-edge.yaml
    python benchmarks/make_heldout_layouts.py --layout crowded -o sim/scenarios/heldout-crowded.yaml
    python benchmarks/make_heldout_layouts.py --layout in-bowl -o sim/scenarios/heldout-inbowl.yaml
"""

from __future__ import annotations

import argparse
import copy
import sys

import numpy as np

from edgeagent.sim.families import CROWD_BLOCKS, CROWD_BOWLS, IN_BOWL_FAMILIES, crowd, start_in_bowl
from edgeagent.sim.goals import holds
from edgeagent.sim.scenario import dump_scenarios, load_scenarios, scenario_from_dict
from edgeagent.sim.world import BLOCK_SIZE, BOWL_RADIUS, WORKSPACE

SOURCE = "sim/scenarios/heldout.yaml"
#: Families whose goal names its objects (a new layout leaves it right); the others (rank, relation to a
#: bowl, offset, corner-relative) pick their objects by where they stand.
FAMILIES = ("pick-place-block", "pick-place-bowl", "pick-place-place", "stack", "stack-at-place", "all-to-place",
            "all-into-bowl", "matching-bowls", "mismatched-bowls", "distinct-corners", "line")
SEEDS = {"cluster": 17, "edge": 18, "crowded": 19}
CLUSTER_SIDE, GAP = 0.32, 0.01
RADIUS = {"block": BLOCK_SIZE * 0.75, "bowl": BOWL_RADIUS}
#: How far from the centre an object's centre may be: inside the workspace with all of its footprint.
LIMIT = {"block": WORKSPACE - BLOCK_SIZE / 2, "bowl": WORKSPACE - BOWL_RADIUS}
EDGE_BAND = 0.06


def _spot(kind: str, layout: str, rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    lim = LIMIT[kind]
    if layout == "cluster":
        half = CLUSTER_SIDE / 2
        return np.clip(centre + rng.uniform(-half, half, 2), -lim, lim)
    along, across = rng.uniform(-lim, lim), rng.uniform(lim - EDGE_BAND, lim) * rng.choice([-1.0, 1.0])
    return np.array([across, along]) if rng.random() < 0.5 else np.array([along, across])


def relay(scenario: dict, layout: str, rng: np.random.Generator, tries: int = 500) -> dict:
    """``scenario`` with every object at a new position drawn for ``layout``, clear of the others."""
    objects = [(kind, item if isinstance(item, str) else item["color"])
               for kind, key in (("block", "blocks"), ("bowl", "bowls"))
               for item in scenario["scene"].get(key, [])]
    for _ in range(tries):
        centre = rng.uniform(-0.3 + CLUSTER_SIDE / 2, 0.3 - CLUSTER_SIDE / 2, 2)
        placed: list[tuple[str, np.ndarray]] = []
        for kind, _color in objects:
            for _ in range(200):
                p = _spot(kind, layout, rng, centre)
                if all(np.hypot(*(p - q)) >= RADIUS[kind] + RADIUS[k] + GAP for k, q in placed):
                    placed.append((kind, p))
                    break
            else:
                break
        if len(placed) < len(objects):
            continue
        out = copy.deepcopy(scenario)
        out["name"] = f"{scenario['name']}-{layout}"
        scene = {"seed": scenario["scene"].get("seed", 0), "blocks": [], "bowls": []}
        for (kind, color), (_, p) in zip(objects, placed):
            scene[kind + "s"].append({"color": color, "at": [round(float(p[0]), 3), round(float(p[1]), 3)]})
        out["scene"] = scene
        sc = scenario_from_dict(out, source=f"<{layout}>", index=0)
        world = sc.build_world()
        if not holds(sc.bound_goal(world), world):
            return out
    raise RuntimeError(f"{scenario['name']}: no {layout} layout found in {tries} tries")


def in_bowl(scenario: dict) -> dict | None:
    """``scenario`` with its block to move starting in the first bowl it is not bound for
    (``sim.families.start_in_bowl``); None for other families and scenes without such a bowl."""
    if scenario.get("family") not in IN_BOWL_FAMILIES:
        return None
    out = start_in_bowl(scenario, None)
    return None if out is scenario else {**out, "name": f"{scenario['name']}-in-bowl"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layout", choices=[*sorted(SEEDS), "in-bowl"], required=True)
    p.add_argument("-o", "--out", required=True, help="scenario file to write")
    p.add_argument("--source", default=SOURCE, help=f"held-out scenario file to re-lay (default {SOURCE})")
    args = p.parse_args(argv)
    import yaml

    with open(args.source) as f:
        raw = yaml.safe_load(f)
    if args.layout == "in-bowl":
        out = [d for d in map(in_bowl, raw) if d is not None]
    elif args.layout == "crowded":  # crowded scenes of the same kind are a training option (--crowded)
        rng = np.random.default_rng(SEEDS[args.layout])
        out = [{**c, "name": f"{d['name']}-crowded"} for d in raw
               if (c := crowd(d, rng, CROWD_BLOCKS, CROWD_BOWLS)) is not d]
    else:
        rng = np.random.default_rng(SEEDS[args.layout])
        out = [relay(d, args.layout, rng) for d in raw if d.get("family") in FAMILIES]
    dump_scenarios(out, args.out)
    n = len(load_scenarios([args.out]))
    print(f"wrote {args.out}: {n} scenarios ({args.layout} layouts)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
