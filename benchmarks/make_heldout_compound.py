"""Write the compound-instruction set: two or three pick-and-place tasks in one instruction.

Users chain tasks ("put the red block in the blue bowl, then the green one on the cyan block") and
list blocks that share a destination ("move the red and the green blocks to the top left corner").
The task families never do; this set measures how the planner does on them (models/clauses.py splits
them into the single tasks it was trained on). Scenes come from ``sim.families.generate`` with an
evaluation seed (never used in training); the second and third tasks are drawn on the same scene, with
blocks and destinations the earlier tasks leave alone, so every goal can hold at the end.

    python benchmarks/make_heldout_compound.py -o sim/scenarios/heldout-compound.yaml
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from edgeagent.sim.families import generate
from edgeagent.sim.scenario import dump_scenarios
from edgeagent.sim.world import PLACES

SEED = 1_000_555
FAMILIES = ["pick-place-block", "pick-place-bowl", "pick-place-place"]

VERB = ["put", "place", "move", "set", "drop", "bring"]
BLOCK = ["the {c} block", "the {c} cube", "{c} block", "the {c} one"]
INTO = {"in": ["in {B}", "into {B}", "inside {B}"], "on": ["on {B}", "on top of {B}", "onto {B}"],
        "at": ["in the {P}", "at the {P}", "to the {P}"]}
# Joiners of two tasks; {1} may drop its verb ("…, and the green block in the yellow bowl").
JOIN2 = ["{0} and {1}", "{0}, then {1}", "{0} and then {1}", "{0}. Then {1}", "{0}; after that, {1}",
         "First {0}, and then {1}", "{0}, and {1}", "{0}. {1}"]
JOIN3 = ["{0}, {1} and {2}", "{0}, then {1}, then {2}", "{0}. Then {1}. Finally, {2}", "{0}; {1}; {2}"]
LIST = ["{V} the {a} and the {b} blocks {D}", "{V} the {a} and {b} cubes {D}",
        "{V} the {a} block and the {b} block {D}", "{V} both the {a} and the {b} blocks {D}"]


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def phrase(rng, goal, *, verb=True) -> str:
    (key, (a, b)), = goal.items()
    dest = pick(rng, INTO[key]).format(B=f"the {b}", P=b)
    text = f"{pick(rng, BLOCK).format(c=a.split()[0])} {dest}"
    return f"{pick(rng, VERB)} {text}" if verb else text


def more_goals(rng, scene, taken: set[str], used_dest: set[str], n: int) -> list[dict] | None:
    """``n`` pick-and-place goals on blocks not ``taken``, each to a destination not yet used."""
    blocks = [f"{b['color']} block" for b in scene["blocks"]]
    bowls = [f"{b['color']} bowl" for b in scene["bowls"]]
    goals = []
    for _ in range(n):
        free = [b for b in blocks if b not in taken]
        if not free:
            return None
        mover = free[int(rng.integers(len(free)))]
        options = [("in", x) for x in bowls if x not in used_dest]
        options += [("on", x) for x in blocks if x not in taken and x != mover and x not in used_dest]
        options += [("at", p) for p in PLACES if p not in used_dest]
        key, dest = options[int(rng.integers(len(options)))]
        goals.append({key: [mover, dest]})
        taken |= {mover, dest} if key == "on" else {mover}
        used_dest.add(dest)
    return goals


def compound(rng, sc) -> tuple[str, list[dict], str] | None:
    """An instruction of 2 or 3 tasks on ``sc``'s scene, its goals and its family name."""
    first = sc["goal"][0]
    (key, (mover, dest)), = first.items()
    taken = {mover, dest} if key == "on" else {mover}
    kind = int(rng.integers(3))
    if kind == 2 and key != "on":
        # A list of blocks sharing the first task's destination.
        other = more_goals(rng, sc["scene"], set(taken), {dest}, 1)
        if other is None:
            return None
        second = other[0][next(iter(other[0]))][0]
        text = pick(rng, LIST).format(V=pick(rng, VERB).capitalize(), a=mover.split()[0], b=second.split()[0],
                                      D=pick(rng, INTO[key]).format(B=f"the {dest}", P=dest))
        return text, [first, {key: [second, dest]}], "compound-list"
    n = 1 if kind == 0 else 2
    goals = more_goals(rng, sc["scene"], set(taken), {dest}, n)
    if goals is None:
        return None
    goals = [first, *goals]
    words = [phrase(rng, g, verb=(i == 0 or rng.random() < 0.6)) for i, g in enumerate(goals)]
    frame = pick(rng, JOIN2 if n == 1 else JOIN3)
    text = frame.format(*words)
    return text[0].upper() + text[1:], goals, f"compound-{len(goals)}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="sim/scenarios/heldout-compound.yaml")
    ap.add_argument("--count", type=int, default=150, help="scenarios to write (default 150)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(SEED)
    pool = generate(FAMILIES, args.count, SEED)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    out = []
    for sc in pool:
        made = compound(rng, sc)
        if made is None:
            continue
        text, goals, family = made
        n_blocks = len(sc["scene"]["blocks"])
        out.append({"name": f"compound-{len(out)}", "family": family, "instruction": text,
                    "scene": sc["scene"], "goal": goals, "max_steps": 4 * len(goals) + n_blocks + 2})
        if len(out) == args.count:
            break
    dump_scenarios(out, args.out)
    print(f"wrote {len(out)} scenarios to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
