"""The simulated tabletop: blocks, bowls and a kinematic gripper (DESIGN §8).

Rules: blocks are 0.04 m cubes, bowls 0.12 m across. A block released over another block's footprint
stacks on it (snapped onto its centre); released inside a bowl's rim it lands in the bowl; otherwise
it rests on the table. Only blocks can be picked, the topmost one at the gripper. A grasp fails with
probability ``grasp_failure``. A low horizontal move of the closed gripper that starts inside a
stack's footprint carries that stack along (a push).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

BLOCK_SIZE = 0.04
BOWL_DIAMETER = 0.12
BOWL_RADIUS = BOWL_DIAMETER / 2
WORKSPACE = 0.3  # |x|, |y| <= WORKSPACE
COLORS = ("blue", "red", "green", "orange", "yellow", "purple", "pink", "cyan", "brown", "gray")
#: BGR colours for rendering.
COLOR_BGR = {
    "blue": (200, 80, 30), "red": (40, 40, 210), "green": (60, 170, 50), "orange": (20, 130, 240),
    "yellow": (40, 210, 230), "purple": (150, 50, 120), "pink": (180, 120, 245), "cyan": (220, 210, 60),
    "brown": (30, 70, 120), "gray": (140, 140, 140),
}
KINDS = ("block", "bowl")
#: Named places and their anchors (x, y), metres.
PLACES = {
    "top left corner": (-0.24, 0.24), "top side": (0.0, 0.24), "top right corner": (0.24, 0.24),
    "left side": (-0.24, 0.0), "middle": (0.0, 0.0), "right side": (0.24, 0.0),
    "bottom left corner": (-0.24, -0.24), "bottom side": (0.0, -0.24), "bottom right corner": (0.24, -0.24),
}
CORNERS = ("top left corner", "top right corner", "bottom left corner", "bottom right corner")
SIDES = ("top side", "left side", "right side", "bottom side")
#: An object is *at* a place when its centre is within this distance of the anchor along both axes.
PLACE_TOLERANCE = 0.09
#: How far (m, along each axis) from a block's centre the gripper may be and still grasp it.
GRASP_TOLERANCE = 0.03
HOME = (0.0, -0.3, 0.25)


@dataclass
class Block:
    color: str
    x: float
    y: float
    # Height of the block's bottom face above the table, metres (0 on the table or in a bowl).
    z: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.color} block"


@dataclass
class Bowl:
    color: str
    x: float
    y: float

    @property
    def name(self) -> str:
        return f"{self.color} bowl"


@dataclass
class World:
    """Scene state plus the gripper. Mutated by the arm methods; ``copy()`` for look-ahead."""

    blocks: dict[str, Block] = field(default_factory=dict)
    bowls: dict[str, Bowl] = field(default_factory=dict)
    # Gripper position (x, y, z) in metres and whether its fingers are closed.
    gripper: tuple[float, float, float] = HOME
    closed: bool = False
    # Colour of the held block, or None.
    held: str | None = None
    # Probability that a grasp fails (the block stays where it was).
    grasp_failure: float = 0.0
    seed: int = 0
    # Where each object started: name -> (x, y, z); used by the `unmoved` predicate.
    start: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    rng: np.random.Generator = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rng is None:
            self.rng = np.random.default_rng(self.seed)
        if not self.start:
            self.start = {o.name: self.position(o.name) for o in self.objects()}

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def from_scene(blocks, bowls, *, seed: int = 0, grasp_failure: float = 0.0) -> "World":
        """Build a scene. ``blocks``/``bowls`` are lists of colours or ``(colour, (x, y) | None)``.

        Objects without a position are placed at random (seeded), not overlapping anything and
        inside the workspace. Raises ValueError on duplicate colours, unknown colours, positions
        outside the workspace, or a scene too crowded to lay out.
        """
        rng = np.random.default_rng(seed)
        specs = [("bowl", *_spec(b)) for b in bowls] + [("block", *_spec(b)) for b in blocks]
        seen = set()
        for kind, color, at in specs:
            if color not in COLORS:
                raise ValueError(f"unknown colour {color!r}; the palette is {', '.join(COLORS)}")
            if (color, kind) in seen:
                raise ValueError(f"two {color} {kind}s: each (colour, kind) must be unique in a scene")
            seen.add((color, kind))
            if at is not None and not (abs(at[0]) <= WORKSPACE and abs(at[1]) <= WORKSPACE):
                raise ValueError(f"{color} {kind} at ({at[0]}, {at[1]}) is outside the workspace "
                                 f"(x, y in [-{WORKSPACE}, {WORKSPACE}] m)")
        placed: list[tuple[str, float, float]] = [(k, at[0], at[1]) for k, _, at in specs if at is not None]
        world = World(seed=seed, grasp_failure=grasp_failure, rng=np.random.default_rng(seed + 1_000_003))
        for kind, color, at in specs:
            if at is None:
                at = _free_spot(rng, kind, placed)
                placed.append((kind, at[0], at[1]))
            if kind == "bowl":
                world.bowls[color] = Bowl(color, float(at[0]), float(at[1]))
            else:
                world.blocks[color] = Block(color, float(at[0]), float(at[1]))
        # Blocks given explicit positions may overlap others: settle them in the listed order with the
        # placement rules, so blocks listed at one spot form a stack from the first one up.
        pending = list(world.blocks.values())
        world.blocks.clear()
        for b in pending:
            world._drop(b, b.x, b.y)
        world.start = {o.name: world.position(o.name) for o in world.objects()}
        return world

    def copy(self) -> "World":
        return copy.deepcopy(self)

    # -- queries ------------------------------------------------------------------------------
    def objects(self) -> list[Block | Bowl]:
        return [*self.bowls.values(), *self.blocks.values()]

    def get(self, name: str) -> Block | Bowl:
        """The object called ``name`` ("red block", "blue bowl"); KeyError when absent."""
        color, _, kind = name.strip().lower().rpartition(" ")
        table = self.blocks if kind == "block" else self.bowls if kind == "bowl" else None
        if table is None or color not in table:
            raise KeyError(f"no {name!r} in this scene; it has: {', '.join(o.name for o in self.objects())}")
        return table[color]

    def position(self, name: str) -> tuple[float, float, float]:
        o = self.get(name)
        if isinstance(o, Block):
            if o.color == self.held:
                return self.gripper
            return (o.x, o.y, o.z)
        return (o.x, o.y, 0.0)

    def on_table_blocks(self) -> list[Block]:
        """Blocks not in the gripper."""
        return [b for b in self.blocks.values() if b.color != self.held]

    def support(self, color: str) -> str:
        """What block ``color`` rests on: "held", "block:<c>", "bowl:<c>" or "table"."""
        if color == self.held:
            return "held"
        b = self.blocks[color]
        if b.z > 1e-6:
            below = self._block_below(b)
            if below is not None:
                return f"block:{below.color}"
        bowl = self.bowl_at(b.x, b.y)
        return f"bowl:{bowl.color}" if bowl is not None else "table"

    def bowl_at(self, x: float, y: float) -> Bowl | None:
        """The bowl whose rim contains (x, y), if any."""
        for bowl in self.bowls.values():
            if np.hypot(x - bowl.x, y - bowl.y) <= BOWL_RADIUS:
                return bowl
        return None

    def top_block_at(self, x: float, y: float, tolerance: float = BLOCK_SIZE) -> Block | None:
        """The highest block whose centre is within ``tolerance`` of (x, y) along both axes."""
        best = None
        for b in self.on_table_blocks():
            if abs(b.x - x) < tolerance and abs(b.y - y) < tolerance:
                if best is None or b.z > best.z or (b.z == best.z and
                                                    np.hypot(b.x - x, b.y - y) < np.hypot(best.x - x, best.y - y)):
                    best = b
        return best

    def blocks_above(self, color: str) -> list[Block]:
        """Blocks stacked on top of ``color`` (directly or indirectly), bottom to top."""
        out, cur = [], self.blocks[color]
        while True:
            nxt = next((b for b in self.on_table_blocks()
                        if abs(b.x - cur.x) < 1e-6 and abs(b.y - cur.y) < 1e-6
                        and abs(b.z - (cur.z + BLOCK_SIZE)) < 1e-6), None)
            if nxt is None:
                return out
            out.append(nxt)
            cur = nxt

    def _block_below(self, b: Block) -> Block | None:
        return next((o for o in self.on_table_blocks() if o is not b and abs(o.x - b.x) < 1e-6
                     and abs(o.y - b.y) < 1e-6 and abs(o.z + BLOCK_SIZE - b.z) < 1e-6), None)

    # -- the Arm protocol (used by edgeagent.primitives.library) -----------------------------
    def move_to(self, x: float, y: float, z: float) -> None:
        gx, gy, gz = self.gripper
        low = BLOCK_SIZE - 1e-9
        if self.closed and self.held is None and gz < low and z < low and (gx, gy) != (x, y):
            # A push: the stack whose footprint holds the start point slides with the gripper.
            base = self._base_at(gx, gy)
            if base is not None:
                stack = [base, *self.blocks_above(base.color)]
                dx, dy = x - gx, y - gy
                for b in stack:
                    b.x, b.y = float(np.clip(b.x + dx, -WORKSPACE, WORKSPACE)), float(np.clip(b.y + dy, -WORKSPACE, WORKSPACE))
                self._resettle(stack)
        self.gripper = (float(x), float(y), float(z))

    def descend(self) -> None:
        x, y, _ = self.gripper
        top = self.top_block_at(x, y, GRASP_TOLERANCE if self.held is None else BLOCK_SIZE)
        self.gripper = (x, y, (top.z + BLOCK_SIZE) if top is not None else 0.0)

    def open(self) -> None:
        self.closed = False
        if self.held is not None:
            b = self.blocks[self.held]
            self.held = None
            x, y, _ = self.gripper
            self._drop(b, x, y)

    def close(self) -> bool:
        self.closed = True
        if self.held is not None:
            return True
        x, y, z = self.gripper
        top = self.top_block_at(x, y, GRASP_TOLERANCE)
        if top is None or z > top.z + BLOCK_SIZE + 0.01:
            return False
        if self.grasp_failure > 0 and self.rng.random() < self.grasp_failure:
            return False
        self.held = top.color
        return True

    # -- physics helpers ----------------------------------------------------------------------
    def _base_at(self, x: float, y: float) -> Block | None:
        """The bottom block of the stack whose footprint contains (x, y)."""
        top = self.top_block_at(x, y, BLOCK_SIZE / 2 + 0.005)
        if top is None:
            return None
        b = top
        while (below := self._block_below(b)) is not None:
            b = below
        return b

    def _drop(self, b: Block, x: float, y: float) -> None:
        """Release block ``b`` over (x, y): stack, bowl or table."""
        x = float(np.clip(x, -WORKSPACE, WORKSPACE))
        y = float(np.clip(y, -WORKSPACE, WORKSPACE))
        self.blocks.pop(b.color, None)
        under = self.top_block_at(x, y, BLOCK_SIZE)  # any footprint overlap
        if under is not None:
            b.x, b.y, b.z = under.x, under.y, under.z + BLOCK_SIZE
        else:
            b.x, b.y, b.z = x, y, 0.0
        self.blocks[b.color] = b

    def _resettle(self, stack: list[Block]) -> None:
        """After a push, a stack that now overlaps another lands on top of it."""
        base = stack[0]
        others = [o for o in self.on_table_blocks() if o not in stack
                  and abs(o.x - base.x) < BLOCK_SIZE and abs(o.y - base.y) < BLOCK_SIZE]
        if not others:
            return
        for b in stack:
            self.blocks.pop(b.color)
        for b in stack:
            self._drop(b, base.x, base.y)


def _spec(item) -> tuple[str, tuple[float, float] | None]:
    if isinstance(item, str):
        return item, None
    color, at = item
    return color, (None if at is None else (float(at[0]), float(at[1])))


def _free_spot(rng: np.random.Generator, kind: str, placed) -> tuple[float, float]:
    """A random spot for ``kind`` that keeps clear of everything in ``placed``."""
    margin = BOWL_RADIUS if kind == "bowl" else BLOCK_SIZE
    lim = WORKSPACE - margin - 0.01
    for _ in range(2000):
        x, y = rng.uniform(-lim, lim, size=2)
        if all(np.hypot(x - px, y - py) >= _clearance(kind, k) for k, px, py in placed):
            return float(round(x, 4)), float(round(y, 4))
    raise ValueError("scene too crowded: could not place every object without overlap; "
                     "give fewer objects or explicit positions")


def _clearance(a: str, b: str) -> float:
    r = {"bowl": BOWL_RADIUS, "block": BLOCK_SIZE * 0.75}
    return r[a] + r[b] + 0.03
