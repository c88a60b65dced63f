"""Training data: labels are the expert's plan, decodable through the camera; generation is reproducible."""

import numpy as np
import pytest

from edgeagent.errors import ConfigError
from edgeagent.models import dataset as ds
from edgeagent.models.view import View
from edgeagent.sim.expert import expert_calls
from edgeagent.sim.families import generate
from edgeagent.sim.render import default_camera
from edgeagent.sim.scenario import scenario_from_dict

FAMILIES = ["pick-place-bowl", "stack"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    ds.generate_dataset(out, families=FAMILIES, scenarios=4, seed=3, S=96, G=12, K=4, workers=1, progress=False)
    return ds.load_dataset(out)


def test_point_labels_decode_back_through_the_camera():
    rng = np.random.default_rng(0)
    for camera in (default_camera(), ds.jittered_camera(rng), default_camera(320, 240)):
        for xy in rng.uniform(-0.3, 0.3, (50, 2)):
            cell, off = ds.point_label(camera, xy, 96, 12)
            assert 0 <= cell < 144 and ((0 <= off) & (off <= 1)).all()
            assert np.abs(ds.decode_label(camera, cell, off, 96, 12) - xy).max() < 0.005


def test_labels_are_the_experts_plan_and_decode_within_5mm(data):
    prims = {p["name"]: i + 1 for i, p in enumerate(data["meta"]["primitives"])}
    items = generate(FAMILIES, 2, 3)
    items = [items[f * 2 + i] for i in range(2) for f in range(len(FAMILIES))]  # interleaved as generated
    for idx, item in enumerate(items):
        first = np.flatnonzero((data["scenario"] == idx) & (data["step"] == 0))[0]
        sc = scenario_from_dict(item)
        world = sc.build_world()
        calls = expert_calls(world, sc.bound_goal(world))
        assert data["texts"][first] == sc.instruction
        for k, call in enumerate(calls[:4]):
            assert data["prims"][first, k] == prims[call.primitive]
            np.testing.assert_allclose(data["points"][first, k, 0], call.args["at"], atol=1e-6)
        assert (data["prims"][first, len(calls):] == 0).all()  # END after the plan
    # Every label decodes (cell + offset -> S pixel -> table via the sample's camera) to its point.
    G, S = 12, 96
    valid = data["cells"] >= 0
    cells, offs = data["cells"][valid], data["offsets"][valid]
    n, k, a = np.nonzero(valid)
    u = (cells % G + offs[:, 0]) * S / G
    v = (cells // G + offs[:, 1]) * S / G
    xyw = np.einsum("nij,nj->ni", data["s_to_table"][n].astype(float), np.stack([u, v, np.ones_like(u)], 1))
    err = np.abs(xyw[:, :2] / xyw[:, 2:] - data["points"][n, k, a]).max()
    assert err < 0.005


def test_every_episode_ends_with_the_goal_held_and_an_end_label(data):
    for s in np.unique(data["scenario"]):
        rows = np.flatnonzero(data["scenario"] == s)
        last = rows[np.argmax(data["step"][rows])]
        assert data["prims"][last].tolist() == [0, 0, 0, 0]
        assert (data["cells"][last] == -1).all()
    assert data["images"].dtype == np.uint8 and data["images"].shape[1:] == (96, 96, 3)


def test_generation_is_reproducible_whatever_the_worker_count(tmp_path, data):
    ds.generate_dataset(tmp_path, families=FAMILIES, scenarios=4, seed=3, workers=2, progress=False)
    again = ds.load_dataset(tmp_path)
    for key in ("images", "prims", "cells", "offsets", "scenario"):
        np.testing.assert_array_equal(again[key], data[key])
    assert again["texts"] == data["texts"]


def test_held_out_seeds_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="reserved for held-out"):
        ds.generate_dataset(tmp_path, families=FAMILIES, scenarios=1, seed=ds.EVAL_SEED_MIN)
    with pytest.raises(ConfigError, match="no complete dataset"):
        ds.load_dataset(tmp_path)


def test_family_weights_give_a_family_more_scenarios_of_the_same_kind(tmp_path):
    meta = ds.generate_dataset(tmp_path, families=FAMILIES, scenarios=4, seed=3, workers=1, progress=False,
                               weights={"stack": 3})
    assert meta["family_scenarios"] == {"pick-place-bowl": 1, "stack": 3}
    assert "stack 3" in meta["description"] and meta["line_style"] == "canonical"
    data = ds.load_dataset(tmp_path)
    assert sorted(set(data["family"][data["scenario"] == s][0] for s in np.unique(data["scenario"]))) == FAMILIES
    # The weighted family's scenarios start with the ones an unweighted run draws.
    assert generate(["stack"], 3, 3)[:2] == generate(["stack"], 2, 3)


@pytest.mark.parametrize("option, family, said, flag", [
    ("in_bowl", "pick-place-bowl", "block starting in a bowl", "--start-in-bowl"),
    ("crowded", "offset", "crowded with more", "--crowded")])
def test_scene_options_are_recorded_and_a_bad_share_refused(tmp_path, option, family, said, flag):
    meta = ds.generate_dataset(tmp_path / "a", families=[family], scenarios=3, seed=3, workers=1,
                               progress=False, **{option: 1.0})
    assert meta[option] == 1.0 and said in meta["description"]
    with pytest.raises(ConfigError, match=flag):
        ds.generate_dataset(tmp_path / "b", families=FAMILIES, scenarios=2, progress=False, **{option: 2.0})


def test_bad_family_weights_are_refused_with_the_families(tmp_path):
    with pytest.raises(ConfigError, match="line.*families: pick-place-bowl, stack"):
        ds.generate_dataset(tmp_path, families=FAMILIES, scenarios=2, weights={"line": 2}, progress=False)
    with pytest.raises(ConfigError, match="weight <= 0"):
        ds.generate_dataset(tmp_path, families=FAMILIES, scenarios=2, weights={"stack": 0}, progress=False)



def test_line_labels_are_the_canonical_layout(tmp_path):
    ds.generate_dataset(tmp_path, families=["line"], scenarios=2, seed=8, workers=1, progress=False)
    data = ds.load_dataset(tmp_path)
    differ = 0
    for idx, item in enumerate(generate(["line"], 2, 8)):
        first = np.flatnonzero((data["scenario"] == idx) & (data["step"] == 0))[0]
        sc = scenario_from_dict(item)
        world = sc.build_world()
        calls = expert_calls(world, sc.bound_goal(world), lines="canonical")
        for k, call in enumerate(calls[:4]):
            np.testing.assert_allclose(data["points"][first, k, 0], call.args["at"], atol=1e-6)
        differ += calls != expert_calls(world, sc.bound_goal(world))
    assert differ  # these scenarios tell the two layouts apart


def test_rank_labels_order_blocks_from_each_side():
    from edgeagent.sim.world import World

    world = World.from_scene([("red", (-0.2, 0.1)), ("green", (0.0, -0.2)), ("blue", (0.15, 0.2))], [])
    camera = default_camera()
    ranks = ds.patch_ranks(world, camera, 12)
    objects = ds.patch_objects(world, camera, 96, 12)
    got = {c: ranks[objects == ds.object_class("block", c)][0].tolist() for c in ("red", "green", "blue")}
    # [from the left, right, top, bottom]
    assert got == {"red": [0, 2, 1, 1], "green": [1, 1, 2, 0], "blue": [2, 0, 0, 2]}
    assert (ranks[objects == 0] == -1).all()


def test_bowl_relation_labels_rank_blocks_by_distance_and_quadrant():
    from edgeagent.sim.world import COLORS, World

    world = World.from_scene([("red", (-0.2, 0.1)), ("green", (0.1, -0.05))], [("blue", (0.15, 0.0))])
    camera = default_camera()
    rel = ds.patch_bowl_relations(world, camera, 12)
    objects = ds.patch_objects(world, camera, 96, 12)
    blue = COLORS.index("blue")
    assert rel[objects == ds.object_class("block", "green")][0, blue].tolist() == [0, 0]  # nearest, left-below
    assert rel[objects == ds.object_class("block", "red")][0, blue].tolist() == [1, 2]   # second, left-above
    others = [j for j in range(len(COLORS)) if j != blue]
    assert (rel[:, others] == -1).all() and (rel[objects == 0] == -1).all()


def test_table_view_data_is_rectified_and_its_labels_decode_to_the_experts_points(tmp_path):
    out = tmp_path / "table"
    meta = ds.generate_dataset(out, families=["pick-place-bowl", "rank-from-side"], scenarios=4, seed=9, workers=1,
                               progress=False, view=View("table"))
    assert meta["view"]["kind"] == "table" and "table view" in meta["description"]
    data = ds.load_dataset(out)
    view, S, G = View("table"), 96, 12
    grid = view.image_camera(S)
    # Every sample decodes through the one virtual camera of the view, whatever the jittered real camera.
    assert np.allclose(data["s_to_table"], ds.s_to_table_matrix(grid, S), atol=1e-6)
    valid = data["cells"] >= 0
    n, k, a = np.nonzero(valid)
    decoded = [ds.decode_label(grid, c, o, S, G) for c, o in zip(data["cells"][valid], data["offsets"][valid])]
    assert np.abs(np.array(decoded) - data["points"][n, k, a]).max() < 0.005
    # A block's patch label sits at its table position in the image: x to the right, y upwards.
    first = np.flatnonzero(data["step"] == 0)[0]
    cells = np.flatnonzero(data["patch_objects"][first] > 0)
    assert len(cells) > 0
    cols, rows = cells % G, cells // G
    xy = grid.pixel_to_table(np.stack([(cols + 0.5) * S / G, (rows + 0.5) * S / G], 1), z=view.plane_z_m)
    assert (np.abs(xy) <= view.half_extent_m).all()


def test_data_of_another_view_is_refused_by_training(tmp_path):
    from edgeagent.models.train import train

    out = tmp_path / "cam"
    ds.generate_dataset(out, families=["pick-place-block"], scenarios=1, seed=3, S=48, G=6, K=3, workers=1,
                        progress=False)
    refused = r"made in the camera view \(.*\) but training is in the table view \(.*\); regenerate"
    with pytest.raises(ConfigError, match=refused):
        train(tmp_path / "run", data_dir=out, steps=1, view="table", S=48, G=6, K=3, T=16, width=32, layers=1,
              heads=2, workers=1)
