"""Streaming statistics of one replication, and estimates with intervals over replications."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from leadflow.journey import SLA_CLOCKS, Clock, DecisionEntry, DecisionKind, JourneyState
from leadflow.kpis import ContactSla, FunnelRatio, FunnelStep, SlaSettled, first_contact_time, funnel_ratio, funnel_step
from simulation.results import Difference, Estimate

_COUNTED_KINDS = {
    DecisionKind.BREACH: "breaches",
    DecisionKind.ESCALATED: "escalations",
    DecisionKind.REASSIGNED: "reassignments",
    DecisionKind.RECYCLED: "recycled",
}
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
    ttfc_business: array = field(default_factory=lambda: array("d"))
    ttfc_wall: array = field(default_factory=lambda: array("d"))
    awaiting_contact: dict[int, tuple[str, float, bool]] = field(default_factory=dict)
    queue_depth: int = 0
    queue_depth_max: int = 0
    queue_area: float = 0.0
    last_change: float = 0.0
    bucket_queue_area: list[float] = field(default_factory=list)
    bucket_busy: list[float] = field(default_factory=list)
    bucket_capacity: list[float] = field(default_factory=list)
    busy_hours: float = 0.0
    working_hours: float = 0.0

    def __post_init__(self) -> None:
        self.bucket_queue_area = [0.0] * self.buckets
        self.bucket_busy = [0.0] * self.buckets
        self.bucket_capacity = [0.0] * self.buckets
        self.last_change = 0.0

    @property
    def bucket_hours(self) -> float:
        return self.horizon_hours / self.buckets

    def arrived(self, counted: bool) -> None:
        if counted:
            self.leads += 1

    def decided(self, index: int, counted: bool, entry: DecisionEntry, state: JourneyState, now: float, due: float | None) -> None:
        """Fold one decision of lead ``index`` in (``due``: its first-contact due time, hours)."""
        kind = entry.kind
        if counted:
            if kind in _COUNTED_KINDS:
                self.counts[_COUNTED_KINDS[kind]] += 1
            if (step := funnel_step(entry)) is not None:
                self.funnel[step] += 1
        if kind is DecisionKind.MQL:
            self.awaiting_contact[index] = (state.tier or "none", due if due is not None else math.inf, counted)
            self._queue(now, +1)
        elif (sample := first_contact_time(entry)) is not None:
            pending = self.awaiting_contact.pop(index, None)
            if pending is not None:
                self._queue(now, -1)
            if counted:
                self.ttfc_business.append(sample.business_seconds / 3600)
                self.ttfc_wall.append(sample.wall_seconds / 3600)
        elif kind in _LEAVING:
            if self.awaiting_contact.pop(index, None) is not None:
                self._queue(now, -1)

    def sla_settled(self, settled: SlaSettled, counted: bool) -> None:
        """One SLA settled by the rule of ``leadflow.kpis`` (the live metric's rule)."""
        if counted:
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
        counted_from = max(start, self.warmup_hours)
        if now > counted_from:
            self.queue_area += depth * (now - counted_from)

    def _spread(self, buckets: list[float], start: float, end: float, weight: float) -> None:
        size = self.bucket_hours
        first = int(start / size)
        last = min(int(end / size), self.buckets - 1)
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

    def finish(self) -> None:
        self._accumulate_queue(self.horizon_hours)
        self.awaiting_contact = {}  # still inside their window at the horizon: censored (``leadflow.kpis``)

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
            values[f"sla_attainment_{clock}"] = _share(clock_met, clock_met + clock_missed)
        for ratio in FunnelRatio:  # leadflow.kpis's definitions; 0 when the denominator is
            values[str(ratio)] = funnel_ratio(ratio, self.funnel) or 0.0
        for tier in self.tiers:
            tier_met, tier_missed = self.sla_met.get(tier, 0), self.sla_missed.get(tier, 0)
            if tier_met + tier_missed:
                values[f"sla_attainment_{tier}"] = tier_met / (tier_met + tier_missed)
        for name, samples in (("ttfc", self.ttfc_business), ("ttfc_wall", self.ttfc_wall)):
            if len(samples):
                data = np.frombuffer(samples, dtype=float)
                for quantile in (50, 90, 99):
                    values[f"{name}_p{quantile}"] = float(np.percentile(data, quantile))
                values[f"{name}_mean"] = float(data.mean())
        if len(self.ttfc_wall):
            wall = np.frombuffer(self.ttfc_wall, dtype=float)
            for minutes in SPEED_TO_LEAD_MINUTES:  # the service level: share contacted within t of MQL
                values[f"first_contact_within_{minutes}m"] = float((wall <= minutes / 60).mean())
        return values

    def timeline(self) -> tuple[list[float], list[float], list[float]]:
        size = self.bucket_hours
        hours = [index * size for index in range(self.buckets)]
        depth = [area / size for area in self.bucket_queue_area]
        utilisation = [busy / cap if cap > 0 else 0.0 for busy, cap in zip(self.bucket_busy, self.bucket_capacity)]
        return hours, depth, utilisation


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


def paired_difference(a: list[float], b: list[float]) -> Difference:
    """B minus A, paired replication by replication (valid under common random numbers)."""
    diff = estimate([y - x for x, y in zip(a, b)])
    low, high = diff.ci95
    return Difference(a=float(np.mean(a)), b=float(np.mean(b)), difference=diff, significant=low > 0 or high < 0)
