"""A team's history, from any source, as the core's decision log.

Calibration and backtests read one thing: the decisions of every journey in a period, with
the SLAs they settled, exactly what the leadflow ledger holds. A history from elsewhere (a
Salesforce export, a generic events CSV) is turned into that log (``decisions_of``), with
the first-contact due time from the core's rule (``first_contact_due``) and the SLA
settled as the core settles it. So the actual figures of a backtest come from the same
closed-loop report (``leadflow.report.sla_report``) as the ledger's, and every number
means the same thing whichever source it came from.

The generic events CSV (one row per event, any CRM):

=================  ==========================================================================
column             meaning
=================  ==========================================================================
lead_id            required: the CRM's lead id (opaque; never a name or an email)
at                 required: ISO 8601 with a UTC offset (``2026-03-02T14:05:00Z``)
kind               required: created, mql, assigned, accepted, rejected, attempt, qualified,
                   converted, disqualified or recycled
rep_id             assigned, accepted, rejected, attempt, qualified, converted, disqualified
outcome            attempt: connected, no_answer, voicemail or email_sent
duration_minutes   attempt: the call's length (optional)
reason             rejected, disqualified, recycled: the reason code
tier               mql: the tier (optional; else the fast-track tier for hand-raisers, or
                   the tier the fit score alone reaches)
source, country,   created: lead source (leadflow's names), ISO country code,
company_size,      employees, job title and industry (all optional)
title, industry
=================  ==========================================================================
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from leadflow.actions import AttemptOutcome
from leadflow.business_calendar import business_time_between
from leadflow.decide import first_contact_due
from leadflow.history import History
from leadflow.journey import Clock, DecisionEntry, DecisionKind, Stage
from leadflow.kpis import ContactSla
from leadflow.lead import Lead, LeadSource
from leadflow.policy import Policy
from leadflow.report import LoggedDecision, LoggedSettlement, OpenLead
from leadflow.routing import segment_of, territory_of
from leadflow.scoring import fit_score, tier_for


class HistoryError(ValueError):
    """A history that cannot be read: the message names the file, the row and the fix."""


class EventKind(StrEnum):
    CREATED = "created"
    MQL = "mql"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ATTEMPT = "attempt"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"
    RECYCLED = "recycled"


@dataclass(slots=True)
class LeadEvent:
    """One row of an outside history (the generic CSV's columns)."""

    lead_id: str
    at: datetime
    kind: EventKind
    rep_id: str | None = None
    outcome: AttemptOutcome | None = None
    duration_minutes: float | None = None
    reason: str | None = None
    tier: str | None = None
    source: str | None = None
    country: str | None = None
    company_size: int | None = None
    title: str | None = None
    industry: str | None = None


_STAGE_AFTER = {
    EventKind.CREATED: Stage.NURTURING, EventKind.MQL: Stage.MQL, EventKind.ASSIGNED: Stage.ASSIGNED,
    EventKind.ACCEPTED: Stage.ACCEPTED, EventKind.REJECTED: Stage.NURTURING, EventKind.ATTEMPT: Stage.WORKING,
    EventKind.QUALIFIED: Stage.SQL, EventKind.CONVERTED: Stage.CONVERTED, EventKind.DISQUALIFIED: Stage.DISQUALIFIED,
    EventKind.RECYCLED: Stage.NURTURING,
}
_DECISION = {
    EventKind.CREATED: DecisionKind.CREATED, EventKind.MQL: DecisionKind.MQL, EventKind.ASSIGNED: DecisionKind.ASSIGNED,
    EventKind.ACCEPTED: DecisionKind.ACCEPTED, EventKind.REJECTED: DecisionKind.REJECTED,
    EventKind.ATTEMPT: DecisionKind.ATTEMPT, EventKind.QUALIFIED: DecisionKind.QUALIFIED,
    EventKind.CONVERTED: DecisionKind.CONVERTED, EventKind.DISQUALIFIED: DecisionKind.DISQUALIFIED,
    EventKind.RECYCLED: DecisionKind.RECYCLED,
}


def decisions_of(events: Iterable[LeadEvent], policy: Policy, source: str, since: datetime, until: datetime) -> History:
    """An outside history as the core's decision log, with the first-contact SLAs settled."""
    by_lead: dict[str, list[LeadEvent]] = defaultdict(list)
    for event in events:
        if event.at < until:
            by_lead[event.lead_id].append(event)
    history = History(source=source, since=since, until=until, policy=policy, decisions=[], settlements=[])
    for lead_id, lead_events in by_lead.items():
        _LeadLog(history, lead_id).read(lead_events)
    return history


class _LeadLog:
    """One outside lead's events turned into decisions, as the journey would have logged them."""

    def __init__(self, history: History, lead_id: str):
        self.history, self.policy, self.lead_id = history, history.policy, lead_id
        self.journey_id = f"{lead_id}:history"
        self.seq = 0
        self.source, self.fit = LeadSource.OTHER.value, 0.0
        self.owner: str | None = None
        self.tier: str | None = None
        self.mql_at: datetime | None = None
        self.due: datetime | None = None
        self.contacted, self.attempts, self.finished = False, 0, False
        self.settled = False  # this episode's first-contact SLA is settled (met or missed)

    def log(self, kind: DecisionKind, at: datetime, stage: Stage, **detail: str | int | float | bool | None) -> None:
        self.seq += 1
        self.history.decisions.append(LoggedDecision(lead_id=self.lead_id, journey_id=self.journey_id, entry=DecisionEntry(
            seq=self.seq, at=at, kind=kind, stage=stage, owner_id=self.owner, tier=self.tier, detail=dict(detail))))

    def settle(self, at: datetime, outcome: ContactSla) -> None:
        self.history.settlements.append(LoggedSettlement(lead_id=self.lead_id, at=at, clock=Clock.FIRST_CONTACT,
                                                         tier=self.tier or "", outcome=outcome))

    def settle_missed_before(self, at: datetime) -> None:
        due = self.due
        if due is not None and not self.contacted and not self.settled and due < at and due < self.history.until:
            self.settle(due, ContactSla.MISSED)
            self.settled = True

    def become_mql(self, at: datetime, tier: str | None) -> None:
        if tier is not None and tier not in {known.name for known in self.policy.tiers}:
            raise HistoryError(f"lead {self.lead_id}: tier {tier!r} is not one of the policy's tiers "
                               f"({', '.join(known.name for known in self.policy.tiers)}); map it or leave it empty")
        self.tier = tier or _tier_of(self.source, self.fit, self.policy)
        self.owner, self.mql_at, self.contacted, self.attempts, self.settled = None, at, False, 0, False
        self.due = first_contact_due(self.policy, self.tier, at)
        self.log(DecisionKind.MQL, at, Stage.MQL, reason="history", fit=self.fit)

    def read(self, events: list[LeadEvent]) -> None:
        history, policy = self.history, self.policy
        order = list(EventKind)
        events.sort(key=lambda event: (event.at, order.index(event.kind)))
        if events[0].kind is not EventKind.CREATED:
            events.insert(0, LeadEvent(lead_id=self.lead_id, at=events[0].at, kind=EventKind.CREATED))
        for event in events:
            self.settle_missed_before(event.at)
            kind, at = event.kind, event.at
            stage = _STAGE_AFTER[kind]
            if kind is EventKind.CREATED:
                self.source = _source(event.source)
                lead = Lead(email="history@example.com", title=event.title, company_size=event.company_size,
                            industry=event.industry, country=event.country, source=LeadSource(self.source))
                self.fit = fit_score(lead, policy.fit)
                history.has_people = history.has_people or any(
                    value is not None for value in (event.country, event.company_size, event.title))
                self.log(DecisionKind.CREATED, at, stage, source=self.source, fit=self.fit,
                         territory=territory_of(event.country, policy.routing),
                         segment=segment_of(event.company_size, policy.routing), policy_version=policy.version,
                         country=event.country, company_size=event.company_size, title=event.title, industry=event.industry)
                continue
            if self.finished:
                continue
            if kind is EventKind.MQL:
                self.become_mql(at, event.tier)
                continue
            if self.mql_at is None:  # an owner or an attempt before any MQL: the CRM skipped the step
                self.become_mql(at, None)
            if event.rep_id:
                self.owner = event.rep_id
            self.record(event, stage)
        self.settle_missed_before(history.until)
        if not self.finished:
            history.open_leads.append(OpenLead(lead_id=self.lead_id, owner_id=self.owner, sla_due_at=self.due))

    def record(self, event: LeadEvent, stage: Stage) -> None:
        kind, at, by = event.kind, event.at, event.rep_id
        if kind is EventKind.ASSIGNED:
            self.log(DecisionKind.ASSIGNED, at, stage, rep_id=by)
        elif kind is EventKind.ACCEPTED:
            self.log(DecisionKind.ACCEPTED, at, stage, by=by or "", auto=False)
        elif kind is EventKind.REJECTED:
            self.log(DecisionKind.REJECTED, at, stage, by=by or "", reason=event.reason or "unknown")
            self.mql_at = self.due = None
        elif kind is EventKind.ATTEMPT:
            self.attempts += 1
            outcome = event.outcome or AttemptOutcome.NO_ANSWER
            if event.duration_minutes is not None:
                self.history.has_durations = True
            self.log(DecisionKind.ATTEMPT, at, stage, by=by or "", outcome=outcome.value, attempt=self.attempts,
                     minutes=event.duration_minutes)
            if not self.contacted and self.mql_at is not None:
                self.contacted = True
                met = self.due is None or at <= self.due
                self.log(DecisionKind.FIRST_CONTACT, at, stage, wall_seconds=(at - self.mql_at).total_seconds(),
                         business_seconds=business_time_between(self.policy.calendar, self.mql_at, at).total_seconds(),
                         met=met)
                if met and not self.settled:
                    self.settle(at, ContactSla.MET)
                self.settled = True
        elif kind is EventKind.QUALIFIED:
            self.log(DecisionKind.QUALIFIED, at, stage, by=by)
        elif kind in (EventKind.CONVERTED, EventKind.DISQUALIFIED):
            extra = {"reason": event.reason or "unknown"} if kind is EventKind.DISQUALIFIED else {}
            self.log(_DECISION[kind], at, stage, by=by, **extra)
            self.finished = True
        elif kind is EventKind.RECYCLED:
            self.log(DecisionKind.RECYCLED, at, stage, by=by, reason=event.reason or "unknown")
            self.mql_at = self.due = None


def _source(value: str | None) -> str:
    if not value:
        return LeadSource.OTHER.value
    try:
        return LeadSource(value.strip().lower()).value
    except ValueError:
        return LeadSource.OTHER.value


def _tier_of(source: str, fit: float, policy: Policy) -> str:
    """The tier an outside MQL had when the CRM does not say: a hand-raiser's fast-track tier,
    else the tier the fit score alone reaches (engagement is not in an outside history)."""
    qualification = policy.qualification
    if qualification.fast_track_tier and source in {str(item) for item in qualification.fast_track_sources}:
        return qualification.fast_track_tier
    return tier_for(fit, policy)


EVENT_COLUMNS = ("lead_id", "at", "kind", "rep_id", "outcome", "duration_minutes", "reason", "tier", "source", "country",
                 "company_size", "title", "industry")


def read_events_csv(path: Path) -> list[LeadEvent]:
    """The generic events CSV (see the module doc); a bad row is a ``HistoryError`` naming it."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise HistoryError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = {"lead_id", "at", "kind"} - set(reader.fieldnames or [])
        if missing:
            raise HistoryError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                               f"the columns are {', '.join(EVENT_COLUMNS)}")
        events = []
        for number, row in enumerate(reader, start=2):
            events.append(_event(row, f"{path.name} line {number}"))
    return events


def _event(row: dict[str, str], where: str) -> LeadEvent:
    def text(name: str) -> str | None:
        value = (row.get(name) or "").strip()
        return value or None

    lead_id = text("lead_id")
    if lead_id is None:
        raise HistoryError(f"{where}: lead_id is empty")
    try:
        kind = EventKind((text("kind") or "").lower())
    except ValueError:
        raise HistoryError(f"{where}: kind {row.get('kind')!r} is not one of {', '.join(EventKind)}") from None
    at = parse_instant(text("at"), f"{where}: at")
    outcome = None
    if text("outcome"):
        try:
            outcome = AttemptOutcome((text("outcome") or "").lower())
        except ValueError:
            raise HistoryError(f"{where}: outcome {row.get('outcome')!r} is not one of "
                               f"{', '.join(AttemptOutcome)}") from None
    return LeadEvent(lead_id=lead_id, at=at, kind=kind, rep_id=text("rep_id"), outcome=outcome,
                     duration_minutes=_number(text("duration_minutes"), f"{where}: duration_minutes"),
                     reason=text("reason"), tier=text("tier"), source=text("source"), country=_country(text("country")),
                     company_size=_whole(text("company_size"), f"{where}: company_size"), title=text("title"),
                     industry=(text("industry") or "").lower() or None)


def parse_instant(value: str | None, where: str) -> datetime:
    if value is None:
        raise HistoryError(f"{where} is empty; give an ISO 8601 time with a UTC offset")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))
    except ValueError:
        raise HistoryError(f"{where} {value!r} is not an ISO 8601 time (2026-03-02T14:05:00Z)") from None
    if moment.tzinfo is None:
        raise HistoryError(f"{where} {value!r} has no UTC offset; add Z or +hh:mm")
    return moment


def _number(value: str | None, where: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise HistoryError(f"{where} {value!r} is not a number") from None
    if not number >= 0 or number == float("inf"):
        raise HistoryError(f"{where} {value!r} must be a finite number >= 0")
    return number


def _whole(value: str | None, where: str) -> int | None:
    number = _number(value, where)
    return None if number is None else int(number)


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    return value if len(value) == 2 and value.isalpha() else None
