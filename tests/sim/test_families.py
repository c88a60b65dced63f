"""Task families: valid, solvable, deterministic scenarios with varied, unambiguous phrasing."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from edgeagent.cli import main
from edgeagent.errors import ScenarioError
from edgeagent.sim.expert import expert_calls
from edgeagent.sim.families import CROWD_BLOCKS, CROWD_BOWLS, CROWD_FAMILIES, FAMILIES, crowd, generate, start_in_bowl
from edgeagent.sim.goals import holds, unmet
from edgeagent.sim.phrasing import PHRASED_FAMILIES, phrase
from edgeagent.sim.robot import SimRobot
from edgeagent.sim.scenario import dump_scenarios, load_scenarios, scenario_from_dict
from edgeagent.sim.world import CORNERS, PLACES, WORKSPACE

# The brief's unambiguity margins (m): a referent beats the runner-up by this much.
MARGIN = 0.06
RANK_GAP = 0.05
DIRS = {"left": (-1, 0), "right": (1, 0), "top": (0, 1), "bottom": (0, -1)}


def _draws(family: str, n: int, seed: int = 0):
    """(scenario, slots) pairs drawn the way ``generate`` draws them."""
    return [FAMILIES[family].draw(np.random.default_rng([seed, i])) for i in range(n)]


def _positions(scenario: dict, kind: str) -> dict[str, tuple[float, float]]:
    return {o["color"]: tuple(o["at"]) for o in scenario["scene"][kind]}


def _target_block(scenario: dict) -> str:
    """Colour of the block the single-predicate goal moves."""
    (pred,) = scenario["goal"]
    (args,) = pred.values()
    return args[0].split()[0]


def test_every_family_writes_loadable_scenarios_whose_goal_is_not_yet_met(tmp_path):
    items = generate(None, 6, seed=3)
    assert len(items) == 6 * len(FAMILIES)
    path = tmp_path / "gen.yaml"
    dump_scenarios(items, path)
    loaded = load_scenarios(path)
    assert [s.name for s in loaded] == [d["name"] for d in items]
    for sc, d in zip(loaded, items):
        assert sc.family == d["family"] and sc.instruction == d["instruction"]
        assert sc.name == f"{d['family']}-3-{sc.name.rsplit('-', 1)[1]}"
        assert 2 <= len(sc.scene.blocks) <= 5 and len(sc.scene.bowls) <= 4
        assert all(at is not None for _, at in (*sc.scene.blocks, *sc.scene.bowls))
        world = sc.build_world()
        # Laid out as given: nothing stacked or dropped into a bowl by the scene builder.
        assert all(b.z == 0 and world.support(b.color) == "table" for b in world.blocks.values())
        assert not holds(sc.bound_goal(world), world), sc.name


@pytest.mark.parametrize("grasp_failure", [0.0, 0.2])
def test_expert_solves_generated_scenarios_closed_loop(grasp_failure):
    """Satisfiable within max_steps: execute the expert's first call, look again, re-plan."""
    for i, d in enumerate(generate(None, 3, seed=21)):
        sc = scenario_from_dict(d, "generated", i)
        world = sc.build_world(grasp_failure)
        goal = sc.bound_goal(world)
        robot = SimRobot(world)
        for _ in range(sc.max_steps):
            calls = expert_calls(world, goal)
            if not calls:
                break
            robot.execute(calls[0])
        assert holds(goal, world), f"{sc.name} ({sc.instruction}): {unmet(goal, world)}"


def test_generation_is_deterministic_and_families_are_independent():
    a = generate(["stack", "offset"], 5, seed=11)
    assert a == generate(["stack", "offset"], 5, seed=11)
    assert a != generate(["stack", "offset"], 5, seed=12)
    # A family's scenarios do not depend on which other families were asked for.
    assert [d for d in generate(None, 5, seed=11) if d["family"] == "offset"] == a[5:]
    assert len({d["scene"]["seed"] for d in a}) == len(a)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="unknown task family 'stak'.*pick-place-block.*line"):
        generate(["stack", "stak"], 1, seed=0)
    with pytest.raises(ScenarioError, match="seed must be >= 0"):
        generate(None, 1, seed=-1)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_phrasing_is_varied_and_deterministic(family):
    draws = _draws(family, 200, seed=5)
    texts = [d["instruction"] for d, _ in draws]
    normalised = {re.sub(r"[.!?]+$", "", t.lower()) for t in texts}
    assert len(normalised) >= 150, f"{family}: only {len(normalised)} distinct instructions in 200"
    # The same generator state says the same thing.
    slots = draws[0][1]
    assert phrase(family, slots, np.random.default_rng(9)) == phrase(family, slots, np.random.default_rng(9))
    assert family in PHRASED_FAMILIES


def test_phrasing_mixes_casing_politeness_word_order_and_synonyms():
    texts = [d["instruction"] for f in ("pick-place-bowl", "pick-place-block") for d, _ in _draws(f, 300)]
    lower = [t.lower() for t in texts]
    assert any(t.isupper() for t in texts) and any(t[0].isupper() and not t.isupper() for t in texts)
    assert any(t == t.lower() for t in texts)
    for word in ("please", "could you", "would you mind", "i'd like you to", "cube", "onto", "on top of",
                 "into", "inside", "place", "move", "drop"):
        assert any(word in t for t in lower), word
    assert any(t.endswith("?") for t in texts) and any(t.endswith("!") for t in texts)
    assert any(t[-1].isalpha() for t in texts)
    assert any(re.match(r"(in|into|inside|on|onto|on top of) the ", t) for t in lower)  # destination first
    assert any(re.search(r"block (goes|should go|needs to|must|belongs|has to)", t) for t in lower)


@pytest.mark.parametrize("family", ["pick-place-block", "pick-place-bowl", "pick-place-place", "offset",
                                    "corner-relative"])
def test_instruction_names_the_block_to_move(family):
    for scenario, slots in _draws(family, 60):
        colour = slots["block"]
        words = scenario["instruction"].lower()
        assert colour in words or (colour == "gray" and "grey" in words), scenario["instruction"]


def test_rank_referent_is_the_named_rank_with_clear_gaps():
    for scenario, slots in _draws("rank-from-side", 100):
        ux, uy = DIRS[slots["side"]]
        blocks = _positions(scenario, "blocks")
        order = sorted(blocks, key=lambda c: -(blocks[c][0] * ux + blocks[c][1] * uy))
        assert order[slots["rank"] - 1] == _target_block(scenario)
        along = sorted(x * ux + y * uy for x, y in blocks.values())
        assert min(np.diff(along)) >= RANK_GAP - 1e-9


def test_relation_referent_is_unambiguous():
    seen = set()
    for scenario, slots in _draws("relation-to-bowl", 150):
        rel, target = slots["relation"], _target_block(scenario)
        seen.add(rel)
        bx, by = _positions(scenario, "bowls")[slots["bowl"]]
        blocks = _positions(scenario, "blocks")
        if rel in DIRS:
            ux, uy = DIRS[rel]
            side = {c: (x - bx) * ux + (y - by) * uy for c, (x, y) in blocks.items()}
            assert side[target] >= MARGIN
            assert all(v < 0 for c, v in side.items() if c != target)
        else:
            dist = {c: np.hypot(x - bx, y - by) for c, (x, y) in blocks.items()}
            others = [v for c, v in dist.items() if c != target]
            if rel == "closest":
                assert dist[target] + MARGIN <= min(others) + 1e-9
            else:
                assert dist[target] - MARGIN >= max(others) - 1e-9
    assert seen == {"left", "right", "top", "bottom", "closest", "farthest"}


def test_corner_relative_corner_is_clearly_nearest_or_farthest():
    for scenario, slots in _draws("corner-relative", 100):
        ref = slots["ref"]
        rx, ry = _positions(scenario, ref["kind"] + "s")[ref["color"]]
        dist = sorted((np.hypot(rx - PLACES[c][0], ry - PLACES[c][1]), c) for c in CORNERS)
        (pred,) = scenario["goal"]
        corner = pred["at"][1]
        if slots["which"] == "closest":
            assert corner == dist[0][1] and dist[1][0] - dist[0][0] >= MARGIN - 1e-9
        else:
            assert corner == dist[-1][1] and dist[-1][0] - dist[-2][0] >= MARGIN - 1e-9


def test_offset_target_band_is_inside_the_workspace_and_free():
    for scenario, slots in _draws("offset", 100):
        (pred,) = scenario["goal"]
        a, b, direction, amount = pred["offset"]
        ux, uy = DIRS[direction]
        ref = slots["ref"]
        rx, ry = _positions(scenario, ref["kind"] + "s")[ref["color"]]
        lo = 0.08 if amount == "a little" else 0.18
        tx, ty = rx + ux * lo, ry + uy * lo  # the nearest point of the band
        assert abs(tx) <= WORKSPACE - 0.03 and abs(ty) <= WORKSPACE - 0.03
        others = [p for kind in ("blocks", "bowls") for c, p in _positions(scenario, kind).items()
                  if f"{c} {kind[:-1]}" not in (a, b)]
        assert all(np.hypot(x - tx, y - ty) >= 0.07 for x, y in others)


def test_family_specific_goal_shapes():
    for scenario, slots in _draws("stack", 40):
        (pred,) = scenario["goal"]
        if slots["order"]:
            assert pred["stacked"] == [f"{c} block" for c in slots["order"]]
            assert len(slots["order"]) == len(scenario["scene"]["blocks"])
        else:
            assert pred == {"stacked": "all blocks"}
    for scenario, _ in _draws("all-to-place", 40):
        assert len(scenario["goal"]) == len(scenario["scene"]["blocks"]) <= 4
    for scenario, _ in _draws("mismatched-bowls", 40):
        for item in scenario["goal"]:
            for alt in item["any"]:
                block, bowl = alt["in"]
                assert block.split()[0] != bowl.split()[0]


def test_cli_generate_writes_a_loadable_file_and_says_so(tmp_path, capsys):
    out = tmp_path / "sub" / "s.yaml"
    assert main(["scenarios", "generate", "--families", "stack,line", "--count", "3", "--seed", "4",
                 "-o", str(out)]) == 0
    assert "wrote 6 scenarios" in capsys.readouterr().out
    loaded = load_scenarios(out)
    assert [s.name for s in loaded] == [f"{f}-4-{i}" for f in ("stack", "line") for i in range(3)]
    assert main(["scenarios", "generate", "--families", "nope", "-o", str(tmp_path / "x.yaml")]) == 2
    assert "known: pick-place-block" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_cli_generate_makes_crowded_and_in_bowl_scenes_on_request(tmp_path, capsys):
    out = tmp_path / "c.yaml"
    assert main(["scenarios", "generate", "--families", "offset,pick-place-bowl", "--count", "4", "--seed", "4",
                 "--crowded", "1", "--start-in-bowl", "1", "-o", str(out)]) == 0
    assert [s["scene"] for s in yaml.safe_load(out.read_text())] == \
        [s["scene"] for s in generate(["offset", "pick-place-bowl"], 4, 4, in_bowl=1.0, crowded=1.0)]
    assert main(["scenarios", "generate", "--crowded", "2", "-o", str(tmp_path / "x.yaml")]) == 2
    assert "crowded is a share" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_cli_list_families(capsys):
    assert main(["scenarios", "list-families"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(FAMILIES)


def test_in_bowl_starts_the_block_to_move_in_a_bowl_it_is_not_bound_for_and_leaves_the_rest():
    names = ["pick-place-block", "pick-place-bowl", "pick-place-place", "stack"]
    plain, moved = generate(names, 12, 9), generate(names, 12, 9, in_bowl=1.0)
    assert generate(names, 12, 9, in_bowl=0.0) == plain
    for a, b in zip(plain, moved):
        if a["family"] == "stack":
            assert a == b
            continue
        assert (a["instruction"], a["goal"]) == (b["instruction"], b["goal"])
        (key, (mover, dest)), = b["goal"][0].items()
        at = next(x["at"] for x in b["scene"]["blocks"] if f"{x['color']} block" == mover)
        bowl = next(x for x in b["scene"]["bowls"] if x["at"] == at)
        assert not (key == "in" and f"{bowl['color']} bowl" == dest)
    with pytest.raises(ScenarioError, match="in_bowl"):
        generate(names, 1, 9, in_bowl=1.5)


def test_in_bowl_scenes_are_solved_by_the_expert_and_not_already_done(tmp_path):
    items = generate(["pick-place-bowl", "pick-place-place"], 8, 11, in_bowl=1.0)
    dump_scenarios(items, tmp_path / "in-bowl.yaml")
    for sc in load_scenarios([tmp_path / "in-bowl.yaml"]):
        _expert_solves_and_not_already_done(sc)


def _expert_solves_and_not_already_done(sc) -> None:
    world = sc.build_world()
    goal = sc.bound_goal(world)
    assert not holds(goal, world), sc.name
    robot = SimRobot(world, seed=sc.scene.seed)
    with robot:
        for _ in range(sc.max_steps):
            calls = expert_calls(world, goal)
            if not calls:
                break
            assert robot.execute(calls[0]).ok
    assert holds(goal, world), (sc.name, unmet(goal, world))


def test_start_in_bowl_without_a_draw_takes_the_first_spare_bowl_and_adds_none():
    sc = generate(["pick-place-place"], 30, 9)
    for s in sc:
        out = start_in_bowl(s, None)
        if not s["scene"]["bowls"]:
            assert out is s
        elif out is not s:
            (_, (mover, _)), = out["goal"][0].items()
            at = next(b["at"] for b in out["scene"]["blocks"] if f"{b['color']} block" == mover)
            assert at == s["scene"]["bowls"][0]["at"] and out["scene"]["bowls"] == s["scene"]["bowls"]


def _objects(d: dict) -> dict[tuple[str, str], tuple[float, float]]:
    return {(kind[:-1], o["color"]): tuple(o["at"]) for kind in ("blocks", "bowls") for o in d["scene"].get(kind, [])}


def test_crowded_scenes_keep_the_task_and_its_objects_and_add_others_where_the_families_could():
    names = [*CROWD_FAMILIES, "all-into-bowl", "line"]
    plain, crowded = generate(names, 10, 13), generate(names, 10, 13, crowded=1.0)
    assert generate(names, 10, 13, crowded=0.0) == plain
    grew = 0
    for a, b in zip(plain, crowded):
        assert (a["instruction"], a["goal"]) == (b["instruction"], b["goal"])
        before, after = _objects(a), _objects(b)
        assert {k: after[k] for k in before} == before  # the task's objects stay where they were
        if a["family"] not in CROWD_FAMILIES or re.search(r"\ball\b", a["instruction"].lower()):
            assert a == b, a["name"]
            continue
        added = set(after) - set(before)
        grew += bool(added)
        assert sum(k == "block" for k, _ in after) <= CROWD_BLOCKS and sum(k == "bowl" for k, _ in after) <= CROWD_BOWLS
        if sum(k == "bowl" for k, _ in before) < 2:  # "the bowl" must stay one bowl
            assert not any(k == "bowl" for k, _ in added), a["name"]
        pts = list(after.items())
        for i, ((k1, c1), p) in enumerate(pts):  # every pair as clear as the families keep them
            for (k2, c2), q in pts[i + 1:]:
                need = {"block": 0.03, "bowl": 0.06}
                assert np.hypot(p[0] - q[0], p[1] - q[1]) >= need[k1] + need[k2] + 0.03 - 1e-9, (b["name"], c1, c2)
        _expert_solves_and_not_already_done(scenario_from_dict(b, source="<test>", index=0))
    assert grew >= 30
    with pytest.raises(ScenarioError, match="crowded"):
        generate(names, 1, 9, crowded=-0.1)


def test_crowd_fills_a_scene_to_the_counts_asked_for():
    src = next(d for d in generate(["pick-place-bowl"], 40, 5) if len(d["scene"]["bowls"]) >= 2)
    out = crowd(src, np.random.default_rng(0), CROWD_BLOCKS, CROWD_BOWLS)
    assert len(out["scene"]["blocks"]) == CROWD_BLOCKS and len(out["scene"]["bowls"]) == CROWD_BOWLS
    assert len({o["color"] for o in out["scene"]["blocks"]}) == CROWD_BLOCKS
