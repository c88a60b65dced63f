"""Goal predicates of scenario files (DESIGN §9): parsing, binding to a scene, evaluation.

A goal is a tree of ``Pred`` leaves and ``All`` / ``Any`` / ``Not`` nodes. Object arguments are
names ("red block", "blue bowl"); after ``bind`` the special name "all blocks" is expanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

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
