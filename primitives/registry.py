"""One registry of motion primitives; a primitive is a plain typed function.

The function's signature is the schema: the same object validates calls, exports JSON Schema and
documents itself. The first parameter is the arm driver the primitive runs on (see ``library.Arm``);
the others are the call's arguments.
"""

from __future__ import annotations

import enum
import inspect
import math
import typing
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from edgeagent.errors import InvalidCall, PreconditionFailed, UnknownPrimitive
from edgeagent.primitives.argtypes import Range, TablePoint, Workspace
from edgeagent.types import Call

#: Precondition names a primitive may declare, and how to tell a user what went wrong.
PRECONDITIONS = {
    "holding": "needs something in the gripper; pick something first",
    "empty": "needs an empty gripper; place or release what it holds first",
}


@dataclass(frozen=True)
class Param:
    """One argument of a primitive."""

    name: str
    # "point", "float" or "enum"
    kind: str
    # For floats: inclusive bounds. For points: None (the registry's workspace applies).
    bounds: Range | None = None
    # For enums: the allowed string values.
    choices: tuple[str, ...] = ()
    enum_type: type | None = None


@dataclass(frozen=True)
class Primitive:
    name: str
    fn: Callable[..., Any]
    params: tuple[Param, ...]
    doc: str
    # Names from PRECONDITIONS that must hold before the call.
    requires: tuple[str, ...] = ()

    @property
    def point_params(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.kind == "point")


@dataclass
class Registry:
    """Registered primitives and the workspace their points must lie in."""

    workspace: Workspace = field(default_factory=Workspace)
    _prims: dict[str, Primitive] = field(default_factory=dict)

    # -- registration -------------------------------------------------------------------------
    def primitive(self, fn: Callable | None = None, *, requires: Iterable[str] = ()):
        """Decorator: register ``fn`` under its own name. Duplicates raise ValueError."""

        def register(f: Callable) -> Callable:
            if f.__name__ in self._prims:
                raise ValueError(f"primitive {f.__name__!r} is already registered")
                # one name, one function: a second registration is a bug, not an override
            reqs = tuple(requires)
            for r in reqs:
                if r not in PRECONDITIONS:
                    raise ValueError(f"primitive {f.__name__!r}: unknown precondition {r!r}; "
                                     f"known: {', '.join(PRECONDITIONS)}")
            self._prims[f.__name__] = Primitive(f.__name__, f, _params_of(f), inspect.getdoc(f) or "", reqs)
            return f

        return register(fn) if fn is not None else register

    # -- lookup -------------------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._prims

    def __iter__(self):
        return iter(self._prims.values())

    def __len__(self) -> int:
        return len(self._prims)

    def names(self) -> list[str]:
        return list(self._prims)

    def get(self, name: str) -> Primitive:
        try:
            return self._prims[name]
        except KeyError:
            raise UnknownPrimitive(f"unknown primitive {name!r}; registered: {', '.join(self._prims)}") from None

    def subset(self, enabled: Iterable[str] | None = None, *, workspace: Workspace | None = None,
               bounds: Mapping[str, Mapping[str, tuple[float, float]]] | None = None) -> "Registry":
        """A registry with only ``enabled`` primitives, a narrower workspace and narrower float bounds.

        Narrowing only: bounds wider than the originals are refused.
        """
        names = list(enabled) if enabled is not None else self.names()
        ws = workspace or self.workspace
        if not (self.workspace.x_min <= ws.x_min <= ws.x_max <= self.workspace.x_max
                and self.workspace.y_min <= ws.y_min <= ws.y_max <= self.workspace.y_max):
            raise ValueError(f"workspace {ws} is not inside {self.workspace}")
        out = Registry(ws)
        for name in names:
            prim = self.get(name)
            new_bounds = (bounds or {}).get(name, {})
            params = []
            for p in prim.params:
                if p.name in new_bounds:
                    lo, hi = new_bounds[p.name]
                    if p.bounds is None or not (p.bounds.lo <= lo <= hi <= p.bounds.hi):
                        raise ValueError(f"{name}.{p.name}: bounds [{lo}, {hi}] must lie inside {p.bounds}")
                    p = replace(p, bounds=Range(lo, hi))
                params.append(p)
            out._prims[name] = replace(prim, params=tuple(params))
        return out

    # -- validation ---------------------------------------------------------------------------
    def validate(self, call: Call, *, holding: str | None | bool = None, check_state: bool = False) -> Call:
        """Check name, argument names, types, bounds and (with ``check_state``) preconditions.

        Returns the call with normalised values (points as ``TablePoint``, enums as strings).
        Raises UnknownPrimitive, InvalidCall or PreconditionFailed, each saying what to fix.
        """
        prim = self.get(call.primitive)
        args = dict(call.args) if isinstance(call.args, Mapping) else None
        if args is None:
            raise InvalidCall(f"{call.primitive}: args must be a mapping of argument names to values")
        expected = {p.name for p in prim.params}
        for extra in sorted(set(args) - expected):
            raise InvalidCall(f"{call.primitive}: unexpected argument {extra!r}; it takes "
                              f"({', '.join(p.name for p in prim.params) or 'no arguments'})")
        out: dict[str, Any] = {}
        for p in prim.params:
            if p.name not in args:
                raise InvalidCall(f"{call.primitive}: missing argument {p.name!r} ({_describe(p, self.workspace)})")
            out[p.name] = self._check_value(prim.name, p, args[p.name])
        req = self.unmet(prim.name, holding) if check_state else None
        if req is not None:
            raise PreconditionFailed(f"{call.primitive}: {PRECONDITIONS[req]}"
                                     + (f" (holding {holding})" if isinstance(holding, str) else ""))
        return Call(prim.name, out)

    def unmet(self, name: str, holding: str | None | bool) -> str | None:
        """The first precondition of primitive ``name`` that the gripper state ``holding`` breaks
        ("holding" or "empty"), or None."""
        held = bool(holding)
        for req in self.get(name).requires:
            if (req == "holding" and not held) or (req == "empty" and held):
                return req
        return None

    def _check_value(self, prim: str, p: Param, value: Any) -> Any:
        where = f"{prim}.{p.name}"
        if p.kind == "point":
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not all(_is_number(v) for v in value)):
                raise InvalidCall(f"{where}: expected a table point [x, y] in metres, got {value!r:.80}")
            x, y = float(value[0]), float(value[1])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise InvalidCall(f"{where}: point must be finite, got ({x}, {y})")
            if not self.workspace.contains(x, y):
                raise InvalidCall(f"{where}: point ({x:.3f}, {y:.3f}) is outside the workspace ({self.workspace})")
            return TablePoint(x, y)
        if p.kind == "float":
            if not _is_number(value) or not math.isfinite(float(value)):
                raise InvalidCall(f"{where}: expected a number, got {value!r:.80}")
            v = float(value)
            if p.bounds is not None and not p.bounds.lo <= v <= p.bounds.hi:
                raise InvalidCall(f"{where}: {v} is outside [{p.bounds.lo}, {p.bounds.hi}]")
            return v
        if p.kind == "enum":
            v = value.value if isinstance(value, enum.Enum) else value
            if v not in p.choices:
                raise InvalidCall(f"{where}: {value!r:.40} is not one of {', '.join(p.choices)}")
            return v
        raise InvalidCall(f"{where}: unsupported parameter kind {p.kind}")  # pragma: no cover

    # -- schema -------------------------------------------------------------------------------
    def json_schema(self) -> list[dict[str, Any]]:
        """Each primitive as a function-calling style JSON Schema object."""
        out = []
        for prim in self._prims.values():
            props = {p.name: _param_schema(p, self.workspace) for p in prim.params}
            entry = {"name": prim.name, "description": prim.doc,
                     "parameters": {"type": "object", "properties": props,
                                    "required": [p.name for p in prim.params], "additionalProperties": False}}
            if prim.requires:
                entry["x-requires"] = list(prim.requires)
            out.append(entry)
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _params_of(fn: Callable) -> tuple[Param, ...]:
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    params = list(sig.parameters.values())
    if not params:
        raise ValueError(f"primitive {fn.__name__!r} must take the arm driver as its first parameter")
    out = []
    for prm in params[1:]:
        tp = hints.get(prm.name)
        if tp is None:
            raise ValueError(f"primitive {fn.__name__!r}: parameter {prm.name!r} needs a type annotation")
        out.append(_param(fn.__name__, prm.name, tp))
    return tuple(out)


def _param(fn: str, name: str, tp: Any) -> Param:
    if tp is TablePoint:
        return Param(name, "point")
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        rng = next((m for m in meta if isinstance(m, Range)), None)
        if base is float and rng is not None:
            return Param(name, "float", bounds=rng)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return Param(name, "enum", choices=tuple(str(m.value) for m in tp), enum_type=tp)
    raise ValueError(f"primitive {fn!r}: parameter {name!r} has unsupported type {tp!r}; use TablePoint, "
                     "Annotated[float, Range(lo, hi)] or an Enum")


def _param_schema(p: Param, ws: Workspace) -> dict[str, Any]:
    if p.kind == "point":
        return {"type": "array", "description": "table point [x, y] in metres",
                "prefixItems": [{"type": "number", "minimum": ws.x_min, "maximum": ws.x_max},
                                {"type": "number", "minimum": ws.y_min, "maximum": ws.y_max}],
                "minItems": 2, "maxItems": 2}
    if p.kind == "float":
        return {"type": "number", "minimum": p.bounds.lo, "maximum": p.bounds.hi}
    return {"type": "string", "enum": list(p.choices)}


def _describe(p: Param, ws: Workspace) -> str:
    if p.kind == "point":
        return f"a table point [x, y] in metres, {ws}"
    if p.kind == "float":
        return f"a number in [{p.bounds.lo}, {p.bounds.hi}]"
    return f"one of {', '.join(p.choices)}"
