"""Task families: seeded generators of (scene, instruction, goal) scenarios in DESIGN §9 form.

Each family draws a scene (every object with an explicit ``at``, laid out with the same clearances as
``World.from_scene``, distractors included), a goal that the kinematic simulator can satisfy and that
does not already hold, and an instruction phrased by ``edgeagent.sim.phrasing``. Scenes that make a
referring expression ("the second block from the left", "the block left of the blue bowl") are drawn
so the referent is unambiguous by a clear margin.

    >>> from edgeagent.sim.families import generate
    >>> items = generate(["stack", "offset"], count=10, seed=0)   # plain dicts, ready for YAML
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgeagent.errors import ScenarioError
from edgeagent.sim.goals import AMOUNTS, DIRECTIONS, bind, holds, parse_goal
from edgeagent.sim.phrasing import phrase
from edgeagent.sim.world import (BLOCK_SIZE, BOWL_RADIUS, COLORS, CORNERS, PLACE_TOLERANCE, PLACES, WORKSPACE,
                                 World)

#: A referent must beat the runner-up by this much (m): relation to a bowl, nearest corner.
MARGIN = 0.06
#: Gap (m) between consecutive blocks along the ranking axis for "the second block from the left".
RANK_GAP = 0.05


class _Retry(Exception):
    """The layout drawn so far cannot satisfy the family's constraints; draw again."""


def _clearance(a: str, b: str) -> float:
    # Same rule as World.from_scene's random layout, so generated scenes look like its scenes.
    r = {"bowl": BOWL_RADIUS, "block": BLOCK_SIZE * 0.75}
    return r[a] + r[b] + 0.03


def _limit(kind: str) -> float:
    return WORKSPACE - (BOWL_RADIUS if kind == "bowl" else BLOCK_SIZE) - 0.01


def _in_zone(x: float, y: float, place: str, slack: float = 0.0) -> bool:
    ax, ay = PLACES[place]
    return abs(x - ax) <= PLACE_TOLERANCE + slack and abs(y - ay) <= PLACE_TOLERANCE + slack


class _Scene:
    """Objects laid out one at a time by rejection sampling, each clear of those before it."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.blocks: dict[str, tuple[float, float]] = {}
        self.bowls: dict[str, tuple[float, float]] = {}

    def add(self, kind: str, color: str, ok: Callable[[float, float], bool] | None = None,
            box: tuple[float, float, float, float] | None = None, tries: int = 200) -> tuple[float, float]:
        """Place one object uniformly in ``box`` (x0, x1, y0, y1, clipped to the workspace) where
        ``ok(x, y)`` holds; raises _Retry when no such spot turns up."""
        lim = _limit(kind)
        x0, x1, y0, y1 = box or (-lim, lim, -lim, lim)
        x0, x1, y0, y1 = max(x0, -lim), min(x1, lim), max(y0, -lim), min(y1, lim)
        if x0 > x1 or y0 > y1:
            raise _Retry
        placed = [("block", p) for p in self.blocks.values()] + [("bowl", p) for p in self.bowls.values()]
        for _ in range(tries):
            x = round(float(self.rng.uniform(x0, x1)), 3)
            y = round(float(self.rng.uniform(y0, y1)), 3)
            if all(np.hypot(x - px, y - py) >= _clearance(kind, k) for k, (px, py) in placed) and \
                    (ok is None or ok(x, y)):
                (self.bowls if kind == "bowl" else self.blocks)[color] = (x, y)
                return x, y
        raise _Retry

    def add_all(self, kind: str, colors, ok=None) -> None:
        for c in colors:
            self.add(kind, c, ok)

    def to_dict(self, seed: int) -> dict:
        def items(table):
            # Shuffled so the file's order says nothing about which object the task is about.
            order = self.rng.permutation(len(table))
            pairs = list(table.items())
            return [{"color": pairs[i][0], "at": list(pairs[i][1])} for i in order]
        return {"seed": seed, "blocks": items(self.blocks), "bowls": items(self.bowls)}

    def world(self, seed: int) -> World:
        return World.from_scene(list(self.blocks.items()), list(self.bowls.items()), seed=seed)


def _colors(rng, n: int, exclude=()) -> list[str]:
    pool = [c for c in COLORS if c not in exclude]
    return [str(c) for c in rng.choice(pool, size=n, replace=False)]


def _count(rng, lo: int, hi: int) -> int:
    """An integer in [lo, hi]."""
    return int(rng.integers(lo, hi + 1))


def _block(c: str) -> str:
    return f"{c} block"


def _bowl(c: str) -> str:
    return f"{c} bowl"


@dataclass
class _Draft:
    """What a family builder returns: the layout, the phrasing slots, the goal and how many block
    moves the task needs at most (for ``max_steps``)."""

    scene: _Scene
    slots: dict
    goal: list
    moves: int


# -- destinations shared by the referring-expression families ---------------------------------


def _destination(rng, scene: _Scene, block: str) -> tuple[dict, dict]:
    """Somewhere for ``block`` to go that it is not already: a bowl, another block or a place.
    Returns (slot, goal predicate)."""
    kinds = ["place", "place"] + ["bowl"] * (2 if scene.bowls else 0) + ["block"] * (len(scene.blocks) > 1)
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "bowl":
        c = str(rng.choice(sorted(scene.bowls)))
        return {"kind": "bowl", "color": c, "n_bowls": len(scene.bowls)}, {"in": [_block(block), _bowl(c)]}
    if kind == "block":
        c = str(rng.choice(sorted(set(scene.blocks) - {block})))
        return {"kind": "block", "color": c}, {"on": [_block(block), _block(c)]}
    x, y = scene.blocks[block]
    free = [p for p in PLACES if not _in_zone(x, y, p, slack=0.02)]
    p = str(rng.choice(free))
    return {"kind": "place", "place": p}, {"at": [_block(block), p]}


# -- the families ---------------------------------------------------------------------------------


def _pick_place_block(rng) -> _Draft:
    s = _Scene(rng)
    blocks = _colors(rng, _count(rng, 2, 5))
    s.add_all("bowl", _colors(rng, _count(rng, 0, 3)))
    s.add_all("block", blocks)
    a, b = blocks[:2]
    return _Draft(s, {"block": a, "target": b}, [{"on": [_block(a), _block(b)]}], 1)


def _pick_place_bowl(rng) -> _Draft:
    s = _Scene(rng)
    bowls = _colors(rng, _count(rng, 1, 4))
    blocks = _colors(rng, _count(rng, 2, 5))
    s.add_all("bowl", bowls)
    s.add_all("block", blocks)
    return _Draft(s, {"block": blocks[0], "bowl": bowls[0], "n_bowls": len(bowls)},
                  [{"in": [_block(blocks[0]), _bowl(bowls[0])]}], 1)


def _pick_place_place(rng) -> _Draft:
    s = _Scene(rng)
    place = str(rng.choice(list(PLACES)))
    blocks = _colors(rng, _count(rng, 2, 5))
    s.add_all("bowl", _colors(rng, _count(rng, 0, 3)))
    s.add("block", blocks[0], ok=lambda x, y: not _in_zone(x, y, place, slack=0.02))
    s.add_all("block", blocks[1:])
    return _Draft(s, {"block": blocks[0], "place": place}, [{"at": [_block(blocks[0]), place]}], 1)


def _stack(rng) -> _Draft:
    s = _Scene(rng)
    blocks = _colors(rng, _count(rng, 2, 4))  # 4 cubes already stand above the travel height
    s.add_all("bowl", _colors(rng, _count(rng, 0, 3)))
    s.add_all("block", blocks)
    if rng.random() < 0.4:
        order = [str(c) for c in rng.permutation(blocks)]
        return _Draft(s, {"order": order}, [{"stacked": [_block(c) for c in order]}], len(blocks))
    return _Draft(s, {"order": None}, [{"stacked": "all blocks"}], len(blocks))


def _stack_at_place(rng) -> _Draft:
    s = _Scene(rng)
    place = str(rng.choice(list(PLACES)))
    blocks = _colors(rng, _count(rng, 2, 4))
    s.add_all("bowl", _colors(rng, _count(rng, 0, 2)))
    s.add_all("block", blocks)
    # "stacked at the place": one stack whose every block (so its base) lies in the place's zone.
    goal = [{"stacked": "all blocks"}] + [{"at": [_block(c), place]} for c in blocks]
    return _Draft(s, {"place": place}, goal, len(blocks))


def _all_to_place(rng) -> _Draft:
    s = _Scene(rng)
    place = str(rng.choice(list(PLACES)))
    blocks = _colors(rng, _count(rng, 2, 4))  # four 4 cm cubes fit side by side in the 18 cm zone
    s.add_all("bowl", _colors(rng, _count(rng, 0, 3)))
    s.add("block", blocks[0], ok=lambda x, y: not _in_zone(x, y, place, slack=0.02))
    s.add_all("block", blocks[1:])
    return _Draft(s, {"place": place}, [{"at": [_block(c), place]} for c in blocks], len(blocks))


def _all_into_bowl(rng) -> _Draft:
    s = _Scene(rng)
    bowls = _colors(rng, _count(rng, 1, 4))
    blocks = _colors(rng, _count(rng, 2, 3))  # a 12 cm bowl holds three cubes side by side
    s.add_all("bowl", bowls)
    s.add_all("block", blocks)
    return _Draft(s, {"bowl": bowls[0], "n_bowls": len(bowls)},
                  [{"in": [_block(c), _bowl(bowls[0])]} for c in blocks], len(blocks))


def _matching_bowls(rng) -> _Draft:
    s = _Scene(rng)
    blocks = _colors(rng, _count(rng, 2, 3))
    extra = _colors(rng, _count(rng, 0, 1), exclude=blocks)  # a bowl no block matches
    s.add_all("bowl", [*blocks, *extra])
    s.add_all("block", blocks)
    return _Draft(s, {}, [{"in": [_block(c), _bowl(c)]} for c in blocks], len(blocks))


def _mismatched_bowls(rng) -> _Draft:
    s = _Scene(rng)
    blocks = _colors(rng, _count(rng, 2, 3))
    extra = _colors(rng, _count(rng, 0, 1), exclude=blocks)
    bowls = [*blocks, *extra]
    s.add_all("bowl", bowls)
    s.add_all("block", blocks)
    # The instruction names no pairing, so any bowl of another colour will do for each block.
    goal = [{"any": [{"in": [_block(c), _bowl(b)]} for b in bowls if b != c]} for c in blocks]
    return _Draft(s, {}, goal, len(blocks))


def _distinct_corners(rng) -> _Draft:
    s = _Scene(rng)
    blocks = _colors(rng, _count(rng, 2, 4))
    s.add_all("bowl", _colors(rng, _count(rng, 0, 3)))
    s.add_all("block", blocks)
    return _Draft(s, {"n_blocks": len(blocks)}, [{"distinct": ["corners", "all blocks"]}], len(blocks))


def _relation_to_bowl(rng) -> _Draft:
    s = _Scene(rng)
    relation = str(rng.choice(["left", "right", "top", "bottom", "closest", "farthest"]))
    bowls = _colors(rng, _count(rng, 1, 3))
    blocks = _colors(rng, _count(rng, 2, 4))
    ref, others = blocks[0], blocks[1:]
    if relation in DIRECTIONS:
        ux, uy = DIRECTIONS[relation]
        # Room on both sides of the bowl along the relation's axis.
        bx, by = s.add("bowl", bowls[0], box=(-0.12, 0.12, -0.3, 0.3) if ux else (-0.3, 0.3, -0.12, 0.12))

        def side(x, y):
            return (x - bx) * ux + (y - by) * uy

        s.add_all("bowl", bowls[1:])
        # The referent is clearly on that side; every other block clearly on the other side.
        s.add("block", ref, ok=lambda x, y: side(x, y) >= MARGIN + 0.01)
        s.add_all("block", others, ok=lambda x, y: side(x, y) <= -0.03)
    else:
        bx, by = s.add("bowl", bowls[0])
        s.add_all("bowl", bowls[1:])
        closest = relation == "closest"

        def dist(x, y):
            return float(np.hypot(x - bx, y - by))

        rx, ry = s.add("block", ref, ok=lambda x, y: dist(x, y) <= 0.2 if closest else dist(x, y) >= 0.25)
        d = dist(rx, ry)
        s.add_all("block", others, ok=(lambda x, y: dist(x, y) >= d + MARGIN) if closest
                  else (lambda x, y: dist(x, y) <= d - MARGIN))
    dest, pred = _destination(rng, s, ref)
    slots = {"relation": relation, "bowl": bowls[0], "n_bowls": len(bowls), "dest": dest}
    return _Draft(s, slots, [pred], 1)


def _rank_from_side(rng) -> _Draft:
    s = _Scene(rng)
    side = str(rng.choice(list(DIRECTIONS)))
    ux, uy = DIRECTIONS[side]
    blocks = _colors(rng, _count(rng, 2, 5))
    s.add_all("bowl", _colors(rng, _count(rng, 0, 3)))
    axis = 0 if ux else 1
    for c in blocks:
        s.add("block", c, ok=lambda x, y: all(abs((x, y)[axis] - p[axis]) >= RANK_GAP for p in s.blocks.values()))
    # Rank 1 is the block furthest towards ``side``.
    ranked = sorted(s.blocks, key=lambda c: -(s.blocks[c][0] * ux + s.blocks[c][1] * uy))
    rank = _count(rng, 1, min(3, len(blocks)))
    target = ranked[rank - 1]
    dest, pred = _destination(rng, s, target)
    return _Draft(s, {"side": side, "rank": rank, "dest": dest}, [pred], 1)


def _point_segment_distance(px, py, ax, ay, bx, by) -> float:
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return float(np.hypot(px - (ax + t * dx), py - (ay + t * dy)))


#: An offset task's landing band ends this far from the centre along its direction, and other objects
#: keep this far from it (bowls would swallow the block, blocks stack it); ``crowd`` keeps it clear too.
_BAND_END = 0.27
_BAND_CLEAR = {"block": 0.07, "bowl": 0.10}


def _offset(rng) -> _Draft:
    s = _Scene(rng)
    direction = str(rng.choice(list(DIRECTIONS)))
    amount = str(rng.choice(list(AMOUNTS)))
    ux, uy = DIRECTIONS[direction]
    lo, hi = AMOUNTS[amount]
    ref_kind = "bowl" if rng.random() < 0.4 else "block"
    blocks = _colors(rng, _count(rng, 2, 4))
    bowls = _colors(rng, _count(rng, 1 if ref_kind == "bowl" else 0, 3))
    a = blocks[0]
    ref = bowls[0] if ref_kind == "bowl" else blocks[1]
    # Keep the middle of the band inside the workspace: reference at most 0.27 - mid along the direction.
    reach = _BAND_END - (lo + hi) / 2
    lim = _limit(ref_kind)
    box = (-lim, reach, -lim, lim) if ux > 0 else (-reach, lim, -lim, lim) if ux < 0 else \
        (-lim, lim, -lim, reach) if uy > 0 else (-lim, lim, -reach, lim)
    rx, ry = s.add(ref_kind, ref, box=box)
    along_room = _BAND_END - (rx * ux + ry * uy)
    end = min(hi, along_room)
    seg = (rx + ux * lo, ry + uy * lo, rx + ux * end, ry + uy * end)

    def clear_of_band(kind):
        # Nothing may sit where the moved block should land (bowls would swallow it, blocks stack it).
        return lambda x, y: _point_segment_distance(x, y, *seg) >= _BAND_CLEAR[kind]

    s.add_all("bowl", [b for b in bowls if b != ref], ok=clear_of_band("bowl"))
    s.add_all("block", [c for c in blocks if c not in (a, ref)], ok=clear_of_band("block"))
    s.add("block", a, ok=clear_of_band("block"))
    goal = [{"offset": [_block(a), _bowl(ref) if ref_kind == "bowl" else _block(ref), direction, amount]}]
    slots = {"block": a, "ref": {"kind": ref_kind, "color": ref, "n_bowls": len(bowls)},
             "direction": direction, "amount": amount}
    return _Draft(s, slots, goal, 1)


def _corner_relative(rng) -> _Draft:
    s = _Scene(rng)
    which = str(rng.choice(["closest", "farthest"]))
    ref_kind = "bowl" if rng.random() < 0.5 else "block"
    blocks = _colors(rng, _count(rng, 2, 4))
    bowls = _colors(rng, _count(rng, 1 if ref_kind == "bowl" else 0, 3))
    a = blocks[0]
    ref = bowls[0] if ref_kind == "bowl" else blocks[1]

    def corner_distances(x, y):
        return sorted((float(np.hypot(x - PLACES[c][0], y - PLACES[c][1])), c) for c in CORNERS)

    def clear(x, y):
        d = corner_distances(x, y)
        return d[1][0] - d[0][0] >= MARGIN if which == "closest" else d[3][0] - d[2][0] >= MARGIN

    rx, ry = s.add(ref_kind, ref, ok=clear)
    ranked = corner_distances(rx, ry)
    corner = ranked[0][1] if which == "closest" else ranked[-1][1]
    s.add("block", a, ok=lambda x, y: not _in_zone(x, y, corner, slack=0.02))
    s.add_all("bowl", [b for b in bowls if b != ref])
    s.add_all("block", [c for c in blocks if c not in (a, ref)])
    slots = {"block": a, "ref": {"kind": ref_kind, "color": ref, "n_bowls": len(bowls)}, "which": which}
    return _Draft(s, slots, [{"at": [_block(a), corner]}], 1)


def _line(rng) -> _Draft:
    s = _Scene(rng)
    orientation = str(rng.choice(["horizontal", "vertical", "diagonal"]))
    blocks = _colors(rng, _count(rng, 3, 5))
    s.add_all("bowl", _colors(rng, _count(rng, 0, 2)))
    s.add_all("block", blocks)
    return _Draft(s, {"orientation": orientation}, [{"line": [orientation, "all blocks"]}], len(blocks))


# -- registry and generation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A task family: ``make(rng)`` draws one scenario (without its name) as a DESIGN §9 dict."""

    name: str
    summary: str
    build: Callable[[np.random.Generator], _Draft]

    def make(self, rng: np.random.Generator) -> dict:
        """One scenario dict (keys family, instruction, scene, goal, max_steps)."""
        return self.draw(rng)[0]

    def draw(self, rng: np.random.Generator) -> tuple[dict, dict]:
        """One scenario dict and the phrasing slots it was said with (see ``edgeagent.sim.phrasing``):
        what the instruction means, e.g. {"side": "left", "rank": 2, "dest": {...}}."""
        seed = int(rng.integers(0, 2**31 - 1))
        for _ in range(500):
            try:
                draft = self.build(rng)
            except _Retry:
                continue
            # A task that is already done teaches nothing and scores nothing: draw again.
            world = draft.scene.world(seed)
            if holds(bind(parse_goal(draft.goal, self.name), world, self.name), world):
                continue
            return {"family": self.name, "instruction": phrase(self.name, draft.slots, rng),
                    "scene": draft.scene.to_dict(seed), "goal": draft.goal,
                    # a pick and a place per move, plus slack for failed grasps and the final check
                    "max_steps": 3 * draft.moves + 4}, draft.slots
        raise RuntimeError(f"family {self.name!r} found no valid layout in 500 draws; its constraints "
                           "are too tight for the workspace")  # a bug in this module, not user input


def _family(name: str, summary: str, build) -> tuple[str, Family]:
    return name, Family(name, summary, build)


#: Every task family by name, in table order.
FAMILIES: dict[str, Family] = dict([
    _family("pick-place-block", "put block A on block B", _pick_place_block),
    _family("pick-place-bowl", "put block A in bowl B", _pick_place_bowl),
    _family("pick-place-place", "put block A at a named place", _pick_place_place),
    _family("stack", "stack all the blocks, in any or a given order", _stack),
    _family("stack-at-place", "stack all the blocks at a named place", _stack_at_place),
    _family("all-to-place", "put every block at a named place", _all_to_place),
    _family("all-into-bowl", "put every block in one bowl", _all_into_bowl),
    _family("matching-bowls", "put each block in the bowl of its colour", _matching_bowls),
    _family("mismatched-bowls", "put each block in a bowl of another colour", _mismatched_bowls),
    _family("distinct-corners", "put the blocks in different corners", _distinct_corners),
    _family("relation-to-bowl", "move the block left of / nearest to ... a bowl somewhere", _relation_to_bowl),
    _family("rank-from-side", "move the n-th block from a side somewhere", _rank_from_side),
    _family("offset", "put block A a little / a lot left of ... object B", _offset),
    _family("corner-relative", "put block A in the corner nearest / farthest from object B", _corner_relative),
    _family("line", "put the blocks in a horizontal / vertical / diagonal line", _line),
])


#: Families whose block to move ``generate(in_bowl=...)`` may start inside a bowl.
IN_BOWL_FAMILIES = ("pick-place-block", "pick-place-bowl", "pick-place-place")


def start_in_bowl(scenario: dict, rng: np.random.Generator | None) -> dict:
    """``scenario`` (a pick-and-place one) with its block to move starting inside a bowl it is not bound
    for: one of the scene's drawn with ``rng``, or a bowl added clear of the other objects. Without
    ``rng``, the scene's first such bowl and none added. Unchanged when there is no such bowl or the
    goal would then already hold."""
    (key, (mover, dest)), = scenario["goal"][0].items()
    scene = scenario["scene"]
    spare = [b for b in scene.get("bowls", []) if not (key == "in" and f"{b['color']} bowl" == dest)]
    bowls = list(scene.get("bowls", []))
    if not spare and rng is None:
        return scenario
    if not spare:
        used = {b["color"] for b in bowls} | {dest.split()[0]}
        others = [("block", b["at"]) for b in scene["blocks"] if f"{b['color']} block" != mover]
        others += [("bowl", b["at"]) for b in bowls]
        lim = _limit("bowl")
        for _ in range(200):
            x, y = (round(float(v), 3) for v in rng.uniform(-lim, lim, 2))
            if all(np.hypot(x - px, y - py) >= _clearance("bowl", k) for k, (px, py) in others):
                color = str(rng.choice([c for c in COLORS if c not in used]))
                spare = [{"color": color, "at": [x, y]}]
                bowls.append(spare[0])
                break
        else:
            return scenario
    bowl = spare[0] if rng is None else spare[int(rng.integers(len(spare)))]
    blocks = [dict(b, at=list(bowl["at"])) if f"{b['color']} block" == mover else b for b in scene["blocks"]]
    out = {**scenario, "scene": {**scene, "blocks": blocks, "bowls": bowls}}
    world = World.from_scene([(b["color"], tuple(b["at"])) for b in blocks],
                             [(b["color"], tuple(b["at"])) for b in bowls], seed=scene["seed"])
    if holds(bind(parse_goal(out["goal"], out["family"]), world, out["family"]), world):
        return scenario
    return out


#: Families whose goal names only the objects the task is about, so that objects added around them
#: (``crowd``) leave the task and its goal as they were; a stack of "all the blocks" is left out.
CROWD_FAMILIES = ("pick-place-block", "pick-place-bowl", "pick-place-place", "offset", "stack")
#: The most blocks and bowls ``crowd`` makes a scene hold (the families draw at most 5 and 4).
CROWD_BLOCKS, CROWD_BOWLS = 7, 4
def crowd(scenario: dict, rng: np.random.Generator, blocks: int | None = None, bowls: int | None = None) -> dict:
    """``scenario`` with blocks and bowls of unused colours added where the families could have put
    them (clear of every object, and of an offset task's landing band), its own objects where they
    were: up to ``blocks`` blocks and ``bowls`` bowls in all (default: drawn up to ``CROWD_BLOCKS`` /
    ``CROWD_BOWLS``), as many as fit. Bowls are added only where the instruction already has to tell
    two or more apart ("the bowl" stays one bowl). Unchanged outside ``CROWD_FAMILIES``, and for a goal
    or instruction about all the blocks, whose meaning an added block would change."""
    if scenario.get("family") not in CROWD_FAMILIES or "all" in str(scenario["goal"]) \
            or re.search(r"\ball\b", scenario["instruction"].lower()):
        return scenario
    scene = scenario["scene"]
    items = {"block": [dict(b) for b in scene.get("blocks", [])], "bowl": [dict(b) for b in scene.get("bowls", [])]}
    placed = [(kind, tuple(o["at"])) for kind, objs in items.items() for o in objs]
    band = _landing_band(scenario["goal"], items)
    want = {"block": blocks if blocks is not None else _count(rng, len(items["block"]), CROWD_BLOCKS),
            "bowl": 0 if len(items["bowl"]) < 2 else
            bowls if bowls is not None else _count(rng, len(items["bowl"]), CROWD_BOWLS)}
    for kind in ("block", "bowl"):
        spare = [c for c in COLORS if c not in {o["color"] for o in items[kind]}]
        lim = _limit(kind)
        for color in rng.permutation(spare)[: max(0, want[kind] - len(items[kind]))]:
            for _ in range(200):
                x, y = (round(float(v), 3) for v in rng.uniform(-lim, lim, 2))
                if all(np.hypot(x - px, y - py) >= _clearance(kind, k) for k, (px, py) in placed) and \
                        (band is None or _point_segment_distance(x, y, *band) >= _BAND_CLEAR[kind]):
                    placed.append((kind, (x, y)))
                    items[kind].append({"color": str(color), "at": [x, y]})
                    break
            else:
                break  # no room left for another one of this kind
    return {**scenario, "scene": {**scene, "blocks": items["block"], "bowls": items["bowl"]}}


def _landing_band(goal: list, items: dict) -> tuple[float, float, float, float] | None:
    """The segment an offset goal's block should land on, as ``_offset`` keeps it clear; else None."""
    offset = next((g["offset"] for g in goal if "offset" in g), None)
    if offset is None:
        return None
    _, ref, direction, amount = offset
    color, kind = ref.split()
    rx, ry = next(o["at"] for o in items[kind] if o["color"] == color)
    ux, uy = DIRECTIONS[direction]
    lo, hi = AMOUNTS[amount]
    end = min(hi, _BAND_END - (rx * ux + ry * uy))
    return rx + ux * lo, ry + uy * lo, rx + ux * end, ry + uy * end


def generate(families: list[str] | None, count: int, seed: int, *, in_bowl: float = 0.0,
             crowded: float = 0.0) -> list[dict]:
    """``count`` scenarios per family (all families when ``families`` is None), named
    "<family>-<seed>-<i>". The same arguments always give the same scenarios, and a family's
    scenarios do not depend on which other families are asked for.

    ``in_bowl`` (training data only; default 0: scenes as always) is the share of pick-and-place
    scenarios whose block to move starts inside a bowl (``start_in_bowl``), drawn from a random stream
    of their own so the other scenarios stay as they are. ``crowded`` (training data only; default 0)
    is the share of scenarios of ``CROWD_FAMILIES`` with objects added around the task's (``crowd``),
    from a stream of their own too.

    Raises ScenarioError for an unknown family name, a negative count or a negative seed.
    """
    names = list(FAMILIES) if families is None else list(dict.fromkeys(families))
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ScenarioError(f"unknown task famil{'y' if len(unknown) == 1 else 'ies'} "
                            f"{', '.join(map(repr, unknown))}; known: {', '.join(FAMILIES)}")
    if count < 0 or seed < 0:
        raise ScenarioError(f"count and seed must be >= 0, got count={count}, seed={seed}")
    if not 0.0 <= in_bowl <= 1.0:
        raise ScenarioError(f"in_bowl is a share of scenarios in [0, 1], got {in_bowl}")
    if not 0.0 <= crowded <= 1.0:
        raise ScenarioError(f"crowded is a share of scenarios in [0, 1], got {crowded}")
    out = []
    for name in names:
        for i in range(count):
            rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
            sc = {"name": f"{name}-{seed}-{i}", **FAMILIES[name].make(rng)}
            if in_bowl and name in IN_BOWL_FAMILIES:
                own = np.random.default_rng([seed, zlib.crc32(name.encode()), i, 1])
                if own.random() < in_bowl:
                    sc = start_in_bowl(sc, own)
            if crowded and name in CROWD_FAMILIES:
                own = np.random.default_rng([seed, zlib.crc32(name.encode()), i, 2])
                if own.random() < crowded:
                    sc = crowd(sc, own)
            out.append(sc)
    return out
