"""The simulator-only expert planner: the whole remaining plan from the true state of a ``World``.

``expert_calls(world, goal)`` returns ``pick``/``place`` calls that reach ``goal`` (a bound goal of
``edgeagent.sim.goals``) from the current state; ``ExpertPlanner`` wraps it in the ``Planner``
protocol. It plans from the goal's predicates and the world, never from the instruction's text.

How it plans:

1. The goal is rewritten as alternatives (``any`` and ``not`` pushed down: each alternative is a list
   of predicates and negated predicates that must all hold).
2. For one alternative and one state, ``_Task`` turns the predicates into what each block must do:
   rest directly on a block, be in a bowl, be in a place's zone, go to a point (a line slot or an
   offset spot, chosen around the objects that need not move), keep its top clear, or leave where a
   negated predicate holds. ``unmoved`` blocks and the blocks the goal does not mention stay put
   unless they lie on top of something that must move.
3. The next call is a pure function of the state: the held block is placed at its target (or at a
   free parking spot when its target is not ready yet); otherwise the block whose move makes progress
   is picked, after clearing whatever lies on it or on its target.
4. The full plan is that function iterated on a copy of the world, running each call with the
   standard primitives; the cheapest alternative whose simulated plan reaches the goal wins.

Because each call is decided from the state alone, executing the first call and planning again gives
the rest of the same plan (Markov), and after a failed grasp or a block moved by hand the plan simply
starts from the new state.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from edgeagent.primitives import TablePoint, registry
from edgeagent.sim.goals import (ALL_BLOCKS, AMOUNTS, DIRECTIONS, LINE_TOLERANCE, ZONES, All, Any, Goal,
                                 Not, Pred, bind, holds)
from edgeagent.sim.world import BLOCK_SIZE, BOWL_RADIUS, COLORS, PLACE_TOLERANCE, PLACES, Block, World
from edgeagent.types import Call, Observation, Plan

#: Chosen table targets keep |x|, |y| <= LIMIT (m), so a block put there lies fully on the table.
LIMIT = 0.27
# Chosen spots keep at least this far (m, along one axis) from other blocks' centres: World._drop
# stacks when |dx| < 0.04 and |dy| < 0.04, and the extra 5 mm absorbs rounding.
_GAP = BLOCK_SIZE + 0.005
# A block put on the table keeps its centre this far from every bowl's centre (m): the rim is at
# 0.06 and half the cube's diagonal is 0.028, so the whole block stays outside.
_BOWL_CLEAR = 0.09
# Into a bowl: points within this radius of its centre (m), well inside the 0.06 m rim.
_IN_BOWL = 0.045
# Into a place's zone: points within this distance of the anchor on both axes (the zone is 0.09).
_IN_ZONE = 0.07
# A line's final centres must lie within this of their mean: below LINE_TOLERANCE, for rounding.
_LINE_SPREAD = LINE_TOLERANCE - 0.003
# Stayers of a line are chosen among objects whose offsets span at most this (m).
_LINE_BAND = 0.05
# Unit normals of a line of each orientation (a diagonal may run either way).
_LINE_NORMALS = {"horizontal": [(0.0, 1.0)], "vertical": [(1.0, 0.0)],
                 "diagonal": [(1 / math.sqrt(2), -1 / math.sqrt(2)), (1 / math.sqrt(2), 1 / math.sqrt(2))]}
#: How ``expert_calls`` lays out a line (its ``lines`` argument).
LINE_STYLES = ("keep", "canonical")
# Canonical lines: the table lines tried in order (m from the centre along the line's normal), the
# slots along the chosen line in the order they are filled (m from its middle), and how far (m) from
# the line a block may already lie and stay.
_CANON_LINES = (0.0, 0.1, -0.1, 0.2, -0.2)
_CANON_SLOTS = (0.0, -0.1, 0.1, -0.2, 0.2, -0.05, 0.05, -0.15, 0.15, -0.25, 0.25)
_CANON_BAND = 0.02
# A canonical slot counts as free only this far (m, along one axis) from blocks that do not sit on a
# slot: wider than the gap, so that a planner judging that distance from a 96-pixel image (2 cm a
# pixel) is safe either way: a slot it wrongly sees as free still lies clear of the block.
_CANON_CLEAR = 0.065
# Blocks closer than this to a slot (m, along each axis) sit on it: the slots' spacing is known, so
# they keep only the usual gap.
_CANON_ON = 0.01
# Points are rounded to 0.1 mm: readable plans, and far below every tolerance.
_DECIMALS = 4
# Clearance checks accept this shortfall (m): twice the rounding, far below the gap's 5 mm margin.
_SLACK = 2e-4
# At most this many alternatives of an any/not goal are planned (in order); the rest are ignored.
_MAX_ALTERNATIVES = 32
# Grid of candidate table spots (m), searched in order of distance to a reference point.
_GRID = np.array([(x, y) for x in np.arange(-LIMIT, LIMIT + 1e-9, 0.01)
                  for y in np.arange(-LIMIT, LIMIT + 1e-9, 0.01)])
# Offsets from a bowl's centre, nearest first (ties broken by angle, so the order is fixed).
_BOWL_OFFSETS = np.array(sorted(((dx, dy) for dx in np.arange(-_IN_BOWL, _IN_BOWL + 1e-9, 0.003)
                                 for dy in np.arange(-_IN_BOWL, _IN_BOWL + 1e-9, 0.003)
                                 if math.hypot(dx, dy) <= _IN_BOWL + 1e-9),
                                key=lambda d: (round(math.hypot(*d), 6), round(math.atan2(d[1], d[0]), 6))))
# Clones of the world plan without failures, so they never draw from this generator.
_NO_RNG = np.random.default_rng(0)

Point = tuple[float, float]
Literal = tuple[Pred, bool]  # (predicate, True = must hold / False = must not hold)


# -- public API ------------------------------------------------------------------------------------

def expert_calls(world: World, goal: Goal, *, lines: str = "keep") -> list[Call]:
    """The whole remaining plan from the current state of ``world``: ``pick``/``place`` calls with
    ``{"at": (x, y)}`` (metres). ``[]`` when the task is done: ``goal`` holds and the gripper is
    empty. A pure function of the state: the same state always gives the same plan, and nothing is
    remembered between calls.

    When the gripper holds a block, the first call is a ``place``, also when the goal already holds
    (the block is put down where the goal still holds). A goal that cannot be reached gives the best
    partial plan found (possibly empty), so ``holds`` stays False after it.

    ``lines`` chooses how a ``line`` of movable blocks is laid out (see ``LINE_STYLES``): ``keep``
    (least travel: the blocks already aligned stay, the others join their line) or ``canonical`` (the
    line lies on one of a few fixed table lines, the blocks on fixed slots along it: more moves, but
    every target is a fixed spot a learned planner can read from the image; the training data uses it).
    """
    if lines not in LINE_STYLES:
        raise ValueError(f"lines must be one of {', '.join(LINE_STYLES)}, got {lines!r}")
    goal = _expand(goal, world)
    if done(world, goal):
        return []
    best: list[Call] | None = None
    fallback: list[Call] | None = None
    for literals in _alternatives(goal)[:_MAX_ALTERNATIVES]:
        # An alternative that cannot beat the best so far is cut short.
        calls, reached = _simulate(world, goal, literals, None if best is None else len(best) - 1, lines)
        if fallback is None:
            fallback = calls
        # Strictly shorter wins, so ties go to the earlier alternative: deterministic.
        if reached and (best is None or len(calls) < len(best)):
            best = calls
    return best if best is not None else (fallback or [])


def done(world: World, goal: Goal) -> bool:
    """The expert's notion of finished: ``goal`` holds and nothing is left in the gripper."""
    return world.held is None and holds(goal, world)


class ExpertPlanner:
    """``Planner`` over the live world of a simulated robot (``SimRobot.world``) and a bound goal.

    Ignores the image and the instruction: it reads the true state at each ``plan`` call. Plans come
    with confidence 1.0, source and model "expert".
    """

    def __init__(self, world: World, goal: Goal, *, lines: str = "keep"):
        self.world = world
        self.lines = lines
        # Binding again is harmless for a bound goal and names any object the scene lacks now,
        # rather than failing at the first plan.
        self.goal = bind(goal, world, "ExpertPlanner")

    def plan(self, obs: Observation, instruction: str, *, deadline_ms: float | None = None) -> Plan:
        """The remaining plan from the world's current state; ``done`` when the goal holds and
        the gripper is empty (exactly when the plan is empty)."""
        t0 = time.perf_counter()
        calls = tuple(expert_calls(self.world, self.goal, lines=self.lines))
        finished = done(self.world, self.goal)
        ms = (time.perf_counter() - t0) * 1000.0
        return Plan(calls=calls, done=finished, confidence=1.0, source="expert", model="expert",
                    latency_ms=ms, timings_ms={"plan": ms})


# -- goals as alternatives -------------------------------------------------------------------------

def _block_names(world: World) -> tuple[str, ...]:
    return tuple(f"{c} block" for c in COLORS if c in world.blocks)


def _expand(goal: Goal, world: World) -> Goal:
    """Expand "all blocks" as ``goals.bind`` does, so an unbound goal plans the same."""
    if isinstance(goal, (All, Any)):
        return type(goal)(tuple(_expand(g, world) for g in goal.items))
    if isinstance(goal, Not):
        return Not(_expand(goal.item, world))
    if ALL_BLOCKS not in goal.args:
        return goal
    if goal.name == "stacked":
        return goal if len(goal.args) > 1 else Pred("stacked", (ALL_BLOCKS, *_block_names(world)))
    out: list[str] = []
    for a in goal.args:
        out.extend(n for n in (_block_names(world) if a == ALL_BLOCKS else (a,)) if n not in out)
    return Pred(goal.name, tuple(out))


def _alternatives(goal: Goal, positive: bool = True) -> list[list[Literal]]:
    """Disjunctive normal form: alternatives, each a list of literals that must all hold."""
    if isinstance(goal, Not):
        return _alternatives(goal.item, not positive)
    if isinstance(goal, Pred):
        return [[(goal, positive)]]
    parts = [_alternatives(g, positive) for g in goal.items]
    if isinstance(goal, All) == positive:  # a conjunction (all, or not-any)
        out: list[list[Literal]] = [[]]
        for alts in parts:
            out = [a + b for a, b in itertools.product(out, alts)][:_MAX_ALTERNATIVES]
        return out
    return [a for alts in parts for a in alts]


def _objects(pred: Pred) -> tuple[str, ...]:
    """The object names a predicate mentions."""
    if pred.name in ("in", "on", "offset"):
        return pred.args[:2]
    if pred.name == "at":
        return pred.args[:1]
    if pred.name in ("line", "distinct"):
        return pred.args[1:]
    return tuple(a for a in pred.args if a != ALL_BLOCKS)


def _is_block(name: str) -> bool:
    return name.endswith(" block")


def _color(name: str) -> str:
    return name.rpartition(" ")[0]


# -- simulation ------------------------------------------------------------------------------------

def _clone(world: World) -> World:
    """A cheap copy for look-ahead: blocks copied, no grasp failures, its own gripper state."""
    blocks = {c: Block(b.color, b.x, b.y, b.z) for c, b in world.blocks.items()}
    return World(blocks=blocks, bowls=dict(world.bowls), gripper=world.gripper, closed=world.closed,
                 held=world.held, grasp_failure=0.0, seed=world.seed, start=dict(world.start), rng=_NO_RNG)


def _state_key(world: World) -> tuple:
    # The held block's last position counts too: parking spots are chosen near it.
    return world.held, tuple(sorted((c, round(b.x, 5), round(b.y, 5), round(b.z, 5))
                                    for c, b in world.blocks.items()))


def _simulate(world: World, goal: Goal, literals: list[Literal],
              cap: int | None = None, lines: str = "keep") -> tuple[list[Call], bool]:
    """Iterate the next-call rule on a clone until ``done``, no call is left, a state repeats, or
    ``cap`` calls (by default a generous bound). Returns the calls and whether it got done."""
    sim = _clone(world)
    cap = 2 * (3 * len(world.blocks) + 4) if cap is None else cap
    calls: list[Call] = []
    seen = set()
    while not done(sim, goal):
        key = _state_key(sim)
        if key in seen or len(calls) >= cap:
            return calls, False
        seen.add(key)
        call = _next_call(sim, literals, lines)
        if call is None:
            return calls, False
        registry.get(call.primitive).fn(sim, TablePoint(*call.args["at"]))
        calls.append(call)
    return calls, True


def _next_call(world: World, literals: list[Literal], lines: str = "keep") -> Call | None:
    """The one call to make now: place the held block, or pick the block to move next."""
    task = _Task.build(world, literals, lines)
    if world.held is not None:
        at = task.target(world.held) or task.park(world.held)
        return Call("place", {"at": _round(at)})
    color = task.choose()
    if color is None:
        return None
    b = world.blocks[color]
    return Call("pick", {"at": _round((b.x, b.y))})


def _round(p: Point) -> tuple[float, float]:
    return round(float(p[0]), _DECIMALS), round(float(p[1]), _DECIMALS)


# -- the state, read once per decision -------------------------------------------------------------

class _View:
    """What the planner reads from one state: supports, what lies on each block, positions."""

    def __init__(self, world: World):
        self.world = world
        self.held = world.held
        self.support = {c: world.support(c) for c in world.blocks}
        self.above = {c: ([] if c == world.held else [b.color for b in world.blocks_above(c)])
                      for c in world.blocks}

    def xy(self, name_or_color: str) -> Point:
        """Centre of a block (by colour or name) or bowl (by name); a held block's is where it was."""
        if name_or_color.endswith(" bowl"):
            bowl = self.world.bowls[_color(name_or_color)]
            return bowl.x, bowl.y
        b = self.world.blocks[_color(name_or_color) if _is_block(name_or_color) else name_or_color]
        return b.x, b.y

    def table(self, exclude=()) -> list[str]:
        """Colours of the blocks not held, minus ``exclude``."""
        return [c for c in self.world.blocks if c != self.held and c not in exclude]

    def points(self, colors) -> np.ndarray:
        return np.array([self.xy(c) for c in colors], float).reshape(-1, 2)

    def bowl_points(self) -> np.ndarray:
        return np.array([(b.x, b.y) for b in self.world.bowls.values()], float).reshape(-1, 2)

    def on_block(self, c: str) -> str | None:
        s = self.support[c]
        return s.partition(":")[2] if s.startswith("block:") else None

    def occupant(self, p: Point, exclude: str) -> str | None:
        """The block a block released at ``p`` would land on (footprints overlap), if any."""
        best = None
        for c in self.table((exclude,)):
            x, y = self.xy(c)
            if abs(x - p[0]) < BLOCK_SIZE and abs(y - p[1]) < BLOCK_SIZE:
                if best is None or self.world.blocks[c].z > self.world.blocks[best].z:
                    best = c
        return best


def _free(points: np.ndarray, obstacles: np.ndarray, bowls: np.ndarray | None, gap: float = _GAP,
          bowl_clear: float = _BOWL_CLEAR) -> np.ndarray:
    """Mask of ``points`` clear of ``obstacles`` (along one axis at least ``gap``) and of bowls.

    Distances within ``_SLACK`` of the limit count as clear: spots come from a grid whose step
    divides the gap, and placed points are rounded, so a neighbour can sit a hair under it.
    """
    ok = np.ones(len(points), bool)
    if len(obstacles):
        d = np.abs(points[:, None, :] - obstacles[None, :, :]).max(axis=2)
        ok &= (d >= gap - _SLACK).all(axis=1)
    if bowls is not None and len(bowls):
        d = np.hypot(*(points[:, None, :] - bowls[None, :, :]).transpose(2, 0, 1))
        ok &= (d >= bowl_clear - _SLACK).all(axis=1)
    return ok


def _nearest(points: np.ndarray, ok: np.ndarray, ref: Point) -> list[Point]:
    """The points where ``ok``, nearest to ``ref`` first (stable order for ties)."""
    idx = np.flatnonzero(ok)
    d = np.hypot(points[idx, 0] - ref[0], points[idx, 1] - ref[1])
    order = idx[np.argsort(np.round(d, 9), kind="stable")]
    return [(float(points[i, 0]), float(points[i, 1])) for i in order]


# -- what each block must do ----------------------------------------------------------------------

@dataclass
class _Task:
    """One alternative of the goal, resolved against one state into per-block requirements."""

    view: _View
    # block -> the block it must rest directly on
    below: dict[str, str] = field(default_factory=dict)
    # block -> bowl colour it must be in
    bowl: dict[str, str] = field(default_factory=dict)
    # block -> place whose zone it must be in
    zone: dict[str, str] = field(default_factory=dict)
    # block -> exact spot (line slot, offset spot, start of a displaced unmoved block); None = wait
    point: dict[str, Point | None] = field(default_factory=dict)
    # block -> the block whose position its point depends on (offsets), to settle first
    ref: dict[str, str] = field(default_factory=dict)
    # blocks that must not rest on another block (line members)
    flat: list[str] = field(default_factory=list)
    # blocks that must have nothing on top (line members)
    clear: list[str] = field(default_factory=list)
    # block -> negated predicates that hold now and that moving it must break
    away: dict[str, list[Pred]] = field(default_factory=dict)
    # block -> every negated predicate mentioning it: a parking spot must not make one hold
    nots: dict[str, list[Pred]] = field(default_factory=dict)
    # blocks never to pick (unmoved)
    fixed: list[str] = field(default_factory=list)
    # blocks with requirements, in the order their needs are looked at
    order: list[str] = field(default_factory=list)
    moving: dict[str, bool] = field(default_factory=dict)
    # target() of each block, computed once per state
    _targets: dict[str, Point | None] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------------
    @staticmethod
    def build(world: World, literals: list[Literal], lines: str = "keep") -> "_Task":
        t = _Task(_View(world))
        pos = [p for p, positive in literals if positive]
        neg = [p for p, positive in literals if not positive]
        for p in pos:
            if p.name == "unmoved":
                t._unmoved(p)
        locs: dict[str, tuple[str, str]] = {}
        for p in pos:
            if p.name == "on":
                t._need(_color(p.args[0]), t.below, _color(p.args[1]))
            elif p.name == "stacked" and p.args[0] != ALL_BLOCKS:
                for lower, upper in zip(p.args, p.args[1:]):
                    t._need(_color(upper), t.below, _color(lower))
            elif p.name == "in":
                locs.setdefault(_color(p.args[0]), ("bowl", _color(p.args[1])))
            elif p.name == "at" and _is_block(p.args[0]):
                locs.setdefault(_color(p.args[0]), ("zone", p.args[1]))
        for p in pos:
            if p.name == "stacked" and p.args[0] == ALL_BLOCKS:
                t._stack_all([_color(n) for n in p.args[1:]], locs)
        for c, loc in locs.items():
            # A block on a block shares its centre: where it must be, its stack's base must be.
            base, seen = c, {c}
            while base in t.below and t.below[base] not in seen:
                base = t.below[base]
                seen.add(base)
            kind, value = loc
            if base not in t.bowl and base not in t.zone:
                t._need(base, t.bowl if kind == "bowl" else t.zone, value)
        for p in pos:
            if p.name == "distinct":
                t._distinct(p)
        for p in pos:
            if p.name == "line":
                if lines != "canonical" or not t._canonical_line(p):
                    t._line(p)
        t._refresh()
        t._offsets([p for p in pos if p.name == "offset"])
        for p in neg:
            t._negated(p)
        depth = {c: t._depth(c) for c in t.order}
        t.order.sort(key=lambda c: depth[c])  # stable: lower blocks of a stack first
        t._refresh()
        return t

    def _need(self, c: str, table: dict | list, value=None) -> None:
        if isinstance(table, list):
            if c not in table:
                table.append(c)
        else:
            table.setdefault(c, value)
        if c not in self.order:
            self.order.append(c)

    def _depth(self, c: str) -> int:
        d, seen = 0, {c}
        while c in self.below and self.below[c] not in seen:
            c = self.below[c]
            seen.add(c)
            d += 1
        return d

    def _unmoved(self, p: Pred) -> None:
        w = self.view.world
        for n in p.args:
            if not _is_block(n):
                continue
            c = _color(n)
            if holds(Pred("unmoved", (n,)), w):
                if c not in self.fixed:
                    self.fixed.append(c)
            elif w.start[n][2] < 1e-6:
                # Knocked away (by hand, a slip): put it back where it started.
                self._need(c, self.point, (w.start[n][0], w.start[n][1]))

    def _stack_all(self, members: list[str], locs: dict) -> None:
        """Order the blocks of ``stacked: all blocks`` for this state: on top of the tallest stack
        already where the stack must be, taking the others top first."""
        v = self.view
        loc = next((locs[c] for c in members if c in locs), None)
        columns = []
        for c in members:
            if c != v.held and v.on_block(c) is None:
                columns.append([c, *[a for a in v.above[c] if a in members]])

        def at_loc(c: str) -> bool:
            return loc is None or self._loc_ok(c, loc)

        good = [col for col in columns if at_loc(col[0])]
        base: list[str] = []
        if good:
            base = max(good, key=lambda col: (len(col), -COLORS.index(col[0])))
        elif v.held in members:
            base = [v.held]
        elif columns:
            x0, y0 = PLACES[loc[1]] if loc[0] == "zone" else v.xy(f"{loc[1]} bowl")
            tops = [col[-1] for col in columns]
            base = [min(tops, key=lambda c: (len(next(col for col in columns if col[-1] == c)) > 1,
                                             round(math.hypot(v.xy(c)[0] - x0, v.xy(c)[1] - y0), 6),
                                             COLORS.index(c)))]
        rest = [v.held] if v.held in members and v.held not in base else []
        for col in sorted(columns, key=lambda col: COLORS.index(col[0])):
            rest += [c for c in reversed(col) if c not in base and c not in rest]
        rest += [c for c in members if c not in base and c not in rest]
        chain = base + rest
        for lower, upper in zip(chain, chain[1:]):
            self._need(upper, self.below, lower)
        if loc is not None and chain:
            locs.setdefault(chain[0], loc)

    def _loc_ok(self, c: str, loc: tuple[str, str]) -> bool:
        if c == self.view.held:
            return False
        x, y = self.view.xy(c)
        if loc[0] == "bowl":
            bx, by = self.view.xy(f"{loc[1]} bowl")
            return math.hypot(x - bx, y - by) <= BOWL_RADIUS
        ax, ay = PLACES[loc[1]]
        return abs(x - ax) <= PLACE_TOLERANCE and abs(y - ay) <= PLACE_TOLERANCE

    def _distinct(self, p: Pred) -> None:
        """Keep one object at each place already taken; send the others to the nearest free places."""
        v = self.view
        places, names = ZONES[p.args[0]], p.args[1:]
        current = {}
        for n in names:
            if _is_block(n) and _color(n) == v.held:
                continue
            x, y = v.xy(n)
            current[n] = next((pl for pl in places if abs(x - PLACES[pl][0]) <= PLACE_TOLERANCE
                               and abs(y - PLACES[pl][1]) <= PLACE_TOLERANCE), None)
        keep: dict[str, str] = {}
        # Objects that cannot move claim their place first.
        for n in sorted(names, key=lambda n: not (not _is_block(n) or _color(n) in self.fixed)):
            if current.get(n) is not None and current[n] not in keep:
                keep[current[n]] = n
        movers = [n for n in names if n not in keep.values()]
        free = [pl for pl in places if pl not in keep]
        if any(not _is_block(n) or _color(n) in self.fixed for n in movers) or len(movers) > len(free):
            return  # cannot be done: leave it unsatisfied
        best, best_cost = None, math.inf
        for perm in itertools.permutations(free, len(movers)):
            cost = sum(math.dist(v.xy(n), PLACES[pl]) for n, pl in zip(movers, perm))
            if cost < best_cost - 1e-9:
                best, best_cost = perm, cost
        for pl, n in keep.items():
            if _is_block(n):
                self._need(_color(n), self.zone, pl)
        for n, pl in zip(movers, best or ()):
            self._need(_color(n), self.zone, pl)

    def _line(self, p: Pred) -> None:
        """Keep the largest group of objects that already lie on one line of the orientation; give
        the others free slots on that line, near where they are."""
        v = self.view
        if holds(p, v.world):
            return
        orient, names = p.args[0], list(p.args[1:])
        fixed = [n for n in names if not _is_block(n) or _color(n) in self.fixed]

        def eligible(n: str) -> bool:
            return not _is_block(n) or (_color(n) != v.held and v.on_block(_color(n)) is None)

        frames = _LINE_NORMALS[orient]
        options = []  # (normal, window, offsets)
        for normal in frames:
            off = {n: v.xy(n)[0] * normal[0] + v.xy(n)[1] * normal[1] for n in names}
            cands = sorted((n for n in names if eligible(n)), key=lambda n: (off[n], names.index(n)))
            options += [(normal, cands[i:j + 1], off) for i in range(len(cands)) for j in range(i, len(cands))
                        if off[cands[j]] - off[cands[i]] <= _LINE_BAND]
            if not fixed:
                options.append((normal, [], off))  # nothing stays: a line anywhere
        # Most objects staying first; among as many, the least travel; then the first found.
        options.sort(key=lambda o: -len(o[1]))
        best = None
        for normal, window, off in options:
            if best is not None and len(window) < len(best[1]):
                break
            if any(f not in window for f in fixed):
                continue
            plan = self._line_slots(normal, window, names, off)
            if plan is not None and (best is None or round(plan[1], 3) < best[0]):
                best = (round(plan[1], 3), window, plan[0])
        if best is None:
            return
        _, window, slots = best
        for n in window:
            if _is_block(n):
                c = _color(n)
                self._need(c, self.flat)
                if v.above[c]:
                    self._need(c, self.clear)
        for n, slot in slots.items():
            self._need(_color(n), self.point, slot)
            self._need(_color(n), self.flat)

    def _canonical_line(self, p: Pred) -> bool:
        """Lay a line of movable blocks on the first fixed table line with room (``_CANON_LINES``):
        blocks already within ``_CANON_BAND`` of it stay, the others take its free slots in the fixed
        order of ``_CANON_SLOTS``, each slot going to the nearest block that still has to move (the
        held one first). False (nothing decided) when a member is not a movable block or no fixed
        line has room; the least-travel layout is used then."""
        v = self.view
        if holds(p, v.world):
            return True
        orient, names = p.args[0], list(p.args[1:])
        if any(not _is_block(n) or _color(n) in self.fixed for n in names):
            return False
        members = [_color(n) for n in names]
        frames = _LINE_NORMALS[orient]
        others = v.points(v.table(members))
        for c in _CANON_LINES:
            for normal in frames:
                along = (-normal[1], normal[0])
                stay: list[str] = []
                for m in members:
                    x, y = v.xy(m)
                    if (m != v.held and v.on_block(m) is None and not v.above[m]
                            and abs(x * normal[0] + y * normal[1] - c) <= _CANON_BAND
                            and all(math.dist((x, y), v.xy(s)) >= _GAP for s in stay)):
                        stay.append(m)
                movers = [m for m in members if m not in stay]
                pts = np.array([(c * normal[0] + t * along[0], c * normal[1] + t * along[1]) for t in _CANON_SLOTS])
                kept = np.concatenate([others, v.points(stay)])
                on_slot = ~_free(kept, pts, None, gap=_CANON_ON)
                ok = ((np.abs(pts) <= LIMIT + 1e-9).all(axis=1)
                      & _free(pts, kept[on_slot], v.bowl_points())
                      & _free(pts, kept[~on_slot], None, gap=_CANON_CLEAR)
                      & _free(pts, self._reserved(members), None))
                usable: list[int] = []  # free slots in order, each clear of those taken before it
                for i in np.flatnonzero(ok):
                    if _free(pts[i:i + 1], pts[usable], None)[0]:
                        usable.append(int(i))
                if len(usable) < len(movers):
                    continue
                lying = {m: v.xy(m) for m in movers if m != v.held}
                slots: dict[str, Point] = {}
                for i in usable:
                    pt = (float(pts[i, 0]), float(pts[i, 1]))
                    # Who could go there now: not blocked by another block that still has to move.
                    cands = [m for m in movers if m not in slots and
                             _free(pts[i:i + 1], v.points([o for o in lying if o != m]), None, gap=_CANON_CLEAR)[0]]
                    if not cands:
                        continue
                    held = [m for m in cands if m == v.held]
                    m = held[0] if held else min(cands, key=lambda m: (round(math.dist(lying[m], pt), 6), members.index(m)))
                    slots[m] = pt
                for m in stay:
                    self._need(m, self.flat)
                    self._need(m, self.clear)
                for m in list(slots) + [m for m in movers if m not in slots]:
                    self._need(m, self.point, slots.get(m))
                    self._need(m, self.flat)
                return True
        return False

    def _line_slots(self, normal: Point, window: list[str], names: list[str], off: dict):
        """Slots for the objects outside ``window`` on the line through it, or None when they do not
        fit; with the total distance they travel. Each object takes the free slot nearest to where
        it is; when that leaves no room, they are packed from one end, then allowed to touch bowls."""
        v = self.view
        movers = [n for n in names if n not in window]
        if window:
            c = (off[window[0]] + off[window[-1]]) / 2
            values = [off[n] for n in window] + [c] * len(movers)
            mean = sum(values) / len(values)
            if max(abs(x - mean) for x in values) > _LINE_SPREAD:
                return None
            lines = [c]
        else:
            mean = sum(off.values()) / len(off)
            lines = sorted(np.arange(-0.24, 0.2401, 0.02), key=lambda x: (round(abs(x - mean), 6), x))
        along = (-normal[1], normal[0])
        obstacles = v.points(v.table([_color(n) for n in movers]))
        t_now = {n: v.xy(n)[0] * along[0] + v.xy(n)[1] * along[1] for n in movers}
        ts = np.arange(-0.42, 0.42, 0.005)
        for bowl_clear in (_BOWL_CLEAR, BOWL_RADIUS + 0.005):
            for c in lines:
                pts = np.stack([c * normal[0] + ts * along[0], c * normal[1] + ts * along[1]], axis=1)
                ok = ((np.abs(pts) <= LIMIT + 1e-9).all(axis=1) & _free(pts, self._reserved(()), None)
                      & _free(pts, obstacles, v.bowl_points(), bowl_clear=bowl_clear))
                for packed in (False, True):
                    order = sorted(movers, key=lambda n: t_now[n]) if packed else movers
                    slots: dict[str, Point] = {}
                    for n in order:
                        taken = np.array(list(slots.values()), float).reshape(-1, 2)
                        idx = np.flatnonzero(ok & _free(pts, taken, None))
                        if not len(idx):
                            break
                        i = idx[0] if packed else idx[np.argmin(np.round(np.abs(ts[idx] - t_now[n]), 9))]
                        slots[n] = (float(pts[i, 0]), float(pts[i, 1]))
                    else:
                        return slots, sum(math.dist(v.xy(n), slots[n]) for n in movers)
        return None

    def _refresh(self) -> None:
        self.moving = {c: self._unsatisfied(c) for c in self.view.world.blocks}

    def _offsets(self, preds: list[Pred]) -> None:
        """A free spot for each unmet offset, measured from the reference's current centre. The
        subject waits while the reference still has to move; a reference block with no room for
        the offset around it (at the workspace edge, in a crowd) is moved first."""
        v = self.view
        todo = [p for p in preds if _is_block(p.args[0]) and not holds(p, v.world)]
        subjects = [_color(p.args[0]) for p in todo]
        for p in todo:
            a, b, direction, amount = p.args
            c, cb = _color(a), (_color(b) if _is_block(b) else None)
            if cb is not None:
                self.ref.setdefault(c, cb)
                if cb in subjects or (cb != v.held and not self.settled(cb)):
                    self._need(c, self.point, None)
                    continue
            spot = self._offset_spot(c, v.xy(b), direction, amount, (c,))
            if spot is not None and (cb is None or cb != v.held):
                self._need(c, self.point, spot)
            else:
                # The reference is in the gripper, or has no room around it: put it where there is.
                if cb is not None and cb not in self.fixed and not self._has_place(cb):
                    self._need(cb, self.point, self._room_for_offset(c, cb, direction, amount))
                self._need(c, self.point, None)
            self.moving[c] = True

    def _has_place(self, c: str) -> bool:
        return any(c in table for table in (self.below, self.bowl, self.zone, self.point))

    def _offset_spot(self, c: str, ref: Point, direction: str, amount: str, exclude) -> Point | None:
        """A free spot ``amount`` towards ``direction`` from ``ref``, nearest the middle of the band,
        ignoring the blocks in ``exclude`` (the subject, a reference about to move). When blocks fill
        the band, a spot that only blocks without requirements of their own occupy: they move away."""
        v = self.view
        lo, hi = AMOUNTS[amount]
        ux, uy = DIRECTIONS[direction]
        mid = (lo + hi) / 2
        cands = sorted(((d, s) for d in np.arange(lo + 0.003, hi - 0.003 + 1e-9, 0.005)
                        for s in (0.0, 0.01, -0.01, 0.02, -0.02, 0.03, -0.03, 0.04, -0.04)),
                       key=lambda ds: (round(abs(ds[0] - mid) + abs(ds[1]), 6), -ds[1]))
        pts = np.array([(ref[0] + ux * d - uy * s, ref[1] + uy * d + ux * s) for d, s in cands])
        others = v.table(exclude)
        staying = [o for o in others if o in self.fixed or o in self.order]
        reserved = self._reserved(exclude)
        for limit, bowl_clear, obstacles in ((LIMIT, _BOWL_CLEAR, others), (0.29, BOWL_RADIUS + 0.01, others),
                                             (0.29, BOWL_RADIUS + 0.01, staying)):
            ok = ((np.abs(pts) <= limit + 1e-9).all(axis=1) & _free(pts, reserved, None)
                  & _free(pts, v.points(obstacles), v.bowl_points(), bowl_clear=bowl_clear))
            idx = np.flatnonzero(ok)
            if len(idx):
                return float(pts[idx[0], 0]), float(pts[idx[0], 1])
        return None

    def _room_for_offset(self, c: str, cb: str, direction: str, amount: str) -> Point | None:
        """Where to move reference block ``cb`` so that ``c`` fits ``amount`` towards ``direction``
        of it: the nearest free spot to a point pulled back from the workspace edge."""
        v = self.view
        lo, _ = AMOUNTS[amount]
        ux, uy = DIRECTIONS[direction]
        bx, by = v.xy(cb)
        back = min(0.0, LIMIT - 0.02 - lo - (bx * ux + by * uy))
        ok = _free(_GRID, v.points(v.table((cb,))), v.bowl_points()) & _free(_GRID, self._reserved((cb,)), None)
        for spot in _nearest(_GRID, ok, (bx + ux * back, by + uy * back))[:80]:
            if self._offset_spot(c, spot, direction, amount, (c, cb)) is not None:
                return spot
        return None

    def _negated(self, p: Pred) -> None:
        v = self.view
        for n in _objects(p):
            if _is_block(n):
                self.nots.setdefault(_color(n), []).append(p)
        if not holds(p, v.world):
            return
        movable = [_color(n) for n in _objects(p) if _is_block(n) and _color(n) not in self.fixed]
        if not movable:
            return
        clear = [c for c in movable if c == v.held or not v.above[c]]
        subject = (clear or movable)[0]
        self.away.setdefault(subject, []).append(p)
        if subject not in self.order:
            self.order.insert(0, subject)

    # -- state of requirements ----------------------------------------------------------------
    def _unsatisfied(self, c: str) -> bool:
        v = self.view
        if c == v.held:
            return True
        if c in self.below and v.support[c] != f"block:{self.below[c]}":
            return True
        if c in self.bowl and not self._loc_ok(c, ("bowl", self.bowl[c])):
            return True
        if c in self.zone and not self._loc_ok(c, ("zone", self.zone[c])):
            return True
        if c in self.point or c in self.away:
            return True
        return c in self.flat and v.on_block(c) is not None

    def settled(self, c: str) -> bool:
        """True when ``c`` and everything under it will not move: safe to build on."""
        seen = set()
        while c is not None and c not in seen:
            if self.moving.get(c, True):
                return False
            seen.add(c)
            c = self.view.on_block(c)
        return True

    def _reserved(self, exclude) -> np.ndarray:
        """Spots promised to other blocks (line slots, offset spots): keep them free."""
        pts = [p for c, p in self.point.items() if p is not None and c not in exclude]
        return np.array(pts, float).reshape(-1, 2)

    # -- where a lifted block goes -------------------------------------------------------------
    def target(self, c: str) -> Point | None:
        """Where block ``c`` should be released if it were lifted now, or None when its goal spot is
        not ready (its support must settle or be cleared first) or it has none."""
        if c not in self._targets:
            self._targets[c] = self._target(c)
        return self._targets[c]

    def _target(self, c: str) -> Point | None:
        v = self.view
        if c in self.below:
            d = self.below[c]
            if d == v.held or d == c or [a for a in v.above[d] if a != c] or not self.settled(d):
                return None
            return v.xy(d)
        if c in self.bowl:
            return self._bowl_spot(c, self.bowl[c])
        if c in self.zone:
            return self._zone_spot(c, self.zone[c])
        if self.point.get(c) is not None:
            p = self.point[c]
            return p if v.occupant(p, c) is None else None
        return None

    def _bowl_spot(self, c: str, bowl_color: str) -> Point:
        """The point nearest the bowl's centre where ``c`` lands flat; else on a settled stack in it."""
        v = self.view
        bowl = v.world.bowls[bowl_color]
        others = v.table((c,))
        # Only blocks near the bowl can be in the way.
        obstacles = v.points([o for o in others if math.dist(v.xy(o), (bowl.x, bowl.y)) < _IN_BOWL + 2 * BLOCK_SIZE])
        pts = _BOWL_OFFSETS + (bowl.x, bowl.y)
        ok = _free(pts, obstacles, None, gap=BLOCK_SIZE + 0.002) & (np.abs(pts) <= 0.29).all(axis=1)
        idx = np.flatnonzero(ok)
        if len(idx):
            return float(pts[idx[0], 0]), float(pts[idx[0], 1])
        tops = [o for o in others if not v.above[o] and math.dist(v.xy(o), (bowl.x, bowl.y)) <= BOWL_RADIUS - 0.01]
        if not tops:
            return bowl.x, bowl.y
        return v.xy(min(tops, key=lambda o: (not self.settled(o), v.world.blocks[o].z,
                                             round(math.dist(v.xy(o), (bowl.x, bowl.y)), 6), COLORS.index(o))))

    def _zone_spot(self, c: str, place: str) -> Point | None:
        """The free table spot nearest the place's anchor, inside its zone; else on a settled stack."""
        v = self.view
        ax, ay = PLACES[place]
        obstacles, reserved = v.points(v.table((c,))), self._reserved((c,))
        # Clear of bowls if the zone allows it; else touching a rim; else in a bowl (still "at").
        for reach, bowl_clear in ((_IN_ZONE, _BOWL_CLEAR), (PLACE_TOLERANCE - 0.005, BOWL_RADIUS + 0.005),
                                  (PLACE_TOLERANCE - 0.005, 0.0)):
            zone = (np.abs(_GRID[:, 0] - ax) <= reach + 1e-9) & (np.abs(_GRID[:, 1] - ay) <= reach + 1e-9)
            ok = zone & _free(_GRID, obstacles, v.bowl_points(), bowl_clear=bowl_clear) & _free(_GRID, reserved, None)
            spots = _nearest(_GRID, ok, (ax, ay))
            if spots:
                return spots[0]
        tops = [o for o in v.table((c,)) if not v.above[o] and self.settled(o)
                and abs(v.xy(o)[0] - ax) <= _IN_ZONE and abs(v.xy(o)[1] - ay) <= _IN_ZONE]
        return v.xy(min(tops, key=lambda o: (v.world.blocks[o].z, COLORS.index(o)))) if tops else None

    def park(self, c: str) -> Point:
        """A free table spot near where ``c`` was, outside bowls and promised spots, where no
        negated predicate about ``c`` would hold."""
        v = self.view
        ok = _free(_GRID, v.points(v.table((c,))), v.bowl_points()) & _free(_GRID, self._reserved((c,)), None)
        spots = _nearest(_GRID, ok, v.xy(c))
        nots = self.nots.get(c, []) + [p for p in self.away.get(c, []) if p not in self.nots.get(c, [])]
        if nots:
            probe = _clone(v.world)
            probe.held = None
            b = probe.blocks[c]
            for x, y in spots:
                b.x, b.y, b.z = x, y, 0.0
                if not any(holds(p, probe) for p in nots):
                    return x, y
        if spots:
            return spots[0]
        return v.xy(c)  # nowhere free: put it back (the plan will not reach the goal)

    # -- what to pick next ---------------------------------------------------------------------
    def choose(self) -> str | None:
        """The block to pick now: the first need whose move goes straight to a goal spot, else the
        first need that can be worked on at all (clearing or parking)."""
        v = self.view
        needs = [c for c in self.order if self.moving.get(c)] + [c for c in self.clear if v.above[c]]
        first = None
        for c in needs:
            x = self._resolve(c, [])
            if x is None:
                continue
            if self.target(x) is not None:
                return x
            if first is None:
                first = x
        return first

    def _resolve(self, c: str, seen: list[str]) -> str | None:
        """The block to pick so that ``c`` gets closer to done: ``c`` itself, or what is on it, on its
        support or on its spot. A cycle (two blocks on each other's spots) parks ``c``."""
        v = self.view
        if c in seen:
            return c
        seen = seen + [c]
        if v.above[c]:
            top = v.above[c][-1]
            return None if top in self.fixed else top
        if c in self.fixed or c == v.held:
            return None
        if not self.moving.get(c) or self.target(c) is not None:
            return c
        if c in self.below:
            d = self.below[c]
            if d == v.held:
                return None
            if v.above[d]:
                top = v.above[d][-1]
                return None if top in self.fixed else top
            return self._resolve(self._lowest_moving(d), seen)
        if c in self.point:
            p = self.point[c]
            if p is None:
                ref = self.ref.get(c)
                return None if ref is None or ref == v.held else self._resolve(self._lowest_moving(ref), seen)
            occupant = v.occupant(p, c)
            return c if occupant is None else self._resolve(occupant, seen)
        if c in self.zone:
            return None
        return c  # must only leave where it is (off a block, out of a negated predicate): park it

    def _lowest_moving(self, c: str) -> str:
        """The lowest block at or under ``c`` that still has to move (``c`` when none does)."""
        v = self.view
        chain, seen = [c], {c}
        while (d := v.on_block(chain[-1])) is not None and d not in seen:
            chain.append(d)
            seen.add(d)
        return next((d for d in reversed(chain) if self.moving.get(d)), c)
