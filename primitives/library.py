"""The standard motion-primitive library, written against a small arm-driver protocol.

A backend provides an ``Arm`` (Cartesian moves in the table frame, a gripper, a guarded descent);
the primitives below turn planner-level calls into those moves. The simulator's arm and a real
robot's driver are each one implementation of ``Arm``.
"""

from __future__ import annotations

from typing import Protocol

from edgeagent.primitives.argtypes import TablePoint
from edgeagent.primitives.registry import Registry

#: Height (m) for travel moves above everything on the table.
SAFE_Z = 0.15
#: Height (m) of the gripper fingers while pushing: below a block's top (blocks are 0.04 m).
PUSH_Z = 0.02
#: Where ``home`` parks the gripper: behind the workspace's bottom edge, near the robot.
HOME = (0.0, -0.3, 0.25)


class Arm(Protocol):
    """What a backend must provide to run the standard library."""

    def move_to(self, x: float, y: float, z: float) -> None:
        """Straight-line Cartesian move of the gripper to (x, y, z), metres, table frame."""

    def descend(self) -> None:
        """Lower the gripper until it touches what lies below (guarded move)."""

    def open(self) -> None:
        """Open the gripper, releasing what it holds."""

    def close(self) -> bool:
        """Close the gripper; True when something is now held."""


standard = Registry()


@standard.primitive(requires=("empty",))
def pick(arm: Arm, at: TablePoint) -> None:
    """Pick up the topmost block at `at` (table point, metres)."""
    arm.move_to(at.x, at.y, SAFE_Z)
    arm.open()
    arm.descend()
    arm.close()
    arm.move_to(at.x, at.y, SAFE_Z)


@standard.primitive(requires=("holding",))
def place(arm: Arm, at: TablePoint) -> None:
    """Put the held block down at `at`: on a block there, into a bowl there, or on the table."""
    arm.move_to(at.x, at.y, SAFE_Z)
    arm.descend()
    arm.open()
    arm.move_to(at.x, at.y, SAFE_Z)


@standard.primitive
def move_to(arm: Arm, at: TablePoint) -> None:
    """Move the gripper above `at` at travel height, without touching anything."""
    arm.move_to(at.x, at.y, SAFE_Z)


@standard.primitive(requires=("empty",))
def push(arm: Arm, start: TablePoint, end: TablePoint) -> None:
    """Slide what stands at `start` along the table to `end` with the closed gripper."""
    arm.move_to(start.x, start.y, SAFE_Z)
    arm.close()
    arm.move_to(start.x, start.y, PUSH_Z)
    arm.move_to(end.x, end.y, PUSH_Z)
    arm.move_to(end.x, end.y, SAFE_Z)
    arm.open()


@standard.primitive
def open_gripper(arm: Arm) -> None:
    """Open the gripper where it is, releasing what it holds."""
    arm.open()


@standard.primitive
def close_gripper(arm: Arm) -> None:
    """Close the gripper where it is (grasping what is between the fingers, if anything)."""
    arm.close()


@standard.primitive
def home(arm: Arm) -> None:
    """Raise and park the gripper at the home pose near the robot."""
    arm.move_to(*HOME)
