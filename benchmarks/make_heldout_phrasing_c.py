"""Write ``sim/scenarios/heldout-phrasing-c.yaml``: 150 scenarios (10 per task family) in our own words.

Scenes, goals, families and ``max_steps`` come from ``edgeagent.sim.families.generate`` with the
evaluation seed 1_000_888 (a pool of 40 per family); only ``instruction`` and ``name`` are replaced.
Each instruction is written here from the scenario's goal and scene, in the voice of a user talking to
a robot arm (polite, terse, chatty, spoken; British and American spellings; block/cube,
bowl/dish/container), about a third of them plain.

Independence rule: these templates were written without reading the training phrasing
(``sim/phrasing.py``), the tokenizer or clause code of ``models/``, the other
``make_heldout_phrasing*.py`` scripts, the instructions of any file in ``sim/scenarios/`` or the model
card's phrasing sections. Only the goal predicates, the scene conventions (DESIGN sections 8-9) and the
``generate`` API were used, so the wording measures how the planner copes with someone else's words.

Families that pick their object by position (relation-to-bowl, rank-from-side, corner-relative) get a
description computed here from the scene; a scenario whose object cannot be described with a clear
margin (runner-up within 5 cm) is skipped and the next one of the pool taken.

    python benchmarks/make_heldout_phrasing_c.py      # deterministic: same bytes every run
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np

from edgeagent.sim.families import FAMILIES, generate
from edgeagent.sim.goals import DIRECTIONS
from edgeagent.sim.scenario import dump_scenarios
from edgeagent.sim.world import CORNERS, PLACES

SEED = 1_000_888
#: Scenarios drawn per family; the first PER_FAMILY that can be said unambiguously are kept.
POOL = 40
PER_FAMILY = 10
#: A positional description must beat the runner-up by this much (m).
MARGIN = 0.05
#: Share of instructions written plainly; the rest in a varied voice.
PLAIN_SHARE = 1 / 3
OUT = Path(__file__).resolve().parents[1] / "sim" / "scenarios" / "heldout-phrasing-c.yaml"

NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


# -- the speaker's voice --------------------------------------------------------------------------

class Voice:
    """One speaker for one instruction: a random stream, plain or varied, and the words they use."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.plain = rng.random() < PLAIN_SHARE
        self.brit = not self.plain and rng.random() < 0.4
        self.cube = "block" if self.plain else rng.choice(["block", "block", "cube", "cube"])
        self.dish = "bowl" if self.plain else rng.choice(["bowl", "bowl", "bowl", "dish", "container"])
        self.centre = "centre" if self.brit else "center"
        self.colour_word = "colour" if self.brit else "color"
        # Whether a lone bowl is just "the bowl" to this speaker.
        self.bare_bowl = not self.plain and rng.random() < 0.4

    def pick(self, options):
        return self.rng.choice(options)

    def colour(self, c: str) -> str:
        return "grey" if c == "gray" and self.brit else c

    def block(self, c: str) -> str:
        return f"the {self.colour(c)} {self.cube}"

    def bowl(self, c: str, n_bowls: int) -> str:
        if n_bowls == 1 and self.bare_bowl:
            return f"the {self.dish}"
        return f"the {self.colour(c)} {self.dish}"

    def cubes(self) -> str:
        return self.cube + "s"

    def dishes(self) -> str:
        return self.dish + "es" if self.dish == "dish" else self.dish + "s"

    # Places: ``spot`` is a noun phrase ("the far left corner"), ``at`` a location ("in the far left
    # corner"), ``to`` a destination for verbs of motion ("to the far left corner").
    def spot(self, place: str) -> str:
        if place == "middle":
            return "the middle of the table" if self.plain else \
                self.pick([f"the {self.centre} of the table", "the middle of the table", f"the {self.centre}"])
        if place in CORNERS:
            vert, horiz, _ = place.split()
            if self.plain:
                return f"the {vert} {horiz} corner"
            front = {"top": ["top", "far", "back", "upper"], "bottom": ["bottom", "near", "front", "lower"]}
            return self.pick([f"the {self.pick(front[vert])} {horiz} corner",
                              f"the {self.pick(front[vert])}-{horiz} corner"])
        edge = place.split()[0]
        words = {"top": ["top", "far", "back"], "bottom": ["bottom", "near", "front"],
                 "left": ["left"], "right": ["right"]}[edge]
        if self.plain:
            return f"the middle of the {edge} edge"
        word = self.pick(words)
        return self.pick([f"the middle of the {word} edge", f"the halfway point of the {word} edge",
                          f"the {self.centre} of the {word} edge"])

    def at(self, place: str) -> str:
        s = self.spot(place)
        if place in CORNERS or place == "middle":
            return f"in {s}"
        return f"in {s}" if s.startswith("the middle") else f"at {s}"

    def to(self, place: str) -> str:
        return f"to {self.spot(place)}"


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def num(n: int) -> str:
    return NUMBERS.get(n, str(n))


def every(n: int, noun: str) -> str:
    """'both cubes', 'all three cubes'."""
    return f"both {noun}" if n == 2 else f"all {num(n)} {noun}"


def say_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- reading a scenario ---------------------------------------------------------------------------

def colour_of(name: str) -> str:
    return name.rpartition(" ")[0]


def positions(scenario: dict, kind: str) -> dict[str, tuple[float, float]]:
    return {o["color"]: tuple(o["at"]) for o in scenario["scene"].get(kind, [])}


def destination(goal_item: dict, v: Voice, n_bowls: int) -> tuple[str, str]:
    """(location, destination) phrases for where a moved block must end up: a bowl, a block or a place."""
    (key, (_, where)), = goal_item.items()
    if key == "in":
        b = v.bowl(colour_of(where), n_bowls)
        return f"in {b}", f"into {b}"
    if key == "on":
        b = v.block(colour_of(where))
        return f"on top of {b}", f"onto {b}"
    return v.at(where), v.to(where)


# -- positional descriptions (computed from the scene, checked for a clear margin) -----------------

def _bowl_relations(target: str, blocks: dict, bowls: dict) -> list[tuple[str, str]]:
    """(relation, bowl colour) pairs that single out ``target`` among the blocks by a clear margin."""
    out = []
    for bowl, (bx, by) in sorted(bowls.items()):
        for rel, (ux, uy) in DIRECTIONS.items():
            side = {c: (x - bx) * ux + (y - by) * uy for c, (x, y) in blocks.items()}
            tx, ty = blocks[target]
            # "In front of the bowl" should look it to a person: within 45 degrees of the direction.
            across = abs((tx - bx) * uy - (ty - by) * ux)
            others = [s for c, s in side.items() if c != target]
            if side[target] >= max(MARGIN, across) and max(others) <= min(-0.02, side[target] - MARGIN):
                out.append((rel, bowl))
        dist = sorted((float(np.hypot(x - bx, y - by)), c) for c, (x, y) in blocks.items())
        if dist[0][1] == target and dist[1][0] - dist[0][0] >= MARGIN:
            out.append(("closest", bowl))
        if dist[-1][1] == target and dist[-1][0] - dist[-2][0] >= MARGIN:
            out.append(("farthest", bowl))
    return out


def _ranks(target: str, blocks: dict) -> list[tuple[str, int, int]]:
    """(side, rank, n) with ``target`` the rank-th block counted from that side, clear of its neighbours."""
    out = []
    for side, (ux, uy) in DIRECTIONS.items():
        proj = sorted(((x * ux + y * uy), c) for c, (x, y) in blocks.items())[::-1]
        k = [c for _, c in proj].index(target)
        if k > 2:
            continue
        gaps = [abs(proj[k][0] - proj[j][0]) for j in (k - 1, k + 1) if 0 <= j < len(proj)]
        if all(g >= MARGIN - 1e-9 for g in gaps):
            out.append((side, k + 1, len(proj)))
    return out


def _corner_refs(mover: str, corner: str, blocks: dict, bowls: dict) -> list[tuple[str, str, str]]:
    """(which, kind, colour): ``corner`` is the corner nearest / farthest from that object, clearly."""
    out = []
    objects = [("bowl", c, p) for c, p in sorted(bowls.items())] + \
              [("block", c, p) for c, p in sorted(blocks.items()) if c != mover]
    for kind, c, (x, y) in objects:
        d = sorted((float(np.hypot(x - PLACES[k][0], y - PLACES[k][1])), k) for k in CORNERS)
        if d[0][1] == corner and d[1][0] - d[0][0] >= MARGIN:
            out.append(("closest", kind, c))
        if d[-1][1] == corner and d[-1][0] - d[-2][0] >= MARGIN:
            out.append(("farthest", kind, c))
    return out


def describe_relation(rel: str, bowl: str, v: Voice) -> str:
    """'the block to the left of the blue bowl' and the like."""
    cube = v.cube
    words = {
        "left": ["to the left of", "left of", "on the left of"],
        "right": ["to the right of", "right of", "on the right of"],
        "top": ["behind", "on the far side of", "further back than"],
        "bottom": ["in front of", "on the near side of", "nearer the front than"],
        "closest": ["nearest", "closest to", "nearest to"],
        "farthest": ["farthest from", "furthest from", "furthest away from"],
    }
    if v.plain:
        plain = {"left": "to the left of", "right": "to the right of", "top": "behind",
                 "bottom": "in front of", "closest": "closest to", "farthest": "farthest from"}
        return f"the block {plain[rel]} {bowl}"
    rel_words = v.pick(words[rel])
    return v.pick([f"the {cube} {rel_words} {bowl}", f"the {cube} that's {rel_words} {bowl}",
                   f"whichever {cube} is {rel_words} {bowl}"])


def describe_rank(side: str, rank: int, n: int, v: Voice) -> str:
    """'the second block from the left', 'the frontmost cube', 'the middle one of the three'."""
    cube = v.cube
    ordinal = {2: "second", 3: "third"}
    edge = {"left": "left", "right": "right", "top": "back", "bottom": "front"}[side]
    if v.plain:
        if rank == 1:
            return {"left": "the leftmost block", "right": "the rightmost block",
                    "top": "the block farthest from the robot", "bottom": "the block nearest the front"}[side]
        return f"the {ordinal[rank]} block from the {edge}"
    if rank == 2 and n == 3 and v.rng.random() < 0.5:
        axis = "left to right" if side in ("left", "right") else "front to back"
        return f"the middle {cube} of the three, going {axis}"
    if rank == 1:
        return v.pick({
            "left": [f"the leftmost {cube}", f"the {cube} furthest to the left", f"the {cube} on the far left"],
            "right": [f"the rightmost {cube}", f"the {cube} furthest to the right", f"the {cube} on the far right"],
            "top": [f"the {cube} furthest back", f"the {cube} nearest the back edge", f"the rearmost {cube}"],
            "bottom": [f"the frontmost {cube}", f"the {cube} nearest the front edge", f"the {cube} furthest forward"],
        }[side])
    nth = ordinal[rank]
    return v.pick([f"the {nth} {cube} from the {edge}", f"the {nth} {cube} counting from the {edge}",
                   f"the {cube} that's {nth} from the {edge}"])


# -- one sayer per family: (scenario, voice) -> instruction, or None when it can't be said clearly --

def say_pick_place_block(sc: dict, v: Voice) -> str:
    a, b = (colour_of(n) for n in sc["goal"][0]["on"])
    A, B = v.block(a), v.block(b)
    if v.plain:
        return v.pick([f"Put the {a} block on the {b} block.", f"Place the {a} block on top of the {b} block.",
                       f"Stack the {a} block on the {b} block."])
    return v.pick([
        f"Could you put {A} on top of {B}?",
        f"{cap(A)} on {B}, please.",
        f"I'd like {A} sitting on top of {B}.",
        f"okay so grab {A} and set it down on {B}",
        f"On top of {B} goes {A}.",
        f"{v.colour(a)} {v.cube} -> on top of {v.colour(b)} {v.cube}",
        f"We're building a little tower, so pop {A} onto {B} for me.",
        f"Would you mind stacking {A} on {B}?",
        f"Lift {A} and rest it on {B}.",
    ])


def say_pick_place_bowl(sc: dict, v: Voice) -> str:
    a, b = (colour_of(n) for n in sc["goal"][0]["in"])
    nb = len(sc["scene"].get("bowls", []))
    A, B = v.block(a), v.bowl(b, nb)
    if v.plain:
        return v.pick([f"Put the {a} block in the {b} bowl.", f"Place the {a} block into the {b} bowl.",
                       f"Move the {a} block into the {b} bowl."])
    return v.pick([
        f"Could you drop {A} into {B}?",
        f"{v.colour(a)} {v.cube} -> {B[4:]}",
        f"Into {B} goes {A}.",
        f"I need {A} in {B}, please.",
        f"um can you take {A} and put it in {B}",
        f"We're tidying up, so please put {A} in {B}.",
        f"Would you mind popping {A} into {B}?",
        f"{cap(A)} needs to go in {B}.",
        f"Pick up {A} and drop it in {B}.",
    ])


def say_pick_place_place(sc: dict, v: Voice) -> str:
    mover, place = sc["goal"][0]["at"]
    a = colour_of(mover)
    A = v.block(a)
    if v.plain:
        return v.pick([f"Move the {a} block {v.to(place)}.", f"Put the {a} block {v.at(place)}.",
                       f"Place the {a} block {v.at(place)}."])
    return v.pick([
        f"Could you move {A} {v.to(place)}?",
        f"{v.colour(a)} {v.cube} -> {v.spot(place)}",
        f"I'd like {A} {v.at(place)}.",
        f"okay so {A} goes {v.at(place)}",
        f"Over {v.to(place)} with {A}, please.",
        f"Let's get {A} {v.at(place)}, it's in the way where it is.",
        f"Would you mind moving {A} {v.to(place)}?",
        f"Take {A} {v.to(place)}.",
    ])


def _stack_order(order: list[str], v: Voice) -> str:
    """An ordered tower, bottom first in ``order``."""
    names = [v.colour(c) for c in order]
    cube = v.cube
    if len(order) == 2:
        low, high = names
        if v.plain:
            return v.pick([f"Stack the {high} block on the {low} block.",
                           f"Put the {high} block on top of the {low} block."])
        return v.pick([f"Could you stack the {high} {cube} on top of the {low} {cube}?",
                       f"{high} {cube} goes on top of the {low} one",
                       f"I want the {low} {cube} at the bottom and the {high} {cube} on top of it."])
    middle = names[1:-1]
    if v.plain:
        return v.pick([
            f"Stack the blocks with the {names[0]} block at the bottom, then "
            + ", then ".join(f"the {c}" for c in middle) + f", and the {names[-1]} on top.",
            "Build a tower from the bottom up: " + say_list([f"{c}" for c in names]) + ".",
        ])
    return v.pick([
        f"tower, bottom to top: {', '.join(names)}",
        f"Stack them top to bottom: {', '.join(reversed(names))}.",
        f"Could you make a stack with {names[0]} on the bottom, "
        + ", ".join(middle) + f" next, and {names[-1]} on top?",
        f"I want {names[-1]} at the very top, then "
        + ", then ".join(reversed(middle)) + f", with the {names[0]} {cube} as the base.",
        f"okay so {names[0]} first on the bottom then "
        + " then ".join(middle) + f" then {names[-1]} on top",
        f"Would you mind stacking the {cube}s in this order, base first: " + say_list(names) + "?",
    ])


def say_stack(sc: dict, v: Voice) -> str:
    goal = sc["goal"][0]["stacked"]
    if goal != "all blocks":
        return _stack_order([colour_of(n) for n in goal], v)
    n = len(sc["scene"]["blocks"])
    cubes = v.cubes()
    if v.plain:
        return v.pick(["Stack all the blocks on top of each other.", f"Stack {every(n, 'blocks')} into one tower.",
                       "Put all the blocks in a single stack."])
    return v.pick([
        f"Could you pile all the {cubes} up into one tower? Any order is fine.",
        f"one tower, {every(n, cubes)}, order doesn't matter",
        f"I'd like every {v.cube} stacked up in a single tower.",
        f"okay so just stack up all the {cubes} in one tower whatever order",
        f"Let's save some space: stack all the {cubes} on top of one another.",
        f"Would you mind building one tall tower out of all the {cubes}?",
        f"{cap(every(n, cubes))} into one stack, please.",
        f"Make a single tower using every {v.cube} on the table.",
    ])


def say_stack_at_place(sc: dict, v: Voice) -> str:
    place = next(g["at"][1] for g in sc["goal"] if "at" in g)
    n = len(sc["scene"]["blocks"])
    cubes = v.cubes()
    if v.plain:
        return v.pick([f"Stack all the blocks into one tower {v.at(place)}.",
                       f"Build one stack of all the blocks {v.at(place)}."])
    return v.pick([
        f"Could you build one tower out of all the {cubes} {v.at(place)}?",
        f"all {cubes} stacked -> {v.spot(place)}",
        f"I'd like a single stack of every {v.cube}, standing {v.at(place)}.",
        f"okay so pile all the {cubes} up into one tower over {v.at(place)}",
        f"{cap(v.at(place))}, please build one tower with {every(n, cubes)}.",
        f"We need the rest of the table clear, so stack every {v.cube} in one tower {v.at(place)}.",
        f"Would you mind stacking {every(n, cubes)} on top of each other {v.at(place)}?",
    ])


def say_all_to_place(sc: dict, v: Voice) -> str:
    place = sc["goal"][0]["at"][1]
    n = len(sc["goal"])
    cubes = v.cubes()
    if v.plain:
        return v.pick([f"Move all the blocks {v.to(place)}.", f"Put every block {v.at(place)}."])
    return v.pick([
        f"Could you gather {every(n, cubes)} {v.at(place)}?",
        f"all {cubes} -> {v.spot(place)}",
        f"Round up every {v.cube} and put them {v.at(place)}, please.",
        f"okay so every single {v.cube} needs to end up {v.at(place)}",
        f"We're clearing the table, so shift all the {cubes} over {v.to(place)}.",
        f"Would you mind collecting the {cubes} {v.at(place)}?",
        f"{cap(v.spot(place))} is where all the {cubes} should go.",
    ])


def say_all_into_bowl(sc: dict, v: Voice) -> str:
    b = colour_of(sc["goal"][0]["in"][1])
    n = len(sc["goal"])
    nb = len(sc["scene"]["bowls"])
    cubes, B = v.cubes(), v.bowl(b, nb)
    if v.plain:
        return v.pick([f"Put all the blocks in the {b} bowl.", f"Put every block into the {b} bowl."])
    return v.pick([
        f"Could you drop every {v.cube} into {B}?",
        f"all {cubes} -> {B[4:]}",
        f"Let's tidy up: {every(n, cubes)} go in {B}.",
        f"um put all the {cubes} in {B} please",
        f"Into {B} with all the {cubes}, please.",
        f"I'd like every {v.cube} on the table sitting in {B}.",
        f"Would you mind putting all the {cubes} in {B}?",
    ])


def say_matching_bowls(sc: dict, v: Voice) -> str:
    colours = [colour_of(g["in"][0]) for g in sc["goal"]]
    cubes, dishes, col = v.cubes(), v.dishes(), v.colour_word
    if v.plain:
        return v.pick(["Put each block in the bowl of the same color.",
                       "Put every block into the bowl that matches its color."])
    pairs = [f"{v.colour(c)} {v.cube} in the {v.colour(c)} {v.dish}" for c in colours]
    return v.pick([
        f"Could you sort the {cubes} into the {dishes} that match their {col}?",
        f"Match them up: each {v.cube} goes in the {v.dish} of its own {col}.",
        f"{col} match: {cubes} into same-{col} {dishes}",
        cap(say_list(pairs)) + ", please.",
        f"okay so just put each {v.cube} in the {v.dish} that's the same {col} as it",
        f"We're sorting by {col} today, so drop every {v.cube} into its matching {v.dish}.",
        f"Would you mind putting each {v.cube} in the {v.dish} with the same {col}?",
    ])


def say_mismatched_bowls(sc: dict, v: Voice) -> str:
    colours = [colour_of(g["any"][0]["in"][0]) for g in sc["goal"]]
    cubes, dishes, col = v.cubes(), v.dishes(), v.colour_word
    if v.plain:
        return v.pick(["Put each block in a bowl of a different color.",
                       "Put every block into a bowl that does not match its color."])
    coloured = "coloured" if v.brit else "colored"
    options = [
        f"Could you put each {v.cube} in a {v.dish} that isn't its own {col}?",
        f"Every {v.cube} goes in a {v.dish}, just never the one matching its {col}.",
        f"each {v.cube} -> a {v.dish} of another {col}",
        f"okay so put the {cubes} in the {dishes} but mix them up so none is in its own {col}",
        f"For a bit of a puzzle, put every {v.cube} in a {v.dish} whose {col} doesn't match it.",
        f"Would you mind placing each {v.cube} into a {v.dish} {coloured} differently from the {v.cube} itself?",
    ]
    if len(colours) == 2:
        options.append("Put " + say_list([f"{v.block(c)} in any {v.dish} that isn't {v.colour(c)}"
                                          for c in colours]) + ".")
    else:
        options.append(f"Every {v.cube} into a {v.dish}, with no {v.cube} in the {v.dish} of its own {col}.")
    return v.pick(options)


def say_distinct_corners(sc: dict, v: Voice) -> str:
    n = len(sc["scene"]["blocks"])
    cubes = v.cubes()
    if v.plain:
        return v.pick(["Put each block in a different corner.",
                       "Move the blocks so that each one is in a different corner."])
    options = [
        f"Could you spread the {num(n)} {cubes} out so each sits in its own corner?",
        f"{cubes} -> separate corners, no doubling up",
        f"okay so put every {v.cube} in its own corner of the table",
        f"I'd like the {cubes} split up into different corners, no two in the same one.",
        f"Corners, please: each {v.cube} in a different one.",
        f"We're testing reach, so send each {v.cube} to a corner of its own.",
    ]
    if n == 4:
        options.append(f"Put one {v.cube} in each corner of the table.")
    return v.pick(options)


def say_line(sc: dict, v: Voice) -> str:
    orientation = sc["goal"][0]["line"][0]
    n = len(sc["scene"]["blocks"])
    cubes = v.cubes()
    if v.plain:
        return v.pick([f"Arrange all the blocks in a {orientation} line.", f"Put the blocks in a {orientation} line."])
    shape = v.pick({
        "horizontal": ["a horizontal line", "a straight row running left to right", "a row going across the table",
                       "a straight line from left to right"],
        "vertical": ["a vertical line", "a straight line running from the front of the table to the back",
                     "a column going away from the robot", "a straight front-to-back line"],
        "diagonal": ["a diagonal line", "a straight line at 45 degrees", "a slanted line at 45 degrees to the edges",
                     "a diagonal row"],
    }[orientation])
    return v.pick([
        f"Could you line up {every(n, cubes)} in {shape}?",
        f"all {cubes} in {shape}",
        f"okay so line the {cubes} up in {shape}",
        f"I'd like the {cubes} laid out in {shape}, none stacked.",
        f"For the photo, put every {v.cube} in {shape}.",
        f"Would you mind arranging the {cubes} in {shape}?",
    ])


def _move_described(target: str, dest_at: str, dest_to: str, v: Voice) -> str:
    """Move a block named by description (not colour) somewhere."""
    if v.plain:
        return v.pick([f"Move {target} {dest_to}.", f"Put {target} {dest_at}."])
    return v.pick([
        f"Could you take {target} and put it {dest_at}?",
        f"{target[4:] if target.startswith('the ') else target} -> {dest_at}",
        f"okay so {target} yeah that one put it {dest_at}",
        f"I'd like {target} moved {dest_to}.",
        f"Would you mind moving {target} {dest_to}?",
        f"Grab {target} and set it {dest_at}.",
        f"Quick one: {target} needs to go {dest_to}.",
    ])


def say_relation_to_bowl(sc: dict, v: Voice) -> str | None:
    blocks, bowls = positions(sc, "blocks"), positions(sc, "bowls")
    (_, (mover, _)), = sc["goal"][0].items()
    options = _bowl_relations(colour_of(mover), blocks, bowls)
    if not options:
        return None
    rel, bowl = v.pick(options)
    target = describe_relation(rel, v.bowl(bowl, len(bowls)), v)
    dest_at, dest_to = destination(sc["goal"][0], v, len(bowls))
    return _move_described(target, dest_at, dest_to, v)


def say_rank_from_side(sc: dict, v: Voice) -> str | None:
    blocks = positions(sc, "blocks")
    (_, (mover, _)), = sc["goal"][0].items()
    options = _ranks(colour_of(mover), blocks)
    if not options:
        return None
    side, rank, n = v.pick(options)
    target = describe_rank(side, rank, n, v)
    dest_at, dest_to = destination(sc["goal"][0], v, len(sc["scene"].get("bowls", [])))
    return _move_described(target, dest_at, dest_to, v)


def say_offset(sc: dict, v: Voice) -> str:
    mover, ref, direction, amount = sc["goal"][0]["offset"]
    nb = len(sc["scene"].get("bowls", []))
    A = v.block(colour_of(mover))
    R = v.bowl(colour_of(ref), nb) if ref.endswith("bowl") else v.block(colour_of(ref))
    little = amount == "a little"
    if v.plain:
        amt = "a little" if little else "far"
        rel = {"left": "to the left of", "right": "to the right of", "top": "behind", "bottom": "in front of"}
        return f"Put the {colour_of(mover)} block {amt} {rel[direction]} {R}."
    if direction in ("left", "right"):
        d = direction
        rel = v.pick([f"a little to the {d} of", f"a bit {d} of", f"a short way to the {d} of",
                      f"about 10 cm to the {d} of"] if little else
                     [f"far to the {d} of", f"well to the {d} of", f"a long way {d} of", f"about 25 cm to the {d} of"])
    else:
        word = "behind" if direction == "top" else "in front of"
        rel = v.pick(["a little", "a bit", "a short way", "about 10 cm"] if little else
                     ["far", "well", "a long way", "about 25 cm"]) + f" {word}"
    return v.pick([
        f"Could you move {A} so it sits {rel} {R}?",
        f"{A[4:]} -> {rel} {R}",
        f"I'd like {A} placed {rel} {R}.",
        f"okay so take {A} and put it {rel} {R}",
        f"{cap(rel)} {R} is where {A} should go.",
        f"Would you mind putting {A} {rel} {R}?",
    ])


def say_corner_relative(sc: dict, v: Voice) -> str | None:
    mover, corner = sc["goal"][0]["at"]
    blocks, bowls = positions(sc, "blocks"), positions(sc, "bowls")
    options = _corner_refs(colour_of(mover), corner, blocks, bowls)
    if not options:
        return None
    which, kind, c = v.pick(options)
    R = v.bowl(c, len(bowls)) if kind == "bowl" else v.block(c)
    A = v.block(colour_of(mover))
    if v.plain:
        rel = "closest to" if which == "closest" else "farthest from"
        return v.pick([f"Put the {colour_of(mover)} block in the corner {rel} {R}.",
                       f"Move the {colour_of(mover)} block to the corner {rel} {R}."])
    rel = v.pick(["nearest", "closest to", "nearest to"] if which == "closest" else
                 ["farthest from", "furthest from", "furthest away from"])
    far = which == "farthest" and v.rng.random() < 0.3
    corner_np = f"the far corner from {R}" if far else f"the corner {rel} {R}"
    return v.pick([
        f"Could you move {A} to {corner_np}?",
        f"{A[4:]} -> {corner_np[4:]}",
        f"I'd like {A} in {corner_np}.",
        f"okay so put {A} in {corner_np}",
        f"Would you mind putting {A} in {corner_np}?",
        f"Take {A} over to {corner_np}.",
    ])


SAYERS = {
    "pick-place-block": say_pick_place_block, "pick-place-bowl": say_pick_place_bowl,
    "pick-place-place": say_pick_place_place, "stack": say_stack, "stack-at-place": say_stack_at_place,
    "all-to-place": say_all_to_place, "all-into-bowl": say_all_into_bowl, "matching-bowls": say_matching_bowls,
    "mismatched-bowls": say_mismatched_bowls, "distinct-corners": say_distinct_corners,
    "relation-to-bowl": say_relation_to_bowl, "rank-from-side": say_rank_from_side, "offset": say_offset,
    "corner-relative": say_corner_relative, "line": say_line,
}


# -- building the file ----------------------------------------------------------------------------

def check(text: str, name: str) -> str:
    """One tidy ASCII instruction of 4-30 words; raises on anything else (a bug in a template)."""
    text = " ".join(text.split())
    if not text.isascii() or not 4 <= len(text.split()) <= 30:
        raise ValueError(f"{name}: instruction breaks the rules (ASCII, 4-30 words): {text!r}")
    return text


def family_scenarios(family: str) -> list[dict]:
    """The first PER_FAMILY scenarios of the family's pool that can be said clearly, reworded."""
    out = []
    for i, sc in enumerate(generate([family], POOL, SEED)):
        voice = Voice(random.Random(SEED * 1000 + zlib.crc32(family.encode()) * 100 + i))
        text = SAYERS[family](sc, voice)
        if text is None:
            continue
        name = f"{family}-c-{len(out)}"
        out.append({**sc, "name": name, "instruction": check(text, name)})
        if len(out) == PER_FAMILY:
            return out
    raise RuntimeError(f"{family}: only {len(out)} of {POOL} scenarios could be said clearly; raise POOL")


def main() -> None:
    items = [sc for family in FAMILIES for sc in family_scenarios(family)]
    dump_scenarios(items, OUT)
    print(f"wrote {len(items)} scenarios to {OUT}")


if __name__ == "__main__":
    main()
