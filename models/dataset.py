"""Closed-loop training data from the task families and the expert (no torch).

For each generated scenario the expert runs closed loop on the simulated world, through the standard
registry's primitives with the ``World`` as the arm. At every state we record:

- the frame: rendered at the 640 x 480 default camera (slightly jittered pose) with a randomized
  ``RenderStyle`` drawn per episode (the renderer caches the table background per camera and style,
  so a style per frame would triple the cost; pixel noise and colour jitter still change per frame;
  a quarter of the episodes use the clean default style and camera the evaluation renders with),
  then turned into the S x S model image exactly as the runtime does, in the dataset's view
  (``models/view.py``: the frame squeezed to S x S, or the table rectified top-down);
- the instruction text (tokenized at training time, so the vocabulary and text augmentation live
  with the model);
- labels: the expert's full remaining plan, up to K calls, END after it: primitive ids (0 = END,
  i + 1 = primitive i of the table), and for each point argument the table point, its G x G cell
  and sub-cell offset in the S x S image (table point -> pixel of the model image's camera, the
  contract's decoding run backwards), and the S-pixel -> table homography that decodes it.

Perturbed states teach recovery: grasps fail with some probability, a block is now and then knocked
to a random spot mid-plan or the held block slips out of the gripper, and every episode ends with
the goal holding (label END at slot 0).

On-policy states (DAgger, Ross et al., 2011): with a ``policy`` (an exported model folder), a share
of the episodes is driven by that model instead of the expert: the model's first call is executed
(the expert's when the model reports done early or proposes a call the registry refuses), while every
state it reaches is still labelled with the expert's plan. Expert-only episodes never show the states
a planner's own mistakes lead to (a line block set on another block, a block a few centimetres off
its slot, "done" reported too early); these do, each with the expert's way out.

Scenario seeds: training uses ``generate(families, count, seed)`` with ``seed < EVAL_SEED_MIN``;
seeds from ``EVAL_SEED_MIN`` up are reserved for held-out evaluation and refused here.

Output: ``shard-00000.npz``, ... (uint8 images, labels) and ``meta.json`` (written last; its presence
with ``"complete": true`` marks a finished dataset). ``python -m edgeagent.models.dataset --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeagent.files import write_atomic, write_with_atomic
from edgeagent.models.view import KINDS, View
#: Scenario seeds from here up are held out for evaluation; training data never uses them.
EVAL_SEED_MIN = 1_000_000
FORMAT = 1
#: Camera resolution frames are rendered at (the simulator's default camera).
RENDER_W, RENDER_H = 640, 480
#: Share of episodes rendered with the clean default style and no camera jitter (as evaluated).
CLEAN_SHARE = 0.25
#: Share of episodes in which grasps fail, and the failure probability there.
FAILING_SHARE = 0.35
GRASP_FAILURE = 0.3
#: Per-step probability of knocking a block elsewhere / of the held block slipping away.
KNOCK_P = 0.06
SLIP_P = 0.06
#: How the expert lays out lines in the data: on fixed table lines and slots, which a planner can read
#: off the image (the least-travel layout depends on which blocks happen to be aligned; see
#: ``edgeagent.sim.expert.expert_calls``).
LINE_STYLE = "canonical"
#: Share of episodes the policy drives when data is generated with one (``generate_dataset(policy=...)``).
POLICY_SHARE = 0.5
#: Scenarios per work unit handed to a worker process.
CHUNK = 16
#: Samples per shard file.
SHARD_SAMPLES = 4096


def primitive_table(registry=None) -> list[dict[str, Any]]:
    """``[{"name", "args"}]`` of the registry's primitives whose arguments are all table points."""
    from edgeagent.primitives import registry as standard

    reg = registry if registry is not None else standard
    return [{"name": p.name, "args": list(p.point_params)} for p in reg
            if all(q.kind == "point" for q in p.params)]


def s_to_table_matrix(camera, S: int) -> np.ndarray:
    """3x3 homography: model-image pixel (u_s, v_s, 1) -> table point (x, y, 1) on z = 0."""
    scale = np.diag([camera.width / S, camera.height / S, 1.0])
    return np.linalg.inv(camera.homography(0.0)) @ scale


def point_label(camera, xy, S: int, G: int) -> tuple[int, np.ndarray]:
    """Cell index and sub-cell offset (dx, dy in [0, 1]) of table point ``xy`` in the S x S image."""
    u, v = camera.table_to_pixel(np.asarray(xy, float), z=0.0)
    gx, gy = u * S / camera.width * G / S, v * S / camera.height * G / S
    col, row = int(np.clip(math.floor(gx), 0, G - 1)), int(np.clip(math.floor(gy), 0, G - 1))
    off = np.clip([gx - col, gy - row], 0.0, 1.0)
    return row * G + col, off.astype(np.float32)


def decode_label(camera, cell: int, offset, S: int, G: int) -> np.ndarray:
    """The contract's decoding: cell + offset -> model pixel -> camera pixel -> table point (z = 0)."""
    row, col = divmod(int(cell), G)
    u_s, v_s = (col + offset[0]) * S / G, (row + offset[1]) * S / G
    return camera.pixel_to_table((u_s * camera.width / S, v_s * camera.height / S), z=0.0)


def object_class(kind: str, color: str) -> int:
    """Class of an object for the auxiliary labels: 0 none, 1..10 blocks, 11..20 bowls (palette order)."""
    from edgeagent.sim.world import COLORS

    return 1 + COLORS.index(color) + (len(COLORS) if kind == "bowl" else 0)


def patch_objects(world, camera, S: int, G: int) -> np.ndarray:
    """[G*G] object class shown by each cell: bowls by their rim on the table, a block by the cell
    its centre projects to (a block drawn later, higher in a stack or held, wins)."""
    from edgeagent.sim.world import BLOCK_SIZE, BOWL_RADIUS

    out = np.zeros(G * G, np.int64)
    cs = (np.arange(G) + 0.5) * S / G
    uv = np.stack(np.meshgrid(cs * camera.width / S, cs * camera.height / S), -1).reshape(-1, 2)
    xy = camera.pixel_to_table(uv, z=0.0)
    for bowl in world.bowls.values():
        out[np.hypot(xy[:, 0] - bowl.x, xy[:, 1] - bowl.y) <= BOWL_RADIUS] = object_class("bowl", bowl.color)
    blocks = [(b.z, b.color, (b.x, b.y, b.z + BLOCK_SIZE / 2)) for b in world.on_table_blocks()]
    if world.held is not None:
        gx, gy, gz = world.gripper
        blocks.append((gz, world.held, (gx, gy, gz - BLOCK_SIZE / 2)))
    for _, color, centre in sorted(blocks):
        u, v = camera.project(centre)[0]
        col, row = int(u * G / camera.width), int(v * G / camera.height)
        if 0 <= col < G and 0 <= row < G:
            out[row * G + col] = object_class("block", color)
    return out


#: Sides blocks are ranked from for the auxiliary rank labels (DESIGN §8 directions), and the rank
#: classes per side: 0 = nearest that side, ..., RANKS - 1 = that far or further.
RANK_SIDES = ("left", "right", "top", "bottom")
RANKS = 5


def _block_cells(world, camera, G: int) -> dict[str, int]:
    """Grid cell (row * G + col) each block on the table projects its centre to, as
    ``patch_objects`` places it; blocks outside the image are left out."""
    from edgeagent.sim.world import BLOCK_SIZE

    cells = {}
    for b in world.on_table_blocks():
        u, v = camera.project((b.x, b.y, b.z + BLOCK_SIZE / 2))[0]
        col, row = int(u * G / camera.width), int(v * G / camera.height)
        if 0 <= col < G and 0 <= row < G:
            cells[b.color] = row * G + col
    return cells


def _labels_by_cell(out: np.ndarray, world, cells: dict[str, int], labels: dict[str, Any]) -> np.ndarray:
    # Lower blocks first, so where a stack shares a cell the top block's label wins, as in patch_objects.
    for b in sorted(world.on_table_blocks(), key=lambda b: b.z):
        if b.color in cells and b.color in labels:
            out[cells[b.color]] = labels[b.color]
    return out


def patch_ranks(world, camera, G: int) -> np.ndarray:
    """[G*G, 4] rank of the block each cell shows, counted from the left, right, top and bottom
    (0 = the block furthest that way, clipped at RANKS - 1; -1 = no block there). Cells are the ones
    ``patch_objects`` gives the block; held blocks are not ranked. A training-only target: it makes
    the network order blocks along each axis, which "the second block from the left" needs."""
    from edgeagent.sim.goals import DIRECTIONS

    blocks = world.on_table_blocks()
    ranks = {b.color: [0] * len(RANK_SIDES) for b in blocks}
    for j, side in enumerate(RANK_SIDES):
        ux, uy = DIRECTIONS[side]
        for i, b in enumerate(sorted(blocks, key=lambda b: -(b.x * ux + b.y * uy))):
            ranks[b.color][j] = min(i, RANKS - 1)
    out = np.full((G * G, len(RANK_SIDES)), -1, np.int64)
    return _labels_by_cell(out, world, _block_cells(world, camera, G), ranks)


#: Classes of the bowl-relation quadrant label: where a block lies from a bowl (left/right x below/above).
QUADRANTS = 4


def patch_bowl_relations(world, camera, G: int) -> np.ndarray:
    """[G*G, 10, 2] for the block each cell shows and each bowl colour (palette order): the block's
    rank by distance to that bowl (0 = closest, clipped at RANKS - 1) and its quadrant from the bowl
    (0 left-below, 1 right-below, 2 left-above, 3 right-above); -1 where the cell shows no block or
    the scene has no such bowl. A training-only target for "the block nearest the blue bowl" and
    "the block left of the blue bowl"."""
    from edgeagent.sim.world import COLORS

    blocks = world.on_table_blocks()
    rel = {b.color: np.full((len(COLORS), 2), -1, np.int64) for b in blocks}
    for bowl in world.bowls.values():
        j = COLORS.index(bowl.color)
        for i, b in enumerate(sorted(blocks, key=lambda b: (b.x - bowl.x) ** 2 + (b.y - bowl.y) ** 2)):
            rel[b.color][j] = (min(i, RANKS - 1), int(b.x > bowl.x) + 2 * int(b.y > bowl.y))
    out = np.full((G * G, len(COLORS), 2), -1, np.int64)
    return _labels_by_cell(out, world, _block_cells(world, camera, G), rel)


def target_object(world, primitive: str, xy) -> int:
    """Class of the object a call's point lands on in ``world``: the block picked, the block or bowl
    a place lands on/in, or 0 (table)."""
    from edgeagent.sim.world import BLOCK_SIZE, GRASP_TOLERANCE

    x, y = float(xy[0]), float(xy[1])
    top = world.top_block_at(x, y, GRASP_TOLERANCE if primitive == "pick" else BLOCK_SIZE)
    if top is not None:
        return object_class("block", top.color)
    bowl = world.bowl_at(x, y)
    return object_class("bowl", bowl.color) if bowl is not None and primitive != "pick" else 0


def jittered_camera(rng: np.random.Generator, width: int = RENDER_W, height: int = RENDER_H):
    """The default camera with its pose nudged (about 1 cm, under a degree) and its focal length
    by up to 3 %: robustness to calibration, without moving the scene much in the frame."""
    from edgeagent.camera import CameraModel
    from edgeagent.sim.render import default_camera

    cam = default_camera(width, height)
    R, t, fy = np.array(cam.R), np.array(cam.t), cam.K[1][1] * float(rng.uniform(0.97, 1.03))
    eye = -R.T @ t
    target = eye + R[2] * (-eye[2] / R[2][2])  # where the optical axis meets the table
    eye = eye + rng.normal(0, 0.01, 3)
    target = target + np.array([*rng.normal(0, 0.01, 2), 0.0])
    fov = math.degrees(2 * math.atan(height / 2 / fy))
    return CameraModel.look_at(eye, target, fov_y_deg=fov, width=width, height=height)


# -- one episode --------------------------------------------------------------------------------------
class _Recorder:
    """Collects samples of one worker's chunk."""

    def __init__(self, S: int, G: int, K: int, A: int, prims: list[dict], view: View | None = None):
        self.S, self.G, self.K, self.A = S, G, K, A
        self.view = view or View()
        self.prim_ids = {p["name"]: i + 1 for i, p in enumerate(prims)}
        self.prim_args = {p["name"]: p["args"] for p in prims}
        self.rows: dict[str, list] = {k: [] for k in ("images", "texts", "prims", "cells", "offsets", "points",
                                                       "s_to_table", "objects", "patch_objects", "patch_ranks",
                                                       "patch_bowls", "scenario",
                                                       "family", "step")}

    def add(self, image, camera, world, text, calls, scenario: int, family: str, step: int) -> None:
        S, G, K, A = self.S, self.G, self.K, self.A
        # The model's image, as the runtime makes it; labels go through that image's camera, so they
        # follow the view.
        image, camera = self.view.model_input(image, camera, S)
        prims = np.zeros(K, np.int64)
        objects = np.full((K, A), -1, np.int64)
        cells = np.full((K, A), -1, np.int64)
        offsets = np.zeros((K, A, 2), np.float32)
        points = np.full((K, A, 2), np.nan, np.float32)
        for k, call in enumerate(calls[:K]):
            prims[k] = self.prim_ids[call.primitive]
            for a, name in enumerate(self.prim_args[call.primitive]):
                xy = np.asarray(call.args[name], float)
                cells[k, a], offsets[k, a] = point_label(camera, xy, S, G)
                points[k, a] = xy
                # Later slots use today's scene too: approximate, but only an auxiliary target.
                objects[k, a] = target_object(world, call.primitive, xy)
        for key, val in (("images", image), ("texts", text), ("prims", prims), ("cells", cells),
                         ("offsets", offsets), ("points", points),
                         ("s_to_table", s_to_table_matrix(camera, S).astype(np.float32)),
                         ("objects", objects), ("patch_objects", patch_objects(world, camera, S, G)),
                         ("patch_ranks", patch_ranks(world, camera, G)),
                         ("patch_bowls", patch_bowl_relations(world, camera, G)),
                         ("scenario", scenario), ("family", family), ("step", step)):
            self.rows[key].append(val)

    def arrays(self) -> dict[str, np.ndarray]:
        from edgeagent.sim.world import COLORS

        r = self.rows
        n = len(r["images"])
        S, K, A = self.S, self.K, self.A
        return {"images": np.stack(r["images"]) if n else np.zeros((0, S, S, 3), np.uint8),
                "texts": np.array(r["texts"], dtype=str),
                "prims": np.array(r["prims"], np.int64).reshape(n, K),
                "cells": np.array(r["cells"], np.int64).reshape(n, K, A),
                "offsets": np.array(r["offsets"], np.float32).reshape(n, K, A, 2),
                "points": np.array(r["points"], np.float32).reshape(n, K, A, 2),
                "s_to_table": np.array(r["s_to_table"], np.float32).reshape(n, 3, 3),
                "objects": np.array(r["objects"], np.int64).reshape(n, K, A),
                "patch_objects": np.array(r["patch_objects"], np.int64).reshape(n, self.G * self.G),
                # int8: ranks are small, and this array is the dataset's second largest.
                "patch_ranks": np.array(r["patch_ranks"], np.int8).reshape(n, self.G * self.G, len(RANK_SIDES)),
                "patch_bowls": np.array(r["patch_bowls"], np.int8).reshape(n, self.G * self.G, len(COLORS), 2),
                "scenario": np.array(r["scenario"], np.int64), "family": np.array(r["family"], dtype=str),
                "step": np.array(r["step"], np.int64)}


def _free_spot(world, rng: np.random.Generator, clearance: float = 0.06) -> tuple[float, float]:
    """A random table point away from every block (bowls allowed: a block may land in one)."""
    for _ in range(200):
        x, y = rng.uniform(-0.26, 0.26, size=2)
        if all(math.hypot(x - b.x, y - b.y) >= clearance for b in world.on_table_blocks()):
            return float(x), float(y)
    return float(rng.uniform(-0.26, 0.26)), float(rng.uniform(-0.26, 0.26))


def _knock(world, reg, rng: np.random.Generator) -> bool:
    """Move a random top-of-stack block to a random spot, as a bump would; gripper restored after."""
    tops = [b for b in world.on_table_blocks() if not world.blocks_above(b.color)]
    if not tops or world.held is not None:
        return False
    b = tops[int(rng.integers(len(tops)))]
    x, y = _free_spot(world, rng)
    saved, failure = (world.gripper, world.closed), world.grasp_failure
    world.grasp_failure = 0.0
    from edgeagent.primitives import TablePoint

    reg.get("pick").fn(world, TablePoint(b.x, b.y))
    if world.held is not None:
        reg.get("place").fn(world, TablePoint(x, y))
    world.grasp_failure = failure
    world.gripper, world.closed = saved
    return True


def _slip(world, rng: np.random.Generator) -> bool:
    """The held block falls out of the gripper over a random spot."""
    if world.held is None:
        return False
    x, y = _free_spot(world, rng)
    gz = world.gripper[2]
    world.move_to(x, y, gz)
    world.open()
    return True


def run_episode(item: dict, index: int, seed: int, rec: _Recorder, *, extra_steps: int = 4,
                planner=None, policy_share: float = 0.0) -> int:
    """Run scenario dict ``item`` closed loop, recording every state with the expert's plan; returns samples.

    The expert acts, unless ``planner`` (a ``ModelPlanner``) is given and this episode is one of the
    ``policy_share`` it drives (see the module docstring).
    """
    from edgeagent.primitives import registry as reg
    from edgeagent.sim.expert import expert_calls
    from edgeagent.sim.render import RenderStyle, default_camera, render
    from edgeagent.sim.scenario import scenario_from_dict

    rng = np.random.default_rng([seed, 7, index])
    sc = scenario_from_dict(item, source="generated", index=index)
    failing = rng.random() < FAILING_SHARE
    world = sc.build_world(grasp_failure=GRASP_FAILURE if failing else 0.0)
    goal = sc.bound_goal(world)
    if rng.random() < CLEAN_SHARE:
        style, camera = None, default_camera(RENDER_W, RENDER_H)
    else:
        style, camera = RenderStyle.random(rng), jittered_camera(rng)
    # Drawn only with a policy, so expert-only datasets stay as they were.
    driven = planner is not None and rng.random() < policy_share
    family = sc.family or "-"
    n = 0
    for step in range(sc.max_steps + extra_steps):
        calls = expert_calls(world, goal, lines=LINE_STYLE)
        frame = render(world, camera, style, seed=int(rng.integers(0, 2**31 - 1)))
        rec.add(frame, camera, world, sc.instruction, calls, index, family, step)
        n += 1
        if not calls:
            break
        # Perturb before executing now and then; the next state (re-planned) shows the recovery.
        if rng.random() < KNOCK_P and _knock(world, reg, rng):
            continue
        holding = world.held and f"{world.held} block"
        call = _policy_call(planner, frame, camera, holding, sc.instruction, reg) if driven else None
        if call is None:
            call = reg.validate(calls[0], holding=holding, check_state=True)
        reg.get(call.primitive).fn(world, **call.args)
        if rng.random() < SLIP_P:
            _slip(world, rng)
    return n


def _policy_call(planner, frame, camera, holding, instruction: str, reg):
    """The model's first call for this frame, validated; None when it reports done or the registry refuses it."""
    from edgeagent.errors import CallError
    from edgeagent.types import Observation

    plan = planner.plan(Observation(frame, camera, holding), instruction)
    if plan.done or not plan.calls:
        return None
    try:
        return reg.validate(plan.calls[0], holding=holding, check_state=True)
    except CallError:
        return None


_PLANNERS: dict[str, Any] = {}


def policy_planner(policy: str | Path):
    """The model that drives on-policy episodes, loaded once per process (workers load their own)."""
    key = str(policy)
    if key not in _PLANNERS:
        from edgeagent.models.runtime import ModelPlanner

        _PLANNERS[key] = ModelPlanner(policy)
    return _PLANNERS[key]


def _work(job: tuple) -> dict[str, np.ndarray]:
    items, start, seed, S, G, K, A, prims, policy, policy_share, view = job
    cv2.setNumThreads(1)
    rec = _Recorder(S, G, K, A, prims, View.from_dict(view))
    planner = policy_planner(policy) if policy is not None else None
    for i, item in enumerate(items):
        run_episode(item, start + i, seed, rec, planner=planner, policy_share=policy_share)
    return rec.arrays()


# -- the dataset --------------------------------------------------------------------------------------
def generate_dataset(out_dir: str | Path, *, families: list[str] | None = None, scenarios: int = 4000,
                     seed: int = 0, S: int = 96, G: int = 12, K: int = 4, A: int = 2, workers: int = 2,
                     weights: dict[str, float] | None = None, progress: bool = True,
                     policy: str | Path | None = None, policy_share: float | None = None,
                     view: View | None = None, in_bowl: float = 0.0, crowded: float = 0.0) -> dict[str, Any]:
    """Generate ``scenarios`` scenarios (spread over ``families``) into shards; returns meta.

    ``weights`` (family -> relative weight, default 1) gives some families more scenarios than others,
    e.g. the ones a model still gets wrong. Deterministic for given arguments, whatever the number of
    workers.

    ``policy`` (an exported model folder; FP32 is best, it is what the INT8 file approximates) drives
    ``policy_share`` of the episodes (default ``POLICY_SHARE``), the expert labelling every state (see
    the module docstring). ``view`` (default: the camera view) is how frames become model images.
    ``in_bowl`` is the share of pick-and-place scenes whose block to move starts inside a bowl
    (``sim.families.generate``); the generator never starts one so otherwise. ``crowded`` is the share
    of scenes of ``sim.families.CROWD_FAMILIES`` with blocks and bowls added around the task's, up to 7
    and 4 (the families draw at most 5 and 4).
    """
    from edgeagent.errors import ConfigError
    from edgeagent.sim.families import FAMILIES, generate

    if not 0 <= seed < EVAL_SEED_MIN:
        raise ConfigError(f"training seed {seed} must be in [0, {EVAL_SEED_MIN}): seeds from {EVAL_SEED_MIN} up "
                          "are reserved for held-out evaluation scenarios")
    names = list(FAMILIES) if not families else list(dict.fromkeys(families))
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(names))
    if unknown or any(w <= 0 for w in weights.values()):
        raise ConfigError(f"family weights: {', '.join(unknown) or 'a weight <= 0'} "
                          f"(weights need families being generated and positive values; families: {', '.join(names)})")
    share = np.array([weights.get(n, 1.0) for n in names], float)
    counts = [max(1, math.ceil(scenarios * w / share.sum())) for w in share]
    per_family = max(counts)
    # A family's scenarios do not depend on the others asked for, so weights change only how many.
    if not 0.0 <= in_bowl <= 1.0:
        raise ConfigError(f"--start-in-bowl {in_bowl} is a share of scenes: give a number in [0, 1]")
    if not 0.0 <= crowded <= 1.0:
        raise ConfigError(f"--crowded {crowded} is a share of scenes: give a number in [0, 1]")
    by_family = [generate([n], c, seed, in_bowl=in_bowl, crowded=crowded) for n, c in zip(names, counts)]
    # Interleave families so every chunk (and shard) mixes them.
    items = [fam[i] for i in range(per_family) for fam in by_family if i < len(fam)]
    prims = primitive_table()
    if max(len(p["args"]) for p in prims) > A:
        raise ConfigError(f"a primitive takes more than A={A} point arguments; raise A")
    policy_info = None
    if policy is not None:
        from edgeagent.models.manifest import load_manifest, verify
        from edgeagent.primitives import registry as standard

        policy_share = POLICY_SHARE if policy_share is None else policy_share
        if not 0 < policy_share <= 1:
            raise ConfigError(f"policy share {policy_share} must be in (0, 1]")
        # Checked here, before anything in out_dir is replaced; loaded in each worker (an onnxruntime
        # session does not survive a fork).
        manifest, onnx_path = load_manifest(policy)
        verify(manifest, onnx_path, standard)
        policy = str(policy)
        policy_info = {"model": policy, "model_id": manifest.model_id, "sha256": manifest.sha256,
                       "share": policy_share}
    elif policy_share is not None:
        raise ConfigError(f"a policy share ({policy_share}) needs a policy (a model folder) to drive the episodes")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("shard-*.npz"):
        old.unlink()
    (out / "meta.json").unlink(missing_ok=True)
    view = view or View()
    jobs = [(items[i:i + CHUNK], i, seed, S, G, K, A, prims, policy, policy_share, view.to_dict())
            for i in range(0, len(items), CHUNK)]
    t0 = t_print = time.time()
    pending: list[dict[str, np.ndarray]] = []
    shards, samples, done = [], 0, 0
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ctx.Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_work, jobs) if pool else map(_work, jobs)
        for j, arrays in enumerate(results):
            pending.append(arrays)
            done += len(jobs[j][0])
            samples += len(arrays["images"])
            if sum(len(p["images"]) for p in pending) >= SHARD_SAMPLES or j == len(jobs) - 1:
                shards.append(_write_shard(out, len(shards), pending))
                pending = []
            if progress and (time.time() - t_print >= 2.0 or j == len(jobs) - 1):
                t_print = time.time()
                el = t_print - t0
                line = (f"data: {done}/{len(items)} scenarios, {samples} samples, "
                        f"{samples / max(el, 1e-9):.0f} samples/s, ETA {el / done * (len(items) - done):.0f}s")
                tty = sys.stderr.isatty()
                print(f"\r{line}\033[K" if tty else line, end="\n" if not tty or j == len(jobs) - 1 else "",
                      file=sys.stderr, flush=True)
    finally:
        if pool:
            pool.close()
            pool.join()
    meta = {"format": FORMAT, "complete": True, "S": S, "G": G, "K": K, "A": A, "primitives": prims,
            "families": names, "family_scenarios": dict(zip(names, counts)), "line_style": LINE_STYLE,
            "scenarios": len(items), "seed": seed, "samples": samples, "shards": shards,
            "render": {"width": RENDER_W, "height": RENDER_H, "resize": "cv2.INTER_AREA",
                       "clean_share": CLEAN_SHARE},
            "view": view.to_dict(),
            "perturbations": {"failing_share": FAILING_SHARE, "grasp_failure": GRASP_FAILURE, "knock_p": KNOCK_P,
                              "slip_p": SLIP_P},
            "description": (f"{samples} closed-loop expert states from {len(items)} scenarios "
                            f"({_spread(names, counts)}, generate seed {seed}); {view.kind} view; "
                            f"lines in the {LINE_STYLE} layout; "
                            f"randomized render styles and camera jitter, failed grasps, knocked and "
                            f"slipped blocks"
                            + (f"; {policy_share:.0%} of the episodes driven by {policy_info['model_id']} "
                               f"(on-policy states, expert labels)" if policy_info else "")
                            + (f"; {in_bowl:.0%} of the pick-and-place scenes with the block starting in a bowl"
                               if in_bowl else "")
                            + (f"; {crowded:.0%} of the scenes that name their objects crowded with more"
                               if crowded else "")),
            "policy": policy_info, "in_bowl": in_bowl, "crowded": crowded,
            "generation_s": round(time.time() - t0, 1)}
    write_atomic(out / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


def _spread(names: list[str], counts: list[int]) -> str:
    if len(set(counts)) == 1:
        return f"{counts[0]} per family x {len(names)} families"
    return ", ".join(f"{n} {c}" for n, c in zip(names, counts))


def _write_shard(out: Path, i: int, parts: list[dict[str, np.ndarray]]) -> str:
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    name = f"shard-{i:05d}.npz"
    write_with_atomic(out / name, lambda buf: np.savez(buf, **arrays))
    return name


def is_complete(data_dir: str | Path) -> bool:
    """True when ``data_dir`` holds a finished dataset (meta.json written last, shards present)."""
    meta_path = Path(data_dir) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return bool(meta.get("complete")) and all((Path(data_dir) / s).is_file() for s in meta.get("shards", []))


def load_dataset(data_dir: str | Path) -> dict[str, Any]:
    """All shards of a dataset concatenated: arrays by name, plus ``meta`` and ``texts`` (list of str)."""
    from edgeagent.errors import ConfigError

    data_dir = Path(data_dir)
    if not is_complete(data_dir):
        raise ConfigError(f"{data_dir}: no complete dataset (meta.json missing or shards absent); generate one "
                          "with `python -m edgeagent.models.dataset --out DIR` or let training generate it")
    meta = json.loads((data_dir / "meta.json").read_text())
    parts = []
    for s in meta["shards"]:
        with np.load(data_dir / s, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    data: dict[str, Any] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    data["texts"] = [str(t) for t in data["texts"]]
    data["meta"] = meta
    return data


def main(argv: list[str] | None = None) -> int:
    """``python -m edgeagent.models.dataset --out DIR [--families a,b] [--scenarios N] [--seed S]``."""
    p = argparse.ArgumentParser(prog="python -m edgeagent.models.dataset", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for the shards and meta.json")
    p.add_argument("--families", default=None, help="comma-separated task families (default: all)")
    p.add_argument("--scenarios", type=int, default=4000, help="scenarios in all (spread over the families)")
    p.add_argument("--seed", type=int, default=0, help=f"scenario seed, below {EVAL_SEED_MIN}")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--S", type=int, default=96)
    p.add_argument("--G", type=int, default=12)
    p.add_argument("--K", type=int, default=4)
    p.add_argument("--policy", default=None, metavar="MODEL_DIR",
                   help="an exported model that drives --policy-share of the episodes (the expert labels them)")
    p.add_argument("--policy-share", type=float, default=None, metavar="P",
                   help=f"share of episodes --policy drives (default {POLICY_SHARE})")
    p.add_argument("--view", choices=KINDS, default="camera", help="what the model sees (models/view.py)")
    args = p.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    meta = generate_dataset(args.out, families=families, scenarios=args.scenarios, seed=args.seed, S=args.S,
                            G=args.G, K=args.K, workers=args.workers, policy=args.policy,
                            policy_share=args.policy_share, view=View(args.view))
    print(meta["description"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
