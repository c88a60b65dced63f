"""Plan cache: same instruction in the same scene hits; any other scene misses; served plans re-validate."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeagent.cache import PlanCache, normalize_instruction, scene_signature
from edgeagent.primitives import Workspace, registry
from edgeagent.sim.render import default_camera
from edgeagent.sim.robot import SimRobot
from edgeagent.types import Call, Observation, Plan


def scene(blocks=(("red", (0.1, 0.05)), ("green", (-0.1, 0.0))), bowls=(("blue", (0.0, 0.2)),), holding=None):
    robot = SimRobot.from_scene(list(blocks), list(bowls), seed=0)
    obs = robot.observe()
    obs.holding = holding
    return obs


PICK = Plan((Call("pick", {"at": (0.1, 0.05)}), Call("place", {"at": (0.0, 0.2)})), False, 0.9, "remote", "ws", 12.0)


def test_same_instruction_and_scene_hits_with_a_cache_source_and_reason():
    cache = PlanCache()
    obs = scene()
    cache.put("Put the red block in the blue bowl.", obs, PICK)
    hit = cache.get("put  the RED block in the blue bowl", scene())
    assert hit is not None and hit.calls == PICK.calls
    assert hit.source == "cache" and hit.reason.startswith("cache hit")
    assert cache.stats()["hits"] == 1


def test_normalisation():
    assert normalize_instruction("  Put the RED block, in the blue bowl!! ") == "put the red block in the blue bowl"
    assert normalize_instruction("ﬁnd the block") == "find the block"  # NFKC folds the ligature


def test_another_instruction_misses():
    cache = PlanCache()
    cache.put("put the red block in the blue bowl", scene(), PICK)
    assert cache.get("put the green block in the blue bowl", scene()) is None


def test_never_serves_a_plan_for_another_scene():
    cache = PlanCache()
    cache.put("go", scene(), PICK)
    others = [
        scene(blocks=(("red", (0.11, 0.05)), ("green", (-0.1, 0.0)))),  # red moved 1 cm
        scene(blocks=(("red", (0.1, 0.055)), ("green", (-0.1, 0.0)))),  # red moved 5 mm
        scene(blocks=(("green", (0.1, 0.05)), ("red", (-0.1, 0.0)))),  # colours swapped
        scene(blocks=(("red", (0.1, 0.05)),)),  # a block gone
        scene(holding="green block"),  # same picture, but the gripper holds something
    ]
    for obs in others:
        assert cache.get("go", obs) is None
    moved_camera = scene()
    moved_camera.camera = dataclasses.replace(moved_camera.camera, t=(0.0, 0.0, 0.7))  # same pixels, other pose
    assert cache.get("go", moved_camera) is None
    small = scene()
    small.image = small.image[::2, ::2].copy()
    assert cache.get("go", small) is None
    assert cache.get("go", scene()) is not None


def test_a_coarse_key_collision_is_caught_by_the_thumbnail_check():
    cache = PlanCache()
    obs = scene()
    sig = scene_signature(obs)
    cache.put("go", obs, PICK, sig)
    other = scene(blocks=(("red", (0.15, 0.05)), ("green", (-0.1, 0.0))))
    forged = type(sig)(sig.key, scene_signature(other).thumb)  # same key, different picture
    assert cache.get("go", other, forged) is None
    assert cache.stats()["mismatches"] == 1


def test_served_plans_are_revalidated_and_dropped_when_invalid():
    cache = PlanCache()
    obs = scene()
    place_first = Plan((Call("place", {"at": (0.0, 0.2)}),), False, 0.9, "remote")
    cache.put("go", obs, place_first)
    assert cache.get("go", scene()) is None  # nothing held: place is refused
    assert cache.stats()["invalid"] == 1 and len(cache) == 0
    narrow = PlanCache(registry.subset(workspace=Workspace(-0.05, 0.05, -0.05, 0.05)))
    narrow.put("go", obs, PICK)
    assert narrow.get("go", scene()) is None  # the pick point lies outside the narrowed workspace


def test_least_recently_used_entries_go_first():
    cache = PlanCache(size=2)
    a, b, c = (scene(blocks=(("red", (x, 0.0)),)) for x in (-0.2, 0.0, 0.2))
    for obs in (a, b):
        cache.put("go", obs, PICK.replace(calls=()))
    assert cache.get("go", a) is not None  # a is now the most recent
    cache.put("go", c, PICK.replace(calls=()))
    assert cache.get("go", b) is None and cache.get("go", a) is not None and len(cache) == 2


def test_clear_empties_the_cache():
    cache = PlanCache()
    cache.put("go", scene(), PICK)
    cache.clear()
    assert cache.get("go", scene()) is None


def test_unknown_holding_skips_the_state_check():
    cache = PlanCache()
    obs = Observation(np.full((48, 64, 3), 90, np.uint8), default_camera(64, 48), "unknown")
    plan = Plan((Call("place", {"at": (0.0, 0.2)}),), False, 0.9, "remote")
    cache.put("go", obs, plan)
    assert cache.get("go", Observation(obs.image.copy(), obs.camera, "unknown")) is not None
