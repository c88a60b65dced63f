"""Argument types that carry their bounds.

- ``TablePoint``: an (x, y) point on the table in metres; bounded by the registry's workspace.
- ``Annotated[float, Range(lo, hi)]``: a float within [lo, hi] (units in the parameter name).
- an ``enum.Enum`` subclass: one of its values (as a string on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass


class TablePoint(tuple):
    """(x, y) in metres in the table frame (DESIGN §8). Use as a parameter annotation."""

    __slots__ = ()

    def __new__(cls, x: float, y: float):
        return super().__new__(cls, (float(x), float(y)))

    @property
    def x(self) -> float:
        return self[0]

    @property
    def y(self) -> float:
        return self[1]


@dataclass(frozen=True)
class Range:
    """Inclusive bounds for a float parameter: ``Annotated[float, Range(0.0, 0.08)]``."""

    lo: float
    hi: float


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned reachable rectangle on the table, metres."""

    x_min: float = -0.3
    x_max: float = 0.3
    y_min: float = -0.3
    y_max: float = 0.3

    def contains(self, x: float, y: float) -> bool:
        return self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max

    def __str__(self) -> str:
        return f"x in [{self.x_min}, {self.x_max}], y in [{self.y_min}, {self.y_max}] m"
