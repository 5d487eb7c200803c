"""Engagement a week, fitted by simulated moments: the simulator's own MQL count for the
period is matched to the observed one (geometric bisection; the interval by the delta
method through the simulated slope, with the observed count's, the arrival rate's and the
simulation's own noise). Leads become MQLs by the policy's scoring rules, so no
closed form links engagement to MQL volume; the simulator is the model being fitted."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from leadflow.journey import DecisionEntry, DecisionKind
from leadflow.policy import Policy
from simulation.calibration import Calibration, engagement_rate_target
from simulation.calibration_stats import Fitted
from simulation.model import JourneyModel, LeadJourney
from simulation.runner import process_pool, replication_seeds
from simulation.scenario import resolve_scenario

REPLICATIONS = 2
STEPS = 7
SLOPE_BRACKET = 1.25  # the slope is read between value / 1.25 and value * 1.25
Z95 = 1.959964
LOW, HIGH = 0.05, 60.0


def engagement_fitter(policy: Policy, on_step: Callable[[], None] | None = None) -> Callable[[Calibration], None]:
    """The ``fit_engagement`` step of ``calibrate``, simulating under ``policy``."""

    def fit(calibration: Calibration) -> None:
        # One pool for every step: a process started per step pays for its imports each time.
        with process_pool(min(REPLICATIONS, os.cpu_count() or 1)) as pool:
            fit_with(calibration, pool)

    def fit_with(calibration: Calibration, pool: ProcessPoolExecutor) -> None:
        target, (low_target, high_target), n = engagement_rate_target(calibration)
        weeks = (calibration.until - calibration.since).total_seconds() / (7 * 86400)
        seen: dict[float, float] = {}
        spread: dict[float, float] = {}  # the simulated mean's standard error, MQLs a week

        def mql_per_week(engagement: float) -> float:
            if engagement not in seen:
                data = calibration.scenario("fit", policy.model_dump(mode="json"))
                data["behaviour"] = {**data["behaviour"], "engagement_per_week": engagement}
                loaded = resolve_scenario(data, "calibration")
                counts = list(pool.map(_count_mqls, [(loaded, r) for r in range(REPLICATIONS)]))
                seen[engagement] = sum(counts) / len(counts) / weeks
                # Poisson at least: two replications say little about their own spread
                spread[engagement] = max(statistics.stdev(counts), math.sqrt(seen[engagement] * weeks)) / math.sqrt(
                    len(counts)) / weeks
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
        # The local slope over a bracket wide enough that the simulation's noise does not swamp it.
        below, above = value / SLOPE_BRACKET, value * SLOPE_BRACKET
        slope = (mql_per_week(above) - mql_per_week(below)) / (above - below)
        interval: tuple[float, float] | None = None
        if slope > 0:
            # Three sources of error, in quadrature (conservative: the observed count and the
            # arrival rate are fitted on the same leads and move together, which would cancel
            # part of it): the observed count (Poisson), the fitted arrival rate the simulator
            # ran with (MQLs scale with it), and the simulation's own mean at the fitted value.
            observed = (high_target - low_target) / (2 * Z95)
            arrivals = next((item for item in calibration.fitted if item.name == "population.leads_per_week"), None)
            arrival_share = ((arrivals.ci95[1] - arrivals.ci95[0]) / (2 * Z95) / arrivals.value
                             if arrivals is not None and arrivals.ci95 is not None and arrivals.value > 0 else 0.0)
            simulated = max(spread[low], spread[high])
            half = Z95 * math.sqrt(observed ** 2 + (target * arrival_share) ** 2 + simulated ** 2) / slope
            interval = (max(0.0, value - half), value + half)
        calibration.add(Fitted(
            "behaviour.engagement_per_week", value, n, interval,
            f"simulated moments: MQLs a week matched ({target:.1f} observed, {REPLICATIONS} replications per step); "
            "interval by the delta method through the simulated slope, with the observed count's Poisson noise, the "
            "fitted arrival rate's and the simulation's own in quadrature", "events/week",
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
