"""Scoring planners on scenario files in the simulator, closed loop as on a robot (DESIGN §9).

A planner is chosen by name from ``PLANNERS`` (a dict of factories). A factory gets a
``PlannerContext`` and returns a callable that makes the planner for one scenario: the expert needs
each scenario's goal and world, a model planner is loaded once and reused.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edgeagent.errors import ConfigError
from edgeagent.executor import Executor, RunResult
from edgeagent.types import Planner


@dataclass(frozen=True)
class PlannerContext:
    """What a planner factory may use: CLI options and the model/offload settings."""

    # Folder of a model (planner.onnx + manifest.json); None = the shipped default.
    model: str | None = None
    # Offload server endpoint for remote/auto planners.
    connect: str | None = None
    # Deadline per plan request, milliseconds.
    deadline_ms: float | None = None
    # Extra options a factory understands (e.g. confidence threshold).
    options: dict[str, Any] = field(default_factory=dict)


#: Makes a planner for one scenario, given the scenario and its live SimRobot.
ScenarioPlanner = Callable[[Any, Any], Planner]


def _expert(ctx: PlannerContext) -> ScenarioPlanner:
    from edgeagent.sim.expert import ExpertPlanner

    return lambda scenario, robot: ExpertPlanner(robot.world, scenario.bound_goal(robot.world))


def _model(ctx: PlannerContext) -> ScenarioPlanner:
    from edgeagent.models.runtime import ModelPlanner, default_model_dir

    planner = ModelPlanner(ctx.model or default_model_dir())
    return lambda scenario, robot: planner


#: Planner name -> factory. Later parts register more ("remote", "auto") with ``register_planner``.
PLANNERS: dict[str, Callable[[PlannerContext], ScenarioPlanner]] = {"expert": _expert, "model": _model}


def register_planner(name: str, factory: Callable[[PlannerContext], ScenarioPlanner]) -> None:
    if name in PLANNERS:
        raise ValueError(f"planner {name!r} is already registered")
    PLANNERS[name] = factory


def make_planner(name: str, ctx: PlannerContext) -> ScenarioPlanner:
    _load_plugins()
    try:
        factory = PLANNERS[name]
    except KeyError:
        raise ConfigError(f"unknown planner {name!r}; choose one of {', '.join(sorted(PLANNERS))}") from None
    return factory(ctx)


def _load_plugins() -> None:
    # Planners defined by other parts of the package register themselves on import.
    import importlib

    for module in ("edgeagent.routing",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


@dataclass
class ScenarioResult:
    name: str
    family: str
    success: bool
    status: str
    steps: int
    plan_latency_ms: list[float]
    unmet: list[str]
    error: str = ""
    # Each plan's confidence, in order (the first is what a router sees for the instruction).
    confidences: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        lat = self.plan_latency_ms
        return {"name": self.name, "family": self.family, "success": self.success, "status": self.status,
                "steps": self.steps, "plans": len(lat),
                "plan_latency_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99)}, "unmet": self.unmet,
                "error": self.error, "confidences": [round(c, 4) for c in self.confidences]}


def run_scenario(scenario, make: ScenarioPlanner, *, grasp_failure: float = 0.0, style=None,
                 on_event=None, on_observation=None) -> tuple[ScenarioResult, RunResult]:
    """Run one scenario closed loop; success is judged on the true world state at the end."""
    from edgeagent.sim.goals import holds, unmet
    from edgeagent.sim.robot import SimRobot

    world = scenario.build_world(grasp_failure=grasp_failure)
    goal = scenario.bound_goal(world)
    robot = SimRobot(world, style=style, seed=scenario.scene.seed)
    planner = make(scenario, robot)
    executor = Executor(robot, planner, max_steps=scenario.max_steps, on_event=on_event,
                        on_observation=on_observation)
    with robot:
        run = executor.run(scenario.instruction)
    ok = holds(goal, world)
    result = ScenarioResult(scenario.name, scenario.family or "-", ok, run.status, run.steps,
                            run.plan_latencies_ms, [] if ok else unmet(goal, world), run.error,
                            [float(p.confidence) for p in run.plans])
    return result, run


def evaluate(scenarios, make: ScenarioPlanner, *, grasp_failure: float = 0.0, progress=None) -> list[ScenarioResult]:
    results = []
    start = time.perf_counter()
    for i, sc in enumerate(scenarios):
        res, _ = run_scenario(sc, make, grasp_failure=grasp_failure)
        results.append(res)
        if progress is not None:
            progress(i + 1, len(scenarios), time.perf_counter() - start, res)
    return results


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return round(v[lo] + (v[hi] - v[lo]) * (k - lo), 3)


def summarize(results: list[ScenarioResult]) -> dict[str, Any]:
    fams: dict[str, list[ScenarioResult]] = {}
    for r in results:
        fams.setdefault(r.family, []).append(r)
    lat = [x for r in results for x in r.plan_latency_ms]

    def block(rs):
        la = [x for r in rs for x in r.plan_latency_ms]
        return {"scenarios": len(rs), "success": sum(r.success for r in rs),
                "success_rate": round(sum(r.success for r in rs) / len(rs), 4) if rs else None,
                "mean_steps": round(statistics.fmean(r.steps for r in rs), 2) if rs else None,
                "plan_latency_ms": {"p50": _pct(la, 50), "p99": _pct(la, 99)}}

    return {"overall": block(results), "families": {f: block(rs) for f, rs in sorted(fams.items())},
            "plan_latency_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99)}}


#: Thresholds the routing curve is reported at (plus the model's own).
DEFAULT_THRESHOLDS = (*(round(0.05 * i, 2) for i in range(20)), 0.97, 0.98, 0.99)


def confidence_curve(results: list[ScenarioResult], thresholds=None) -> list[dict[str, Any]]:
    """How well confidence routes: per threshold, the share of episodes whose first plan clears it
    (``accepted``, they would stay local) and the success rate among those (``success_if_accepted``);
    ``all_plans_accepted`` counts episodes where every plan cleared it."""
    rs = [r for r in results if r.confidences]
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS
    rows = []
    for t in sorted(set(thresholds)):
        acc = [r for r in rs if r.confidences[0] >= t]
        every = [r for r in rs if min(r.confidences) >= t]
        rows.append({"threshold": t, "accepted": round(len(acc) / len(rs), 4) if rs else None,
                     "success_if_accepted": round(sum(r.success for r in acc) / len(acc), 4) if acc else None,
                     "all_plans_accepted": round(len(every) / len(rs), 4) if rs else None,
                     "success_if_all_accepted": round(sum(r.success for r in every) / len(every), 4) if every else None})
    return rows


def lowest_threshold(conf, ok, success: float) -> tuple[float, int, float] | None:
    """(threshold, how many clear it, their success rate) for the lowest threshold at which the items
    whose ``conf`` clears it are ``ok`` at least ``success`` of the time; None when none is. Items of
    equal confidence are never split: a threshold accepts all of them."""
    import numpy as np

    conf, ok = np.asarray(conf, float), np.asarray(ok, bool)
    order = np.argsort(-conf, kind="stable")
    c, rate = conf[order], np.cumsum(ok[order]) / np.arange(1, len(order) + 1)
    last_of_tie = np.append(c[1:] < c[:-1], True) if len(c) else np.zeros(0, bool)
    hits = np.flatnonzero(last_of_tie & (rate >= success))
    if not len(hits):
        return None
    i = int(hits[-1])
    return float(c[i]), i + 1, float(rate[i])


def standard_error(success: float, n: int) -> float:
    """Standard error of a success rate of ``success`` measured over ``n`` plans: how far the rate of the
    plans clearing a threshold placed at ``success`` moves on new scenarios. (Of the target rate, not
    the one measured: 1 success of 1 says little, where its own rate would claim no error at all.)"""
    return math.sqrt(success * (1.0 - success) / n)


def threshold_for(results: list[ScenarioResult], success: float) -> dict[str, Any] | None:
    """The lowest first-plan threshold at which the episodes that clear it succeed at least ``success``
    of the time, with the share that clears it and the standard error of a ``success`` rate over the
    episodes that clear it (``standard_error``); None when no threshold does. Pick it on scenarios the figures are not
    reported on, then report on others: placed exactly at the rate asked for, a threshold lands below
    it on new scenarios about half the time, so ask for about two standard errors more."""
    rs = [r for r in results if r.confidences]
    found = lowest_threshold([r.confidences[0] for r in rs], [r.success for r in rs], success)
    if found is None:
        return None
    t, n, rate = found
    return {"threshold": t, "accepted": round(n / len(rs), 4), "success_if_accepted": round(rate, 4),
            "standard_error": round(standard_error(success, n), 4), "target": success}


def format_curve(rows: list[dict[str, Any]], default: float | None = None) -> str:
    lines = [f"{'threshold':>9} {'first plan clears':>18} {'success of those':>17} {'every plan clears':>18} {'success of those':>17}"]
    for r in rows:
        mark = "  <- model default" if default is not None and abs(r["threshold"] - default) < 1e-9 else ""
        lines.append(f"{r['threshold']:>9.2f} {_rate(r['accepted']):>18} {_rate(r['success_if_accepted']):>17} "
                     f"{_rate(r['all_plans_accepted']):>18} {_rate(r['success_if_all_accepted']):>17}{mark}")
    return "\n".join(lines)


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def format_table(results: list[ScenarioResult], summary: dict[str, Any], *, per_scenario: bool = True) -> str:
    lines = []
    if per_scenario:
        w = max([8] + [len(r.name) for r in results])
        lines.append(f"{'scenario':<{w}}  {'family':<18} {'ok':<4} {'status':<10} {'steps':>5} {'p50 ms':>8} {'p99 ms':>8}")
        for r in results:
            d = r.to_dict()["plan_latency_ms"]
            lines.append(f"{r.name:<{w}}  {r.family:<18} {'yes' if r.success else 'NO':<4} {r.status:<10} "
                         f"{r.steps:>5} {_fmt(d['p50']):>8} {_fmt(d['p99']):>8}")
        lines.append("")
    lines.append(f"{'family':<20} {'success':>12} {'rate':>7} {'steps':>6} {'p50 ms':>8} {'p99 ms':>8}")
    rows = list(summary["families"].items()) + [("ALL", summary["overall"])]
    for fam, b in rows:
        lines.append(f"{fam:<20} {b['success']:>5}/{b['scenarios']:<6} {100 * b['success_rate']:>6.1f}% "
                     f"{b['mean_steps']:>6.2f} {_fmt(b['plan_latency_ms']['p50']):>8} "
                     f"{_fmt(b['plan_latency_ms']['p99']):>8}")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
