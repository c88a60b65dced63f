"""``edgeagent offload-server --config ws.yaml``: plan for robots on a workstation."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("offload-server", help="serve plan requests from robots with a workstation planner")
    p.add_argument("--config", help="workstation config YAML (endpoint, planner, workers, security); "
                                    "default: the shipped model on tcp://127.0.0.1:5557")
    p.add_argument("--endpoint", help="requests endpoint (default tcp://127.0.0.1:5557)")
    p.add_argument("--model", help="model folder (overrides planner.model)")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    import signal
    import threading

    from edgeagent.backends import build_planner
    from edgeagent.offload import OffloadServer
    from edgeagent.service_config import base_dir, load_offload_config, resolve, with_overrides
    from edgeagent.transport import CurveServer, load_keypair, load_public_keys

    log = logging.getLogger("edgeagent.offload")
    cfg = load_offload_config(args.config)
    cfg = with_overrides(cfg, **{"endpoint": args.endpoint, "planner.model": args.model})
    where = cfg.source or "config"
    registry = cfg.primitives.registry(where)
    curve = None
    if cfg.security.secret_key:
        keys = load_keypair(resolve(cfg, cfg.security.secret_key), f"{where}: security.secret_key")
        allow = load_public_keys(cfg.security.allow, f"{where}: security.allow", base_dir(cfg))
        curve = CurveServer(keys, allow)
    planner = build_planner(cfg.planner, registry, source_cfg=cfg, where=f"{where}: planner")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with OffloadServer(planner, cfg.endpoint, curve=curve, workers=cfg.workers, queue_size=cfg.queue) as server:
        if curve is None:
            log.warning("no keys configured: serving unencrypted on loopback only")
        log.info("planning for robots on %s with %s (%s), %d workers", server.endpoint,
                 getattr(planner, "model_id", type(planner).__name__), getattr(planner, "provider", "-"), cfg.workers)
        print(f"edgeagent offload-server: ready endpoint={server.endpoint} "
              f"secure={'yes' if curve else 'no (loopback only)'}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0
