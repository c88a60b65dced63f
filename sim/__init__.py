"""The simulated tabletop: world, renderer, goals, scenarios, task families, expert, SimRobot."""

from edgeagent.sim.robot import SimRobot
from edgeagent.sim.world import World

__all__ = ["SimRobot", "World"]
