"""``edgeagent demo``: one scenario end to end in the simulator, step by step, with a PNG strip."""

from __future__ import annotations

DEFAULT_SCENARIO = "matching-bowls"


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run one scenario end to end in the simulator and save a PNG strip")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"name of a scenario in the built-in demo file (default: {DEFAULT_SCENARIO})")
    p.add_argument("--file", help="take the scenario from this scenario file instead")
    p.add_argument("--instruction", help="say this instead of the scenario's instruction, on its scene (the goal "
                                         "check is then skipped: the scenario's goal is for its own instruction)")
    p.add_argument("--planner", default="best", help="best (model if shipped, else expert) | model | expert")
    p.add_argument("--grasp-failure", type=float, default=0.0, help="probability that a grasp fails")
    p.add_argument("--out", default="edgeagent-demo.png", help="where to write the PNG strip")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import cv2
    import numpy as np

    from edgeagent.errors import ScenarioError
    from edgeagent.harness import PlannerContext, make_planner, run_scenario
    from edgeagent.sim.scenario import load_scenarios

    import edgeagent.sim

    path = Path(args.file) if args.file else Path(edgeagent.sim.__file__).parent / "scenarios" / "demo.yaml"
    scenarios = {s.name: s for s in load_scenarios([path])}
    if not scenarios:
        raise ScenarioError(f"{path}: holds no scenarios")
    name = args.scenario
    if args.file and name == DEFAULT_SCENARIO and name not in scenarios:
        name = next(iter(scenarios))  # a user's own file: its first scenario unless one is named
    if name not in scenarios:
        raise ScenarioError(f"{path}: no scenario named {name!r}; it has: {', '.join(scenarios)}")
    scenario = scenarios[name]
    own = args.instruction is not None
    if own:
        from dataclasses import replace

        if not args.instruction.strip():
            raise ScenarioError("--instruction is empty; say what the robot should do, e.g. "
                                "--instruction 'put the red block in the blue bowl'")
        scenario = replace(scenario, instruction=args.instruction)
    planner_name = args.planner
    if planner_name == "best":
        planner_name = "model" if _model_shipped() else "expert"
    make = make_planner(planner_name, PlannerContext())

    print(f"scenario {scenario.name!r}: {scenario.instruction}")
    print(f"planner: {planner_name}")
    frames = []

    def on_event(ev):
        if ev.kind == "plan":
            p = ev.plan
            nxt = str(p.calls[0]) if p.calls else "-"
            print(f"  plan  [{p.source}, {p.latency_ms:.1f} ms, confidence {p.confidence:.2f}] "
                  f"{'done' if p.done else 'next: ' + nxt}")
        elif ev.kind == "step":
            print(f"  step {ev.step}: {ev.call} -> {'ok' if ev.result.ok else 'FAILED'}: {ev.result.message}")
        elif ev.kind == "replan":
            print(f"  re-plan: {ev.message}")

    result, run = run_scenario(scenario, make, grasp_failure=args.grasp_failure, on_event=on_event,
                               on_observation=lambda obs: frames.append(obs.image))
    if own:
        print(f"outcome: {run.status} after {result.steps} steps" + (f": {run.error}" if run.error else "") +
              " (your own instruction: no goal to check; see the frames)")
    else:
        print(f"outcome: {'SUCCESS' if result.success else 'FAILURE'} ({run.status}, {result.steps} steps)")
        if result.unmet:
            print("  unmet: " + "; ".join(result.unmet))
    strip = _strip(frames, np, cv2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), strip):
        raise ScenarioError(f"could not write the PNG strip to {out}; check the folder is writable")
    print(f"episode frames: {out.resolve()}")
    return 0


def _model_shipped() -> bool:
    try:
        from edgeagent.models.runtime import default_model_dir

        default_model_dir()
        return True
    except Exception:  # no model shipped yet, or the model runtime is not available
        return False


def _strip(frames, np, cv2, height: int = 240):
    """Frames side by side, each scaled to ``height`` and numbered."""
    tiles = []
    for i, f in enumerate(frames):
        w = int(f.shape[1] * height / f.shape[0])
        t = cv2.resize(f, (w, height), interpolation=cv2.INTER_AREA)
        cv2.putText(t, str(i), (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(t)
    return np.hstack(tiles) if tiles else np.zeros((height, height, 3), np.uint8)
