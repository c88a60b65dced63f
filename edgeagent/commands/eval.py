"""``edgeagent eval FILE... --planner NAME``: score a planner on scenario files in the simulator."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="run scenario files closed loop in the simulator and print a success table")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files (DESIGN §9)")
    p.add_argument("--planner", default="expert",
                   help="model | expert | remote | auto | local | hedge (default: expert)")
    p.add_argument("--model", help="model folder (planner.onnx + manifest.json); default: the shipped one")
    p.add_argument("--connect", help="offload server endpoint for remote/auto, e.g. tcp://127.0.0.1:5557")
    p.add_argument("--deadline-ms", type=float, default=None, help="deadline per plan request")
    p.add_argument("--grasp-failure", type=float, default=0.0,
                   help="probability that a grasp fails, to exercise re-planning (default 0)")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="also write results as JSON here")
    p.add_argument("--quiet", action="store_true", help="only the per-family table")
    p.add_argument("--curve", action="store_true",
                   help="also print how confidence routes: per threshold, the share of episodes that clear it "
                        "and their success rate")
    p.add_argument("--calibrate", type=float, metavar="SUCCESS", default=None,
                   help="also print the lowest confidence threshold at which the episodes whose first plan "
                        "clears it succeed at least this often (e.g. 0.98), to set as router.threshold; "
                        "with the standard error of that rate (ask for about two more to keep the rate on "
                        "new scenarios)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeagent.errors import ConfigError
    from edgeagent.harness import (DEFAULT_THRESHOLDS, PlannerContext, confidence_curve, evaluate, format_curve, format_table,
                                   make_planner, summarize, threshold_for)
    from edgeagent.files import write_json_atomic
    from edgeagent.sim.scenario import load_scenarios

    if not 0.0 <= args.grasp_failure <= 1.0:
        raise ConfigError(f"--grasp-failure must be in [0, 1], got {args.grasp_failure}")
    if args.calibrate is not None and not 0.0 < args.calibrate <= 1.0:
        raise ConfigError(f"--calibrate must be a success rate in (0, 1], e.g. 0.98; got {args.calibrate}")
    scenarios = load_scenarios(args.files)  # validates everything before anything runs
    make = make_planner(args.planner, PlannerContext(args.model, args.connect, args.deadline_ms))

    tty = sys.stderr.isatty()

    def progress(i, n, elapsed, res):
        # A live line on a terminal; a line every 25 scenarios in logs.
        if tty or i == n or i % 25 == 0:
            eta = elapsed / i * (n - i)
            line = (f"[{i}/{n}] {elapsed:.0f}s elapsed, ETA {eta:.0f}s  last: {res.name} "
                    f"{'ok' if res.success else 'FAILED'}")
            print(f"\r{line}\033[K" if tty else line, end="" if tty and i < n else "\n", file=sys.stderr)

    results = evaluate(scenarios, make, grasp_failure=args.grasp_failure, progress=progress)
    summary = summarize(results)
    print(format_table(results, summary, per_scenario=not args.quiet))
    default = _model_threshold(args) if args.planner == "model" else None
    curve = confidence_curve(results, None if default is None else (*DEFAULT_THRESHOLDS, default))
    if args.curve:
        print()
        print(format_curve(curve, default))
    calibrated = None
    if args.calibrate is not None:
        calibrated = threshold_for(results, args.calibrate)
        print()
        if calibrated is None:
            print(f"no confidence threshold reaches {100 * args.calibrate:.1f}% success on these scenarios")
        else:
            se = 100 * calibrated["standard_error"]
            print(f"threshold {calibrated['threshold']:.4f}: {100 * calibrated['accepted']:.1f}% of first plans clear "
                  f"it and {100 * calibrated['success_if_accepted']:.1f}% of those succeed (asked: "
                  f"{100 * args.calibrate:.1f}%; standard error {se:.2f} points); set it as router.threshold, "
                  "or export with --threshold")
            margin = 100 * args.calibrate + 2 * se
            print("a threshold picked at the rate asked for keeps it on new scenarios only about half the time: "
                  + (f"to keep {100 * args.calibrate:.1f}%, ask for about {margin:.1f}% (two standard errors more), "
                     "on more scenarios if that leaves too few clearing" if margin < 100 else
                     f"too few first plans clear it to keep {100 * args.calibrate:.1f}% with a margin; "
                     "evaluate more scenarios"))
    if args.json_out:
        write_json_atomic(args.json_out, {"planner": args.planner, "files": args.files,
                                          "grasp_failure": args.grasp_failure, "summary": summary,
                                          "confidence_threshold": default, "confidence_curve": curve,
                                          "calibrated_threshold": calibrated,
                                          "scenarios": [r.to_dict() for r in results]})
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0


def _model_threshold(args) -> float:
    from edgeagent.models.manifest import load_manifest
    from edgeagent.models.runtime import default_model_dir

    return round(load_manifest(args.model or default_model_dir())[0].confidence_threshold, 4)
