"""Write a second held-out phrasing set: the task families' scenes and goals, said the way people type.

Scenes, goals, families and step budgets come from ``edgeagent.sim.families.generate`` (evaluation seed
1_000_999); only the instruction and name are replaced. The wording was written independently, WITHOUT
reading the generator's phrasing module, the tokenizer's vocabulary, the first held-out phrasing script
or any scenario file's instructions. Blocks picked by where they stand (relation-to-bowl, rank-from-side)
are named by position, computed from the scene; corner-relative names the corner by an object it is
clearly nearest to / farthest from. A scenario that cannot be said unambiguously (by ``CLEAR`` m) is
skipped for the next one of a larger generated pool.

    python benchmarks/make_heldout_phrasing_b.py            # -> sim/scenarios/heldout-phrasing-b.yaml
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from edgeagent.sim.families import FAMILIES, generate
from edgeagent.sim.scenario import dump_scenarios
from edgeagent.sim.world import CORNERS, PLACES

SEED = 1_000_999          # scenes and goals: an evaluation seed
WORDING_SEED = 424_242    # template and synonym choices
OUT = "sim/scenarios/heldout-phrasing-b.yaml"
CLEAR = 0.05              # a referent must beat the runner-up by this much (m)
NUM = {2: "two", 3: "three", 4: "four", 5: "five"}
ORD = {1: "first", 2: "second", 3: "third"}
UNIT = {"left": (-1, 0), "right": (1, 0), "top": (0, 1), "bottom": (0, -1)}


def opts(text: str) -> list[str]:
    """A '|'-separated list of wordings."""
    return [t.strip() for t in text.split("|")]


PLACE_WORDS = {k: opts(v) for k, v in {
    "top left corner": "the top left corner|the far left corner|the back-left corner|the upper left corner",
    "top right corner": "the top right corner|the far right corner|the back-right corner|the upper right corner",
    "bottom left corner": "the bottom left corner|the near left corner|the front-left corner|"
                          "the left corner closest to you",
    "bottom right corner": "the bottom right corner|the near right corner|the front-right corner|"
                           "the right corner closest to you",
    "top side": "the top side|the middle of the far edge|the top edge, centred|the back edge, in the middle",
    "bottom side": "the bottom side|the middle of the near edge|the edge nearest you, in the middle|the bottom centre",
    "left side": "the left side|the middle of the left edge|the left edge, halfway up",
    "right side": "the right side|the middle of the right edge|the right edge, halfway up",
    "middle": "the middle|the center|the centre of the table|the middle of the table"}.items()}
DIRECTION = {"left": opts("to the left of|left of"), "right": opts("to the right of|right of"),
             "top": opts("behind|beyond"), "bottom": opts("in front of")}
AMOUNT = {"a little": opts("a little|a bit|slightly|a short way|about 10 cm"),
          "a lot": opts("a lot|far|way|well|a long way|about 25 cm")}
BOWL_RELATION = {k: opts(v) for k, v in {
    "left": "the block to the left of {w}|the cube sitting left of {w}|the block on the left of {w}",
    "right": "the block to the right of {w}|the cube sitting right of {w}|the block on the right of {w}",
    "top": "the block behind {w}|the block on the far side of {w}|the cube beyond {w}",
    "bottom": "the block in front of {w}|the cube on the near side of {w}|the block just in front of {w}",
    "closest": "the block closest to {w}|the block nearest {w}|whichever cube is nearest to {w}",
    "farthest": "the block farthest from {w}|the cube furthest away from {w}|whichever block is farthest from {w}",
}.items()}
SIDE_WORDS = {"left": ["the left"], "right": ["the right"], "top": opts("the top|the far edge|the back"),
              "bottom": opts("the bottom|the front|the near edge")}
FIRST = {"left": opts("the leftmost block|the block furthest to the left|the cube on the far left"),
         "right": opts("the rightmost block|the block furthest to the right|the cube on the far right"),
         "top": opts("the block farthest back|the topmost block|the cube closest to the far edge"),
         "bottom": opts("the frontmost block|the bottom-most block|the cube closest to the near edge")}
LINE = {"horizontal": opts("in a horizontal line|in a row going left to right|in a straight line from left to right"),
        "vertical": opts("in a vertical line|in a straight line running away from you|"
                         "in a column from the near edge toward the far edge"),
        "diagonal": opts("in a diagonal line|in a straight line at 45 degrees|diagonally, in one straight line")}
REFER = ("move {ref} {dm}|Take {ref} and put it {dl}.|Could you pick up {ref} and set it {dl}?|"
         "{ref} should end up {dl}.|See {ref}? Move it {dm}, please.|{dm}, please: {ref}.|I want {ref} moved {dm}.")
TEMPLATES = {k: opts(v) for k, v in {
    "pick-place-block": "put {a} on {b}.|{a} on top of {b}|Could you stack {a} onto {b}, please?|"
                        "I'd like {a} sitting on top of {b}.|On top of {b}: {a}, please.|"
                        "grab {a} and set it down on {b}|{a} should end up resting on {b}.|"
                        "hey, can you pop {a} up on {b}?",
    "pick-place-bowl": "put {a} in {w}|Drop {a} into {w}.|Would you mind placing {a} inside {w}?|I want {a} in {w}.|"
                       "Into {w}: {a}.|{a} goes in {w}, thanks|pick up {a} and toss it into {w}|"
                       "{a} should end up inside {w}.",
    "pick-place-place": "move {a} to {p}|{a} to {p}.|Could you take {a} over to {p}?|I want {a} over at {p}.|"
                        "To {p} with {a}, please.|pls carry {a} to {p}|{a} should end up at {p}.|"
                        "Pick up {a} and set it down at {p}.",
    "stack": "stack {all} up.|Make one tower out of {all}, any order.|Could you pile {all} into a single stack?|"
             "I want {all} stacked on top of each other.|one stack, {all}, order doesn't matter|"
             "Put {all} on top of one another in one tower.|stack 'em all up into one tower please",
    "stack-at-place": "stack {all} at {p}|Build one tower out of {all} over at {p}.|"
                      "Could you stack {all} into a single pile at {p}?|I want {all} stacked up in one tower at {p}.|"
                      "At {p}, please stack {all} on top of each other.|"
                      "make a single stack of {all}, and have it stand at {p}|"
                      "{p} is where the tower goes - stack {all} there.",
    "all-to-place": "move {all} to {p}|Gather {all} at {p}.|Could you bring {all} over to {p}, please?|"
                    "I want {all} sitting at {p}.|Over to {p}: {all}.|round up {all} and park them at {p}|"
                    "{all} should end up at {p}.",
    "all-into-bowl": "put {all} in {w}|Fill {w} with {all}.|Could you drop {all} into {w}?|I want {all} inside {w}.|"
                     "Into {w}: {all}, please.|toss {all} into {w} one by one|{all} should end up in {w}.",
    "matching-bowls": "sort the blocks into the bowls by colour|Put each block into the bowl that matches its color.|"
                      "Could you drop every cube into the bowl of the same colour?|"
                      "I want each block sitting in its matching bowl.|{pairs}.|"
                      "colour-match time: every block goes in the bowl that's its colour|"
                      "Each block should end up in the bowl with the same color as it.",
    "mismatched-bowls": "put each block in a bowl of a different colour|"
                        "Put every cube into a bowl that doesn't match its color.|"
                        "Could you place each block in some bowl other than the one of its own colour?|"
                        "I want every block in a bowl, but never the bowl with the same colour as the block.|"
                        "Mix them up: each block into a bowl whose colour is different from the block's.|"
                        "no block in its matching bowl - put each one in a different-coloured bowl instead|"
                        "Each cube should end up inside a bowl of another colour.",
    "distinct-corners": "put each block in a different corner|Spread {all} out so each one is in its own corner.|"
                        "Could you move {all} into the corners, no more than one block per corner?|"
                        "I want {all} in separate corners of the table.|"
                        "Corners, please: {all}, each in a different one.|send {all} to {n} different corners|"
                        "{all} should end up in different corners, no doubling up.",
    "relation-to-bowl": REFER, "rank-from-side": REFER,
    "offset": "put {a} {rel}|Move {a} so it sits {rel}.|Could you place {a} {rel}?|I want {a} {rel}.|"
              "{a} goes {rel}, please|pick up {a} and set it down {rel}|{a} should end up {rel}.",
    "corner-relative": "move {a} to {c}|Put {a} in {c}.|Could you take {a} over to {c}?|I want {a} sitting in {c}.|"
                       "{c}: that's where {a} goes.|grab {a} and drop it in {c}|{a} should end up in {c}.",
    "line": "line up {all} {how}|Arrange {all} {how}.|Could you put {all} {how}, please?|I want {all} lined up {how}.|"
            "{how}, please: {all}.|{all} should end up {how}, not stacked.",
}.items()}


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def colour(c, rng):
    return "grey" if c == "gray" and rng.random() < 0.5 else c


def block(c, rng):
    c = colour(c, rng)
    return pick(rng, [f"the {c} block", f"the {c} cube", f"{c} block", f"the block that's {c}",
                      f"the {c} square block", f"that {c} cube"])


def bowl(c, scene, rng, plain=False):
    """A bowl's name; "the bowl" when it is the only one; ``plain`` leaves out "the bowl that's red"."""
    if len(scene.get("bowls", [])) == 1 and rng.random() < 0.5:
        return "the bowl"
    c = colour(c, rng)
    return pick(rng, [f"the {c} bowl", f"the {c} dish", f"{c} bowl"] + ([] if plain else [f"the bowl that's {c}"]))


def every(n, rng):
    if n < 2:
        return "the block"
    return pick(rng, opts("all the blocks|every block|all the cubes|all of the blocks")
                + (["both blocks", "the two cubes"] if n == 2 else [f"all {NUM[n]} blocks"]))


def dests(pred, scene, rng):
    """(movement phrase, location phrase) for where the goal sends a block."""
    (key, args), = pred.items()
    if key == "in":
        w = bowl(args[1].split()[0], scene, rng, plain=True)
        return f"into {w}", f"in {w}"
    if key == "on":
        b = block(args[1].split()[0], rng)
        return f"onto {b}", f"on top of {b}"
    p = pick(rng, PLACE_WORDS[args[1]])
    return f"{pick(rng, ['to', 'over to'])} {p}", f"at {p}"


def by_bowl(scene, target, rng):
    """Block ``target`` described by where it stands relative to a bowl, or None."""
    blocks = {o["color"]: o["at"] for o in scene["blocks"]}
    t, others = blocks[target], [p for c, p in blocks.items() if c != target]
    found = []
    for w in scene.get("bowls", []):
        bx, by = w["at"]
        for rel, (ux, uy) in UNIT.items():
            side = lambda p: (p[0] - bx) * ux + (p[1] - by) * uy  # noqa: E731
            if side(t) >= CLEAR and all(side(p) <= -0.02 for p in others):
                found.append((w["color"], rel))
        d = lambda p: math.hypot(p[0] - bx, p[1] - by)  # noqa: E731
        if all(d(t) + CLEAR <= d(p) for p in others):
            found.append((w["color"], "closest"))
        if all(d(t) - CLEAR >= d(p) for p in others):
            found.append((w["color"], "farthest"))
    if not found:
        return None
    w, rel = pick(rng, found)
    return pick(rng, BOWL_RELATION[rel]).format(w=bowl(w, scene, rng, plain=True))


def by_rank(scene, target, rng):
    """Block ``target`` described as the n-th block (n <= 3) from a side, or None."""
    found = []
    for side, (ux, uy) in UNIT.items():
        ranked = sorted(scene["blocks"], key=lambda o: -(o["at"][0] * ux + o["at"][1] * uy))
        k = [o["color"] for o in ranked].index(target)
        along = [o["at"][0] * ux + o["at"][1] * uy for o in ranked]
        gaps = [along[j] - along[j + 1] for j in (k - 1, k) if 0 <= j < len(ranked) - 1]
        if k < 3 and all(g >= CLEAR - 1e-9 for g in gaps):
            found.append((side, k + 1, len(ranked)))
    if not found:
        return None
    side, k, n = pick(rng, found)
    if n == 3 and k == 2 and rng.random() < 0.5:
        way = "left to right" if side in ("left", "right") else "front to back"
        return pick(rng, [f"the middle block {way}", f"the block in the middle from {way}"])
    if k == 1 and rng.random() < 0.7:
        return pick(rng, FIRST[side])
    s = pick(rng, SIDE_WORDS[side])
    return pick(rng, [f"the {ORD[k]} block from {s}", f"the {ORD[k]} cube counting from {s}"]
                + ([f"the block {ORD[k]} from {s}"] if k > 1 else []))


def by_corner(scene, goal, rng):
    """The goal's corner named as the one nearest to / farthest from another object, or None."""
    a, corner = goal[0]["at"]
    found = []
    for kind in ("block", "bowl"):
        for o in scene.get(kind + "s", []):
            if kind == "block" and o["color"] == a.split()[0]:
                continue
            d = sorted((math.hypot(o["at"][0] - PLACES[c][0], o["at"][1] - PLACES[c][1]), c) for c in CORNERS)
            if d[0][1] == corner and d[1][0] - d[0][0] >= CLEAR:
                found.append((kind, o["color"], "closest"))
            if d[3][1] == corner and d[3][0] - d[2][0] >= CLEAR:
                found.append((kind, o["color"], "farthest"))
    if not found:
        return None
    kind, c, which = pick(rng, found)
    r = block(c, rng) if kind == "block" else bowl(c, scene, rng, plain=True)
    words = ("the corner closest to {r}|the corner nearest {r}|whichever corner is nearest to {r}"
             if which == "closest" else
             "the corner farthest from {r}|the corner furthest away from {r}|whichever corner is farthest from {r}")
    return pick(rng, opts(words)).format(r=r)


def ordered_stack(order, rng):
    """Wording for one stack of ``order`` (colours, bottom to top)."""
    cs, bs = [colour(c, rng) for c in order], [block(c, rng) for c in order]
    mid = {2: "", 3: f", {cs[1]} in the middle", 4: f", {cs[1]} just above {cs[0]}"}[len(cs)]
    return pick(rng, [
        "stack the blocks, bottom to top: " + ", ".join(cs),
        f"Build a tower with {bs[0]} at the bottom" + "".join(f", then {b}" for b in bs[1:-1])
        + f"{', and finally' if len(bs) > 2 else ' and'} {bs[-1]} on top.",
        "From top to bottom I want: " + ", ".join(reversed(cs)) + ".",
        f"Put {bs[1]} on {bs[0]}" + "".join(f", then {bs[i + 1]} on the {cs[i]} one" for i in range(1, len(cs) - 1))
        + ".",
        f"Could you stack all the blocks so {bs[0]} is the base and {bs[-1]} is on top{mid}?",
        f"one tower please - {cs[0]} on the bottom, {cs[-1]} on top{mid}"])


def describe(item, template, rng):
    """The instruction for one generated scenario, or None when it cannot be said unambiguously."""
    fam, scene, goal = item["family"], item["scene"], item["goal"]
    blocks = [o["color"] for o in scene["blocks"]]
    (key, args), = goal[0].items()
    f = {"all": every(len(blocks), rng), "n": NUM.get(len(blocks), "")}
    if fam == "stack" and args != "all blocks":
        return ordered_stack([a.split()[0] for a in args], rng)
    if fam in ("relation-to-bowl", "rank-from-side"):
        f["ref"] = (by_bowl if fam == "relation-to-bowl" else by_rank)(scene, args[0].split()[0], rng)
        if f["ref"] is None:
            return None
        f["dm"], f["dl"] = dests(goal[0], scene, rng)
    elif fam == "corner-relative":
        f["a"], f["c"] = block(args[0].split()[0], rng), by_corner(scene, goal, rng)
        if f["c"] is None:
            return None
    elif fam == "offset":
        a, ref, direction, amount = args
        r = block(ref.split()[0], rng) if ref.endswith("block") else bowl(ref.split()[0], scene, rng)
        f["a"] = block(a.split()[0], rng)
        f["rel"] = f"{pick(rng, AMOUNT[amount])} {pick(rng, DIRECTION[direction])} {r}"
    elif fam == "line":
        f["how"] = pick(rng, LINE[args[0]])
    elif fam == "matching-bowls":
        f["pairs"] = ", ".join(f"{c} block in the {c} bowl" for c in (colour(c, rng) for c in blocks))
    elif key == "on":
        f["a"], f["b"] = block(args[0].split()[0], rng), block(args[1].split()[0], rng)
    elif key == "in":
        f["a"], f["w"] = block(args[0].split()[0], rng), bowl(args[1].split()[0], scene, rng)
    elif key == "at":
        f["a"], f["p"] = block(args[0].split()[0], rng), pick(rng, PLACE_WORDS[args[1]])
    if fam == "stack-at-place":
        f["p"] = pick(rng, PLACE_WORDS[goal[1]["at"][1]])
    return template.format(**f)


def style(text, rng):
    """Capitalise like a person: mostly sentence case, sometimes all lower case or shouty."""
    text, r = text[0].upper() + text[1:], rng.random()
    if r < 0.22:
        return text.lower().rstrip(".!")
    if r < 0.27:
        return text.upper()
    if r < 0.40:
        return text.rstrip(".")
    return text[:-1] + "!" if r < 0.50 and text.endswith(".") else text


def build(per_family: int) -> list[dict]:
    out = []
    for fi, fam in enumerate(FAMILIES):
        rng = np.random.default_rng([WORDING_SEED, fi])
        templates = TEMPLATES[fam]
        order, kept = rng.permutation(len(templates)), 0
        for item in generate([fam], per_family * 4, SEED):
            if kept == per_family:
                break
            text = describe(item, templates[order[kept % len(templates)]], rng)
            if text is not None:
                out.append({**item, "name": f"phrasing-b-{fam}-{kept}", "instruction": style(text, rng)})
                kept += 1
        if kept < per_family:
            raise RuntimeError(f"{fam}: only {kept} of {per_family} scenarios could be described unambiguously")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--out", default=OUT, help=f"scenario file to write (default {OUT})")
    p.add_argument("--per-family", type=int, default=10, help="scenarios per task family (default 10)")
    args = p.parse_args(argv)
    items = build(args.per_family)
    dump_scenarios(items, args.out)
    print(f"wrote {args.out}: {len(items)} scenarios ({args.per_family} per family, {len(FAMILIES)} families)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
