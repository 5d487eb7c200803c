"""Routing state in memory: the simulator's counterpart of the ledger's routing tables.

Open leads per rep, assignments so far and a round-robin pointer per pool, kept as plain
dicts; every decision is made by the core's ``choose_rep``, as in the live shell. Leads
nobody can take wait in the core's ``WaitingLine`` and are served when a slot frees.
"""

from __future__ import annotations

from datetime import datetime

from leadflow.journey import AssignLead, JoinWaitingLine, NoRepAvailable, RepAssigned
from leadflow.policy import Policy
from leadflow.routing import RouteRequest, RoutingSnapshot, choose_rep, on_shift, pool_key
from leadflow.waiting_line import WaitingLead, WaitingLine, may_serve


class RoutingBook:
    def __init__(self, policy: Policy):
        self.policy = policy
        self.open_leads: dict[str, int] = {}
        self.assigned_total: dict[str, int] = {}
        self.pointers: dict[str, str] = {}
        self.line = WaitingLine()

    def assign(self, command: AssignLead, at: datetime) -> RepAssigned | NoRepAvailable:
        if command.release_rep_id:
            self.release(command.release_rep_id)
        request = RouteRequest(territory=command.territory, segment=command.segment, exclude=command.exclude, at=at)
        pool = pool_key(command.territory, command.segment)
        snapshot = RoutingSnapshot(open_leads=self.open_leads, assigned_total=self.assigned_total,
                                   last_assigned=self.pointers.get(pool))
        decision = choose_rep(self.policy, request, snapshot)
        if decision.rep_id is None:
            return NoRepAvailable(step=command.step, why=decision.why_none or "no rep available")
        self.take(decision.rep_id)
        self.pointers[pool] = decision.rep_id
        return RepAssigned(step=command.step, rep_id=decision.rep_id, team=decision.team or "", on_shift=decision.on_shift)

    def take(self, rep_id: str) -> None:
        self.open_leads[rep_id] = self.open_leads.get(rep_id, 0) + 1
        self.assigned_total[rep_id] = self.assigned_total.get(rep_id, 0) + 1

    def release(self, rep_id: str) -> None:
        if self.open_leads.get(rep_id, 0) > 0:
            self.open_leads[rep_id] -= 1

    def join_line(self, lead_id: str, command: JoinWaitingLine) -> None:
        self.line.join(WaitingLead(lead_id=lead_id, step=command.step, priority=command.priority,
                                   mql_at=command.mql_at, territory=command.territory, segment=command.segment))

    def serve(self, rep_id: str, at: datetime) -> tuple[str, RepAssigned] | None:
        """Give a free slot of ``rep_id`` to the first lead in line the rep may take: the
        lead's id and the routing answer to feed it, or None (no slot, or nobody for it)."""
        rep = self.policy.rep(rep_id)
        if rep is None or not len(self.line) or not may_serve(rep, self.open_leads.get(rep_id, 0), at, self.policy.routing):
            return None
        lead = self.line.serve(rep)
        if lead is None:
            return None
        self.take(rep_id)
        self.pointers[lead.pool] = rep_id
        return lead.lead_id, RepAssigned(step=lead.step, rep_id=rep_id, team=rep.team, on_shift=on_shift(rep, at), from_line=True)
