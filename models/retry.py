"""Not repeating a pick that keeps failing: what ``ModelPlanner`` remembers between plans of one task.

The planner is a pure function of the frame and the instruction, so when its pick point misses a
block (it reads a far block's position a few centimetres off), the scene after the failed grasp looks
the same and it proposes the same pick again, until the task runs out of steps. ``FailedPicks``
notices that from the observations alone: the planner's last plan was a pick, and the gripper still
holds nothing. After ``AFTER`` failures at one spot, the planner tries the model's best spot for that
pick where no pick of this task has failed yet (``runtime.next_best_point``), once; the first spot is
then allowed one more try before the next alternative, so a grasp that failed by chance at the right
spot is tried again rather than given up, and a spot read wrongly costs one step per alternative.

Nothing here needs the robot's feedback channel: a robot whose backend cannot tell what it holds
(``holding`` unknown) simply gets the plain plans.
"""

from __future__ import annotations

from edgeagent.types import UNKNOWN, Observation

Point = tuple[float, float]

#: Picks this close (m, along each axis) count as the same spot; below the 3 cm a grasp forgives.
NEAR = 0.025
#: Failed picks at one spot before the planner tries its next-best spot there.
AFTER = 2


def _same(p: Point, q: Point) -> bool:
    return abs(p[0] - q[0]) < NEAR and abs(p[1] - q[1]) < NEAR


class FailedPicks:
    """Failed picks of the current task, inferred from consecutive observations (one robot, one task)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new task; ``Executor.run`` calls the planner's ``reset``)."""
        self._instruction: str | None = None
        self._last: Point | None = None
        self._fails: dict[Point, int] = {}

    def observe(self, obs: Observation, instruction: str) -> None:
        """Account for the outcome of the last proposed pick, before planning ``obs``."""
        if instruction != self._instruction or obs.holding is not None:
            # Another task, or the gripper holds something (the pick worked, or the state is unknown).
            self.reset()
            self._instruction = instruction if obs.holding != UNKNOWN else None
            return
        if self._last is not None:
            self._fails[self._last] = self._fails.get(self._last, 0) + 1
        self._last = None

    def avoid(self, point: Point) -> list[Point]:
        """The spots near ``point`` where picks failed ``AFTER`` times or more (empty: pick there)."""
        if self._instruction is None:
            return []
        return [p for p, n in self._fails.items() if n >= AFTER and _same(p, point)]

    def failed(self) -> list[Point]:
        """Every spot where a pick of this task failed (the alternatives keep clear of them)."""
        return [p for p, n in self._fails.items() if n > 0]

    def proposed(self, point: Point, *, instead_of: list[Point] = ()) -> None:
        """The plan about to be returned picks at ``point`` (in place of the spots ``instead_of``)."""
        if self._instruction is None:
            return
        for p in instead_of:
            self._fails[p] = AFTER - 1  # one more try there before the next alternative
        self._last = next((p for p in self._fails if _same(p, point)), point)

    def failures(self) -> dict[Point, int]:
        """Failed picks per spot so far (for logs and tests)."""
        return dict(self._fails)
