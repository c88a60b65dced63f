"""``edgeagent jetson``: deployment helpers for Jetson boards (``check``, ``build-engine``, ``stats``)."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("jetson", help="Jetson deployment: check the board, build a TensorRT engine, read telemetry")
    jsub = p.add_subparsers(dest="jetson_command", metavar="SUBCOMMAND")
    p.set_defaults(func=_help(p))

    c = jsub.add_parser("check", help="report what is present and missing for GPU inference (any machine)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(func=run_check)

    b = jsub.add_parser("build-engine", help="build a TensorRT engine from an ONNX model (on the target board)")
    b.add_argument("model", metavar="MODEL.onnx", help="the planner's ONNX file (static shapes)")
    b.add_argument("--out", required=True, metavar="ENGINE", help="where to write the serialized engine")
    b.add_argument("--fp16", action="store_true", help="allow FP16 kernels (float models)")
    b.add_argument("--workspace-mb", type=int, metavar="N",
                   help="builder workspace cap in MiB (default: 1 GiB, sized for an Orin Nano sharing 8 GB)")
    b.add_argument("--timing-cache", metavar="FILE", help="timing cache to reuse and update (faster rebuilds)")
    b.add_argument("--opt-level", type=int, metavar="0-5", help="builder optimization level (TensorRT default: 3)")
    b.set_defaults(func=run_build_engine)

    s = jsub.add_parser("stats", help="print one tegrastats sample, the power mode and the clock state as JSON")
    s.set_defaults(func=run_stats)


def _help(parser):
    def show(args) -> int:
        parser.print_help()
        return 2
    return show


def run_check(args) -> int:
    from edgeagent.jetson.check import as_json, format_table, run_checks

    items = run_checks()
    print(json.dumps(as_json(items), indent=2) if args.json else format_table(items))
    return 0  # a report, not a gate: missing pieces are listed with their fix


def run_build_engine(args) -> int:
    from edgeagent.jetson.engine import DEFAULT_WORKSPACE_MB, build_engine, check_build_request

    workspace_mb = DEFAULT_WORKSPACE_MB if args.workspace_mb is None else args.workspace_mb
    request = check_build_request(args.model, args.out, fp16=args.fp16, workspace_mb=workspace_mb,
                                  timing_cache=args.timing_cache, optimization_level=args.opt_level)
    out = build_engine(request)
    print(f"engine written: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def run_stats(args) -> int:
    import subprocess
    import shutil

    from edgeagent.errors import DependencyMissing
    from edgeagent.jetson.telemetry import parse_tegrastats, read_clock_state, read_power_mode

    exe = shutil.which("tegrastats")
    if exe is None:
        raise DependencyMissing("tegrastats not found: it is part of JetPack (nvidia-l4t-tools) and exists only on "
                                "a Jetson; run `edgeagent jetson check` for the full picture")
    proc = subprocess.Popen([exe, "--interval", "500"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    mode, clocks = read_power_mode(), read_clock_state()
    print(json.dumps({
        "tegrastats": parse_tegrastats(line).to_dict() if line else None,
        "power_mode": {"name": mode.name, "id": mode.id} if mode else None,
        "jetson_clocks_active": clocks.jetson_clocks_active if clocks else None,
    }, indent=2))
    return 0
