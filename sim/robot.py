"""``SimRobot``: the simulated tabletop as a ``Robot`` backend (DESIGN §3, §8).

It renders observations with ``edgeagent.sim.render`` and runs registered primitives with the
``World`` as the arm driver, after the registry has validated every call against the current
gripper state, so nothing unvalidated reaches the world.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeagent.camera import CameraModel
from edgeagent.errors import SafetyLimit
from edgeagent.primitives import Registry
from edgeagent.primitives import registry as standard_registry
from edgeagent.sim.render import RenderStyle, default_camera, render
from edgeagent.sim.world import World
from edgeagent.types import Call, Observation, StepResult


class SimRobot:
    """A simulated robot: ``observe()`` renders the world, ``execute(call)`` validates and runs a call.

    ``style`` is a ``RenderStyle``, None for the clean default, or ``"random"`` for a style drawn
    from ``seed`` (training-like lighting, texture and noise).
    """

    def __init__(self, world: World, *, registry: Registry | None = None, camera: CameraModel | None = None,
                 style: RenderStyle | str | None = None, seed: int = 0):
        self.world = world
        self.registry = registry if registry is not None else standard_registry
        self.camera = camera if camera is not None else default_camera()
        if isinstance(style, str):
            if style != "random":
                raise ValueError(f"style must be a RenderStyle, None or 'random', got {style!r}")
            style = RenderStyle.random(np.random.default_rng(seed))
        self.style = style
        self.seed = seed
        # Number of calls executed (validated calls that reached the world).
        self.steps = 0
        self._stopped = False

    @classmethod
    def from_scene(cls, blocks, bowls, seed: int = 0, grasp_failure: float = 0.0, **kw: Any) -> "SimRobot":
        """A robot over ``World.from_scene(blocks, bowls, seed=seed, grasp_failure=grasp_failure)``."""
        return cls(World.from_scene(blocks, bowls, seed=seed, grasp_failure=grasp_failure), seed=seed, **kw)

    # -- Robot protocol -------------------------------------------------------------------------
    @property
    def holding(self) -> str | None:
        """Name of the held block ("red block"), or None."""
        return None if self.world.held is None else f"{self.world.held} block"

    def observe(self) -> Observation:
        """Render the current scene. The pixel-noise pattern changes with each executed step."""
        frame_seed = int(np.random.SeedSequence([self.seed, self.steps]).generate_state(1)[0])
        image = render(self.world, self.camera, self.style, seed=frame_seed)
        return Observation(image=image, camera=self.camera, holding=self.holding, stamp=time.time())

    def execute(self, call: Call) -> StepResult:
        """Validate ``call`` against the registry and the gripper state, then run it on the world.

        Raises SafetyLimit after ``stop()``, and the registry's CallError subclasses for an invalid
        call (the world is untouched then). A primitive that runs but does not achieve its effect
        (a failed grasp) returns ``ok=False`` with the reason.
        """
        if self._stopped:
            raise SafetyLimit(f"robot stopped; {call.primitive} was refused. Call reset_stop() on the "
                              "SimRobot to resume execution")
        valid = self.registry.validate(call, holding=self.holding, check_state=True)
        before = self.world.held
        positions = {b.color: (b.x, b.y, b.z) for b in self.world.blocks.values()}
        self.registry.get(valid.primitive).fn(self.world, **valid.args)
        self.steps += 1
        return self._result(valid, before, positions)

    def stop(self) -> None:
        """Refuse every further call until ``reset_stop()``."""
        self._stopped = True

    def reset_stop(self) -> None:
        """Allow execution again after ``stop()``."""
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def __enter__(self) -> "SimRobot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------------------
    def _result(self, call: Call, before: str | None, positions: dict) -> StepResult:
        world, holding = self.world, self.holding
        if call.primitive == "pick":
            if holding is None:
                x, y = call.args["at"]
                return StepResult(False, f"grasp failed: nothing held after pick at ({x:.3f}, {y:.3f})", None)
            return StepResult(True, f"picked {holding}", holding)
        if before is not None and world.held is None:  # place, open_gripper: the block was released
            return StepResult(True, f"{before} block now {self._where(before)}", None)
        if call.primitive == "place":
            return StepResult(False, f"place: {before} block was not released", holding)
        moved = [f"{c} block" for c, b in world.blocks.items()
                 if c != world.held and c in positions and (b.x, b.y, b.z) != positions[c]]
        x, y, z = world.gripper
        msg = f"{call.primitive} done; gripper at ({x:.3f}, {y:.3f}, {z:.3f})"
        if moved:
            msg += "; moved " + ", ".join(moved)
        if holding is not None:
            msg += f"; holding {holding}"
        return StepResult(True, msg, holding)

    def _where(self, color: str) -> str:
        support = self.world.support(color)
        kind, _, other = support.partition(":")
        if kind == "block":
            return f"on {other} block"
        if kind == "bowl":
            return f"in {other} bowl"
        return "on the table"
