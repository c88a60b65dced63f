"""Not repeating a move that gets nowhere: what ``ModelPlanner`` remembers between plans of one task.

A pick that keeps failing:

The planner is a pure function of the frame and the instruction, so when its pick point misses a
block (it reads a far block's position a few centimetres off), the scene after the failed grasp looks
the same and it proposes the same pick again, until the task runs out of steps. The executor tells
the planner which calls failed (``call_failed``); after ``AFTER`` failures at one spot, the planner
tries the model's best spot for that pick where no pick of this task has failed yet
(``runtime.next_best_point``), once; the first spot then gets one more try before the next
alternative, so a grasp that failed by chance at the right spot is tried again rather than given up,
and a spot read wrongly costs one step per alternative. Plans that are never executed (a ``plan``
request) change nothing.

A block put back where it was: the model sometimes sees a block it has just set down as a little off
its spot, picks it up again and sets it down at the same place, and the scene after that looks as it
did before, so the cycle repeats until the task runs out of steps. The executor tells the planner
which calls the robot carried out (``call_done``). When the planner, having just picked up again
(within ``TAKEN_BACK``) the block the last place set down, is about to set it down within ``NEAR`` of
that spot, or of a spot where this was caught before in the task, the place goes to the model's best
spot clear of those spots (``runtime.next_best_point``). The first put-back is already caught: the
place itself succeeded, so unlike a missed grasp there is no chance failure to allow for.
"""

from __future__ import annotations

Point = tuple[float, float]

#: Picks this close (m, along each axis) count as the same spot; below the 3 cm a grasp forgives.
NEAR = 0.025
#: A pick this close (m, along each axis) to where the last place set a block down takes that block up
#: again: a block's width (4 cm in the simulator), so no other block's centre lies that close.
TAKEN_BACK = 0.04
#: Failed picks at one spot before the planner tries its next-best spot there.
AFTER = 2


def same_spot(p: Point, q: Point) -> bool:
    return _within(p, q, NEAR)


class FailedPicks:
    """Failed picks of the current task, as the executor reports them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new task; ``Executor.run`` calls the planner's ``reset``)."""
        self._fails: dict[Point, int] = {}

    def failed(self, point: Point) -> None:
        """A pick at ``point`` failed."""
        key = next((p for p in self._fails if same_spot(p, point)), (float(point[0]), float(point[1])))
        self._fails[key] = self._fails.get(key, 0) + 1

    def avoid(self, point: Point) -> list[Point]:
        """The spots near ``point`` where picks failed ``AFTER`` times or more (empty: pick there)."""
        return [p for p, n in self._fails.items() if n >= AFTER and same_spot(p, point)]

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


class PutBacks:
    """The last pick and place the robot carried out in the current task, to catch a block that is
    about to be set down where it was just taken from."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new task)."""
        self._placed: Point | None = None  # where the last place set a block down
        self._picked: Point | None = None  # where the pick after it took a block up
        self._spots: list[Point] = []  # where put-backs were caught in this task

    def done(self, primitive: str, point: Point | None) -> None:
        """The robot carried out ``primitive`` at ``point``. Only place, then pick, then place makes a
        put-back; any other call in between breaks the chain."""
        if primitive == "place" and point is not None:
            self._placed, self._picked = (float(point[0]), float(point[1])), None
        elif primitive == "pick" and point is not None and self._placed is not None and self._picked is None:
            self._picked = (float(point[0]), float(point[1]))
        else:
            self._placed = self._picked = None

    def failed(self) -> None:
        """A call failed: where its block went is unknown, so the chain breaks."""
        self._placed = self._picked = None

    def put_back(self, point: Point) -> list[Point]:
        """The spots a place at ``point`` should keep clear of when it would put the block just taken
        up back where it was, or at a spot where that was caught before in this task (the model can
        also cycle between two spots); empty when it would not. The spot is remembered for the task."""
        if not self.would_put_back(point):
            return []
        placed, picked = self._placed, self._picked
        if not any(same_spot(placed, p) for p in self._spots):
            self._spots.append(placed)
        return [*self._spots, picked]

    def would_put_back(self, point: Point) -> bool:
        """Whether a place at ``point`` would put the block just taken up back where it was, or at a spot
        where that was caught before in this task (``put_back`` without remembering anything)."""
        if self._placed is None or self._picked is None:
            return False
        placed, picked = self._placed, self._picked
        return _within(picked, placed, TAKEN_BACK) and any(same_spot(point, p) for p in (placed, *self._spots))

    def spots(self) -> list[Point]:
        """Where put-backs were caught so far (for logs and tests)."""
        return list(self._spots)


def _within(p: Point, q: Point, d: float) -> bool:
    return abs(p[0] - q[0]) < d and abs(p[1] - q[1]) < d
