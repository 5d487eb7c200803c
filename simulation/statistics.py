"""Streaming statistics of one replication, and estimates with intervals over replications."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from leadflow.journey import SLA_CLOCKS, Clock, DecisionEntry, DecisionKind, JourneyState
from leadflow.kpis import ContactSla, FunnelRatio, FunnelStep, SlaSettled, first_contact_time, funnel_ratio, funnel_step
from simulation.life_table import LifeTable
from simulation.results import Difference, Estimate, SteadyState

_COUNTED_KINDS = {
    DecisionKind.BREACH: "breaches",
    DecisionKind.ESCALATED: "escalations",
    DecisionKind.REASSIGNED: "reassignments",
    DecisionKind.RECYCLED: "recycled",
}
PLOTTED_SAMPLES = 5_000  # TTFC samples kept per replication for the report's histograms
# Speed-to-lead thresholds reported as service levels, P(first contact <= t after MQL), wall time.
SPEED_TO_LEAD_MINUTES = (5, 15, 30, 60, 240)
_LEAVING = {DecisionKind.RECYCLED, DecisionKind.DISQUALIFIED, DecisionKind.CONVERTED, DecisionKind.NURTURE_EXPIRED}


@dataclass
class ReplicationStats:
    """What one replication observed, folded in as decisions happen (constant memory per lead)."""

    warmup_hours: float
    horizon_hours: float
    tiers: tuple[str, ...] = ("hot", "warm", "cold")
    buckets: int = 56
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTED_KINDS.values(), 0))
    funnel: dict[FunnelStep, int] = field(default_factory=lambda: dict.fromkeys(FunnelStep, 0))
    leads: int = 0
    settled: dict[tuple[Clock, str, ContactSla], int] = field(default_factory=dict)  # (clock, tier, outcome)
    # Every counted MQL's wait for its first contact, contacted or still waiting at the
    # horizon (``simulation.life_table``); the arrays keep the first samples, for plots only.
    ttfc_business_table: LifeTable = field(default_factory=LifeTable)
    ttfc_wall_table: LifeTable = field(default_factory=LifeTable)
    ttfc_business: array = field(default_factory=lambda: array("d"))
    ttfc_wall: array = field(default_factory=lambda: array("d"))
    awaiting_contact: dict[int, tuple[str, float, bool, float]] = field(default_factory=dict)
    queue_depth: int = 0
    queue_depth_max: int = 0
    queue_area: float = 0.0
    last_change: float = 0.0
    bucket_queue_area: list[float] = field(default_factory=list)
    bucket_mql: list[float] = field(default_factory=list)  # MQL decisions per bucket
    # Per day from the start, for the steady-state check: queue area (MQL-hours), MQLs.
    day_queue_area: list[float] = field(default_factory=list)
    day_mql: list[float] = field(default_factory=list)
    bucket_busy: list[float] = field(default_factory=list)
    bucket_capacity: list[float] = field(default_factory=list)
    busy_hours: float = 0.0
    working_hours: float = 0.0

    def __post_init__(self) -> None:
        self.bucket_queue_area = [0.0] * self.buckets
        self.bucket_mql = [0.0] * self.buckets
        days = max(1, math.ceil(self.horizon_hours / 24))
        self.day_queue_area = [0.0] * days
        self.day_mql = [0.0] * days
        self.bucket_busy = [0.0] * self.buckets
        self.bucket_capacity = [0.0] * self.buckets
        self.last_change = 0.0

    @property
    def bucket_hours(self) -> float:
        return self.horizon_hours / self.buckets

    def arrived(self, now: float) -> None:
        if now >= self.warmup_hours:
            self.leads += 1

    def decided(self, index: int, entry: DecisionEntry, state: JourneyState, now: float, due: float | None) -> None:
        """Fold one decision of lead ``index`` in (``due``: its first-contact due time, hours, read of an MQL only).

        Counted by when it happened, as the live counters count (``leadflow.kpis``): a decision
        of the measured period counts whenever its lead arrived; a first contact counts with
        the MQL it answers, if that MQL is of the measured period."""
        kind = entry.kind
        counted = now >= self.warmup_hours
        if counted:
            if kind in _COUNTED_KINDS:
                self.counts[_COUNTED_KINDS[kind]] += 1
            if (step := funnel_step(entry)) is not None:
                self.funnel[step] += 1
        if kind is DecisionKind.MQL:
            self.bucket_mql[min(int(now / self.bucket_hours), self.buckets - 1)] += 1
            self.day_mql[min(int(now / 24), len(self.day_mql) - 1)] += 1
            self.awaiting_contact[index] = (state.tier or "none", due if due is not None else math.inf, counted, now)
            self._queue(now, +1)
        elif (sample := first_contact_time(entry)) is not None:
            pending = self.awaiting_contact.pop(index, None)
            if pending is not None:
                self._queue(now, -1)
            if pending is not None and pending[2]:
                business, wall = sample.business_seconds / 3600, sample.wall_seconds / 3600
                self.ttfc_business_table.contacted(business)
                self.ttfc_wall_table.contacted(wall)
                if len(self.ttfc_wall) < PLOTTED_SAMPLES:
                    self.ttfc_business.append(business)
                    self.ttfc_wall.append(wall)
        elif kind in _LEAVING:
            if self.awaiting_contact.pop(index, None) is not None:
                self._queue(now, -1)

    def already_waiting(self, index: int, tier: str | None, due: float | None, now: float, counted: bool = True) -> None:
        """A lead that was an MQL waiting for its first contact when the run started."""
        self.awaiting_contact[index] = (tier or "none", due if due is not None else math.inf, counted, now)
        self._queue(now, +1)

    def sla_settled(self, settled: SlaSettled, now: float) -> None:
        """One SLA settled by the rule of ``leadflow.kpis`` (the live metric's rule), counted
        if it was settled in the measured period (as the report counts it)."""
        if now >= self.warmup_hours:
            key = (settled.clock, settled.tier, settled.outcome)
            self.settled[key] = self.settled.get(key, 0) + 1

    def _by_tier(self, clock: Clock, outcome: ContactSla) -> dict[str, int]:
        return {tier: count for (c, tier, o), count in self.settled.items() if c is clock and o is outcome}

    @property
    def sla_met(self) -> dict[str, int]:
        """First-contact SLAs met, by tier."""
        return self._by_tier(Clock.FIRST_CONTACT, ContactSla.MET)

    @property
    def sla_missed(self) -> dict[str, int]:
        """First-contact SLAs missed, by tier."""
        return self._by_tier(Clock.FIRST_CONTACT, ContactSla.MISSED)

    def _queue(self, now: float, change: int) -> None:
        self._accumulate_queue(now)
        self.queue_depth += change
        if now >= self.warmup_hours:
            self.queue_depth_max = max(self.queue_depth_max, self.queue_depth)

    def _accumulate_queue(self, now: float) -> None:
        start, depth = self.last_change, self.queue_depth
        self.last_change = now
        if depth == 0 or now <= start:
            return
        self._spread(self.bucket_queue_area, start, now, depth)
        self._spread(self.day_queue_area, start, now, depth, 24.0)
        counted_from = max(start, self.warmup_hours)
        if now > counted_from:
            self.queue_area += depth * (now - counted_from)

    def _spread(self, buckets: list[float], start: float, end: float, weight: float, size: float | None = None) -> None:
        size = size or self.bucket_hours
        first = int(start / size)
        last = min(int(end / size), len(buckets) - 1)
        for bucket in range(first, last + 1):
            lo, hi = max(start, bucket * size), min(end, (bucket + 1) * size)
            if hi > lo:
                buckets[bucket] += weight * (hi - lo)

    def busy(self, start: float, hours: float) -> None:
        end = min(start + hours, self.horizon_hours)
        if end <= start:
            return
        self._spread(self.bucket_busy, start, end, 1.0)
        counted_from = max(start, self.warmup_hours)
        if end > counted_from:
            self.busy_hours += end - counted_from

    def rep_available(self, start: float, end: float) -> None:
        """A stretch of one rep's working time (for utilisation)."""
        end = min(end, self.horizon_hours)
        if end <= start:
            return
        self._spread(self.bucket_capacity, start, end, 1.0)
        counted_from = max(start, self.warmup_hours)
        if end > counted_from:
            self.working_hours += end - counted_from

    def finish(self, business_hours_since: Callable[[float], float] | None = None) -> None:
        """Close the replication at the horizon. Counted MQLs still waiting for a first
        contact are censored at their wait so far (``business_hours_since(mql_hours)`` gives
        it in business hours; wall hours if not given); their SLA is unsettled (``leadflow.kpis``)."""
        self._accumulate_queue(self.horizon_hours)
        for _, _, counted, mql_hours in self.awaiting_contact.values():
            if counted:
                waited = self.horizon_hours - mql_hours
                self.ttfc_wall_table.still_waiting(waited)
                self.ttfc_business_table.still_waiting(business_hours_since(mql_hours) if business_hours_since else waited)
        self.awaiting_contact = {}

    def metrics(self) -> dict[str, float]:
        counts = self.counts
        met, missed = sum(self.sla_met.values()), sum(self.sla_missed.values())
        values: dict[str, float] = {
            "sla_attainment": _share(met, met + missed),  # leadflow.kpis.attainment, 0 when nothing settled
            "breaches": counts["breaches"],
            "escalations": counts["escalations"],
            "reassignments": counts["reassignments"],
            "queue_depth_max": self.queue_depth_max,
            "queue_depth_mean": self.queue_area / (self.horizon_hours - self.warmup_hours),
            "rep_utilisation": _share(self.busy_hours, self.working_hours),
            "mql": self.funnel[FunnelStep.MQL],
            "sql": self.funnel[FunnelStep.SQL],
            "recycled": counts["recycled"],
            "converted": self.funnel[FunnelStep.CONVERTED],
            "leads": self.leads,
        }
        for clock in sorted(SLA_CLOCKS - {Clock.FIRST_CONTACT}):
            clock_met = sum(self._by_tier(clock, ContactSla.MET).values())
            clock_missed = sum(self._by_tier(clock, ContactSla.MISSED).values())
            if clock_met + clock_missed:  # absent, not 0%, when the clock never ran (one-attempt cadences)
                values[f"sla_attainment_{clock}"] = clock_met / (clock_met + clock_missed)
        for ratio in FunnelRatio:  # leadflow.kpis's definitions; 0 when the denominator is
            values[str(ratio)] = funnel_ratio(ratio, self.funnel) or 0.0
        for tier in self.tiers:
            tier_met, tier_missed = self.sla_met.get(tier, 0), self.sla_missed.get(tier, 0)
            if tier_met + tier_missed:
                values[f"sla_attainment_{tier}"] = tier_met / (tier_met + tier_missed)
        values.update(ttfc_metrics(self.ttfc_business_table, self.ttfc_wall_table))
        return values

    def timeline(self) -> tuple[list[float], list[float], list[float], list[float]]:
        """Per bucket: start (hours), mean queue depth, utilisation, MQLs."""
        size = self.bucket_hours
        hours = [index * size for index in range(self.buckets)]
        depth = [area / size for area in self.bucket_queue_area]
        utilisation = [busy / cap if cap > 0 else 0.0 for busy, cap in zip(self.bucket_busy, self.bucket_capacity)]
        return hours, depth, utilisation, list(self.bucket_mql)

    def daily(self) -> tuple[list[float], list[float]]:
        """Per day from the start: mean queue depth, MQLs (for the steady-state check)."""
        return [area / 24 for area in self.day_queue_area], list(self.day_mql)


def ttfc_metrics(business: LifeTable, wall: LifeTable) -> dict[str, float]:
    """Time-to-first-contact figures of one replication or of several pooled: percentiles
    and restricted mean from the life tables (censored leads counted), the service level
    at each speed-to-lead threshold, and the share still waiting at the horizon."""
    values: dict[str, float] = {}
    for name, table in (("ttfc", business), ("ttfc_wall", wall)):
        for quantile in (50, 90, 99):
            found = table.quantile(quantile / 100)
            if found is not None:
                values[f"{name}_p{quantile}"] = found
        mean = table.restricted_mean()
        if mean is not None:
            values[f"{name}_mean"] = mean
    everyone = wall.contacts + wall.waiting
    if everyone:
        values["uncontacted_at_horizon"] = wall.waiting / everyone
        for minutes in SPEED_TO_LEAD_MINUTES:  # the service level: share contacted within t of MQL
            level = wall.within(minutes / 60)
            if level is not None:
                values[f"first_contact_within_{minutes}m"] = level
    return values


def _pooled(tables: list[tuple[LifeTable, LifeTable]]) -> tuple[LifeTable, LifeTable]:
    """The business-hours and wall-clock tables of several replications, summed."""
    return (tables[0][0].merged(*(pair[0] for pair in tables[1:])), tables[0][1].merged(*(pair[1] for pair in tables[1:])))


def pooled_ttfc(tables: list[tuple[LifeTable, LifeTable]]) -> dict[str, Estimate]:
    """TTFC figures pooled over replications (their life tables summed), each with a 95%
    interval from the delete-one-replication jackknife (Student t, n - 1 degrees of freedom).

    Pooling, not averaging per-replication percentiles, keeps tail percentiles unbiased:
    the mean of ten p99s of small samples sits below the p99 of the pooled sample."""
    if not tables:
        return {}
    business, wall = _pooled(tables)
    pooled = ttfc_metrics(business, wall)
    count = len(tables)
    if count < 2:
        return {name: Estimate(mean=value, ci95=(value, value)) for name, value in pooled.items()}
    leave_outs = [ttfc_metrics(business.without(one_business), wall.without(one_wall)) for one_business, one_wall in tables]
    result = {}
    t_value = float(scipy_stats.t.ppf(0.975, count - 1))
    for name, value in pooled.items():
        replicates = [values[name] for values in leave_outs if name in values]
        if len(replicates) < count:
            continue  # undefined without some replication: too much censoring to say
        centre = sum(replicates) / count
        spread = math.sqrt((count - 1) / count * sum((replicate - centre) ** 2 for replicate in replicates))
        low, high = value - t_value * spread, value + t_value * spread
        if name == "uncontacted_at_horizon" or name.startswith("first_contact_within_"):
            low, high = max(0.0, low), min(1.0, high)
        else:
            low = max(0.0, low)
        result[name] = Estimate(mean=value, ci95=(low, high))
    return result


def pooled_ttfc_differences(tables_a: list[tuple[LifeTable, LifeTable]],
                            tables_b: list[tuple[LifeTable, LifeTable]]) -> dict[str, Difference]:
    """B minus A for the pooled TTFC figures, paired by replication: the difference of the
    pooled figures, its interval and p-value from the delete-one-pair jackknife (Student t,
    n - 1 degrees of freedom), so A, B and B - A are the same numbers ``simulate`` shows."""
    count = len(tables_a)
    if count < 2 or len(tables_b) != count:
        return {}

    (business_a, wall_a), (business_b, wall_b) = _pooled(tables_a), _pooled(tables_b)
    values_a, values_b = ttfc_metrics(business_a, wall_a), ttfc_metrics(business_b, wall_b)
    leave_outs = [
        (ttfc_metrics(business_a.without(one_a[0]), wall_a.without(one_a[1])),
         ttfc_metrics(business_b.without(one_b[0]), wall_b.without(one_b[1])))
        for one_a, one_b in zip(tables_a, tables_b)
    ]
    t_value = float(scipy_stats.t.ppf(0.975, count - 1))
    result = {}
    for name in sorted(values_a.keys() & values_b.keys()):
        replicates = [b[name] - a[name] for a, b in leave_outs if name in a and name in b]
        if len(replicates) < count:
            continue
        difference = values_b[name] - values_a[name]
        centre = sum(replicates) / count
        spread = math.sqrt((count - 1) / count * sum((replicate - centre) ** 2 for replicate in replicates))
        if spread == 0:
            p_value = 1.0 if difference == 0 else 0.0
        else:
            p_value = float(2 * scipy_stats.t.sf(abs(difference) / spread, count - 1))
        result[name] = Difference(
            a=values_a[name], b=values_b[name],
            difference=Estimate(mean=difference, ci95=(difference - t_value * spread, difference + t_value * spread)),
            p_value=p_value, significant=p_value < 0.05,
        )
    return result


# A drift of the queue over the measured period smaller than this share of its mean depth is
# taken as steady: the figures describe the period, not a level the queue is settling at.
STEADY_DRIFT_SHARE = 0.2
# MQLs in the second half of the measured period against the first: a change smaller than
# this share is taken as steady (nurture pools still filling show as a rising inflow).
STEADY_INFLOW_SHARE = 0.1


def steady_state(dailies: list[tuple[list[float], list[float]]], warmup_hours: float, horizon_hours: float) -> SteadyState:
    """Do the measured figures drift after the warm-up? ``dailies``: each replication's
    (mean queue depth, MQLs) per day from the start.

    The measured days are split into two halves of whole weeks, so that the weekly pattern
    (queues build over weekends) cancels, and compared over replications (Student t): the
    queue of MQLs waiting for a first touch (its change per day between the halves' centres)
    and the MQL inflow (second half against first, a share of the first). Under two weeks
    measured, the queue's least-squares slope over the days stands in, and the inflow is
    not checked."""
    first_day = math.ceil(warmup_hours / 24 - 1e-9)
    last_day = int(horizon_hours / 24 + 1e-9)  # whole days only
    days = last_day - first_day
    weeks = days // 14
    slopes, means, changes, inflows = [], [], [], []
    for depth, mqls in dailies:
        queue, inflow = depth[first_day:last_day], mqls[first_day:last_day]
        if len(queue) < 3:
            continue
        means.append(float(np.mean(queue)))
        if weeks:
            half = 7 * weeks
            slopes.append((float(np.mean(queue[half:2 * half])) - float(np.mean(queue[:half]))) / half)
            changes.append(sum(inflow[half:2 * half]) - sum(inflow[:half]))
            inflows.append(sum(inflow[:half]))
        else:
            slopes.append(float(np.polyfit(np.arange(len(queue)), np.array(queue), 1)[0]))
    if len(slopes) < 2:
        return SteadyState(queue_growth_per_day=Estimate(mean=0.0, ci95=(0.0, 0.0)), steady=True,
                           note="too few days after the warm-up to check for a steady state")
    growth = estimate(slopes)
    drift = abs(growth.mean) * days
    mean_depth = sum(means) / len(means)
    queue_steady = growth.ci95[0] <= 0 <= growth.ci95[1] or drift <= STEADY_DRIFT_SHARE * max(mean_depth, 1.0)
    notes = []
    if queue_steady:
        notes.append(f"the queue moves {growth.mean:+.2f} MQLs/day after the warm-up (mean depth {mean_depth:.1f})")
    else:
        trend, more = ("grows", "more") if growth.mean > 0 else ("shrinks", "fewer")
        notes.append(f"the queue {trend} by {abs(growth.mean):.1f} MQLs/day (95% interval {growth.ci95[0]:+.1f} .. "
                     f"{growth.ci95[1]:+.1f}): {drift:.0f} {more} over the {days} measured days, against a mean depth of "
                     f"{mean_depth:.1f}")
    change, inflow_steady = Estimate(mean=0.0, ci95=(0.0, 0.0)), True
    first_half = sum(inflows) / len(inflows) if inflows else 0.0
    if len(changes) >= 2 and first_half:
        change = estimate([value / first_half for value in changes], bounds=(-1.0, math.inf))  # none falls below -100%
        inflow_steady = change.ci95[0] <= 0 <= change.ci95[1] or abs(change.mean) <= STEADY_INFLOW_SHARE
        notes.append(f"MQL inflow {change.mean:+.0%} from the first {7 * weeks} measured days to the next "
                     f"(95% interval {change.ci95[0]:+.0%} .. {change.ci95[1]:+.0%}, {len(changes)} replications)")
    if queue_steady and inflow_steady:
        return SteadyState(queue_growth_per_day=growth, mql_inflow_change=change, steady=True, note="steady: " + "; ".join(notes))
    advice = "add capacity or lengthen the warm-up" if not queue_steady and growth.mean > 0 else "lengthen the warm-up"
    note = "NOT steady: " + "; ".join(notes) + f"; the figures describe this period, not a long-run level; {advice}"
    return SteadyState(queue_growth_per_day=growth, mql_inflow_change=change, steady=False, note=note)


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def estimate(values: list[float], bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean and Student-t 95% interval over independent replications (clipped to ``bounds``)."""
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return Estimate(mean=mean, ci95=(mean, mean))
    half = float(scipy_stats.t.ppf(0.975, len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data)))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(mean=mean, ci95=(low, high))


def paired_difference(a: list[float], b: list[float], bounds: tuple[float, float] | None = None) -> Difference:
    """B minus A, paired replication by replication (valid under common random numbers),
    with the paired t test's p-value; ``significant`` is this metric's test alone until
    ``holm`` adjusts it for the family. ``bounds``: where a difference can lie at all (two
    shares differ by at most 1 either way); the interval is clipped to them."""
    differences = [y - x for x, y in zip(a, b)]
    p_value = _paired_p(differences)
    return Difference(a=float(np.mean(a)), b=float(np.mean(b)), difference=estimate(differences, bounds),
                      p_value=p_value, significant=p_value < 0.05)


def _paired_p(differences: list[float]) -> float:
    data = np.asarray(differences, dtype=float)
    if len(data) < 2:
        return 1.0
    spread = float(data.std(ddof=1))
    if spread == 0:
        return 1.0 if float(data.mean()) == 0 else 0.0
    t = float(data.mean()) / (spread / math.sqrt(len(data)))
    return float(2 * scipy_stats.t.sf(abs(t), len(data) - 1))


def holm(differences: dict[str, Difference], alpha: float = 0.05) -> dict[str, Difference]:
    """Holm's step-down over every metric compared: the family-wise error stays at ``alpha``
    however many metrics are tested at once (about twenty per comparison)."""
    # A metric identical in every pair (e.g. arrivals, under common random numbers) tests nothing.
    tested = [name for name, diff in differences.items() if diff.difference.ci95 != (0.0, 0.0) or diff.difference.mean]
    ordered = sorted(tested, key=lambda name: differences[name].p_value)
    count, rejecting = len(ordered), True
    adjusted = {name: diff.model_copy(update={"significant": False}) for name, diff in differences.items()}
    for rank, name in enumerate(ordered):
        rejecting = rejecting and differences[name].p_value <= alpha / (count - rank)
        adjusted[name] = differences[name].model_copy(update={"significant": rejecting})
    return adjusted
