"""Time to first contact as a life table: a mergeable sketch that counts censored leads.

A lead still waiting for its first contact when the horizon ends has not "no time to
first contact": its time is at least what it has waited so far (right-censored).
Dropping such leads, as a plain list of contacted leads does, understates the mean and
the tail exactly when the team is overloaded. Here every MQL counts: a contact is an
event at its wait, a lead still waiting at the horizon is censored at its wait.

Waits go into log-spaced bins (each 1% wider than the one before, from 0.36 s to about 36
years; waits under 0.36 s share the first bin), so a percentile read from the table is
within 1% of the exact one over the same sample. Tables add: the table of several
replications is the sum of their counts, so percentiles are pooled over replications
rather than averaged.

Estimator: the actuarial (life-table) form of Kaplan-Meier, in which a lead censored
within a bin is at risk for half of it; ``S(t)`` is the share not yet contacted at ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SMALLEST_HOURS = 1e-4  # 0.36 s: shorter waits count as "at once"
RELATIVE_WIDTH = 0.01  # each bin's upper edge is 1% above its lower edge
BINS = 2200  # 1e-4 h * 1.01**2199 is about 320,000 hours (36 years): no wait is longer
_LOG_STEP = math.log1p(RELATIVE_WIDTH)


def bin_of(hours: float) -> int:
    """The bin a wait of ``hours`` falls in (0 for waits under ``SMALLEST_HOURS``)."""
    if hours < SMALLEST_HOURS:
        return 0
    return min(BINS - 1, 1 + int(math.log(hours / SMALLEST_HOURS) / _LOG_STEP))


def lower_edge(index: int) -> float:
    """The shortest wait of bin ``index``, in hours."""
    return 0.0 if index == 0 else SMALLEST_HOURS * (1 + RELATIVE_WIDTH) ** (index - 1)


def upper_edge(index: int) -> float:
    """The longest wait of bin ``index``, in hours."""
    return SMALLEST_HOURS * (1 + RELATIVE_WIDTH) ** index


@dataclass
class LifeTable:
    """Contacts (events) and leads still waiting at the horizon (censored), by wait."""

    events: list[int] = field(default_factory=lambda: [0] * BINS)
    censored: list[int] = field(default_factory=lambda: [0] * BINS)

    def contacted(self, hours: float) -> None:
        self.events[bin_of(hours)] += 1

    def still_waiting(self, hours: float) -> None:
        self.censored[bin_of(hours)] += 1

    @property
    def contacts(self) -> int:
        return sum(self.events)

    @property
    def waiting(self) -> int:
        return sum(self.censored)

    def merged(self, *others: LifeTable) -> LifeTable:
        """The table of this sample and ``others`` pooled."""
        tables = (self, *others)
        return LifeTable(events=[sum(counts) for counts in zip(*(t.events for t in tables))],
                         censored=[sum(counts) for counts in zip(*(t.censored for t in tables))])

    def without(self, other: LifeTable) -> LifeTable:
        """This pooled table with ``other`` (one of the tables pooled into it) taken out."""
        return LifeTable(events=[mine - theirs for mine, theirs in zip(self.events, other.events)],
                         censored=[mine - theirs for mine, theirs in zip(self.censored, other.censored)])

    def sparse(self) -> tuple[dict[int, int], dict[int, int]]:
        """The non-empty bins of events and of censored leads (to send or store)."""
        return ({index: count for index, count in enumerate(self.events) if count},
                {index: count for index, count in enumerate(self.censored) if count})

    @classmethod
    def from_sparse(cls, events: dict[int, int], censored: dict[int, int]) -> LifeTable:
        table = cls()
        for index, count in events.items():
            table.events[int(index)] = count
        for index, count in censored.items():
            table.censored[int(index)] = count
        return table

    def survival(self) -> list[tuple[float, float, float]]:
        """``(lower, upper, S)`` for every bin with a contact, ``S`` being the share of leads
        not contacted by the bin's upper edge (actuarial estimator)."""
        at_risk = self.contacts + self.waiting
        remaining, curve = 1.0, []
        for index in range(BINS):
            events, censored = self.events[index], self.censored[index]
            if events:
                exposed = at_risk - censored / 2
                remaining *= max(0.0, 1 - events / exposed)
                curve.append((lower_edge(index), upper_edge(index), remaining))
            at_risk -= events + censored
            if at_risk <= 0:
                break
        return curve

    def quantile(self, share: float) -> float | None:
        """The wait by which ``share`` of leads were contacted; None when censoring leaves
        the curve above ``1 - share`` (too many leads still waiting to say)."""
        for _, upper, remaining in self.survival():
            if 1 - remaining >= share - 1e-12:
                return upper
        return None

    def restricted_mean(self) -> float | None:
        """Mean wait restricted to the longest contact seen (the area under ``S``): the plain
        mean when nobody is censored, a lower bound on the mean otherwise."""
        curve = self.survival()
        if not curve:
            return None
        area, before = 0.0, 1.0  # S just before the current bin
        previous_upper = 0.0
        for lower, upper, remaining in curve:
            middle = (lower + upper) / 2  # within a bin, contacts are taken to fall at its middle
            area += before * (middle - previous_upper) + remaining * (upper - middle)
            before, previous_upper = remaining, upper
        return area

    def within(self, hours: float) -> float | None:
        """The share of leads contacted within ``hours``: ``1 - S(hours)``, read linearly
        inside the bin that holds ``hours``."""
        if not self.contacts and not self.waiting:
            return None
        before = 1.0
        for lower, upper, remaining in self.survival():
            if upper <= hours:
                before = remaining
                continue
            if lower < hours:
                before += (remaining - before) * (hours - lower) / (upper - lower)
            break
        return 1 - before
