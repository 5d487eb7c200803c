"""The waiting line: leads that no rep can take yet, in the order they are served.

A lead that routing cannot place (every rep who covers it is full or away) joins the line
instead of asking again on a timer. When a rep's slot frees (a lead released or closed,
the rep back from an absence) the first lead in line that the rep may take is assigned to
that rep at that instant. The order is first-come-first-served within priority: the
hottest tier first, then the earliest MQL, then the lead id (so every shell agrees on ties).

Pure and deterministic. ``WaitingLine`` keeps the line in memory for the simulator; the
ledger keeps the same order in SQL with ``line_position`` and ``may_take``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from leadflow.policy import Policy, Rep, Routing
from leadflow.routing import capacity_of, covers, is_out_of_office, pool_key


@dataclass(frozen=True, slots=True)
class WaitingLead:
    """One lead in line: what the order and a rep's eligibility need, nothing personal."""

    lead_id: str
    step: int
    priority: int
    mql_at: datetime
    territory: str | None = None
    segment: str | None = None

    @property
    def pool(self) -> str:
        return pool_key(self.territory, self.segment)


def tier_priority(policy: Policy, tier: str | None) -> int:
    """0 for the hottest tier (highest ``min_score``), 1 for the next, ...; unknown tiers last."""
    ranked = sorted(policy.tiers, key=lambda candidate: -candidate.min_score)
    for rank, candidate in enumerate(ranked):
        if candidate.name == tier:
            return rank
    return len(ranked)


def line_position(lead: WaitingLead) -> tuple[int, datetime, str]:
    """The key the line is sorted by: priority, then MQL time, then lead id."""
    return lead.priority, lead.mql_at, lead.lead_id


def may_take(rep: Rep, lead: WaitingLead) -> bool:
    """Whether ``rep`` covers the lead's territory and segment."""
    return covers(rep, lead.territory, lead.segment)


def may_serve(rep: Rep, open_leads: int, at: datetime, routing: Routing) -> bool:
    """Whether ``rep`` has a slot for a lead from the line at ``at``: below capacity and not away."""
    return open_leads < capacity_of(rep, routing) and not is_out_of_office(rep, at)


def first_for(rep: Rep, waiting: list[WaitingLead]) -> WaitingLead | None:
    """The lead a freed slot of ``rep`` goes to: the first in line the rep may take."""
    eligible = [lead for lead in waiting if may_take(rep, lead)]
    return min(eligible, key=line_position) if eligible else None


_Entry = tuple[tuple[int, datetime, str], WaitingLead]


@dataclass(slots=True)
class WaitingLine:
    """The line in memory, one heap per pool (territory and segment), so a freed slot looks
    only at the heads of the pools its rep covers."""

    _pools: dict[str, list[_Entry]] = field(default_factory=dict)
    _waiting: dict[str, WaitingLead] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, lead_id: str) -> bool:
        return lead_id in self._waiting

    def join(self, lead: WaitingLead) -> None:
        """Put ``lead`` in line (again, if it was: its old place is given up)."""
        self._waiting[lead.lead_id] = lead
        heapq.heappush(self._pools.setdefault(lead.pool, []), (line_position(lead), lead))

    def leave(self, lead_id: str) -> None:
        """Take a lead out of line (it was served, closed or escalated); unknown ids are ignored."""
        self._waiting.pop(lead_id, None)

    def serve(self, rep: Rep) -> WaitingLead | None:
        """Take out and return the first lead in line that ``rep`` may take, if any."""
        best: _Entry | None = None
        for heap in self._pools.values():
            head = self._head(heap)
            if head is not None and may_take(rep, head[1]) and (best is None or head[0] < best[0]):
                best = head
        if best is None:
            return None
        lead = best[1]
        self.leave(lead.lead_id)
        return lead

    def _head(self, heap: list[_Entry]) -> _Entry | None:
        """The first entry of ``heap`` still in line (entries of leads that left are dropped)."""
        while heap and self._waiting.get(heap[0][1].lead_id) is not heap[0][1]:
            heapq.heappop(heap)
        return heap[0] if heap else None
