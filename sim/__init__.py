"""The simulated tabletop: world, renderer, goals, scenarios, task families, expert, SimRobot."""
