"""Router planners for the scenario harness: ``edgeagent eval --planner local|remote|auto|hedge``.

Each builds one ``Router`` for the whole evaluation: the local model (``--model``, default the shipped
one), the offload server at ``--connect`` (required for remote and hedge, optional for auto), a plan
cache, and the deadline from ``--deadline-ms``. ``options["threshold"]`` overrides the model's
confidence threshold. The harness imports this module to register them.
"""

from __future__ import annotations

import atexit
import logging

from edgeagent.errors import ConfigError
from edgeagent.harness import PlannerContext, ScenarioPlanner, register_planner

log = logging.getLogger(__name__)

#: How long an evaluation waits for the first heartbeat of the offload server before starting.
CONNECT_WAIT_S = 3.0


def build_router(mode: str, ctx: PlannerContext):
    """A Router in ``mode`` from harness options; closed at interpreter exit."""
    from edgeagent.cache import PlanCache
    from edgeagent.models.runtime import ModelPlanner, default_model_dir
    from edgeagent.offload import RemotePlanner
    from edgeagent.router import Router

    if mode in ("remote", "hedge") and not ctx.connect:
        raise ConfigError(f"--planner {mode} needs --connect tcp://HOST:5557 (the workstation's offload server)")
    local = ModelPlanner(ctx.model or default_model_dir())
    remote = None
    if ctx.connect and mode != "local":
        remote = RemotePlanner(ctx.connect, registry=local.registry)
        if not remote.wait_ready(CONNECT_WAIT_S):
            state, why = remote.link.state()
            log.warning("offload server %s not answering yet (%s): plans fall back to the local model until it does",
                        ctx.connect, why or state)
    router = Router(local, remote, mode=mode, deadline_ms=ctx.deadline_ms or 200.0,
                    threshold=ctx.options.get("threshold"), cache=PlanCache(local.registry))
    atexit.register(router.close)
    return router


def _factory(mode: str):
    def make(ctx: PlannerContext) -> ScenarioPlanner:
        router = build_router(mode, ctx)
        return lambda scenario, robot: router

    make.__doc__ = f"Router in {mode} mode (edgeagent eval --planner {mode})."
    return make


for _mode in ("local", "remote", "auto", "hedge"):
    register_planner(_mode, _factory(_mode))
