"""Scenario files (DESIGN §9): load, validate, build the world, write back.

A scenario file is a YAML list of scenarios::

    - name: red-into-blue
      family: pick-place
      instruction: Put the red block in the blue bowl
      scene:
        seed: 7
        blocks: [red, {color: green, at: [0.1, -0.05]}]
        bowls: [blue]
      goal:
        - in: [red block, blue bowl]
      max_steps: 8

``load_scenarios`` checks everything up front (it builds every world and binds every goal), so a
harness never fails half-way through a file. Every problem is a ScenarioError naming the file, the
scenario and the field.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from edgeagent.errors import ScenarioError
from edgeagent.files import write_atomic
from edgeagent.sim.goals import Goal, bind, goal_to_yaml, parse_goal
from edgeagent.sim.world import COLORS, WORKSPACE, World

Position = tuple[float, float]
ObjectSpec = tuple[str, Position | None]

SCENARIO_KEYS = ("name", "family", "instruction", "scene", "goal", "max_steps")
REQUIRED_KEYS = ("name", "instruction", "scene", "goal")
SCENE_KEYS = ("seed", "blocks", "bowls")
OBJECT_KEYS = ("color", "at")


def default_max_steps(n_blocks: int) -> int:
    """Step budget of a scenario that gives none: a pick and a place per block, plus slack."""
    return 4 * n_blocks + 4


@dataclass(frozen=True)
class Scene:
    """Objects of a scene. Each entry is (colour, (x, y)) or (colour, None) for a seeded random spot."""

    # Seeds the positions of objects given without one.
    seed: int
    blocks: tuple[ObjectSpec, ...]
    bowls: tuple[ObjectSpec, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists and bare colours from code, keep tuples so the scene stays hashable.
        object.__setattr__(self, "blocks", _specs(self.blocks))
        object.__setattr__(self, "bowls", _specs(self.bowls))


@dataclass(frozen=True)
class Scenario:
    """One scenario: a scene, an instruction and the goal that scores it."""

    name: str
    instruction: str
    scene: Scene
    # The goal as parsed from the file, not yet bound to a world ("all blocks" unexpanded).
    goal: Goal
    # Task family, for per-family tables; None when the file gives none.
    family: str | None = None
    # Step budget of the executor; None means default_max_steps(number of blocks).
    max_steps: int | None = None
    # The file it came from ("" when built in code).
    source: str = ""

    def __post_init__(self) -> None:
        if self.max_steps is None:
            object.__setattr__(self, "max_steps", default_max_steps(len(self.scene.blocks)))

    def build_world(self, grasp_failure: float = 0.0) -> World:
        """A fresh world in this scenario's start state."""
        return World.from_scene(list(self.scene.blocks), list(self.scene.bowls), seed=self.scene.seed,
                                grasp_failure=grasp_failure)

    def bound_goal(self, world: World) -> Goal:
        """The goal checked against ``world``'s scene, with "all blocks" expanded."""
        return bind(self.goal, world, self.where)

    @property
    def where(self) -> str:
        """Error-message prefix: file and scenario."""
        return f"{self.source or '<scenario>'}: scenario {self.name!r}"


# -- loading ---------------------------------------------------------------------------------------

def load_scenarios(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Scenario]:
    """Load and fully validate scenario files, in order. Names must be unique within each file."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Scenario] = []
    for path in paths:
        out.extend(_load_file(Path(path)))
    return out


def _load_file(path: Path) -> list[Scenario]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file ({exc.strerror}); check the path") from exc
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, list):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(f"{path}: expected a list of scenarios (DESIGN §9), got {got}")
    return _from_dicts(data, str(path))


def _from_dicts(items: list, source: str) -> list[Scenario]:
    out: list[Scenario] = []
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        sc = scenario_from_dict(item, source=source, index=i)
        if sc.name in first:
            raise ScenarioError(f"{source}: scenario {sc.name!r}: name: duplicate; the scenario at index "
                                f"{first[sc.name]} has the same name; names must be unique in a file")
        first[sc.name] = i
        out.append(sc)
    return out


def scenario_from_dict(data: object, source: str = "", index: int = 0) -> Scenario:
    """Validate one scenario mapping (the YAML form) and return it as a ``Scenario``.

    Builds its world and binds its goal, so whatever passes here can run. ``source`` and ``index``
    name the file and the position in it in error messages.
    """
    src = source or "<scenario>"
    label = f"scenario at index {index}"
    if not isinstance(data, dict):
        raise ScenarioError(f"{src}: {label}: expected a mapping with keys {', '.join(REQUIRED_KEYS)}, "
                            f"got {_show(data)}")
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        label = f"scenario {name.strip()!r}"
    where = f"{src}: {label}"

    def fail(field: str, message: str) -> ScenarioError:
        return ScenarioError(f"{where}: {field}: {message}")

    unknown = [k for k in data if k not in SCENARIO_KEYS]
    if unknown:
        raise fail(str(unknown[0]), f"unknown key; a scenario has only {', '.join(SCENARIO_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in data:
            raise fail(key, "missing; every scenario needs " + ", ".join(REQUIRED_KEYS))
    name = _text(data["name"], fail, "name")
    instruction = _text(data["instruction"], fail, "instruction")
    family = None if data.get("family") is None else _text(data["family"], fail, "family")
    max_steps = data.get("max_steps")
    if max_steps is not None and (not _is_int(max_steps) or max_steps < 1):
        raise fail("max_steps", f"expected a whole number of steps >= 1, got {max_steps!r}")
    scene = _scene(data["scene"], fail)
    goal = parse_goal(data["goal"], where)
    scenario = Scenario(name, instruction, scene, goal, family, max_steps, source)
    try:
        world = scenario.build_world()
    except ValueError as exc:  # e.g. too crowded to lay out
        raise fail("scene", str(exc)) from exc
    scenario.bound_goal(world)
    return scenario


def _scene(data: object, fail) -> Scene:
    if not isinstance(data, dict):
        raise fail("scene", f"expected a mapping with seed, blocks and bowls, got {_show(data)}")
    unknown = [k for k in data if k not in SCENE_KEYS]
    if unknown:
        raise fail(f"scene.{unknown[0]}", f"unknown key; a scene has only {', '.join(SCENE_KEYS)}")
    seed = data.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise fail("scene.seed", f"expected a whole number >= 0, got {seed!r}")
    if "blocks" not in data:
        raise fail("scene.blocks", "missing; list the blocks, e.g. blocks: [red, green]")
    blocks = _objects(data["blocks"], "block", fail)
    if not blocks:
        raise fail("scene.blocks", "empty; a scene needs at least one block")
    bowls = _objects(data.get("bowls") or [], "bowl", fail)
    return Scene(seed, blocks, bowls)


def _objects(data: object, kind: str, fail) -> tuple[ObjectSpec, ...]:
    field = f"scene.{kind}s"
    if not isinstance(data, list):
        raise fail(field, f"expected a list of colours or {{color: C, at: [x, y]}}, got {_show(data)}")
    out: list[ObjectSpec] = []
    for i, item in enumerate(data):
        f = f"{field}[{i}]"
        at = None
        if isinstance(item, dict):
            unknown = [k for k in item if k not in OBJECT_KEYS]
            if unknown:
                raise fail(f"{f}.{unknown[0]}", f"unknown key; an object has only {', '.join(OBJECT_KEYS)}")
            if "color" not in item:
                raise fail(f"{f}.color", "missing; name the colour, e.g. {color: red, at: [0.1, 0.0]}")
            color, at = item["color"], item.get("at")
            if at is not None:
                at = _position(at, fail, f"{f}.at")
        else:
            color = item
        if not isinstance(color, str):
            raise fail(f, f"expected a colour name, got {_show(color)}")
        color = color.strip().lower()
        if color not in COLORS:
            raise fail(f, f"colour {color!r} is not in the palette: {', '.join(COLORS)}")
        if any(c == color for c, _ in out):
            raise fail(f, f"a second {color} {kind}; each colour appears at most once per kind")
        out.append((color, at))
    return tuple(out)


def _position(at: object, fail, field: str) -> Position:
    if (not isinstance(at, (list, tuple)) or len(at) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in at)):
        raise fail(field, f"expected two numbers [x, y] in metres, got {at!r}")
    x, y = float(at[0]), float(at[1])
    if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > WORKSPACE or abs(y) > WORKSPACE:
        raise fail(field, f"({x}, {y}) is outside the workspace: x and y must be in "
                          f"[-{WORKSPACE}, {WORKSPACE}] m")
    return x, y


def _text(value: object, fail, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(field, f"expected non-empty text, got {_show(value)}")
    return value.strip()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: object) -> str:
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return "nothing" if value is None else repr(value)


def _specs(items) -> tuple[ObjectSpec, ...]:
    out = []
    for item in items:
        color, at = (item, None) if isinstance(item, str) else item
        out.append((color, None if at is None else (float(at[0]), float(at[1]))))
    return tuple(out)


# -- writing ---------------------------------------------------------------------------------------

def scenario_to_dict(s: Scenario) -> dict:
    """The YAML form of ``s`` (what ``scenario_from_dict`` reads back)."""
    d: dict = {"name": s.name}
    if s.family is not None:
        d["family"] = s.family
    d["instruction"] = s.instruction
    d["scene"] = {"seed": s.scene.seed, "blocks": [_object_dict(o) for o in s.scene.blocks]}
    if s.scene.bowls:
        d["scene"]["bowls"] = [_object_dict(o) for o in s.scene.bowls]
    d["goal"] = goal_to_yaml(s.goal)
    if s.max_steps != default_max_steps(len(s.scene.blocks)):
        d["max_steps"] = s.max_steps
    return d


def _object_dict(spec: ObjectSpec):
    color, at = spec
    return color if at is None else {"color": color, "at": [at[0], at[1]]}


def dump_scenarios(items: Iterable[Scenario | dict], path: str | os.PathLike) -> None:
    """Write scenarios (``Scenario`` objects or their dict form) to ``path`` as a scenario file.

    Everything is validated first (as ``load_scenarios`` would), then the file is replaced
    atomically: readers see the old file or the new one, never part of one.
    """
    path = Path(path)
    dicts = []
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        d = scenario_to_dict(item) if isinstance(item, Scenario) else item
        # Validate what will be written, so the file always loads back.
        sc = scenario_from_dict(d, source=str(path), index=i)
        if sc.name in first:
            raise ScenarioError(f"{path}: scenario {sc.name!r}: name: duplicate of the scenario at index "
                                f"{first[sc.name]}; names must be unique in a file")
        first[sc.name] = i
        dicts.append(scenario_to_dict(sc))
    text = yaml.dump([_flow(d) for d in dicts], Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=10_000)
    # A blank line between scenarios, as people write them; every scenario starts with its name.
    text = text.replace("\n- name:", "\n\n- name:")
    write_atomic(path, text)


# -- YAML flavour ----------------------------------------------------------------------------------

class _FlowList(list):
    pass


class _FlowDict(dict):
    pass


def _flow(value):
    """Mark lists of names ([red block, blue bowl]) and scene objects ({color: red, at: [0.1, 0.2]})
    for flow style; a list of several positioned objects gets one object per line."""
    if isinstance(value, dict):
        inner = {k: _flow(v) for k, v in value.items()}
        if set(value) <= set(OBJECT_KEYS) and "color" in value:
            return _FlowDict(inner)
        return inner
    if isinstance(value, list):
        items = [_flow(v) for v in value]
        mappings = sum(isinstance(v, _FlowDict) for v in items)
        if mappings <= 1 and all(not isinstance(v, (dict, list)) or isinstance(v, (_FlowDict, _FlowList))
                                 for v in items):
            return _FlowList(items)
        return items
    return value


def _yaml12_bools(cls):
    """Make ``cls`` read only true/false as booleans: YAML 1.1 also reads on/off/yes/no, and `on` is
    a predicate name."""
    bool_tag = "tag:yaml.org,2002:bool"
    cls.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
        for ch, resolvers in cls.yaml_implicit_resolvers.items()}
    cls.add_implicit_resolver(bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return cls


@_yaml12_bools
class _Loader(yaml.SafeLoader):
    pass


@_yaml12_bools
class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        # Indent list items under their key (goal:\n  - in: ...), as in DESIGN §9.
        return super().increase_indent(flow, False)


_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(_FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
