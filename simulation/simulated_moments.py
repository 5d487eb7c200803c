"""Engagement a week, fitted by simulated moments: the simulator's own MQL count for the
period is matched to the observed one (geometric bisection; the interval by the delta
method through the local slope). Leads become MQLs by the policy's scoring rules, so no
closed form links engagement to MQL volume; the simulator is the model being fitted."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from leadflow.journey import DecisionEntry, DecisionKind
from leadflow.policy import Policy
from simulation.calibration import Calibration, engagement_rate_target
from simulation.calibration_stats import Fitted
from simulation.model import JourneyModel, LeadJourney
from simulation.runner import replication_seeds
from simulation.scenario import resolve_scenario

REPLICATIONS = 2
STEPS = 7
LOW, HIGH = 0.05, 60.0


def engagement_fitter(policy: Policy, on_step: Callable[[], None] | None = None) -> Callable[[Calibration], None]:
    """The ``fit_engagement`` step of ``calibrate``, simulating under ``policy``."""

    def fit(calibration: Calibration) -> None:
        target, (low_target, high_target), n = engagement_rate_target(calibration)
        weeks = (calibration.until - calibration.since).total_seconds() / (7 * 86400)
        seen: dict[float, float] = {}

        def mql_per_week(engagement: float) -> float:
            if engagement not in seen:
                data = calibration.scenario("fit", policy.model_dump(mode="json"))
                data["behaviour"] = {**data["behaviour"], "engagement_per_week": engagement}
                loaded = resolve_scenario(data, "calibration")
                with ProcessPoolExecutor(max_workers=min(REPLICATIONS, os.cpu_count() or 1)) as pool:
                    counts = list(pool.map(_count_mqls, [(loaded, r) for r in range(REPLICATIONS)]))
                seen[engagement] = sum(counts) / len(counts) / weeks
                if on_step:
                    on_step()
            return seen[engagement]

        if n < 30:
            calibration.warn(f"behaviour.engagement_per_week: only {n} MQLs in the period (need 30): the default is kept")
            return
        floor = mql_per_week(LOW)
        if floor >= target:
            calibration.add(Fitted("behaviour.engagement_per_week", LOW, n, None, "simulated moments (MQLs a week)",
                                   "events/week", warning=f"hand-raisers alone give {floor:.1f} MQLs a week, at or "
                                   f"above the {target:.1f} observed: engagement barely matters here"))
            calibration.behaviour["engagement_per_week"] = LOW
            return
        low, high = LOW, HIGH
        for _ in range(STEPS):
            middle = (low * high) ** 0.5
            if mql_per_week(middle) < target:
                low = middle
            else:
                high = middle
        value = (low * high) ** 0.5
        slope = (mql_per_week(high) - mql_per_week(low)) / (high - low) if high > low else 0.0
        interval: tuple[float, float] | None = None
        if slope > 0:
            interval = (max(0.0, value - (target - low_target) / slope), value + (high_target - target) / slope)
        calibration.add(Fitted(
            "behaviour.engagement_per_week", value, n, interval,
            f"simulated moments: MQLs a week matched ({target:.1f} observed, {REPLICATIONS} replications per step); "
            "interval by the delta method from the observed count's exact Poisson interval", "events/week",
            extra={"simulated_mql_per_week": mql_per_week(value) if value in seen else (seen[low] + seen[high]) / 2}))
        calibration.behaviour["engagement_per_week"] = round(value, 4)

    return fit




class _MqlCounter(JourneyModel):
    """A replication that only counts MQL decisions after the warm-up, as the closed-loop
    report counts MQLs of a period (``funnel.total.mql``), without keeping traces."""

    mqls = 0

    def observe(self, journey: LeadJourney, entry: DecisionEntry) -> None:
        if entry.kind is DecisionKind.MQL and self.env.now >= self.warmup:
            self.mqls += 1

    def count(self) -> int:
        self.run()
        return self.mqls


def _count_mqls(job: tuple[object, int]) -> int:
    loaded, replication = job
    return _MqlCounter(loaded, replication_seeds(7, replication)).count()  # type: ignore[arg-type]
