"""Write the held-out phrasing set: generated scenes and goals, instructions rewritten by hand-made
templates that the task families' phrasing never produces.

Scenes and goals come from ``sim.families.generate`` with an evaluation seed (>= 1,000,000, never used in
training); each instruction is rewritten here from the goal and the scene, in wordings written apart
from ``sim/phrasing.py``. Training never reads this file or its output. The script refuses to write an
instruction the generator also produces (checked against a large sample of generated instructions).

    python benchmarks/make_heldout_phrasing.py -o sim/scenarios/heldout-phrasing.yaml
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from edgeagent.sim.families import FAMILIES, generate
from edgeagent.sim.scenario import dump_scenarios
from edgeagent.sim.world import CORNERS, PLACES

SEED = 1_000_777

BLOCK = ["the {c} block", "the {c} cube", "{c} block", "that {c} block", "the {c} one", "the block that is {c}"]
BOWL = ["the {c} bowl", "{c} bowl", "the {c} dish", "the bowl that is {c}"]
PLACE = {p: [f"the {p}", f"the {p} of the table", f"the table's {p}"] for p in PLACES}
PLACE["middle"] = ["the middle", "the centre of the table", "the center", "the middle of the table"]

T = {
    "on": ["{A} needs to go on top of {B}", "i want {A} sitting on {B}", "grab {A}, then set it down on {B}",
           "lift {A} and rest it on {B} thanks", "could {A} be stacked onto {B}?", "{A} on {B} pls"],
    "in": ["{A} belongs in {B}", "make sure {A} ends up inside {B}", "grab {A} and drop it into {B} please",
           "{B} should hold {A}", "toss {A} in {B}", "{A} -> {B}"],
    "at": ["{A} should end up in {P}", "take {A} over to {P}", "relocate {A} to {P}",
           "i need {A} at {P}", "{P}: {A}, please", "carry {A} to {P} now"],
    "stack": ["build one tower out of all the blocks", "pile every block up into a single stack",
              "make a tower with all of the cubes", "all blocks on top of each other please",
              "stack up every block you can see"],
    "stack_order": ["build a tower: {X} at the bottom, then {Y}", "tower from bottom to top: {L}",
                    "stack them so {X} is at the bottom and {Z} ends on top, order {L}"],
    "stack_at": ["build a tower of all the blocks in {P}", "pile all the cubes up at {P}",
                 "one stack with every block, located at {P}"],
    "all_at": ["gather every block in {P}", "move all of the cubes over to {P}", "every block should be in {P}",
               "round up the blocks at {P}"],
    "all_in": ["put every single block inside {B}", "all the cubes go in {B}", "fill {B} with all the blocks",
               "every block has to end up in {B}"],
    "matching": ["sort the blocks into the bowls by colour", "each block should go in the bowl that has its colour",
                 "match every cube with the same coloured bowl", "colour-match blocks to bowls"],
    "mismatched": ["put each block in a bowl of a different colour than itself",
                   "no block may sit in its own colour bowl; put every block in some other bowl",
                   "every cube into a bowl whose colour does not match it"],
    "corners": ["spread the blocks out so each one is in its own corner", "one block per corner please",
                "send every block to a separate corner", "blocks into corners, no two sharing one"],
    "line": ["line up all the blocks {o}", "arrange the cubes in a straight {o} row",
             "make a {o} line with every block", "put the blocks in a row, {o}"],
    "offset": ["put {A} {amt} to the {d} of {B}", "{A} should sit {amt} {d2} {B}", "shift {A} so it is {amt} {d2} {B}"],
    "corner_rel": ["put {A} in whichever corner is {w} {B}", "{A} goes to the corner {w} {B}",
                   "move {A} into the corner that is {w} {B}"],
}
AMOUNT = {"a little": ["a little", "just a little", "a small distance"], "a lot": ["a lot", "quite a lot", "a long way"]}
DIR2 = {"left": "to the left of", "right": "to the right of", "top": "above", "bottom": "below"}
REL_BOWL = {"left": ["the block left of {B}", "the cube that sits to the left of {B}"],
            "right": ["the block right of {B}", "the cube sitting on the right side of {B}"],
            "top": ["the block above {B}", "the cube beyond {B}"],
            "bottom": ["the block below {B}", "the cube in front of {B}"],
            "closest": ["the block nearest {B}", "the cube nearest to {B}"],
            "farthest": ["the block furthest from {B}", "the cube that is furthest away from {B}"]}
RANK = {1: ["the {s}most block", "the block furthest to the {s}"], 2: ["the 2nd block counting from the {s}"],
        3: ["the 3rd block counting from the {s}"]}


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def name_block(rng, name):
    return pick(rng, BLOCK).format(c=name.split()[0])


def name_bowl(rng, name):
    return pick(rng, BOWL).format(c=name.split()[0])


def name_obj(rng, name):
    return name_block(rng, name) if name.endswith("block") else name_bowl(rng, name)


def positions(sc):
    return {f"{b['color']} block": tuple(b["at"]) for b in sc["scene"]["blocks"]} | \
           {f"{b['color']} bowl": tuple(b["at"]) for b in sc["scene"]["bowls"]}


def refer(rng, sc, target):
    """A referring expression for ``target`` by relation or rank, computed from the layout."""
    pos = positions(sc)
    blocks = [n for n in pos if n.endswith("block")]
    others = [n for n in blocks if n != target]
    options = []
    tx, ty = pos[target]
    axes = {"left": (-1, 0), "right": (1, 0), "top": (0, 1), "bottom": (0, -1)}
    for bowl in [n for n in pos if n.endswith("bowl")]:
        bx, by = pos[bowl]
        for rel, (ux, uy) in axes.items():
            if (tx - bx) * ux + (ty - by) * uy >= 0.07 and all((pos[o][0] - bx) * ux + (pos[o][1] - by) * uy <= -0.03
                                                             for o in others):
                options.append(pick(rng, REL_BOWL[rel]).format(B=name_bowl(rng, bowl)))
        d = np.hypot(tx - bx, ty - by)
        ds = [np.hypot(pos[o][0] - bx, pos[o][1] - by) for o in others]
        if all(x >= d + 0.06 for x in ds):
            options.append(pick(rng, REL_BOWL["closest"]).format(B=name_bowl(rng, bowl)))
        if all(x <= d - 0.06 for x in ds):
            options.append(pick(rng, REL_BOWL["farthest"]).format(B=name_bowl(rng, bowl)))
    for side, (ux, uy) in axes.items():
        key = sorted(blocks, key=lambda n: -(pos[n][0] * ux + pos[n][1] * uy))
        vals = [pos[n][0] * ux + pos[n][1] * uy for n in key]
        rank = key.index(target) + 1
        if rank <= 3 and all(abs(a - b) >= 0.05 for a, b in zip(vals, vals[1:])):
            options.append(pick(rng, RANK[rank]).format(s=side))
    if not options:
        return None
    return pick(rng, options)


def destination(rng, goal):
    name, args = next(iter(goal.items()))
    if name == "in":
        return "into " + name_bowl(rng, args[1])
    if name == "on":
        return "on top of " + name_block(rng, args[1])
    return "to " + pick(rng, PLACE[args[1]])


def rewrite(rng, sc) -> str | None:
    fam, goal = sc["family"], sc["goal"]
    g0 = goal[0] if isinstance(goal, list) else goal
    key, args = next(iter(g0.items()))
    if fam in ("pick-place-block", "pick-place-bowl", "pick-place-place"):
        P = pick(rng, PLACE[args[1]]) if key == "at" else None
        B = name_obj(rng, args[1]) if key != "at" else None
        return pick(rng, T[key]).format(A=name_block(rng, args[0]), B=B, P=P)
    if fam == "stack":
        if args == "all blocks":
            return pick(rng, T["stack"])
        names = [a.split()[0] for a in args]
        return pick(rng, T["stack_order"]).format(X=names[0], Y=names[1], Z=names[-1], L=", ".join(names))
    if fam == "stack-at-place":
        return pick(rng, T["stack_at"]).format(P=pick(rng, PLACE[goal[1]["at"][1]]))
    if fam == "all-to-place":
        return pick(rng, T["all_at"]).format(P=pick(rng, PLACE[args[1]]))
    if fam == "all-into-bowl":
        return pick(rng, T["all_in"]).format(B=name_bowl(rng, args[1]))
    if fam in ("matching-bowls", "mismatched-bowls"):
        return pick(rng, T["matching" if fam == "matching-bowls" else "mismatched"])
    if fam == "distinct-corners":
        return pick(rng, T["corners"])
    if fam == "line":
        return pick(rng, T["line"]).format(o=args[0])
    if fam == "offset":
        a, b, d, amt = args
        return pick(rng, T["offset"]).format(A=name_block(rng, a), B=name_obj(rng, b), amt=pick(rng, AMOUNT[amt]),
                                             d=d, d2=DIR2[d])
    if fam == "corner-relative":
        a, corner = args
        pos = positions(sc)
        for ref in pos:
            if ref == a:
                continue
            rx, ry = pos[ref]
            dists = sorted((np.hypot(rx - PLACES[c][0], ry - PLACES[c][1]), c) for c in CORNERS)
            if dists[0][1] == corner and dists[1][0] - dists[0][0] >= 0.05:
                return pick(rng, T["corner_rel"]).format(A=name_block(rng, a), w="nearest to", B=name_obj(rng, ref))
            if dists[-1][1] == corner and dists[-1][0] - dists[-2][0] >= 0.05:
                return pick(rng, T["corner_rel"]).format(A=name_block(rng, a), w="furthest from",
                                                         B=name_obj(rng, ref))
        return None
    if fam in ("relation-to-bowl", "rank-from-side"):
        who = refer(rng, sc, args[0])
        if who is None:
            return None
        verb = pick(rng, ["move", "take", "grab", "carry"])
        return f"{verb} {who} {destination(rng, g0)}"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="sim/scenarios/heldout-phrasing.yaml")
    ap.add_argument("--per-family", type=int, default=10)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(SEED)
    generated = {s["instruction"].lower().strip(" .!?") for s in generate(None, 400, 12_345)}
    out = []
    for fam in FAMILIES:
        pool = generate([fam], args.per_family * 4, SEED)
        kept = 0
        for sc in pool:
            text = rewrite(rng, sc)
            if text is None or text.lower().strip(" .!?") in generated:
                continue
            sc = dict(sc, instruction=text, name=sc["name"].replace(str(SEED), "heldout"))
            out.append(sc)
            kept += 1
            if kept == args.per_family:
                break
        print(f"{fam:<20} {kept} scenarios", file=sys.stderr)
    dump_scenarios(out, args.out)
    print(f"wrote {len(out)} scenarios to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
