"""Not repeating a pick that keeps failing: what ``ModelPlanner`` remembers between plans of one task.

The planner is a pure function of the frame and the instruction, so when its pick point misses a
block (it reads a far block's position a few centimetres off), the scene after the failed grasp looks
the same and it proposes the same pick again, until the task runs out of steps. The executor tells
the planner which calls failed (``call_failed``); after ``AFTER`` failures at one spot, the planner
tries the model's best spot for that pick where no pick of this task has failed yet
(``runtime.next_best_point``), once; the first spot then gets one more try before the next
alternative, so a grasp that failed by chance at the right spot is tried again rather than given up,
and a spot read wrongly costs one step per alternative. Plans that are never executed (a ``plan``
request) change nothing.
"""

from __future__ import annotations

Point = tuple[float, float]

#: Picks this close (m, along each axis) count as the same spot; below the 3 cm a grasp forgives.
NEAR = 0.025
#: Failed picks at one spot before the planner tries its next-best spot there.
AFTER = 2


def _same(p: Point, q: Point) -> bool:
    return abs(p[0] - q[0]) < NEAR and abs(p[1] - q[1]) < NEAR


class FailedPicks:
    """Failed picks of the current task, as the executor reports them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new task; ``Executor.run`` calls the planner's ``reset``)."""
        self._fails: dict[Point, int] = {}

    def failed(self, point: Point) -> None:
        """A pick at ``point`` failed."""
        key = next((p for p in self._fails if _same(p, point)), (float(point[0]), float(point[1])))
        self._fails[key] = self._fails.get(key, 0) + 1

    def avoid(self, point: Point) -> list[Point]:
        """The spots near ``point`` where picks failed ``AFTER`` times or more (empty: pick there)."""
        return [p for p, n in self._fails.items() if n >= AFTER and _same(p, point)]

    def spots(self) -> list[Point]:
        """Every spot where a pick of this task failed (the alternatives keep clear of them)."""
        return [p for p, n in self._fails.items() if n > 0]

    def moved(self, instead_of: list[Point]) -> None:
        """A pick went elsewhere instead of these spots: each gets one more try before the next alternative."""
        for p in instead_of:
            self._fails[p] = AFTER - 1

    def failures(self) -> dict[Point, int]:
        """Failed picks per spot so far (for logs and tests)."""
        return dict(self._fails)
