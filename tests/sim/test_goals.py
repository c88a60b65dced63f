"""Goal predicates: parsing, binding to a scene and evaluation (DESIGN §9)."""

import pytest
import yaml

from edgeagent.errors import ScenarioError
from edgeagent.sim.goals import (ALL_BLOCKS, All, Any, Not, Pred, bind, goal_text, goal_to_yaml, holds,
                                 parse_goal, unmet)
from edgeagent.sim.world import World

WHERE = "scenarios.yaml: scenario 'red-into-blue'"


def scene(blocks=(), bowls=()):
    return World.from_scene(list(blocks), list(bowls), seed=0)


def move(world: World, color: str, x: float, y: float) -> None:
    """Carry a block with the gripper and release it over (x, y): the simulator's own physics."""
    b = world.blocks[color]
    world.move_to(b.x, b.y, 0.2)
    world.descend()
    assert world.close(), f"could not grasp the {color} block"
    world.move_to(x, y, 0.2)
    world.open()


def pick(world: World, color: str) -> None:
    b = world.blocks[color]
    world.move_to(b.x, b.y, 0.2)
    world.descend()
    assert world.close()
    world.move_to(b.x, b.y, 0.2)


def check(text: str, world: World):
    """Parse the YAML goal ``text``, bind it to ``world``."""
    return bind(parse_goal(yaml.safe_load(text), WHERE), world, WHERE)


# -- parsing ---------------------------------------------------------------------------------------

def test_yaml_forms_parse_to_the_goal_tree():
    data = yaml.safe_load("""
    - in: [Red  Block, blue bowl]
    - on: [red block, green block]
    - any:
        - at: [red block, Top Left Corner]
        - not: {stacked: all blocks}
    - all: [{unmoved: green block}]
    """)
    goal = parse_goal(data, WHERE)
    assert goal == All((
        Pred("in", ("red block", "blue bowl")),
        Pred("on", ("red block", "green block")),  # PyYAML reads a bare `on` key as True
        Any((Pred("at", ("red block", "top left corner")), Not(Pred("stacked", (ALL_BLOCKS,))))),
        All((Pred("unmoved", ("green block",)),)),
    ))


def test_single_mapping_is_one_predicate_and_goal_to_yaml_inverts_parse():
    assert parse_goal({"offset": ["red block", "blue bowl", "LEFT", "A  little"]}, WHERE) == \
        Pred("offset", ("red block", "blue bowl", "left", "a little"))
    data = [{"in": ["red block", "blue bowl"]}, {"stacked": "all blocks"},
            {"any": [{"line": ["diagonal", "all blocks", "blue bowl"]}, {"not": {"unmoved": ["red block"]}}]},
            {"all": [{"distinct": ["corners", "red block", "green block"]}]}]
    goal = parse_goal(data, WHERE)
    assert goal_to_yaml(goal) == data
    assert parse_goal(goal_to_yaml(goal), WHERE) == goal


@pytest.mark.parametrize("data, message", [
    ([{"in": ["red block", "blue bowl"]}, {"offset": ["red block", "blue bowl", "up", "a little"]}],
     "scenarios.yaml: scenario 'red-into-blue': goal[1].offset[2]: direction 'up' is not one of left, right, top, bottom"),
    ({"near": ["red block", "blue bowl"]}, "goal: unknown predicate 'near'"),
    ({"in": ["red block", "blue bowl"], "on": ["red block", "green block"]}, "goal: one predicate per entry"),
    ([], "goal: empty list of goals"),
    ("red block", "goal: expected a predicate"),
    ({"in": ["red block"]}, "goal.in: in takes 2 arguments"),
    ({"in": "red block"}, "goal.in: expected a list of arguments"),
    ({"in": ["blue bowl", "red block"]}, "goal.in[0]: 'blue bowl' must be a block"),
    ({"in": ["red block", 3]}, "goal.in[1]: expected a name, got 3"),
    ({"on": ["red block", "red block"]}, "goal.on[1]: 'red block' is named twice"),
    ({"on": ["red block", "blue bowl"]}, "goal.on[1]: 'blue bowl' must be a block"),
    ({"at": ["red block", "top corner"]}, "goal.at[1]: place 'top corner' is not one of"),
    ({"at": ["magenta block", "middle"]}, "goal.at[0]: colour 'magenta' of 'magenta block' is not in the palette"),
    ({"at": ["red cube", "middle"]}, "goal.at[0]: 'red cube' is not an object name"),
    ({"stacked": ["red block"]}, "goal.stacked: stacked needs at least 2 blocks"),
    ({"offset": ["red block", "blue bowl", "left", "a bit"]}, "goal.offset[3]: amount 'a bit' is not one of a little, a lot"),
    ({"line": ["slanted", "red block", "blue block"]}, "goal.line[0]: orientation 'slanted'"),
    ({"line": ["vertical", "red block"]}, "goal.line: line needs at least 2 objects"),
    ({"distinct": ["edges", "red block"]}, "goal.distinct[0]: zone 'edges' is not one of corners, sides"),
    ({"distinct": ["corners", "red block", "blue block", "green block", "pink block", "gray block"]},
     "goal.distinct: 5 objects cannot be at different corners"),
    ({"unmoved": []}, "goal.unmoved: unmoved needs at least 1 object"),
    ({"any": []}, "goal.any: expected a non-empty list"),
    ({"all": [{"not": {"in": ["red block"]}}]}, "goal.all[0].not.in: in takes 2 arguments"),
])
def test_parse_errors_name_the_goal_path(data, message):
    with pytest.raises(ScenarioError) as exc:
        parse_goal(data, WHERE)
    assert message in str(exc.value)
    assert str(exc.value).startswith(WHERE + ": goal")


# -- binding ---------------------------------------------------------------------------------------

def test_bind_expands_all_blocks_in_palette_order():
    w = scene([("green", (0.1, 0.1)), ("red", (-0.1, 0.1)), ("blue", (0.0, -0.1))], [("pink", (0.2, -0.2))])
    assert check("line: [horizontal, all blocks, pink bowl]", w) == \
        Pred("line", ("horizontal", "blue block", "red block", "green block", "pink bowl"))
    assert check("distinct: [corners, all blocks]", w) == \
        Pred("distinct", ("corners", "blue block", "red block", "green block"))
    # The any-order stack keeps its marker, so binding does not impose an order.
    bound = check("stacked: all blocks", w)
    assert bound == Pred("stacked", (ALL_BLOCKS, "blue block", "red block", "green block"))
    assert bind(bound, w, WHERE) == bound
    assert goal_to_yaml(bound) == {"stacked": "all blocks"}


@pytest.mark.parametrize("text, message", [
    ("[{in: [red block, green bowl]}]", "goal[0].in[1]: the scene has no 'green bowl'; it has: blue bowl, red block"),
    ("any: [{at: [yellow block, middle]}]", "goal.any[0].at[0]: the scene has no 'yellow block'"),
    ("distinct: [corners, all blocks, blue bowl, red block]", "'red block' is named twice (once through 'all blocks')"),
    ("line: [vertical, all blocks]", "goal.line: line needs at least 2 objects, got 1"),
])
def test_bind_errors_name_the_missing_object(text, message):
    w = scene([("red", (0.0, 0.0))], [("blue", (0.2, 0.2))])
    with pytest.raises(ScenarioError) as exc:
        check(text, w)
    assert message in str(exc.value)
    assert str(exc.value).startswith(WHERE)


def test_bind_checks_goals_built_in_code():
    w = scene([("red", (0.0, 0.0))], [("blue", (0.2, 0.2))])
    with pytest.raises(ScenarioError, match="'blue bowl' must be a block"):
        bind(Pred("on", ("red block", "blue bowl")), w, WHERE)
    with pytest.raises(ScenarioError, match="unknown predicate 'near'"):
        bind(Not(Pred("near", ("red block", "blue bowl"))), w, WHERE)
    with pytest.raises(ScenarioError, match="'all blocks' names nothing"):
        bind(Pred("stacked", (ALL_BLOCKS,)), scene([], [("blue", (0.2, 0.2))]), WHERE)


# -- evaluation ------------------------------------------------------------------------------------

def test_in_uses_the_bowl_rim_and_fails_while_held():
    w = scene([("red", (0.15, 0.1))], [("blue", (0.1, 0.1))])
    goal = check("in: [red block, blue bowl]", w)
    assert holds(goal, w)  # 0.05 m from the centre, inside the 0.06 m rim
    w.blocks["red"].x = 0.165
    assert not holds(goal, w)
    assert "red block is 0.065 m from the centre of blue bowl" in unmet(goal, w)[0]
    w.blocks["red"].x = 0.1
    pick(w, "red")
    assert w.held == "red" and not holds(goal, w)
    assert unmet(goal, w) == ["in: [red block, blue bowl]: red block is held by the gripper"]


def test_in_holds_at_any_height():
    w = scene([("red", (0.1, 0.1)), ("green", (-0.1, -0.1))], [("blue", (0.1, 0.1))])
    move(w, "green", 0.1, 0.1)
    assert w.blocks["green"].z == pytest.approx(0.04)
    assert holds(check("in: [green block, blue bowl]", w), w)


def test_on_and_stacked_in_order():
    w = scene([("red", (0.0, 0.0)), ("green", (0.15, 0.0)), ("blue", (-0.15, 0.0))])
    on = check("on: [green block, red block]", w)
    stacked = check("stacked: [red block, green block, blue block]", w)
    assert not holds(on, w) and not holds(stacked, w)
    move(w, "green", 0.0, 0.0)
    assert holds(on, w) and not holds(stacked, w)
    assert unmet(stacked, w) == ["stacked: [red block, green block, blue block]: "
                                 "blue block rests on the table, not on green block"]
    move(w, "blue", 0.01, 0.0)
    assert holds(stacked, w)
    assert not holds(check("stacked: [green block, red block, blue block]", w), w)
    assert not holds(check("on: [blue block, red block]", w), w)  # on the green one, not directly on red


def test_stacked_base_may_rest_in_a_bowl():
    w = scene([("red", (0.1, 0.1)), ("green", (-0.1, -0.1))], [("blue", (0.1, 0.1))])
    move(w, "green", 0.1, 0.1)
    assert holds(check("stacked: [red block, green block]", w), w)


def test_stacked_all_blocks_is_one_stack_in_any_order():
    w = scene([("red", (0.0, 0.0)), ("green", (0.15, 0.0)), ("blue", (-0.15, 0.0))])
    goal = check("stacked: all blocks", w)
    assert not holds(goal, w)
    assert "the blocks form 3 stacks" in unmet(goal, w)[0]
    move(w, "blue", 0.15, 0.0)  # green, blue
    assert not holds(goal, w)
    move(w, "red", 0.15, 0.0)  # green, blue, red: not the palette order, still one stack
    assert holds(goal, w)
    pick(w, "red")
    assert not holds(goal, w)


def test_at_uses_the_place_tolerance_on_both_axes():
    w = scene([("red", (-0.24 + 0.09, 0.24 - 0.09))])
    goal = check("at: [red block, top left corner]", w)
    assert holds(goal, w)
    w.blocks["red"].y = 0.24 - 0.095
    assert not holds(goal, w)
    assert "outside the top left corner zone" in unmet(goal, w)[0]
    w2 = scene([("red", (0.0, 0.0))], [("blue", (0.2, -0.25))])
    assert holds(check("at: [blue bowl, bottom right corner]", w2), w2)
    assert not holds(check("at: [blue bowl, bottom side]", w2), w2)
    pick(w2, "red")
    assert not holds(check("at: [red block, middle]", w2), w2)


@pytest.mark.parametrize("a, amount, expected", [
    ((0.0, 0.1), "a little", True),           # 0.10 left
    ((0.02, 0.1), "a little", True),          # exactly 0.08 left
    ((0.03, 0.1), "a little", False),         # 0.07: too close
    ((-0.06, 0.1), "a little", False),        # 0.16: between a little and a lot
    ((-0.06, 0.1), "a lot", False),
    ((-0.1, 0.1), "a lot", True),             # 0.20 left
    ((0.0, 0.15), "a little", True),          # 0.05 sideways
    ((0.0, 0.16), "a little", False),         # 0.06 sideways
    ((0.2, 0.1), "a little", False),          # on the wrong side
])
def test_offset_left(a, amount, expected):
    w = scene([("red", a)], [("blue", (0.1, 0.1))])
    assert holds(check(f"offset: [red block, blue bowl, left, {amount}]", w), w) is expected


def test_offset_directions_follow_the_table_frame():
    w = scene([("red", (0.0, 0.0)), ("green", (0.1, 0.0)), ("blue", (0.0, 0.1))])
    assert holds(check("offset: [green block, red block, right, a little]", w), w)
    assert holds(check("offset: [blue block, red block, top, a little]", w), w)
    assert holds(check("offset: [red block, blue block, bottom, a little]", w), w)
    assert not holds(check("offset: [blue block, red block, bottom, a little]", w), w)
    unmet_text = unmet(check("offset: [blue block, red block, right, a little]", w), w)[0]
    assert "blue block is 0.000 m right of red block and 0.100 m sideways" in unmet_text
    pick(w, "green")
    assert not holds(check("offset: [green block, red block, right, a little]", w), w)


def test_line_horizontal_vertical_diagonal():
    w = scene([("red", (-0.2, 0.1)), ("green", (0.0, 0.12)), ("blue", (0.2, 0.09))])
    assert holds(check("line: [horizontal, all blocks]", w), w)
    assert not holds(check("line: [vertical, all blocks]", w), w)
    w.blocks["green"].y = 0.15  # 0.0367 m off the mean
    assert not holds(check("line: [horizontal, all blocks]", w), w)
    v = scene([("red", (0.1, -0.2)), ("green", (0.12, 0.0))], [("blue", (0.09, 0.2))])
    assert holds(check("line: [vertical, red block, green block, blue bowl]", v), v)
    d1 = scene([("red", (-0.1, -0.1)), ("green", (0.0, 0.01)), ("blue", (0.1, 0.1))])
    assert holds(check("line: [diagonal, all blocks]", d1), d1)
    d2 = scene([("red", (-0.1, 0.1)), ("green", (0.0, 0.0)), ("blue", (0.1, -0.1))])
    assert holds(check("line: [diagonal, all blocks]", d2), d2)
    assert not holds(check("line: [horizontal, all blocks]", d2), d2)
    d2.blocks["green"].x = 0.08  # 0.038 m off the anti-diagonal line through the mean
    assert not holds(check("line: [diagonal, all blocks]", d2), d2)


def test_line_fails_when_stacked_held_or_on_one_spot():
    w = scene([("red", (-0.2, 0.0)), ("green", (0.0, 0.0)), ("blue", (0.2, 0.0)), ("pink", (0.0, -0.2))])
    goal = check("line: [horizontal, red block, green block, blue block]", w)
    assert holds(goal, w)
    move(w, "pink", 0.0, 0.0)  # pink on green
    assert unmet(goal, w) == ["line: [horizontal, red block, green block, blue block]: green block has pink block on it"]
    top = check("line: [horizontal, red block, pink block, blue block]", w)
    assert unmet(top, w)[0].endswith("pink block is stacked on the green block")
    move(w, "pink", 0.0, -0.2)
    assert holds(goal, w)
    pick(w, "blue")
    assert not holds(goal, w)
    close = scene([("red", (0.0, 0.0)), ("green", (0.1, 0.0))], [("blue", (0.2, 0.0))])
    close.blocks["green"].x = 0.03  # side by side, touching: one spot, not a line
    assert "less than 0.04 m apart" in unmet(check("line: [horizontal, all blocks]", close), close)[0]


def test_distinct_corners_and_sides():
    w = scene([("red", (-0.24, 0.24)), ("green", (0.22, -0.25))], [("blue", (0.24, 0.24))])
    assert holds(check("distinct: [corners, all blocks, blue bowl]", w), w)
    assert not holds(check("distinct: [sides, all blocks]", w), w)
    move(w, "green", 0.18, 0.2)  # into the blue bowl's corner
    assert unmet(check("distinct: [corners, all blocks, blue bowl]", w), w)[0].endswith(
        "green block and blue bowl are both at the top right corner")
    move(w, "green", 0.0, 0.0)
    assert "green block is not at any of the corners" in unmet(check("distinct: [corners, all blocks]", w), w)[0]
    s = scene([("red", (0.0, 0.24)), ("green", (-0.24, 0.0)), ("blue", (0.24, 0.02)), ("pink", (0.0, -0.2))])
    assert holds(check("distinct: [sides, all blocks]", s), s)
    pick(s, "pink")
    assert not holds(check("distinct: [sides, all blocks]", s), s)


def test_unmoved_uses_the_start_position():
    w = scene([("red", (0.0, 0.0)), ("green", (0.15, 0.0))], [("blue", (-0.2, -0.2))])
    goal = check("unmoved: [red block, blue bowl]", w)
    assert holds(goal, w)
    w.blocks["red"].x += 0.009
    assert holds(goal, w)
    move(w, "red", 0.15, 0.0)  # now on the green block: moved in x and z
    assert "red block moved 0." in unmet(goal, w)[0]
    assert not holds(goal, w)
    assert holds(check("unmoved: green block", w), w)


def test_composition_and_unmet_descriptions():
    w = scene([("red", (0.1, 0.1))], [("blue", (0.1, 0.1)), ("green", (-0.2, -0.2))])
    in_blue = "{in: [red block, blue bowl]}"
    in_green = "{in: [red block, green bowl]}"
    assert holds(check(f"[{in_blue}, {{not: {in_green}}}]", w), w)
    assert holds(check(f"any: [{in_green}, {in_blue}]", w), w)
    assert not holds(check(f"all: [{in_green}, {in_blue}]", w), w)
    assert not holds(check(f"not: {in_blue}", w), w)
    assert unmet(check(f"not: {in_blue}", w), w) == ["not: in: [red block, blue bowl]: but it holds"]
    both_fail = check(f"any: [{in_green}, {{at: [red block, bottom left corner]}}]", w)
    assert not holds(both_fail, w)
    (text,) = unmet(both_fail, w)
    assert text.startswith("none of these holds: in: [red block, green bowl]: ") and "bottom left corner zone" in text
    goal = check(f"[{in_green}, {in_blue}, {{unmoved: [red block]}}]", w)
    assert [t.split(":")[0] for t in unmet(goal, w)] == ["in"]
    assert goal_text(goal) == ("all: [in: [red block, green bowl]; in: [red block, blue bowl]; "
                               "unmoved: [red block]]")
    assert unmet(check(in_blue, w), w) == []
