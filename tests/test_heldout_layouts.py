"""The held-out layout sets (benchmarks/make_heldout_layouts.py): the held-out tasks with their objects
re-laid clustered or along the edges. What they measure is only right if every re-laid scene is a
valid scene of that layout, the goal still names the same objects and does not already hold, and the
task stays solvable."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_heldout_layouts import CLUSTER_SIDE, EDGE_BAND, FAMILIES, LIMIT, RADIUS, SOURCE, relay  # noqa: E402

from edgeagent.harness import PlannerContext, make_planner, run_scenario  # noqa: E402
from edgeagent.sim.goals import holds  # noqa: E402
from edgeagent.sim.scenario import scenario_from_dict  # noqa: E402


@pytest.fixture(scope="module")
def one_per_family():
    seen, out = set(), []
    for d in yaml.safe_load((ROOT / SOURCE).read_text()):
        if d.get("family") in FAMILIES and d["family"] not in seen:
            seen.add(d["family"])
            out.append(d)
    assert len(out) == len(FAMILIES)
    return out


@pytest.mark.parametrize("layout", ["cluster", "edge"])
def test_relaid_scenes_are_valid_scenes_of_their_layout_with_the_same_task(one_per_family, layout):
    rng = np.random.default_rng(0)
    expert = make_planner("expert", PlannerContext())
    for src in one_per_family:
        d = relay(src, layout, rng)
        assert d["instruction"] == src["instruction"] and d["goal"] == src["goal"]
        objs = [(kind[:-1], o["color"], np.array(o["at"])) for kind in ("blocks", "bowls") for o in d["scene"][kind]]
        colours = {k: sorted(o if isinstance(o, str) else o["color"] for o in src["scene"].get(k + "s", []))
                   for k in ("block", "bowl")}
        assert {k: sorted(c for kk, c, _ in objs if kk == k) for k in ("block", "bowl")} == colours
        for i, (k, c, p) in enumerate(objs):
            assert np.abs(p).max() <= LIMIT[k] + 1e-9, (c, p)
            if layout == "edge":
                assert np.abs(p).max() >= LIMIT[k] - EDGE_BAND - 1e-9, (c, p)
            for k2, c2, q in objs[i + 1:]:
                assert np.hypot(*(p - q)) >= RADIUS[k] + RADIUS[k2], (c, c2)
        if layout == "cluster":
            pts = np.array([p for _, _, p in objs])
            assert (pts.max(0) - pts.min(0)).max() <= CLUSTER_SIDE + 1e-9
        sc = scenario_from_dict(d, source="<test>", index=0)
        world = sc.build_world()
        assert not holds(sc.bound_goal(world), world)
        assert run_scenario(sc, expert)[0].success, d["name"]


def test_the_in_bowl_set_is_what_the_script_writes_and_no_goal_holds_at_the_start(tmp_path):
    from make_heldout_layouts import main

    out = tmp_path / "in-bowl.yaml"
    assert main(["--layout", "in-bowl", "-o", str(out)]) == 0
    assert out.read_text() == (ROOT / "sim" / "scenarios" / "heldout-inbowl.yaml").read_text()
    for d in yaml.safe_load(out.read_text()):
        (_, (mover, _)), = d["goal"][0].items()
        at = next(b["at"] for b in d["scene"]["blocks"] if f"{b['color']} block" == mover)
        assert any(b["at"] == at for b in d["scene"]["bowls"]), d["name"]
        sc = scenario_from_dict(d, source="<test>", index=0)
        world = sc.build_world()
        assert not holds(sc.bound_goal(world), world), d["name"]


def test_the_crowded_set_is_what_the_script_writes_with_seven_blocks_and_the_same_tasks(tmp_path):
    from make_heldout_layouts import main

    expert = make_planner("expert", PlannerContext())

    out = tmp_path / "crowded.yaml"
    assert main(["--layout", "crowded", "-o", str(out)]) == 0
    assert out.read_text() == (ROOT / "sim" / "scenarios" / "heldout-crowded.yaml").read_text()
    source = {d["name"]: d for d in yaml.safe_load((ROOT / SOURCE).read_text())}
    for d in yaml.safe_load(out.read_text()):
        src = source[d["name"].removesuffix("-crowded")]
        assert (d["instruction"], d["goal"]) == (src["instruction"], src["goal"])
        assert len(d["scene"]["blocks"]) == 7
        assert all(o in d["scene"][k] for k in ("blocks", "bowls") for o in src["scene"].get(k, []))
        sc = scenario_from_dict(d, source="<test>", index=0)
        world = sc.build_world()
        assert not holds(sc.bound_goal(world), world), d["name"]
        assert run_scenario(sc, expert)[0].success, d["name"]
