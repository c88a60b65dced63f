"""How far a planner's points land from the block they name, before and after a pick, and how far the
table view displaces a held block: the figures of models/README.md, "The table view".

For each pick-place-block scenario of a scenario file (goal ``on: [A, B]``):
- first plan: the distance of its pick point from the nearest block, and of its place point (slot 1)
  from the nearest block;
- after a pick: the expert picks A, the model plans again; the distance of its place point from B, and
  for a place more than 5 cm off, its distance from where the held block shows in the image (read on
  the plane the model's points are read on: is the miss a confusion with the lifted block?).
Then, with no model: where the rectified table view shows a block carried at the arm's travel height,
over a grid of the workspace (models/view.py rectifies on one plane; anything above it moves).

    python benchmarks/point_error.py runs/ab-cam/fp32 runs/ab-table/fp32 [--scenarios FILE] [--count 60]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def errors(model_dir: str, scenarios, count: int) -> dict[str, np.ndarray]:
    """Point errors (m) of the model in ``model_dir`` on the first ``count`` pick-place-block scenarios."""
    from edgeagent.models.runtime import ModelPlanner
    from edgeagent.sim.goals import goal_to_yaml
    from edgeagent.sim.robot import SimRobot
    from edgeagent.sim.world import BLOCK_SIZE
    from edgeagent.types import Call

    planner = ModelPlanner(model_dir)
    out: dict[str, list[float]] = {"pick": [], "place": [], "place_after_pick": [], "missed_place_from_held_image": []}
    done = 0
    for sc in scenarios:
        goal = goal_to_yaml(sc.goal)
        goal = goal[0] if isinstance(goal, list) and len(goal) == 1 else goal
        pair = goal.get("on") if isinstance(goal, dict) else None
        if sc.family != "pick-place-block" or not pair:
            continue
        held, target = (name.split()[0] for name in pair)
        world = sc.build_world()
        robot = SimRobot(world)
        plan = planner.plan(robot.observe(), sc.instruction)
        if [c.primitive for c in plan.calls[:2]] == ["pick", "place"]:
            for key, call in (("pick", plan.calls[0]), ("place", plan.calls[1])):
                p = np.asarray(call.args["at"])
                out[key].append(min(float(np.hypot(*(p - (b.x, b.y)))) for b in world.blocks.values()))
        block = world.blocks[held]
        robot.execute(Call("pick", {"at": (block.x, block.y)}))
        obs = robot.observe()
        plan = planner.plan(obs, sc.instruction)
        if plan.calls and plan.calls[0].primitive == "place":
            t, p = world.blocks[target], np.asarray(plan.calls[0].args["at"])
            out["place_after_pick"].append(float(np.hypot(*(p - (t.x, t.y)))))
            if out["place_after_pick"][-1] > 0.05:
                # A place that missed: how far from where the held block shows in the image (its
                # centre seen through the camera, read on the plane the model's points are read on).
                gx, gy, gz = world.gripper
                seen = obs.camera.pixel_to_table(obs.camera.project(np.array([[gx, gy, gz - BLOCK_SIZE / 2]])),
                                                 z=planner.manifest.view.plane_z_m)[0]
                out["missed_place_from_held_image"].append(float(np.hypot(*(p - seen))))
        done += 1
        if done >= count:
            break
    return {k: np.array(v) for k, v in out.items()}


def held_block_displacement() -> tuple[np.ndarray, np.ndarray]:
    """Displacement (m) in the table view of a block held at travel height, and whether it leaves the view."""
    from edgeagent.models.view import View
    from edgeagent.primitives import SAFE_Z
    from edgeagent.sim.render import default_camera
    from edgeagent.sim.world import BLOCK_SIZE

    camera, view = default_camera(640, 480), View("table")
    xs = np.linspace(-0.3, 0.3, 25)
    pts = np.array([(x, y, SAFE_Z - BLOCK_SIZE / 2) for x in xs for y in xs])
    seen = camera.pixel_to_table(camera.project(pts), z=view.plane_z_m)
    return np.hypot(*(seen - pts[:, :2]).T), (np.abs(seen) > view.half_extent_m).any(axis=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="model folders (planner.onnx + manifest.json)")
    p.add_argument("--scenarios", default="sim/scenarios/calibration.yaml")
    p.add_argument("--count", type=int, default=60, help="pick-place-block scenarios per model")
    args = p.parse_args(argv)
    from edgeagent.sim.scenario import load_scenarios

    scenarios = load_scenarios([args.scenarios])
    for model in args.models:
        e = errors(model, scenarios, args.count)
        print(f"{model}:")
        for key, v in e.items():
            if len(v):
                print(f"  {key:28s} n={len(v):3d}  median {1000 * np.median(v):6.1f} mm  p90 {1000 * np.quantile(v, 0.9):6.1f} mm"
                      f"  > 5 cm: {int((v > 0.05).sum())}")
    d, out = held_block_displacement()
    print(f"table view, a block held at travel height: displaced {100 * np.median(d):.1f} cm (median), "
          f"{100 * d.max():.1f} cm at most; outside the view for {out.mean():.0%} of the workspace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
