"""The closed-loop SLA report: what marketing delivered, what sales did with it, why leads were lost.

A pure fold over what the ledger holds (decisions, the SLAs each step settled, the open
leads), so the same function reads the live ledger and a simulation's traces. Every
measure is the one ``leadflow.kpis`` defines:

* **Funnel**, by MQL episode (a recycled lead that comes back is a new episode): *leads*
  created in the period; *MQL* episodes that started in it; of those, the ones a rep
  *accepted*, that became *SQL* and that *converted* (by the end of the period).
* **SLA attainment** per clock and tier, from the settlements the workers recorded
  (``kpis.sla_settled``): met / (met + missed), settled in the period.
* **Time to first contact**, in business hours (the SLA's clock), of first contacts in the
  period, split into the *systems* delay (MQL to the assignment of the rep who made the
  first attempt) and the *human* delay (that assignment to the attempt). Quantiles are
  sample quantiles with linear interpolation (Hyndman-Fan type 7, numpy's default), with
  the sample size beside them.
* **The SAL gate**: sales accepts or rejects (with a reason code) each MQL handed to it; the
  *acceptance rate* marketing committed to is accepted / (accepted + rejected) over the
  period's MQL episodes that sales decided on; *rejections* counts the reasons.
* **Attempts before disposition**: contact attempts in an episode a rep closed
  (disqualified, or recycled by hand), against the cadence's minimum; *below minimum*
  counts such episodes closed with fewer attempts and no connect.
* **Commitments** per ISO week; a week the period cuts is held to its share of the weekly
  commitment (days inside / 7, rounded).
* **Losses**: disqualify and recycle reasons by source; escalations and reassignments by
  team and rep; **open now**: open leads past their SLA due time, by owner.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from pydantic import BaseModel, Field

from leadflow.actions import AttemptOutcome
from leadflow.business_calendar import business_time_between
from leadflow.decision_details import (
    AttemptDetail,
    CreatedDetail,
    DisqualifiedDetail,
    EscalatedDetail,
    FirstContactDetail,
    ReassignedDetail,
    RecycledDetail,
    RejectedDetail,
)
from leadflow.journey import Clock, DecisionEntry, DecisionKind
from leadflow.kpis import NO_SOURCE, NO_TEAM, NO_TIER, ContactSla, attainment
from leadflow.policy import Policy

UNKNOWN = "unknown"


class Dimension(StrEnum):
    """What the funnel is broken down by (``--by``)."""

    SOURCE = "source"
    SEGMENT = "segment"
    TIER = "tier"
    TEAM = "team"
    REP = "rep"
    WEEK = "week"


@dataclass(frozen=True)
class LoggedDecision:
    """One row of the ledger's decision log."""

    lead_id: str
    journey_id: str
    entry: DecisionEntry


@dataclass(frozen=True)
class LoggedSettlement:
    """One SLA a journey step settled, as the ledger stores it."""

    lead_id: str
    at: datetime
    clock: Clock
    tier: str
    outcome: ContactSla


@dataclass(frozen=True)
class OpenLead:
    """One open lead of the projection: its owner and earliest running SLA due time."""

    lead_id: str
    owner_id: str | None
    sla_due_at: datetime | None


# -- the report's shape (documented in the README; ``leadflow report --json`` prints it) ------


class FunnelCounts(BaseModel):
    leads: int = 0
    mql: int = 0
    accepted: int = 0
    sql: int = 0
    converted: int = 0
    rates: dict[str, float | None] = Field(default_factory=dict, description="stage-to-stage conversion rates")


class Attainment(BaseModel):
    met: int = 0
    missed: int = 0
    attainment: float | None = None


class Quantiles(BaseModel):
    p50: float | None = None
    p90: float | None = None
    n: int = 0


class TimeToFirstContact(BaseModel):
    """Business hours from MQL to first contact, and its two parts."""

    p50: float | None = None
    p90: float | None = None
    n: int = 0
    systems: Quantiles = Field(default_factory=Quantiles)
    human: Quantiles = Field(default_factory=Quantiles)
    estimator: str = "sample quantile, linear interpolation (Hyndman-Fan type 7)"


class Attempts(BaseModel):
    minimum: int
    dispositioned: int = 0
    mean_before_disposition: float | None = None
    below_minimum: int = 0


class WeekCommitment(BaseModel):
    committed: int | None = Field(default=None, description="the weekly commitment, pro rata for a week the period cuts")
    delivered: int = 0
    days: int = Field(default=7, description="days of this ISO week inside the period")


class Commitments(BaseModel):
    mql_per_week: dict[str, WeekCommitment] = Field(default_factory=dict)
    mql_per_week_by_source: dict[str, dict[str, WeekCommitment]] = Field(default_factory=dict)
    mql_per_week_by_segment: dict[str, dict[str, WeekCommitment]] = Field(default_factory=dict)
    acceptance_rate: Attainment = Field(
        default_factory=Attainment, description="accepted / (accepted + rejected): MQL episodes sales decided on")
    min_acceptance_rate: float | None = None


class Handling(BaseModel):
    escalations: int = 0
    reassignments: int = 0


class SlaReport(BaseModel):
    since: datetime
    until: datetime
    by: Dimension
    policy_version: str
    funnel: dict[str, dict[str, FunnelCounts] | FunnelCounts]
    sla: dict[str, dict[str, Attainment]]
    sla_by_week: dict[str, dict[str, Attainment]] = Field(description="first-contact attainment by ISO week and tier")
    ttfc_hours: TimeToFirstContact
    attempts: Attempts
    rejections: dict[str, int]
    commitments: Commitments
    losses: dict[str, dict[str, dict[str, int]]]
    escalations: dict[str, dict[str, Handling]]
    open_now: dict[str, int] = Field(description="open leads past their SLA due time, by owner")


# -- folding the ledger -------------------------------------------------------------------------


@dataclass
class _Episode:
    """One MQL episode of one lead."""

    mql_at: datetime
    tier: str
    source: str
    segment: str
    accepted: bool = False  # sales' last word on it was an accept (the rep's, or the policy's auto-accept)
    rejected: str | None = None  # ... or a rejection, with this reason
    sql: bool = False
    converted: bool = False
    owner: str | None = None
    team: str | None = None
    attempts: int = 0
    connected: bool = False
    assigned_at: dict[str, datetime] = field(default_factory=dict)


DEFAULT_WEEKS = 4
MAX_DAYS = 10 * 366  # a report covers at most about ten years (520 weeks)


class PeriodError(ValueError):
    """A report period that cannot be read or would be empty."""


def report_period(since: date | None, until: date | None, today: date) -> tuple[datetime, datetime]:
    """``[since, until]`` (both days included, UTC) as instants ``[start, end)``; by default
    the four weeks up to ``today``."""
    last = until or today
    if last >= date.max:
        raise PeriodError(f"until {last} is past the last day a report can cover")
    first = since or (last - timedelta(days=7 * DEFAULT_WEEKS - 1) if last.toordinal() > 7 * DEFAULT_WEEKS else date.min)
    if first > last:
        raise PeriodError(f"since {first} is after until {last}: the period would be empty")
    if (last - first).days >= MAX_DAYS:
        raise PeriodError(f"{first} to {last} is more than {MAX_DAYS // 366} years: report a shorter period")
    return (datetime.combine(first, time(0), tzinfo=timezone.utc),
            datetime.combine(last + timedelta(days=1), time(0), tzinfo=timezone.utc))


def iso_week(at: datetime) -> str:
    """The ISO week of an instant (UTC), as ``2026-W49``."""
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def quantile(values: list[float], q: float) -> float | None:
    """Sample quantile with linear interpolation (Hyndman-Fan type 7); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _quantiles(values: list[float]) -> Quantiles:
    return Quantiles(p50=quantile(values, 0.5), p90=quantile(values, 0.9), n=len(values))


def _rates(counts: FunnelCounts) -> FunnelCounts:
    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    counts.rates = {
        "mql_per_lead": share(counts.mql, counts.leads),
        "accepted_per_mql": share(counts.accepted, counts.mql),
        "sql_per_accepted": share(counts.sql, counts.accepted),
        "converted_per_sql": share(counts.converted, counts.sql),
    }
    return counts


def _weeks(since: datetime, until: datetime) -> dict[str, int]:
    """Each ISO week the period touches, with how many of its days fall inside the period."""
    days: dict[str, int] = {}
    monday = since - timedelta(days=since.weekday())
    while monday < until:
        inside = (min(monday + timedelta(days=7), until) - max(monday, since)).days
        days[iso_week(max(monday, since))] = inside
        monday += timedelta(days=7)
    return days


def sla_report(decisions: Iterable[LoggedDecision], settlements: Iterable[LoggedSettlement], open_leads: Iterable[OpenLead],
               policy: Policy, since: datetime, until: datetime, by: Dimension = Dimension.SOURCE,
               now: datetime | None = None) -> SlaReport:
    """The closed-loop report of ``[since, until)`` (see the module doc).

    ``decisions``: every logged decision up to ``until`` of the leads to report on, in
    ``seq`` order per journey; ``now``: when open leads are judged past due (``until``).
    """
    now = now or until
    team_of = {rep.id: rep.team for rep in policy.reps}

    def in_period(at: datetime) -> bool:
        return since <= at < until

    by_journey: dict[str, list[LoggedDecision]] = defaultdict(list)
    for logged in decisions:
        by_journey[logged.journey_id].append(logged)

    episodes: list[_Episode] = []
    created: list[tuple[datetime, str, str]] = []  # (at, source, segment)
    ttfc: list[float] = []
    systems: list[float] = []
    human: list[float] = []
    attempts_at_close: list[int] = []
    below_minimum = 0
    rejections: dict[str, int] = defaultdict(int)
    losses: dict[str, dict[str, dict[str, int]]] = {"disqualified": defaultdict(lambda: defaultdict(int)),
                                                    "recycled": defaultdict(lambda: defaultdict(int))}
    by_team: dict[str, Handling] = defaultdict(Handling)
    by_rep: dict[str, Handling] = defaultdict(Handling)
    minimum = policy.cadence.max_attempts

    for journey in by_journey.values():
        journey.sort(key=lambda logged: logged.entry.seq)
        source, segment = NO_SOURCE, UNKNOWN
        episode: _Episode | None = None
        last_owner: str | None = None  # who held the lead last (escalations are logged after it is taken away)
        for logged in journey:
            entry = logged.entry
            kind, at = entry.kind, entry.at
            if kind is DecisionKind.CREATED:
                created_detail = CreatedDetail.of(entry)
                source, segment = created_detail.source or NO_SOURCE, created_detail.segment or UNKNOWN
                if in_period(at):
                    created.append((at, source, segment))
            elif kind is DecisionKind.MQL:
                episode = _Episode(mql_at=at, tier=entry.tier or NO_TIER, source=source, segment=segment)
                if in_period(at):
                    episodes.append(episode)
            elif episode is None:
                continue
            elif kind is DecisionKind.ASSIGNED and entry.owner_id:
                episode.assigned_at[entry.owner_id] = at
                episode.owner, episode.team = entry.owner_id, team_of.get(entry.owner_id)
                last_owner = entry.owner_id
            elif kind is DecisionKind.ACCEPTED:
                episode.accepted, episode.rejected = True, None
            elif kind is DecisionKind.REJECTED:
                episode.accepted, episode.rejected = False, RejectedDetail.of(entry).reason or UNKNOWN
                episode = None
            elif kind is DecisionKind.ATTEMPT:
                episode.attempts += 1
                if AttemptDetail.of(entry).outcome is AttemptOutcome.CONNECTED:
                    episode.connected = True
            elif kind is DecisionKind.FIRST_CONTACT and in_period(at):
                detail = FirstContactDetail.of(entry)
                total = detail.business_seconds / 3600
                ttfc.append(total)
                assigned = episode.assigned_at.get(entry.owner_id or "")
                if assigned is not None:
                    system = business_time_between(policy.calendar, episode.mql_at, assigned).total_seconds() / 3600
                    systems.append(system)
                    human.append(max(0.0, total - system))
            elif kind is DecisionKind.QUALIFIED:
                episode.sql = True
            elif kind is DecisionKind.CONVERTED:
                episode.converted = True
            elif kind in (DecisionKind.DISQUALIFIED, DecisionKind.RECYCLED):
                closed = DisqualifiedDetail.of(entry) if kind is DecisionKind.DISQUALIFIED else RecycledDetail.of(entry)
                if in_period(at):
                    losses[str(kind)][episode.source][closed.reason or UNKNOWN] += 1
                    # A rep's disposition, not the journey's own recycle (unresponsive, stalled...).
                    if closed.by is not None and episode.owner is not None:
                        attempts_at_close.append(episode.attempts)
                        if episode.attempts < minimum and not episode.connected:
                            below_minimum += 1
                if kind is DecisionKind.RECYCLED:
                    episode = None
            if kind is DecisionKind.REASSIGNED and in_period(at):
                rep = ReassignedDetail.of(entry).previous_owner or last_owner
                by_team[team_of.get(rep or "", NO_TEAM)].reassignments += 1
                by_rep[rep or NO_TEAM].reassignments += 1
            elif kind is DecisionKind.ESCALATED and in_period(at):
                rep = entry.owner_id or last_owner
                team = team_of.get(rep or "") or EscalatedDetail.of(entry).team or NO_TEAM
                by_team[team].escalations += 1
                by_rep[rep or NO_TEAM].escalations += 1

    def dimension_of(episode: _Episode) -> str:
        if by is Dimension.SOURCE:
            return episode.source
        if by is Dimension.SEGMENT:
            return episode.segment
        if by is Dimension.TIER:
            return episode.tier
        if by is Dimension.TEAM:
            return episode.team or NO_TEAM
        if by is Dimension.REP:
            return episode.owner or NO_TEAM
        return iso_week(episode.mql_at)

    def funnel_of(selected: list[_Episode], leads: int) -> FunnelCounts:
        return _rates(FunnelCounts(
            leads=leads, mql=len(selected), accepted=sum(e.accepted for e in selected), sql=sum(e.sql for e in selected),
            converted=sum(e.converted for e in selected)))

    def grouped(key: Callable[[_Episode], str], lead_key: Callable[[datetime, str, str], str | None]
                ) -> dict[str, FunnelCounts]:
        groups: dict[str, list[_Episode]] = defaultdict(list)
        for episode in episodes:
            groups[key(episode)].append(episode)
        leads: dict[str, int] = defaultdict(int)
        for at, source, segment in created:
            name = lead_key(at, source, segment)
            if name is not None:
                leads[name] += 1
        return {name: funnel_of(groups.get(name, []), leads.get(name, 0)) for name in sorted(set(groups) | set(leads))}

    def lead_dimension(at: datetime, source: str, segment: str) -> str | None:
        """Where a created lead counts under ``by`` (a lead has no tier, team or rep before it is an MQL)."""
        return {Dimension.SOURCE: source, Dimension.SEGMENT: segment, Dimension.WEEK: iso_week(at)}.get(by)

    def by_source(at: datetime, source: str, segment: str) -> str | None:
        return source

    funnel: dict[str, dict[str, FunnelCounts] | FunnelCounts] = {
        "total": funnel_of(episodes, len(created)),
        "by_source": grouped(lambda episode: episode.source, by_source),
        f"by_{by}": grouped(dimension_of, lead_dimension),
    }

    sla: dict[str, dict[str, Attainment]] = {str(clock): {} for clock in (Clock.FIRST_CONTACT, Clock.ACCEPTANCE, Clock.FOLLOW_UP)}
    sla_by_week: dict[str, dict[str, Attainment]] = defaultdict(dict)
    for settled in settlements:
        if not in_period(settled.at) or str(settled.clock) not in sla:
            continue
        books = [sla[str(settled.clock)]]
        if settled.clock is Clock.FIRST_CONTACT:
            books.append(sla_by_week[iso_week(settled.at)])
        for book in books:
            item = book.setdefault(settled.tier, Attainment())
            if settled.outcome is ContactSla.MET:
                item.met += 1
            else:
                item.missed += 1
    for book in [*sla.values(), *sla_by_week.values()]:
        for item in book.values():
            item.attainment = attainment(item.met, item.missed)

    commitments = policy.commitments
    weeks = _weeks(since, until)

    def weekly(per_week: int | None, delivered_count: int, days: int) -> WeekCommitment:
        committed = None if per_week is None else round(per_week * days / 7)
        return WeekCommitment(committed=committed, delivered=delivered_count, days=days)
    delivered: dict[str, int] = defaultdict(int)
    delivered_by_source: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    delivered_by_segment: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for episode in episodes:
        week = iso_week(episode.mql_at)
        delivered[week] += 1
        delivered_by_source[episode.source][week] += 1
        delivered_by_segment[episode.segment][week] += 1
    accepted = sum(episode.accepted for episode in episodes)
    rejected = sum(episode.rejected is not None for episode in episodes)
    for episode in episodes:
        if episode.rejected is not None:
            rejections[episode.rejected] += 1
    report_commitments = Commitments(
        mql_per_week={week: weekly(commitments.mql_per_week, delivered[week], days) for week, days in weeks.items()},
        mql_per_week_by_source={
            str(source): {week: weekly(count, delivered_by_source[str(source)][week], days) for week, days in weeks.items()}
            for source, count in commitments.mql_per_week_by_source.items()
        },
        mql_per_week_by_segment={
            segment: {week: weekly(count, delivered_by_segment[segment][week], days) for week, days in weeks.items()}
            for segment, count in commitments.mql_per_week_by_segment.items()
        },
        acceptance_rate=Attainment(met=accepted, missed=rejected, attainment=attainment(accepted, rejected)),
        min_acceptance_rate=commitments.min_acceptance_rate,
    )

    past_due: dict[str, int] = defaultdict(int)
    for lead in open_leads:
        if lead.sla_due_at is not None and lead.sla_due_at < now:
            past_due[lead.owner_id or NO_TEAM] += 1

    return SlaReport(
        since=since, until=until, by=by, policy_version=policy.version, funnel=funnel, sla=sla,
        sla_by_week=dict(sorted(sla_by_week.items())),
        ttfc_hours=TimeToFirstContact(p50=quantile(ttfc, 0.5), p90=quantile(ttfc, 0.9), n=len(ttfc),
                                      systems=_quantiles(systems), human=_quantiles(human)),
        attempts=Attempts(minimum=minimum, dispositioned=len(attempts_at_close),
                          mean_before_disposition=sum(attempts_at_close) / len(attempts_at_close) if attempts_at_close else None,
                          below_minimum=below_minimum),
        rejections=dict(rejections),
        commitments=report_commitments,
        losses={kind: {source: dict(reasons) for source, reasons in sorted(by_source.items())}
                for kind, by_source in losses.items()},
        escalations={"by_team": dict(sorted(by_team.items())), "by_rep": dict(sorted(by_rep.items()))},
        open_now=dict(sorted(past_due.items())),
    )
