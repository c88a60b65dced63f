"""``edgeagent serve --config robot.yaml``: the onboard service (requests on ROUTER, events on PUB)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the onboard service: plan/run/status/cancel/reload over ZeroMQ")
    p.add_argument("--config", help="robot config YAML (backend, camera, planner, router, service, security); "
                                    "default: the simulator with the shipped model")
    p.add_argument("--endpoint", help="requests endpoint (default tcp://127.0.0.1:5555)")
    p.add_argument("--events", help="events endpoint (default tcp://127.0.0.1:5556)")
    p.add_argument("--mode", choices=("local", "remote", "auto", "hedge"), help="router mode (overrides router.mode)")
    p.add_argument("--offload", metavar="ENDPOINT", help="workstation offload server (overrides router.offload)")
    p.add_argument("--model", help="model folder (overrides planner.model)")
    p.set_defaults(func=run)


def run(args) -> int:
    import signal
    import threading

    from edgeagent.service import serve
    from edgeagent.service_config import load_service_config, with_overrides

    cfg = load_service_config(args.config)
    cfg = with_overrides(cfg, **{"service.endpoint": args.endpoint, "service.events": args.events,
                                 "router.mode": args.mode, "router.offload": args.offload,
                                 "planner.model": args.model})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def ready(server) -> None:
        # One parseable line on stdout: scripts and tests wait for it (ports chosen with tcp://...:*).
        print(f"edgeagent serve: ready requests={server.endpoint} events={server.events_endpoint} "
              f"secure={'yes' if server.secure else 'no (loopback only)'}", flush=True)

    serve(cfg, on_ready=ready, stop=stop)
    return 0
