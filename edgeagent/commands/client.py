"""``edgeagent run``, ``edgeagent plan`` and ``edgeagent health``: talk to a running service.

    edgeagent run "put the red block in the blue bowl" --connect tcp://robot:5555 --follow
    edgeagent plan "put the red block in the blue bowl" --image frame.jpg [--connect tcp://robot:5555]
    edgeagent health --connect tcp://robot:5555
"""

from __future__ import annotations

DEFAULT_CONNECT = "tcp://127.0.0.1:5555"


def _connection_args(p, required: bool = False) -> None:
    p.add_argument("--connect", metavar="ENDPOINT", required=required, default=None if not required else None,
                   help=f"the service's requests endpoint (default {DEFAULT_CONNECT})")
    p.add_argument("--key", metavar="FILE", help="this client's secret key file (NAME.key_secret), for CURVE")
    p.add_argument("--server-key", metavar="KEY", help="the service's public key file or Z85 string, for CURVE")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply (default 5)")


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run an instruction closed loop on a robot service")
    r.add_argument("instruction")
    _connection_args(r)
    r.add_argument("--follow", action="store_true", help="stream the task's events until it ends (Ctrl-C cancels)")
    r.add_argument("--events", metavar="ENDPOINT", help="the service's events endpoint (default: as it reports)")
    r.add_argument("--max-steps", type=int, help="step budget of this run")
    r.add_argument("--deadline-ms", type=float, help="deadline of each plan")
    r.add_argument("--json", action="store_true", help="print events as JSON lines")
    r.set_defaults(func=run_command)

    p = sub.add_parser("plan", help="plan an instruction for an image (no motion), on a service or locally")
    p.add_argument("instruction")
    p.add_argument("--image", metavar="FILE", help="JPEG/PNG frame; required without --connect (else the service "
                                                   "camera is used)")
    _connection_args(p)
    p.add_argument("--camera", metavar="FILE", help="calibration YAML/JSON of the image's camera (default: the "
                                                    "service's; locally: the simulator's)")
    p.add_argument("--model", help="model folder for local planning (default: the shipped one)")
    p.add_argument("--deadline-ms", type=float, help="deadline of the plan")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=plan_command)

    h = sub.add_parser("health", help="print a robot service's health as JSON")
    _connection_args(h)
    h.set_defaults(func=health_command)


def _client(args, events: str | None = None):
    from edgeagent.client import Client

    return Client(args.connect or DEFAULT_CONNECT, timeout_s=args.timeout, events=events,
                  secret_key=args.key, server_key=args.server_key)


def _describe(ev: dict) -> str:
    kind = ev.get("kind")
    if kind == "plan":
        p = ev.get("plan") or {}
        calls = p.get("calls") or []
        nxt = "done" if p.get("done") else (_call(calls[0]) if calls else "no call")
        return (f"plan   [{p.get('source')}, {p.get('latency_ms', 0):.1f} ms, confidence {p.get('confidence', 0):.2f}] "
                f"{nxt}  ({p.get('reason', '')})")
    if kind == "step":
        res = ev.get("result") or {}
        return f"step {ev.get('step')}: {_call(ev.get('call') or {})} -> {'ok' if res.get('ok') else 'FAILED'} " \
               f"{res.get('message', '')}"
    return f"{kind}: {ev.get('message', '')}"


def _call(c: dict) -> str:
    args = ", ".join(f"{k}={v}" for k, v in (c.get("args") or {}).items())
    return f"{c.get('primitive')}({args})"


def run_command(args) -> int:
    import json
    import sys

    with _client(args, args.events) as client:
        task = client.run(args.instruction, max_steps=args.max_steps, deadline_ms=args.deadline_ms)
        print(f"task {task}", file=sys.stderr)
        if not args.follow:
            print(task)
            return 0
        last = None
        events = client.follow(task)
        while True:
            try:
                for ev in events:
                    last = ev
                    print(json.dumps(ev) if args.json else _describe(ev), flush=True)
                break
            except KeyboardInterrupt:
                reply = client.cancel(task)
                print(f"cancel requested: {reply.get('message', '')}", file=sys.stderr)
                events = client.follow(task, timeout_s=60)
    return 0 if last is not None and last.get("kind") == "done" else 1


def plan_command(args) -> int:
    import json
    from pathlib import Path

    from edgeagent.errors import ConfigError

    camera = None
    if args.camera:
        from edgeagent.backends import load_calibration

        camera = load_calibration(args.camera, "--camera")
    image_bytes = None
    if args.image:
        try:
            image_bytes = Path(args.image).read_bytes()
        except OSError as exc:
            raise ConfigError(f"--image {args.image}: cannot read ({exc.strerror})") from exc
    if args.connect:
        with _client(args) as client:
            plan = client.plan(args.instruction, image_bytes, camera=camera, deadline_ms=args.deadline_ms)
    else:
        if image_bytes is None:
            raise ConfigError("plan without --connect needs --image FILE (or --connect a service to use its camera)")
        plan = _plan_locally(args, image_bytes, camera)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print(f"source {plan.source} ({plan.model}), {plan.latency_ms:.1f} ms, confidence {plan.confidence:.2f}"
              f"{', done' if plan.done else ''}")
        if plan.reason:
            print(f"reason: {plan.reason}")
        for call in plan.calls:
            print(f"  {call}")
    return 0


def _plan_locally(args, image_bytes: bytes, camera):
    from edgeagent.errors import ConfigError, ProtocolError
    from edgeagent.models.runtime import ModelPlanner, default_model_dir
    from edgeagent.protocol import decode_image
    from edgeagent.types import UNKNOWN, Observation

    try:
        image = decode_image(image_bytes, "--image")
    except ProtocolError as exc:
        raise ConfigError(f"--image {args.image}: {exc}") from None
    h, w = image.shape[:2]
    if camera is None:
        from edgeagent.sim.render import default_camera

        camera = default_camera(w, h)
    elif (camera.width, camera.height) != (w, h):
        camera = camera.resized(w, h)
    planner = ModelPlanner(args.model or default_model_dir())
    return planner.plan(Observation(image, camera, UNKNOWN), args.instruction, deadline_ms=args.deadline_ms)


def health_command(args) -> int:
    import json

    with _client(args) as client:
        print(json.dumps(client.health(), indent=2))
    return 0
