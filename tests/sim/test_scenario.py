"""Scenario files: loading with validation, building worlds, atomic writing (DESIGN §9)."""

import os
from pathlib import Path

import pytest
import yaml

import edgeagent.sim
from edgeagent.errors import ScenarioError
from edgeagent.sim import scenario as scenario_module
from edgeagent.sim.goals import ALL_BLOCKS, All, Not, Pred, holds
from edgeagent.sim.scenario import (Scenario, Scene, default_max_steps, dump_scenarios, load_scenarios,
                                    scenario_from_dict, scenario_to_dict)
from edgeagent.sim.world import COLORS

DEMO = Path(edgeagent.sim.__file__).parent / "scenarios" / "demo.yaml"

EXAMPLE = """\
- name: red-into-blue            # unique in the file
  family: pick-place
  instruction: Put the red block in the blue bowl
  scene:
    seed: 7
    blocks: [red, {color: green, at: [0.10, -0.05]}]
    bowls: [blue]
  goal:
    - in: [red block, blue bowl]
  max_steps: 8
"""


def write(tmp_path: Path, text: str, name: str = "scenarios.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one(**over) -> dict:
    """A valid scenario mapping with some fields replaced (None removes a field)."""
    d = {"name": "s1", "instruction": "Put the red block in the blue bowl",
         "scene": {"seed": 1, "blocks": ["red"], "bowls": ["blue"]},
         "goal": [{"in": ["red block", "blue bowl"]}]}
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


def test_design_example_loads(tmp_path):
    (sc,) = load_scenarios([write(tmp_path, EXAMPLE)])
    assert sc.name == "red-into-blue" and sc.family == "pick-place" and sc.max_steps == 8
    assert sc.scene == Scene(7, (("red", None), ("green", (0.10, -0.05))), (("blue", None),))
    assert sc.goal == All((Pred("in", ("red block", "blue bowl")),))
    world = sc.build_world()
    assert (world.blocks["green"].x, world.blocks["green"].y) == (0.10, -0.05)
    assert sc.scene.seed == world.seed
    assert not holds(sc.bound_goal(world), world)


def test_build_world_is_deterministic_per_seed_and_passes_grasp_failure(tmp_path):
    (sc,) = load_scenarios([write(tmp_path, EXAMPLE)])
    a, b = sc.build_world(), sc.build_world(grasp_failure=0.5)
    assert (a.blocks["red"].x, a.blocks["red"].y) == (b.blocks["red"].x, b.blocks["red"].y)
    assert (a.bowls["blue"].x, a.bowls["blue"].y) == (b.bowls["blue"].x, b.bowls["blue"].y)
    assert b.grasp_failure == 0.5 and a.grasp_failure == 0.0


def test_default_max_steps_is_four_per_block_plus_four(tmp_path):
    text = EXAMPLE.replace("  max_steps: 8\n", "")
    (sc,) = load_scenarios(write(tmp_path, text))
    assert sc.max_steps == default_max_steps(2) == 12
    assert Scenario("x", "y", Scene(0, ["red", "green", "blue"]), Pred("unmoved", ("red block",))).max_steps == 16


def test_demo_file_is_valid_and_has_the_demo_scenario():
    scenarios = load_scenarios([DEMO])
    names = [s.name for s in scenarios]
    assert "matching-bowls" in names and len(names) == len(set(names)) >= 5
    for sc in scenarios:
        world = sc.build_world()
        goal = sc.bound_goal(world)
        assert not holds(goal, world), f"{sc.name} is already solved at the start"
        assert sc.source == str(DEMO)


def test_bare_on_key_is_the_on_predicate(tmp_path):
    text = EXAMPLE.replace("    - in: [red block, blue bowl]", "    - on: [green block, red block]")
    (sc,) = load_scenarios(write(tmp_path, text))
    assert sc.goal == All((Pred("on", ("green block", "red block")),))


def test_several_files_load_in_order(tmp_path):
    a = write(tmp_path, EXAMPLE, "a.yaml")
    b = write(tmp_path, EXAMPLE.replace("red-into-blue", "second"), "b.yaml")
    assert [s.name for s in load_scenarios([b, a])] == ["second", "red-into-blue"]
    assert [s.source for s in load_scenarios([a, str(a)])] == [str(a), str(a)]  # names unique per file


@pytest.mark.parametrize("text, message", [
    ("- name: [unclosed\n", "not valid YAML"),
    ("", "expected a list of scenarios (DESIGN §9), got an empty file"),
    ("name: x\n", "expected a list of scenarios (DESIGN §9), got a dict"),
    ("- just a string\n", "scenario at index 0: expected a mapping"),
])
def test_file_level_errors_name_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as exc:
        load_scenarios([path])
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenarios([tmp_path / "nope.yaml"])


@pytest.mark.parametrize("over, message", [
    ({"instruction": None}, "scenario 's1': instruction: missing"),
    ({"name": None}, "scenario at index 0: name: missing"),
    ({"goals": []}, "scenario 's1': goals: unknown key"),
    ({"name": 7}, "scenario at index 0: name: expected non-empty text, got 7"),
    ({"instruction": "  "}, "scenario 's1': instruction: expected non-empty text"),
    ({"family": ["a"]}, "scenario 's1': family: expected non-empty text"),
    ({"max_steps": 0}, "scenario 's1': max_steps: expected a whole number of steps >= 1, got 0"),
    ({"max_steps": "ten"}, "max_steps: expected a whole number"),
    ({"max_steps": True}, "max_steps: expected a whole number"),
    ({"scene": ["red"]}, "scenario 's1': scene: expected a mapping"),
    ({"scene": {"seed": 1, "blocks": ["red"], "table": 1}}, "scenario 's1': scene.table: unknown key"),
    ({"scene": {"seed": -1, "blocks": ["red"]}}, "scene.seed: expected a whole number >= 0"),
    ({"scene": {"seed": 1.5, "blocks": ["red"]}}, "scene.seed: expected a whole number >= 0"),
    ({"scene": {"bowls": ["blue"]}}, "scene.blocks: missing"),
    ({"scene": {"blocks": []}}, "scene.blocks: empty"),
    ({"scene": {"blocks": "red"}}, "scene.blocks: expected a list"),
    ({"scene": {"blocks": ["magenta"]}}, "scene.blocks[0]: colour 'magenta' is not in the palette: blue, red"),
    ({"scene": {"blocks": ["red"], "bowls": ["blue", "teal"]}}, "scene.bowls[1]: colour 'teal' is not in the palette"),
    ({"scene": {"blocks": ["red", "Red"]}}, "scene.blocks[1]: a second red block"),
    ({"scene": {"blocks": [{"at": [0, 0]}]}}, "scene.blocks[0].color: missing"),
    ({"scene": {"blocks": [{"color": "red", "pos": [0, 0]}]}}, "scene.blocks[0].pos: unknown key"),
    ({"scene": {"blocks": [{"color": "red", "at": [0.1, 0.31]}]}}, "scene.blocks[0].at: (0.1, 0.31) is outside the workspace"),
    ({"scene": {"blocks": [{"color": "red", "at": [0.1]}]}}, "scene.blocks[0].at: expected two numbers [x, y]"),
    ({"scene": {"blocks": [{"color": "red", "at": ["0.1", 0]}]}}, "scene.blocks[0].at: expected two numbers"),
    ({"scene": {"blocks": [{"color": "red", "at": [True, 0]}]}}, "scene.blocks[0].at: expected two numbers"),
    ({"scene": {"blocks": [{"color": "red", "at": [float("nan"), 0]}]}}, "outside the workspace"),
    ({"scene": {"blocks": [3]}}, "scene.blocks[0]: expected a colour name, got 3"),
    ({"scene": {"blocks": list(COLORS), "bowls": list(COLORS)},
      "goal": [{"unmoved": ["red block"]}]}, "scenario 's1': scene: scene too crowded"),
    ({"goal": [{"near": ["red block", "blue bowl"]}]}, "scenario 's1': goal[0]: unknown predicate 'near'"),
    ({"goal": [{"in": ["red block", "green bowl"]}]}, "scenario 's1': goal[0].in[1]: the scene has no 'green bowl'"),
    ({"goal": None}, "scenario 's1': goal: missing"),
])
def test_scenario_errors_name_file_scenario_and_field(tmp_path, over, message):
    path = write(tmp_path, yaml.safe_dump([one(**over), one(name="s2")]))
    with pytest.raises(ScenarioError) as exc:
        load_scenarios([path])
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)


def test_duplicate_names_in_a_file(tmp_path):
    path = write(tmp_path, EXAMPLE + EXAMPLE)
    with pytest.raises(ScenarioError, match=r"scenario 'red-into-blue': name: duplicate; the scenario at index 0"):
        load_scenarios([path])


def test_a_later_bad_scenario_fails_the_whole_load(tmp_path):
    # Validation is up front: the harness never gets a list that fails half-way.
    bad = EXAMPLE.replace("red-into-blue", "second").replace("[red block, blue bowl]", "[red block, gray bowl]")
    with pytest.raises(ScenarioError, match="scenario 'second': goal\\[0\\].in\\[1\\]"):
        load_scenarios([write(tmp_path, EXAMPLE + bad)])


# -- writing ---------------------------------------------------------------------------------------

def test_dump_round_trips_the_demo_file(tmp_path):
    original = load_scenarios([DEMO])
    out = tmp_path / "sub" / "copy.yaml"
    dump_scenarios(original, out)
    again = load_scenarios([out])
    assert [scenario_to_dict(s) for s in again] == [scenario_to_dict(s) for s in original]
    for a, b in zip(original, again):
        assert (a.name, a.family, a.instruction, a.scene, a.goal, a.max_steps) == \
            (b.name, b.family, b.instruction, b.scene, b.goal, b.max_steps)


def test_dump_writes_the_design_format(tmp_path):
    (sc,) = load_scenarios([write(tmp_path, EXAMPLE)])
    out = tmp_path / "out.yaml"
    dump_scenarios([sc], out)
    text = out.read_text()
    assert "    blocks: [red, {color: green, at: [0.1, -0.05]}]\n" in text
    assert "  goal:\n    - in: [red block, blue bowl]\n" in text
    assert "  max_steps: 8\n" in text


def test_dump_accepts_dicts_and_normalises_them(tmp_path):
    out = tmp_path / "gen.yaml"
    dump_scenarios([one(goal=[{"on": ["Red Block", "green block"]}, {"stacked": ALL_BLOCKS},
                              {"not": {"unmoved": "red block"}}],
                        scene={"seed": 3, "blocks": ["red", "green"]}),
                    one(name="s2")], out)
    first, second = load_scenarios([out])
    assert first.goal == All((Pred("on", ("red block", "green block")), Pred("stacked", (ALL_BLOCKS,)),
                              Not(Pred("unmoved", ("red block",)))))
    assert "    - on: [red block, green block]\n" in out.read_text()  # not quoted, not `true`
    assert first.max_steps == 12 and "max_steps" not in out.read_text()
    assert second.name == "s2"


def test_dump_refuses_invalid_scenarios_and_keeps_the_old_file(tmp_path):
    out = write(tmp_path, EXAMPLE, "keep.yaml")
    with pytest.raises(ScenarioError, match="scenario 's1': scene.blocks\\[0\\]: colour 'magenta'"):
        dump_scenarios([one(scene={"blocks": ["magenta"]})], out)
    with pytest.raises(ScenarioError, match="scenario 's1': name: duplicate"):
        dump_scenarios([one(), one()], out)
    assert out.read_text() == EXAMPLE
    assert os.listdir(tmp_path) == ["keep.yaml"]


def test_a_failure_while_replacing_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    out = write(tmp_path, EXAMPLE, "keep.yaml")
    os.chmod(out, 0o640)
    (sc,) = load_scenarios([out])

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scenario_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        dump_scenarios([sc, scenario_from_dict(one(name="other"))], out)
    assert out.read_text() == EXAMPLE
    assert os.listdir(tmp_path) == ["keep.yaml"]
    monkeypatch.undo()
    dump_scenarios([sc], out)
    assert [s.name for s in load_scenarios([out])] == ["red-into-blue"]
    assert os.stat(out).st_mode & 0o777 == 0o640  # the replacement keeps the file's mode
