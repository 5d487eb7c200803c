"""Backtest: simulate a past period under the policy that was live, and hold the forecast
to what happened (``leadflow backtest``).

Both sides are the closed-loop report of the period (``leadflow.report.sla_report``): the
actual one from the history, and one per simulated replication (``simulated_report``), so
every figure has one definition. A single period is one draw, so an actual figure is
judged against the simulation's 95% *prediction* interval for one period,
mean +/- t(0.975, n-1) * s * sqrt(1 + 1/n) over the n replications, not against the
interval of the simulated mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone

from pydantic import BaseModel
from scipy import stats

from leadflow.history import History
from leadflow.journey import Clock
from leadflow.report import FunnelCounts, SlaReport
from simulation.closed_loop import simulated_report
from simulation.runner import process_pool
from simulation.scenario import LoadedScenario

INTERVAL_METHOD = "95% prediction interval for one period: mean +/- t(0.975, n-1) * s * sqrt(1 + 1/n) over n replications"


class BacktestRow(BaseModel):
    metric: str
    unit: str
    actual: float | None
    actual_n: int
    simulated: float | None
    interval: tuple[float, float] | None
    inside: bool | None


class Backtest(BaseModel):
    scenario: str
    source: str
    since: datetime
    until: datetime
    policy_version: str
    replications: int
    interval_method: str = INTERVAL_METHOD
    rows: list[BacktestRow]

    @property
    def inside(self) -> int:
        return sum(1 for row in self.rows if row.inside)

    @property
    def compared(self) -> int:
        return sum(1 for row in self.rows if row.inside is not None)


def figures(report: SlaReport, tiers: list[str]) -> dict[str, tuple[float | None, int]]:
    """The figures a backtest compares, each with the count it rests on."""
    out: dict[str, tuple[float | None, int]] = {}
    first_contact = report.sla.get(str(Clock.FIRST_CONTACT), {})
    for tier in tiers:
        item = first_contact.get(tier)
        out[f"sla_attainment_{tier}"] = (item.attainment, item.met + item.missed) if item else (None, 0)
    ttfc = report.ttfc_hours
    out["ttfc_p50_business_hours"] = (ttfc.p50, ttfc.n)
    out["ttfc_p90_business_hours"] = (ttfc.p90, ttfc.n)
    total = report.funnel["total"]
    assert isinstance(total, FunnelCounts)
    out["mql"] = (float(total.mql), total.mql)
    out["sql"] = (float(total.sql), total.sql)
    out["mql_to_sql"] = (total.sql / total.mql if total.mql else None, total.mql)
    return out


UNITS = {"ttfc_p50_business_hours": "business hours", "ttfc_p90_business_hours": "business hours", "mql": "leads",
         "sql": "leads", "mql_to_sql": "share"}


def aligned(loaded: LoadedScenario, since: datetime, until: datetime) -> LoadedScenario:
    """The scenario moved so that its measured period (after the warm-up) is ``[since, until)``."""
    scenario = loaded.scenario
    start = (since - timedelta(days=scenario.warmup_days)).astimezone(timezone.utc).date()
    start_at = datetime.combine(start, time(0), tzinfo=timezone.utc)
    warmup = (since - start_at).total_seconds() / 86400
    horizon = (until - start_at).total_seconds() / 86400
    moved = scenario.model_copy(update={"start": start, "warmup_days": warmup, "horizon_days": horizon})
    return loaded.model_copy(update={"scenario": moved})


def _replication(args: tuple[LoadedScenario, int, int, list[str]]) -> dict[str, tuple[float | None, int]]:
    loaded, seed, replication, tiers = args
    return figures(simulated_report(loaded, seed, replication), tiers)


def backtest(loaded: LoadedScenario, history: History, replications: int, seed: int | None = None, workers: int = 1,
             on_done: Callable[[], None] | None = None) -> Backtest:
    """Simulate ``history``'s period with ``loaded`` and compare each figure with the actual one."""
    moved = aligned(loaded, history.since, history.until)
    seed = moved.scenario.seed if seed is None else seed
    tiers = [tier.name for tier in moved.policy.tiers]
    jobs = [(moved, seed, replication, tiers) for replication in range(replications)]
    simulated: list[dict[str, tuple[float | None, int]]] = []
    if workers > 1:
        with process_pool(workers) as pool:
            for result in pool.map(_replication, jobs):
                simulated.append(result)
                if on_done:
                    on_done()
    else:
        for job in jobs:
            simulated.append(_replication(job))
            if on_done:
                on_done()
    actual = figures(history.report(), tiers)
    rows = []
    for metric, (value, count) in actual.items():
        samples = [float(run[metric][0]) for run in simulated if run[metric][0] is not None]  # type: ignore[arg-type]
        mean, interval = _prediction(samples)
        if interval is not None and UNITS.get(metric, "share") == "share":
            interval = (max(0.0, interval[0]), min(1.0, interval[1]))
        elif interval is not None:
            interval = (max(0.0, interval[0]), interval[1])
        inside = None if value is None or interval is None else interval[0] <= value <= interval[1]
        rows.append(BacktestRow(metric=metric, unit=UNITS.get(metric, "share"), actual=value, actual_n=count,
                                simulated=mean, interval=interval, inside=inside))
    return Backtest(scenario=loaded.scenario.name, source=history.source, since=history.since, until=history.until,
                    policy_version=moved.policy.version, replications=replications, rows=rows)


def _prediction(samples: list[float]) -> tuple[float | None, tuple[float, float] | None]:
    n = len(samples)
    if n == 0:
        return None, None
    mean = sum(samples) / n
    if n < 2:
        return mean, None
    spread = math.sqrt(sum((value - mean) ** 2 for value in samples) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * spread * math.sqrt(1 + 1 / n)
    return mean, (mean - half, mean + half)
