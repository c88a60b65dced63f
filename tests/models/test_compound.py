"""The shipped planner carries out a compound instruction part by part, closed loop in the simulator."""

from __future__ import annotations

import pytest

from edgeagent.harness import run_scenario
from edgeagent.models.runtime import ModelPlanner, default_model_dir
from edgeagent.sim.scenario import load_scenarios

SCENARIOS = """
- name: two-bowls
  instruction: put the red block in the blue bowl and the green block in the yellow bowl
  scene: {seed: 3, blocks: [red, green, cyan], bowls: [blue, yellow]}
  goal: [{in: [red block, blue bowl]}, {in: [green block, yellow bowl]}]
- name: bowl-then-stack
  instruction: Put the red block in the blue bowl. Then stack the green block on the cyan block.
  scene: {seed: 4, blocks: [red, green, cyan], bowls: [blue]}
  goal: [{in: [red block, blue bowl]}, {on: [green block, cyan block]}]
- name: two-to-one-corner
  instruction: move the red and the green blocks to the top left corner
  scene: {seed: 5, blocks: [red, green, cyan]}
  goal: [{at: [red block, top left corner]}, {at: [green block, top left corner]}]
"""


@pytest.fixture(scope="module")
def planner():
    return ModelPlanner(default_model_dir())


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    path = tmp_path_factory.mktemp("compound") / "compound.yaml"
    path.write_text(SCENARIOS)
    return load_scenarios([path])


@pytest.mark.parametrize("index", range(3))
def test_each_part_is_carried_out_in_order(planner, scenarios, index):
    scenario = scenarios[index]
    result, run = run_scenario(scenario, lambda sc, robot: planner)
    assert result.success, (scenario.name, result.unmet, [p.reason for p in run.plans])
    reasons = [p.reason for p in run.plans]
    assert reasons[0].startswith("part 1 of 2")
    # Between the parts the arm goes home, so the second part starts from a scene like every task's.
    homes = [i for i, p in enumerate(run.plans) if [c.primitive for c in p.calls] == ["home"]]
    assert len(homes) == 1 and reasons[homes[0] + 1].startswith("part 2 of 2")
    assert run.plans[-1].done and reasons[-1].startswith("all 2 parts done")


def test_a_new_task_starts_again_at_the_first_part(planner, scenarios):
    first, again = (run_scenario(scenarios[0], lambda sc, robot: planner)[1] for _ in range(2))
    assert again.plans[0].reason.startswith("part 1 of 2")
    assert [c.primitive for c in again.plans[0].calls] == [c.primitive for c in first.plans[0].calls]


@pytest.mark.parametrize("instruction", ["what is the weather like today", "hello robot", "thanks!"])
def test_an_instruction_naming_nothing_it_knows_is_refused_not_acted_on(planner, scenarios, instruction):
    from dataclasses import replace

    scenario = replace(scenarios[0], instruction=instruction)
    result, run = run_scenario(scenario, lambda sc, robot: planner)
    assert result.status == "error" and result.steps == 0
    assert "names no block, bowl, colour or place" in run.error and instruction in run.error


def test_without_an_executor_a_finished_instruction_starts_again_at_the_first_part(planner, scenarios):
    """A workstation's planner or a `plan` request is never reset: once every part is done, the same
    instruction is a new task."""
    from edgeagent.sim.robot import SimRobot

    scenario = scenarios[0]
    planner.reset()
    for _ in range(2):
        robot = SimRobot(scenario.build_world(), seed=scenario.scene.seed)
        with robot:
            reasons = []
            for _ in range(8):
                plan = planner.plan(robot.observe(), scenario.instruction)
                reasons.append(plan.reason)
                if plan.done:
                    break
                result = robot.execute(plan.calls[0])
                assert result.ok, result.message
        assert reasons[0].startswith("part 1 of 2") and reasons[-1].startswith("all 2 parts done"), reasons
