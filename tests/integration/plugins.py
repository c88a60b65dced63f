"""User plug-ins for tests, loaded by import path ("plugins:Slow") from configs, as a user's would be.

Workstation planners are real Planner implementations with deliberate behaviour: a fixed valid plan,
one that takes longer than any deadline, one whose plan the robot must refuse. ``TableRobot`` is a
user's own Robot class (here: the simulator, built from plain options).
"""

from __future__ import annotations

import time

from edgeagent.sim.robot import SimRobot
from edgeagent.types import Call, Plan


class Fixed:
    """Always the same valid plan: pick at ``at``; confidence ``confidence``."""

    def __init__(self, at=(0.1, 0.05), confidence: float = 0.95, name: str = "workstation-fixed"):
        self.at = tuple(at)
        self.confidence = confidence
        self.model_id = name

    def plan(self, obs, instruction, *, deadline_ms=None):
        return Plan((Call("pick", {"at": self.at}),), False, self.confidence, "local", self.model_id, 0.1)


class Slow(Fixed):
    """The fixed plan after ``delay_s`` seconds (longer than the robot's deadline)."""

    def __init__(self, delay_s: float = 3.0, **kw):
        super().__init__(name="workstation-slow", **kw)
        self.delay_s = delay_s

    def plan(self, obs, instruction, *, deadline_ms=None):
        time.sleep(self.delay_s)
        return super().plan(obs, instruction, deadline_ms=deadline_ms)


class Invalid(Fixed):
    """A well-formed plan the robot must refuse: a point far outside the workspace."""

    def __init__(self, **kw):
        super().__init__(at=(2.5, -4.0), name="workstation-invalid", **kw)


class Shuttle(Fixed):
    """Pick at ``at`` when the gripper is empty, place at ``to`` when it holds something."""

    def __init__(self, at=(0.1, 0.05), to=(0.0, 0.2), **kw):
        super().__init__(at=at, name="shuttle", **kw)
        self.to = tuple(to)

    def plan(self, obs, instruction, *, deadline_ms=None):
        if obs.holding:
            return Plan((Call("place", {"at": self.to}),), False, self.confidence, "local", self.model_id, 0.1)
        return super().plan(obs, instruction, deadline_ms=deadline_ms)


class TableRobot(SimRobot):
    """A user's robot class, constructed from config options."""

    def __init__(self, blocks=("red",), bowls=("blue",), seed: int = 0):
        from edgeagent.sim.world import World

        super().__init__(World.from_scene(list(blocks), list(bowls), seed=seed), seed=seed)
