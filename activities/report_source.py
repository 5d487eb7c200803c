"""What the closed-loop SLA report reads from the ledger, in the core's terms (``leadflow.report``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select

from activities.ledger import Ledger
from activities.ledger_schema import journey_events, leads, sla_settlements
from leadflow.journey import Clock, DecisionEntry, DecisionKind, Stage
from leadflow.kpis import ContactSla
from leadflow.policy import Policy
from leadflow.report import Dimension, LoggedDecision, LoggedSettlement, OpenLead, SlaReport, sla_report


def serving_policy(ledger: Ledger, fallback: Policy) -> Policy:
    """The policy new journeys start with: the ledger's latest rollout, else ``fallback`` (the workers' file)."""
    version = ledger.rolled_out_version()
    return (ledger.policy(version) if version else None) or fallback


def ledger_report(ledger: Ledger, policy: Policy, since: datetime, until: datetime, by: Dimension = Dimension.SOURCE,
                  now: datetime | None = None) -> SlaReport:
    """The report of ``[since, until)`` from the ledger (``ledger_period``)."""
    decisions, settlements, open_leads = ledger_period(ledger, since, until)
    return sla_report(decisions, settlements, open_leads, policy, since, until, by, now)


def ledger_period(ledger: Ledger, since: datetime, until: datetime
                  ) -> tuple[list[LoggedDecision], list[LoggedSettlement], list[OpenLead]]:
    """What the report of ``[since, until)`` reads: the decisions of every journey active in
    the period (from its start, so each episode knows its source and history), the SLAs
    settled in it, and the leads open now."""
    active = select(journey_events.c.journey_id).where(
        and_(journey_events.c.at >= since, journey_events.c.at < until)).distinct()
    decision_query = (
        select(journey_events.c.lead_id, journey_events.c.journey_id, journey_events.c.seq, journey_events.c.at,
               journey_events.c.kind, journey_events.c.stage, journey_events.c.owner_id, journey_events.c.tier,
               journey_events.c.detail)
        .where(and_(journey_events.c.journey_id.in_(active), journey_events.c.at < until))
        .order_by(journey_events.c.journey_id, journey_events.c.seq)
    )
    settled_query = select(sla_settlements).where(and_(sla_settlements.c.at >= since, sla_settlements.c.at < until))
    open_query = select(leads.c.lead_id, leads.c.owner_id, leads.c.sla_due_at).where(leads.c.outcome.is_(None))
    with ledger.engine.connect() as conn:
        decisions = [
            LoggedDecision(lead_id=row.lead_id, journey_id=row.journey_id, entry=DecisionEntry(
                seq=row.seq, at=row.at, kind=DecisionKind(row.kind), stage=Stage(row.stage), owner_id=row.owner_id,
                tier=row.tier, detail=row.detail or {}))
            for row in conn.execute(decision_query)
        ]
        settlements = [
            LoggedSettlement(lead_id=row.lead_id, at=row.at, clock=Clock(row.clock), tier=row.tier,
                             outcome=ContactSla(row.outcome))
            for row in conn.execute(settled_query)
        ]
        open_leads = [OpenLead(lead_id=row.lead_id, owner_id=row.owner_id, sla_due_at=row.sla_due_at)
                      for row in conn.execute(open_query)]
    return decisions, settlements, open_leads
