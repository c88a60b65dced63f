"""Goal predicates of scenario files (DESIGN §9): parsing, binding to a scene, evaluation.

A goal is a tree of ``Pred`` leaves and ``All`` / ``Any`` / ``Not`` nodes. Object arguments are
names ("red block", "blue bowl"); after ``bind`` the special name "all blocks" is expanded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from edgeagent.errors import ScenarioError
from edgeagent.sim.world import (BOWL_RADIUS, COLORS, CORNERS, KINDS, PLACE_TOLERANCE, PLACES, SIDES,
                                 World)

#: Predicate names, exactly as in DESIGN §9.
PREDICATES = ("in", "on", "at", "stacked", "offset", "line", "distinct", "unmoved")


@dataclass(frozen=True)
class Pred:
    """One predicate. ``args`` keeps the YAML order, e.g. ("red block", "blue bowl") for ``in``;
    ("horizontal", "red block", "green block") for ``line``; ("red block", "blue bowl", "left",
    "a little") for ``offset``; ("all blocks",) for ``stacked: all blocks`` before binding."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class All:
    items: tuple["Goal", ...]


@dataclass(frozen=True)
class Any:
    items: tuple["Goal", ...]


@dataclass(frozen=True)
class Not:
    item: "Goal"


Goal = Union[Pred, All, Any, Not]


# -- constants of the predicates (DESIGN §8, §9) ---------------------------------------------------

#: Names every block of the scene; expanded by ``bind``.
ALL_BLOCKS = "all blocks"
#: Composition keys of the YAML form.
COMPOSITION = ("all", "any", "not")
#: Direction words as unit vectors in the table frame.
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "top": (0.0, 1.0), "bottom": (0.0, -1.0)}
#: Distance words: (min, max) metres along the direction.
AMOUNTS = {"a little": (0.08, 0.15), "a lot": (0.18, 0.30)}
#: ``offset``: how far (m) A may lie sideways of the direction line through B.
OFFSET_SIDEWAYS = 0.05
ORIENTATIONS = ("horizontal", "vertical", "diagonal")
#: ``line``: how far (m) a centre may lie from the common line.
LINE_TOLERANCE = 0.03
#: ``line``: centres closer than this (m) are one spot, not a line.
LINE_MIN_SPACING = 0.04
#: ``distinct``: zone word -> the places it ranges over.
ZONES = {"corners": CORNERS, "sides": SIDES}
#: ``unmoved``: 3-D distance (m) from the start position still counted as not moved.
UNMOVED_TOLERANCE = 0.01
# Boundaries written in a file (0.08 apart, 0.09 off) must hold despite float rounding.
_EPS = 1e-9

_EXAMPLES = {
    "in": "[red block, blue bowl]", "on": "[red block, green block]", "at": "[red block, top left corner]",
    "stacked": "[red block, green block] or all blocks", "offset": "[red block, blue bowl, left, a little]",
    "line": "[horizontal, red block, green block]", "distinct": "[corners, red block, green block]",
    "unmoved": "[red block]",
}


# -- parsing ---------------------------------------------------------------------------------------

def parse_goal(data: object, where: str, path: str = "goal") -> Goal:
    """Turn the YAML form of a goal into a ``Goal`` tree.

    Forms: a list (all must hold), ``{predicate: args}``, ``{all: [...]}``, ``{any: [...]}``,
    ``{not: goal}``. Names are lower-cased with whitespace collapsed. ``where`` (file and scenario)
    and ``path`` (e.g. ``goal[1].offset``) prefix every ScenarioError.
    """
    if isinstance(data, list):
        if not data:
            raise _error(where, path, "empty list of goals; give at least one predicate")
        return All(tuple(parse_goal(item, where, f"{path}[{i}]") for i, item in enumerate(data)))
    if not isinstance(data, dict):
        raise _error(where, path, f"expected a predicate such as 'in: [red block, blue bowl]' or a list "
                                  f"of them, got {_show(data)}")
    if len(data) != 1:
        keys = ", ".join(str(_key(k)) for k in data)
        raise _error(where, path, f"one predicate per entry, got {len(data)} keys ({keys}); "
                                  f"write each predicate as its own list item")
    (raw_key, value), = data.items()
    key = _key(raw_key)
    sub = f"{path}.{key}"
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise _error(where, sub, f"expected a non-empty list of goals, got {_show(value)}")
        items = tuple(parse_goal(item, where, f"{sub}[{i}]") for i, item in enumerate(value))
        return All(items) if key == "all" else Any(items)
    if key == "not":
        return Not(parse_goal(value, where, sub))
    if key not in PREDICATES:
        raise _error(where, path, f"unknown predicate {key!r}; use one of {', '.join(PREDICATES)} "
                                  f"or {', '.join(COMPOSITION)}")
    return _make_pred(key, value, where, sub)


def goal_to_yaml(goal: Goal) -> object:
    """The YAML form of ``goal`` (inverse of ``parse_goal``); a bound goal gives the expanded names."""
    return _to_yaml(goal, root=True)


def _to_yaml(goal: Goal, root: bool) -> object:
    if isinstance(goal, All):
        items = [_to_yaml(g, root=False) for g in goal.items]
        return items if root else {"all": items}
    if isinstance(goal, Any):
        return {"any": [_to_yaml(g, root=False) for g in goal.items]}
    if isinstance(goal, Not):
        return {"not": _to_yaml(goal.item, root=False)}
    if goal.name == "stacked" and goal.args and goal.args[0] == ALL_BLOCKS:
        return {"stacked": ALL_BLOCKS}
    return {goal.name: list(goal.args)}


def goal_text(goal: Goal) -> str:
    """A one-line description of ``goal`` for logs and eval output."""
    if isinstance(goal, (All, Any)):
        kind = "all" if isinstance(goal, All) else "any"
        return f"{kind}: [" + "; ".join(goal_text(g) for g in goal.items) + "]"
    if isinstance(goal, Not):
        return f"not: {goal_text(goal.item)}"
    if goal.name == "stacked" and goal.args and goal.args[0] == ALL_BLOCKS:
        return "stacked: all blocks"
    return f"{goal.name}: [{', '.join(goal.args)}]"


def _key(key: object) -> str:
    # PyYAML follows YAML 1.1, where a bare `on` key reads as the boolean true.
    if key is True:
        return "on"
    if not isinstance(key, str):
        return repr(key)
    return _norm(key)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _error(where: str, path: str, message: str) -> ScenarioError:
    prefix = f"{where}: " if where else ""
    return ScenarioError(f"{prefix}{path}: {message}")


def _make_pred(name: str, value: object, where: str, path: str) -> Pred:
    """Check and normalise the arguments of predicate ``name``."""
    if isinstance(value, str) and name in ("stacked", "unmoved"):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _error(where, path, f"expected a list of arguments, e.g. {name}: {_EXAMPLES[name]}; "
                                  f"got {_show(value)}")
    args = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise _error(where, f"{path}[{i}]", f"expected a name, got {_show(v)}")
        args.append(_norm(v))
    return Pred(name, _CHECKS[name](args, where, path))


def _count(args: list[str], n: int, name: str, where: str, path: str) -> None:
    if len(args) != n:
        raise _error(where, path, f"{name} takes {n} arguments, e.g. {name}: {_EXAMPLES[name]}; got {len(args)}")


def _obj(name: str, where: str, path: str, kinds: tuple[str, ...] = KINDS, why: str = "") -> str:
    color, _, kind = name.rpartition(" ")
    if kind not in KINDS or not color:
        raise _error(where, path, f"{name!r} is not an object name; write '<colour> block' or '<colour> bowl'")
    if color not in COLORS:
        raise _error(where, path, f"colour {color!r} of {name!r} is not in the palette: {', '.join(COLORS)}")
    if kind not in kinds:
        raise _error(where, path, f"{name!r} must be a {' or '.join(kinds)}{why}")
    return name


def _enum(word: str, choices, what: str, where: str, path: str) -> str:
    if word not in choices:
        raise _error(where, path, f"{what} {word!r} is not one of {', '.join(choices)}")
    return word


def _objects(args: list[str], where: str, path: str, start: int, kinds=KINDS, why: str = "",
             allow_all: bool = False) -> tuple[str, ...]:
    out = []
    for i, a in enumerate(args[start:], start):
        if a == ALL_BLOCKS and allow_all:
            out.append(a)
        else:
            out.append(_obj(a, where, f"{path}[{i}]", kinds, why))
        if a in out[:-1]:
            raise _error(where, f"{path}[{i}]", f"{a!r} is named twice")
    return tuple(out)


def _check_in(args, where, path):
    _count(args, 2, "in", where, path)
    return (_obj(args[0], where, f"{path}[0]", ("block",), " (only blocks go into bowls)"),
            _obj(args[1], where, f"{path}[1]", ("bowl",), " (in: [block, bowl])"))


def _check_on(args, where, path):
    _count(args, 2, "on", where, path)
    a, b = _objects(args, where, path, 0, ("block",), " (on: [block, block])")
    return a, b


def _check_at(args, where, path):
    _count(args, 2, "at", where, path)
    return _obj(args[0], where, f"{path}[0]"), _enum(args[1], tuple(PLACES), "place", where, f"{path}[1]")


def _check_stacked(args, where, path):
    if args and args[0] == ALL_BLOCKS:
        # A bound goal keeps the marker first and lists the blocks after it: accept it again.
        return (ALL_BLOCKS,)
    if len(args) < 2:
        raise _error(where, path, f"stacked needs at least 2 blocks, bottom to top, or 'all blocks'; got {len(args)}")
    return _objects(args, where, path, 0, ("block",), " (only blocks stack)")


def _check_offset(args, where, path):
    _count(args, 4, "offset", where, path)
    a, b = _objects(args[:2], where, path, 0)
    return (a, b, _enum(args[2], tuple(DIRECTIONS), "direction", where, f"{path}[2]"),
            _enum(args[3], tuple(AMOUNTS), "amount", where, f"{path}[3]"))


def _check_line(args, where, path):
    if not args:
        raise _error(where, path, f"line needs an orientation and objects, e.g. line: {_EXAMPLES['line']}")
    orient = _enum(args[0], ORIENTATIONS, "orientation", where, f"{path}[0]")
    objs = _objects(args, where, path, 1, allow_all=True)
    if len(objs) < 2 and ALL_BLOCKS not in objs:
        raise _error(where, path, f"line needs at least 2 objects, got {len(objs)}")
    return (orient, *objs)


def _check_distinct(args, where, path):
    if not args:
        raise _error(where, path, f"distinct needs corners or sides and objects, e.g. distinct: {_EXAMPLES['distinct']}")
    zone = _enum(args[0], tuple(ZONES), "zone", where, f"{path}[0]")
    objs = _objects(args, where, path, 1, allow_all=True)
    if not objs:
        raise _error(where, path, "distinct needs at least 1 object")
    if len(objs) > len(ZONES[zone]):
        raise _error(where, path, f"{len(objs)} objects cannot be at different {zone}: there are only {len(ZONES[zone])}")
    return (zone, *objs)


def _check_unmoved(args, where, path):
    if not args:
        raise _error(where, path, "unmoved needs at least 1 object, e.g. unmoved: [red block]")
    return _objects(args, where, path, 0)


_CHECKS = {"in": _check_in, "on": _check_on, "at": _check_at, "stacked": _check_stacked,
           "offset": _check_offset, "line": _check_line, "distinct": _check_distinct,
           "unmoved": _check_unmoved}
# Which argument positions of each predicate name objects (the rest are words).
_OBJECT_SLOTS = {"in": slice(0, 2), "on": slice(0, 2), "at": slice(0, 1), "stacked": slice(0, None),
                 "offset": slice(0, 2), "line": slice(1, None), "distinct": slice(1, None),
                 "unmoved": slice(0, None)}


# -- binding to a scene ----------------------------------------------------------------------------

def bind(goal: Goal, world: World, where: str, path: str = "goal") -> Goal:
    """Check ``goal`` against the scene of ``world`` and expand "all blocks".

    Every named object must exist. In ``line`` and ``distinct``, "all blocks" becomes the scene's
    block names in palette order. ``stacked: all blocks`` (any order) becomes
    ``Pred("stacked", ("all blocks", <block names>...))``: the marker stays first so that the order
    stays free, and the names tell a planner which blocks to stack. Raises ScenarioError.
    """
    if isinstance(goal, All):
        return All(tuple(bind(g, world, where, f"{path}[{i}]") for i, g in enumerate(goal.items)))
    if isinstance(goal, Any):
        return Any(tuple(bind(g, world, where, f"{path}.any[{i}]") for i, g in enumerate(goal.items)))
    if isinstance(goal, Not):
        return Not(bind(goal.item, world, where, f"{path}.not"))
    if not isinstance(goal, Pred):
        raise _error(where, path, f"not a goal: {goal!r}")
    if goal.name not in PREDICATES:
        raise _error(where, path, f"unknown predicate {goal.name!r}; use one of {', '.join(PREDICATES)}")
    sub = f"{path}.{goal.name}"
    pred = _make_pred(goal.name, list(goal.args), where, sub)
    blocks = tuple(f"{c} block" for c in COLORS if c in world.blocks)
    slots = _OBJECT_SLOTS[pred.name]
    start = slots.start
    names = pred.args[slots]
    if ALL_BLOCKS in names and not blocks:
        raise _error(where, sub, "'all blocks' names nothing: the scene has no blocks")
    for i, name in enumerate(names, start):
        if name != ALL_BLOCKS:
            try:
                world.get(name)
            except KeyError:
                have = ", ".join(o.name for o in world.objects()) or "nothing"
                raise _error(where, f"{sub}[{i}]", f"the scene has no {name!r}; it has: {have}") from None
    if pred.name == "stacked" and pred.args == (ALL_BLOCKS,):
        return Pred("stacked", (ALL_BLOCKS, *blocks))
    if ALL_BLOCKS not in names:
        return pred
    expanded: list[str] = []
    for name in names:
        for n in (blocks if name == ALL_BLOCKS else (name,)):
            if n in expanded:
                raise _error(where, sub, f"{n!r} is named twice (once through 'all blocks')")
            expanded.append(n)
    # Re-check counts (at least 2 in a line, at most 4 distinct places) with the expanded names.
    return _make_pred(pred.name, [*pred.args[:start], *expanded], where, sub)


# -- evaluation ------------------------------------------------------------------------------------

def holds(goal: Goal, world: World) -> bool:
    """Whether ``goal`` (bound to this world's scene) holds in the current state of ``world``."""
    if isinstance(goal, All):
        return all(holds(g, world) for g in goal.items)
    if isinstance(goal, Any):
        return any(holds(g, world) for g in goal.items)
    if isinstance(goal, Not):
        return not holds(goal.item, world)
    return _why_not(goal, world) is None


def unmet(goal: Goal, world: World) -> list[str]:
    """Human-readable descriptions of what fails in ``goal`` now; empty when it holds."""
    if isinstance(goal, All):
        return [text for g in goal.items for text in unmet(g, world)]
    if isinstance(goal, Any):
        if holds(goal, world):
            return []
        reasons = ["; ".join(unmet(g, world)) for g in goal.items]
        return ["none of these holds: " + " | ".join(reasons)]
    if isinstance(goal, Not):
        return [f"not: {goal_text(goal.item)}: but it holds"] if holds(goal.item, world) else []
    reason = _why_not(goal, world)
    return [] if reason is None else [f"{goal_text(goal)}: {reason}"]


def _why_not(pred: Pred, world: World) -> str | None:
    """None when ``pred`` holds, else why not."""
    return _EVAL[pred.name](world, *pred.args)


def _color(name: str) -> str:
    return name.rpartition(" ")[0]


def _held(world: World, name: str) -> bool:
    return name.endswith(" block") and world.held == _color(name)


def _xy(world: World, name: str) -> tuple[float, float]:
    x, y, _ = world.position(name)
    return x, y


def _support_text(support: str) -> str:
    kind, _, color = support.partition(":")
    return {"block": f"the {color} block", "bowl": f"in the {color} bowl"}.get(kind, f"the {support}")


def _expand(world: World, names) -> list[str]:
    # Lets an unbound goal be evaluated too.
    out: list[str] = []
    for n in names:
        if n == ALL_BLOCKS:
            out.extend(f"{c} block" for c in COLORS if c in world.blocks)
        else:
            out.append(n)
    return out


def _eval_in(world, a, b):
    if _held(world, a):
        return f"{a} is held by the gripper"
    (ax, ay), (bx, by) = _xy(world, a), _xy(world, b)
    d = math.hypot(ax - bx, ay - by)
    if d <= BOWL_RADIUS + _EPS:
        return None
    return f"{a} is {d:.3f} m from the centre of {b} (inside means within {BOWL_RADIUS:.2f} m)"


def _eval_on(world, a, b):
    support = world.support(_color(a))
    if support == f"block:{_color(b)}":
        return None
    if support == "held":
        return f"{a} is held by the gripper"
    return f"{a} rests on {_support_text(support)}, not on {b}"


def _eval_at(world, a, place):
    if _held(world, a):
        return f"{a} is held by the gripper"
    (x, y), (px, py) = _xy(world, a), PLACES[place]
    if abs(x - px) <= PLACE_TOLERANCE + _EPS and abs(y - py) <= PLACE_TOLERANCE + _EPS:
        return None
    return (f"{a} is at ({x:.3f}, {y:.3f}), outside the {place} zone "
            f"(within {PLACE_TOLERANCE} m of ({px}, {py}) on both axes)")


def _eval_stacked(world, *names):
    if names and names[0] == ALL_BLOCKS:
        return _one_stack(world, _expand(world, names[1:] or names))
    for lower, upper in zip(names, names[1:]):
        reason = _eval_on(world, upper, lower)
        if reason is not None:
            return reason
    return None


def _one_stack(world: World, names: list[str]) -> str | None:
    held = [n for n in names if _held(world, n)]
    if held:
        return f"{held[0]} is held by the gripper"
    supports = {n: world.support(_color(n)) for n in names}
    bases = [n for n, s in supports.items() if not s.startswith("block:")]
    if len(bases) != 1:
        return f"the blocks form {len(bases)} stacks ({', '.join(bases)} at the bottom), not one"
    on_blocks = [s for s in supports.values() if s.startswith("block:")]
    if len(set(on_blocks)) != len(on_blocks):
        return "two blocks rest on the same block"
    return None


def _eval_offset(world, a, b, direction, amount):
    for n in (a, b):
        if _held(world, n):
            return f"{n} is held by the gripper"
    (ax, ay), (bx, by) = _xy(world, a), _xy(world, b)
    dx, dy = ax - bx, ay - by
    ux, uy = DIRECTIONS[direction]
    along, side = dx * ux + dy * uy, abs(dx * uy - dy * ux)
    lo, hi = AMOUNTS[amount]
    if lo - _EPS <= along <= hi + _EPS and side <= OFFSET_SIDEWAYS + _EPS:
        return None
    return (f"{a} is {along:.3f} m {direction} of {b} and {side:.3f} m sideways "
            f"({amount} means {lo}-{hi} m {direction}, at most {OFFSET_SIDEWAYS} m sideways)")


def _eval_line(world, orientation, *names):
    objs = _expand(world, names)
    if len(objs) < 2:
        return f"a line needs at least 2 objects, got {len(objs)}"
    for n in objs:
        if _held(world, n):
            return f"{n} is held by the gripper"
        if n.endswith(" block"):
            support = world.support(_color(n))
            if support.startswith("block:"):
                return f"{n} is stacked on {_support_text(support)}"
            above = world.blocks_above(_color(n))
            if above:
                return f"{n} has {above[0].name} on it"
    pts = [_xy(world, n) for n in objs]
    for i, (p, pn) in enumerate(zip(pts, objs)):
        for q, qn in zip(pts[i + 1:], objs[i + 1:]):
            if math.hypot(p[0] - q[0], p[1] - q[1]) < LINE_MIN_SPACING - _EPS:
                return f"{pn} and {qn} are less than {LINE_MIN_SPACING} m apart"
    if orientation == "horizontal":
        dev = _spread([y for _, y in pts])
    elif orientation == "vertical":
        dev = _spread([x for x, _ in pts])
    else:
        dev = min(_spread([x - y for x, y in pts]), _spread([x + y for x, y in pts])) / math.sqrt(2)
    if dev <= LINE_TOLERANCE + _EPS:
        return None
    return f"the centres lie up to {dev:.3f} m off a {orientation} line (allowed {LINE_TOLERANCE} m)"


def _spread(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return max(abs(v - mean) for v in values)


def _eval_distinct(world, zone, *names):
    taken: dict[str, str] = {}
    for n in _expand(world, names):
        if _held(world, n):
            return f"{n} is held by the gripper"
        place = next((p for p in ZONES[zone] if _eval_at(world, n, p) is None), None)
        if place is None:
            return f"{n} is not at any of the {zone}"
        if place in taken:
            return f"{taken[place]} and {n} are both at the {place}"
        taken[place] = n
    return None


def _eval_unmoved(world, *names):
    for n in _expand(world, names):
        d = math.dist(world.position(n), world.start[n])
        if d > UNMOVED_TOLERANCE + _EPS:
            return f"{n} moved {d:.3f} m from where it started (allowed {UNMOVED_TOLERANCE} m)"
    return None


_EVAL = {"in": _eval_in, "on": _eval_on, "at": _eval_at, "stacked": _eval_stacked, "offset": _eval_offset,
         "line": _eval_line, "distinct": _eval_distinct, "unmoved": _eval_unmoved}
