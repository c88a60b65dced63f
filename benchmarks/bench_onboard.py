"""Figures 5 and 7: what the onboard service itself costs: the router's decision and a plan-cache hit;
the service's start to first answer and its peak memory.
"""

from __future__ import annotations

from typing import Any

from bench_model import INSTRUCTION, scene_observation
from bench_service import BUDGETS, decision_samples, process_samples
from measure import Context, Skip, measure, time_runs


class FixedPlanner:
    """Always the same confident two-call plan (no model: these figures time the router, not inference)."""

    def __init__(self):
        from edgeagent.types import Call, Plan

        self.result = Plan((Call("pick", {"at": (0.12, -0.05)}), Call("place", {"at": (0.0, 0.1)})), False, 0.9,
                           "local", "fixed")

    def plan(self, obs, instruction, *, deadline_ms=None):
        return self.result


def fig_router(ctx: Context) -> dict[str, Any]:
    """Router.decide on a healthy link, and a plan served from the cache (640 x 480 frame)."""
    from edgeagent.cache import PlanCache, scene_signature
    from edgeagent.router import Router

    n = ctx.reps(200_000, 20_000)
    rows = [measure("router decision (healthy link, the longest path)", "us", decision_samples(n, ctx.runs),
                    f"{n // ctx.runs} decisions (mean per decision)", budget={"p50": BUDGETS["router_decision_us"]})]
    obs = scene_observation()
    router = Router(FixedPlanner(), mode="local", cache=PlanCache())
    first = router.plan(obs, INSTRUCTION)  # miss: planned and stored
    hit = router.plan(obs, INSTRUCTION)
    if first.source != "local" or hit.source != "cache":
        raise RuntimeError(f"expected a miss then a hit, got {first.source} then {hit.source}")
    reps = ctx.reps(500, 50)
    run = f"{reps} requests of one 640x480 frame"
    rows.append(measure("plan-cache hit through Router.plan (signature + lookup + re-validation)", "us",
                        time_runs(lambda: router.plan(obs, INSTRUCTION), ctx.runs, reps, scale=1e6), run))
    sig = scene_signature(obs)
    rows.append(measure("  of which the scene signature (thumbnails of the frame)", "us",
                        time_runs(lambda: scene_signature(obs), ctx.runs, reps, scale=1e6), run))
    rows.append(measure("  of which the lookup and re-validation (PlanCache.get)", "us",
                        time_runs(lambda: router.cache.get(INSTRUCTION, obs, sig), ctx.runs, reps, scale=1e6), run))
    return {"title": "Router decision and plan cache", "rows": rows,
            "notes": ["the local planner is a stub returning a fixed plan: these rows exclude inference"]}


def fig_startup(ctx: Context) -> dict[str, Any]:
    """``edgeagent serve`` as a process: spawn to first answered ping; its peak RSS after plan requests."""
    try:
        model = ctx.model("int8")
    except Skip:
        model = None
    n = ctx.reps(500, 20)
    starts, rss = process_samples(str(model) if model else None, n, ctx.runs)
    run = "one start of edgeagent serve"
    return {"title": "Service start and memory", "rows": [
        measure("service start to first answer", "s", starts, run,
                budget={"max": BUDGETS["start_to_first_answer_s"]}),
        measure(f"service peak RSS after {n} plan requests", "MB", rss, run + " (VmHWM)",
                budget={"max": BUDGETS["peak_rss_mb"]})],
        "notes": [f"model: {model or 'none: the expert planner'}; simulator backend, router mode local"]}
