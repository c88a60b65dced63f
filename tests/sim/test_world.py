"""The kinematic tabletop rules of DESIGN §8: stacking, bowls, picking the topmost block, pushing."""

import pytest

from edgeagent.primitives import TablePoint, registry
from edgeagent.sim.world import BLOCK_SIZE, World


def run(world, name, **args):
    registry.get(name).fn(world, **{k: TablePoint(*v) for k, v in args.items()})


def test_release_over_a_block_stacks_on_it_snapped_to_its_centre():
    w = World.from_scene([("red", (0.1, 0.1)), ("green", (-0.1, -0.1))], [])
    run(w, "pick", at=(0.1, 0.1))
    assert w.held == "red"
    run(w, "place", at=(-0.085, -0.11))  # footprints overlap: lands on top
    red = w.blocks["red"]
    assert (red.x, red.y, red.z) == (-0.1, -0.1, BLOCK_SIZE)
    assert w.support("red") == "block:green"


def test_release_inside_a_bowl_rim_lands_in_the_bowl_and_outside_on_the_table():
    w = World.from_scene([("red", (0.1, 0.1))], [("blue", (-0.15, 0.0))])
    run(w, "pick", at=(0.1, 0.1))
    run(w, "place", at=(-0.11, 0.0))  # 0.04 from the centre: inside the 0.06 rim
    assert w.support("red") == "bowl:blue"
    run(w, "pick", at=(-0.11, 0.0))
    run(w, "place", at=(-0.08, 0.0))  # 0.07 from the centre: outside
    assert w.support("red") == "table" and w.blocks["red"].z == 0.0


def test_only_the_topmost_block_is_picked_and_bowls_cannot_be():
    w = World.from_scene([("red", (0.0, 0.0)), ("green", (0.0, 0.0))], [("blue", (0.2, 0.2))])
    assert w.support("green") == "block:red"
    run(w, "pick", at=(0.0, 0.0))
    assert w.held == "green"
    run(w, "place", at=(0.1, -0.1))
    run(w, "pick", at=(0.2, 0.2))  # a bowl, no block there
    assert w.held is None


def test_blocks_listed_at_one_spot_form_a_stack_in_order():
    w = World.from_scene([("red", (0, 0)), ("green", (0, 0)), ("blue", (0.01, 0))], [])
    assert [w.support(c) for c in ("red", "green", "blue")] == ["table", "block:red", "block:green"]
    assert w.blocks_above("red") == [w.blocks["green"], w.blocks["blue"]]


def test_push_slides_the_whole_stack():
    w = World.from_scene([("red", (0.0, 0.0)), ("green", (0.0, 0.0)), ("blue", (0.2, 0.2))], [])
    run(w, "push", start=(0.0, 0.0), end=(-0.1, 0.05))
    assert (w.blocks["red"].x, w.blocks["red"].y) == pytest.approx((-0.1, 0.05))
    assert w.support("green") == "block:red"
    assert (w.blocks["blue"].x, w.blocks["blue"].y) == (0.2, 0.2)


def test_grasp_failure_leaves_the_block_in_place():
    w = World.from_scene([("red", (0.1, 0.1))], [], grasp_failure=1.0)
    run(w, "pick", at=(0.1, 0.1))
    assert w.held is None and (w.blocks["red"].x, w.blocks["red"].y) == (0.1, 0.1)


def test_random_layout_is_seeded_and_clear_of_overlaps():
    a = World.from_scene(["red", "green", "blue", "yellow"], ["blue", "red"], seed=5)
    b = World.from_scene(["red", "green", "blue", "yellow"], ["blue", "red"], seed=5)
    assert [(o.x, o.y) for o in a.objects()] == [(o.x, o.y) for o in b.objects()]
    blocks = list(a.blocks.values())
    for i, p in enumerate(blocks):
        assert a.support(p.color) == "table"
        for q in blocks[i + 1:]:
            assert max(abs(p.x - q.x), abs(p.y - q.y)) > BLOCK_SIZE


@pytest.mark.parametrize("blocks, bowls, match", [
    (["red", "red"], [], "two red blocks"),
    (["magenta"], [], "unknown colour 'magenta'"),
    ([("red", (0.5, 0.0))], [], "outside the workspace"),
    (["red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan", "brown", "gray"],
     ["red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan", "brown", "gray"], "too crowded"),
])
def test_bad_scenes_are_refused(blocks, bowls, match):
    with pytest.raises(ValueError, match=match):
        World.from_scene(blocks, bowls)
