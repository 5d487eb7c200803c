"""Fit a scenario to a team's own history (``leadflow calibrate``).

From the decisions of a period (``leadflow.history``) it fits, each with its sample
size, a 95% interval and the estimator's name (``simulation.calibration_stats``):

* arrivals: leads a week, by weekday and by hour (policy time zone), with campaign bursts
  found as runs of days far above the weekday's expected count (Poisson upper tail below
  0.001 / days, Bonferroni), grown by neighbouring days above it at p < 0.05 (a burst
  rarely starts at midnight), then left out of the base rate;
* who arrives: source, country, company size, title and industry mixes (shares, Wilson);
* reps, per team: reaction latency (working minutes from assignment to first touch; a touch
  that came as the rep hung up another call waited in line and is left out, or without
  call lengths, leads assigned while the rep had other work are) and call lengths, both
  lognormal, with the Kolmogorov-Smirnov statistic;
* the chance an attempt connects by hours since MQL (the speed-to-lead curve);
* qualify rate of reached leads and convert rate of SQLs by tier and source (cells with
  fewer than ``MIN_CELL`` closed cases fall back to the tier's pooled rate);
* the SAL gate's reject rate, reject and loss reasons; times to decide and to close;
* engagement a week, by simulated moments: the rate at which simulated leads become MQLs
  is matched to the observed one (bisection on the simulator itself).

Too little data for a parameter is a warning and the documented default, never a guess.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from leadflow.actions import AttemptOutcome
from leadflow.business_calendar import business_time_between
from leadflow.decision_details import (
    AcceptedDetail,
    AttemptDetail,
    CreatedDetail,
    DisqualifiedDetail,
    RejectedDetail,
)
from leadflow.history import History
from leadflow.journey import DecisionEntry, DecisionKind
from leadflow.policy import Policy
from simulation.calibration_stats import (
    Fitted,
    fit_exponential,
    fit_lognormal,
    poisson_rate,
    poisson_upper_tail,
    wilson,
)
from simulation.scenario import Behaviour

MIN_DURATIONS = 30  # observations before a duration is fitted (else the default, with a warning)
MIN_CELL = 20  # closed cases before a tier x source rate stands on its own
MIN_SHARE_N = 50  # leads before a mix is fitted
CONTACT_BINS = [0.0, 1.0, 2.0, 4.0, 8.0, 24.0, 72.0]  # hours since MQL
IDLE_AFTER_CALL_MINUTES = 30.0  # a rep who dialled this recently may still be on the call
WARMUP_DAYS = 56  # the work in flight settles; the nurture pool starts steady (``simulation.prior_history``)
BURST_ALPHA = 0.001


@dataclass
class Calibration:
    """Every fitted value, the warnings, and the scenario they make."""

    source: str
    since: datetime
    until: datetime
    policy_version: str
    leads: int
    mqls: int  # MQL episodes starting in the period, as the closed-loop report counts them
    fitted: list[Fitted] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    population: dict[str, Any] = field(default_factory=dict)
    behaviour: dict[str, Any] = field(default_factory=dict)

    def add(self, fitted: Fitted) -> Fitted:
        self.fitted.append(fitted)
        if fitted.warning:
            self.warnings.append(f"{fitted.name}: {fitted.warning}")
        return fitted

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "since": self.since.isoformat(), "until": self.until.isoformat(),
                "policy_version": self.policy_version, "leads": self.leads, "mqls": self.mqls,
                "fitted": [item.as_json() for item in self.fitted], "warnings": self.warnings}

    def scenario(self, name: str, policy: str | dict[str, Any]) -> dict[str, Any]:
        """A scenario file's content: the calibrated period, after a warm-up, under ``policy``."""
        days = (self.until - self.since).total_seconds() / 86400
        return {
            "name": name,
            "description": f"calibrated from {self.source}, {self.since.date()} to {self.until.date()} "
                           f"({self.leads} leads, {self.mqls} MQLs)",
            "policy": policy,
            "start": (self.since - timedelta(days=WARMUP_DAYS)).date().isoformat(),
            "horizon_days": round(days + WARMUP_DAYS, 3),
            "warmup_days": WARMUP_DAYS,
            "nurtures_at_start": "steady",
            "replications": 10,
            "seed": 1,
            "population": self.population,
            "behaviour": self.behaviour,
        }


_UNKNOWN_LEAD = CreatedDetail(source="other", fit=0.0, territory=None, segment=None, policy_version="")


@dataclass
class _Episode:
    """One MQL episode of a journey, as calibration reads it."""

    source: str
    tier: str
    mql_at: datetime
    created: CreatedDetail
    owner: str | None = None
    assigned_at: datetime | None = None
    touched_at: datetime | None = None
    rejected: str | None = None
    attempts: list[tuple[datetime, str, bool, float | None]] = field(default_factory=list)
    connected_at: datetime | None = None
    sql_at: datetime | None = None
    decided_at: datetime | None = None
    closed_at: datetime | None = None
    converted: bool = False
    loss: str | None = None
    ended_at: datetime | None = None  # recycled or handed back: nothing more can happen in this episode


def _episodes(history: History) -> tuple[int, list[tuple[datetime, CreatedDetail]], list[_Episode]]:
    """(MQL episodes of leads created in the period, (created time, detail) in the period,
    every MQL episode starting in the period)."""
    cohort_mqls = 0
    arrivals: list[tuple[datetime, CreatedDetail]] = []
    episodes: list[_Episode] = []
    since, until = history.since, history.until
    for journey in history.journeys():
        created = _UNKNOWN_LEAD
        in_cohort = False
        episode: _Episode | None = None
        for entry in journey:
            kind, at = entry.kind, entry.at
            if kind is DecisionKind.CREATED:
                created = CreatedDetail.of(entry)
                in_cohort = since <= at < until
                if in_cohort:
                    arrivals.append((at, created))
            elif kind is DecisionKind.MQL:
                episode = _Episode(source=created.source or "other", tier=entry.tier or "", mql_at=at,
                                   created=created)
                if since <= at < until:
                    episodes.append(episode)
                    cohort_mqls += in_cohort
            elif episode is not None:
                _follow(episode, entry)
                if kind in (DecisionKind.RECYCLED, DecisionKind.REJECTED):
                    episode = None
    return cohort_mqls, arrivals, episodes


def _follow(episode: _Episode, entry: DecisionEntry) -> None:
    kind, at = entry.kind, entry.at
    if kind in (DecisionKind.ASSIGNED, DecisionKind.REASSIGNED) and entry.owner_id and episode.touched_at is None:
        episode.owner, episode.assigned_at = entry.owner_id, at
    elif kind is DecisionKind.ACCEPTED and episode.touched_at is None and not AcceptedDetail.of(entry).auto:
        episode.touched_at = at
    elif kind is DecisionKind.REJECTED:
        episode.touched_at = episode.touched_at or at
        episode.rejected = RejectedDetail.of(entry).reason or "unknown"
    elif kind is DecisionKind.ATTEMPT:
        attempt = AttemptDetail.of(entry)
        connected = attempt.outcome is AttemptOutcome.CONNECTED
        episode.attempts.append((at, attempt.by or entry.owner_id or "", connected, attempt.minutes))
        episode.touched_at = episode.touched_at or at
        if connected and episode.connected_at is None:
            episode.connected_at = at
    elif kind in (DecisionKind.QUALIFIED, DecisionKind.DISQUALIFIED) and episode.decided_at is None and episode.connected_at:
        episode.decided_at = at
    if kind is DecisionKind.QUALIFIED:
        episode.sql_at = at
    elif kind is DecisionKind.CONVERTED:
        episode.closed_at, episode.converted = at, True
    elif kind is DecisionKind.DISQUALIFIED:
        episode.closed_at, episode.loss = at, DisqualifiedDetail.of(entry).reason or "unknown"
    if kind in (DecisionKind.RECYCLED, DecisionKind.REJECTED):
        episode.ended_at = at


def calibrate(history: History, fit_engagement: Callable[[Calibration], None] | None = None) -> Calibration:
    """Fit every parameter the history supports (``fit_engagement``: the simulated-moments
    step, given by the caller since it runs the simulator)."""
    policy = history.policy
    cohort_mqls, arrivals, episodes = _episodes(history)
    calibration = Calibration(source=history.source, since=history.since, until=history.until,
                              policy_version=policy.version, leads=len(arrivals), mqls=len(episodes))
    del cohort_mqls
    defaults_behaviour = Behaviour()
    population: dict[str, Any] = {}
    behaviour: dict[str, Any] = {}
    _fit_arrivals(calibration, [at for at, _ in arrivals], policy, history, population)
    _fit_mixes(calibration, [detail for _, detail in arrivals], history, population, policy)
    _fit_reps(calibration, episodes, history, policy, behaviour, defaults_behaviour)
    _fit_contact(calibration, episodes, behaviour)
    _fit_outcomes(calibration, episodes, policy, behaviour)
    calibration.population = population
    calibration.behaviour = behaviour
    if fit_engagement is not None:
        fit_engagement(calibration)
    return calibration


# -- arrivals -------------------------------------------------------------------------------------


def _fit_arrivals(calibration: Calibration, times: list[datetime], policy: Policy, history: History,
                  population: dict[str, Any]) -> None:
    zone = ZoneInfo(policy.calendar.timezone)
    first_day = history.since.astimezone(zone).date()
    last_day = (history.until - timedelta(microseconds=1)).astimezone(zone).date()
    days = (last_day - first_day).days + 1  # local days the period touches (its ends may be partial)
    if len(times) < MIN_SHARE_N:
        calibration.warn(f"population.leads_per_week: only {len(times)} leads in the period; need {MIN_SHARE_N} "
                         "to fit arrivals: the default profile is kept")
    by_day = Counter((at.astimezone(zone).date() - first_day).days for at in times)
    weekday_of = [(first_day + timedelta(days=day)).weekday() for day in range(days)]
    burst_days: set[int] = set()
    for _ in range(3):  # estimate, flag bursts against the estimate, estimate again without them
        rates = _weekday_rates(by_day, weekday_of, burst_days)
        flagged = {day for day in range(days) if rates[weekday_of[day]] > 0
                   and poisson_upper_tail(by_day.get(day, 0), rates[weekday_of[day]]) < BURST_ALPHA / days}
        if flagged == burst_days:
            break
        burst_days = flagged
    rates = _weekday_rates(by_day, weekday_of, burst_days)
    # A burst rarely starts and ends at midnight: a day next to one that is itself above its
    # weekday's rate (p < 0.05) belongs to it, or it would inflate the calm rate.
    grown = True
    while grown:
        grown = False
        for day in sorted(burst_days):
            for neighbour in (day - 1, day + 1):
                if (0 <= neighbour < days and neighbour not in burst_days and rates[weekday_of[neighbour]] > 0
                        and poisson_upper_tail(by_day.get(neighbour, 0), rates[weekday_of[neighbour]]) < 0.05):
                    burst_days.add(neighbour)
                    grown = True
        rates = _weekday_rates(by_day, weekday_of, burst_days)
    # Exposure is the period itself (its first and last local days may be partial), less the bursts.
    calm_days = (history.until - history.since).total_seconds() / 86400 - len(burst_days)
    calm_count = sum(count for day, count in by_day.items() if day not in burst_days and 0 <= day < days)
    per_week, (low, high) = poisson_rate(calm_count, max(calm_days, 1.0) / 7)
    calibration.add(Fitted("population.leads_per_week", per_week, calm_count, (low, high),
                           "count / weeks outside campaign bursts; exact Poisson (Garwood) interval", "leads/week"))
    mean_rate = sum(rates) / 7 or 1.0
    weekday_profile = [round(rate / mean_rate, 4) for rate in rates]
    for weekday, rate in enumerate(rates):
        count = sum(by_day.get(day, 0) for day in range(days) if weekday_of[day] == weekday and day not in burst_days)
        exposure = sum(1 for day in range(days) if weekday_of[day] == weekday and day not in burst_days)
        _, (lo, hi) = poisson_rate(count, max(exposure, 1))
        calibration.add(Fitted(f"population.weekday_profile[{weekday}]", rate / mean_rate, count,
                               (lo / mean_rate, hi / mean_rate), "leads that weekday (Monday = 0) / mean weekday; "
                               "exact Poisson"))
    hours = Counter((at.astimezone(zone)).hour for at in times)
    mean_hour = len(times) / 24 or 1.0
    hour_profile = [round(max(hours.get(hour, 0), 0.5) / mean_hour, 4) for hour in range(24)]
    for hour in range(24):
        _, (lo, hi) = poisson_rate(hours.get(hour, 0), 1.0)
        calibration.add(Fitted(f"population.hour_profile[{hour}]", hours.get(hour, 0) / mean_hour, hours.get(hour, 0),
                               (lo / mean_hour, hi / mean_hour), "leads that hour / mean hour; exact Poisson"))
    simulation_start = datetime.combine((history.since - timedelta(days=WARMUP_DAYS)).date(), time(0), tzinfo=timezone.utc)
    campaigns = []
    for start, length in _runs(sorted(burst_days)):
        observed = sum(by_day.get(day, 0) for day in range(start, start + length))
        expected = sum(rates[weekday_of[day]] for day in range(start, start + length)) or 1.0
        multiplier, (lo, hi) = poisson_rate(observed, expected)
        local_start = datetime.combine(first_day + timedelta(days=start), time(0), tzinfo=zone)
        start_day = round((local_start - simulation_start).total_seconds() / 86400, 4)
        name = f"burst-{local_start.date()}"
        calibration.add(Fitted(f"population.campaigns.{name}.multiplier", multiplier, observed, (lo, hi),
                               f"count / expected on {length} day(s) flagged at p < {BURST_ALPHA}/days; exact Poisson",
                               extra={"start_day": start_day, "days": length}))
        campaigns.append({"name": name, "start_day": start_day, "days": length, "multiplier": round(multiplier, 4)})
    if len(times) >= MIN_SHARE_N:
        population.update(leads_per_week=round(per_week, 3), weekday_profile=weekday_profile, hour_profile=hour_profile,
                          campaigns=campaigns)
    else:
        population.update(leads_per_week=round(max(per_week, 0.1), 3))


def _weekday_rates(by_day: Counter[int], weekday_of: list[int], excluded: set[int]) -> list[float]:
    counts, exposure = [0] * 7, [0] * 7
    for day, weekday in enumerate(weekday_of):
        if day in excluded:
            continue
        counts[weekday] += by_day.get(day, 0)
        exposure[weekday] += 1
    return [counts[weekday] / exposure[weekday] if exposure[weekday] else 0.0 for weekday in range(7)]


def _runs(days: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for day in days:
        if runs and runs[-1][0] + runs[-1][1] == day:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((day, 1))
    return runs


# -- who arrives ----------------------------------------------------------------------------------


def _fit_mixes(calibration: Calibration, created: list[CreatedDetail], history: History,
               population: dict[str, Any], policy: Policy) -> None:
    if len(created) < MIN_SHARE_N:
        calibration.warn(f"population mixes: only {len(created)} leads; need {MIN_SHARE_N}: the defaults are kept")
        return
    population["source_mix"] = _shares(calibration, "population.source_mix", [item.source for item in created])
    if not history.has_people:
        calibration.warn("population.countries/company_sizes/titles/industries: not in this source (the ledger keeps "
                         "no personal data): the defaults are kept")
        return
    population["countries"] = _shares(calibration, "population.countries",
                                      [item.country for item in created if item.country])
    population["titles"] = _shares(calibration, "population.titles",
                                   [item.title for item in created if item.title], top=15)
    population["industries"] = _shares(calibration, "population.industries",
                                       [item.industry for item in created if item.industry], top=15)
    sizes = [item.company_size for item in created if item.company_size is not None]
    edges = sorted({band.min_employees for band in policy.fit.company_size}
                   | {segment.max_employees + 1 for segment in policy.routing.segments if segment.max_employees is not None})
    bins: dict[int, list[int]] = defaultdict(list)
    for size in sizes:
        lower = max([0, *[edge for edge in edges if edge <= size]])
        bins[lower].append(size)
    representative = [int(median(values)) for _, values in sorted(bins.items())]
    labels = [str(value) for value in representative]
    by_size = [labels[sorted(bins).index(max([0, *[edge for edge in edges if edge <= size]]))] for size in sizes]
    shares = _shares(calibration, "population.company_sizes", by_size)
    population["company_sizes"] = {int(size): share for size, share in shares.items()}


def _shares(calibration: Calibration, name: str, values: list[Any], top: int | None = None) -> dict[str, float]:
    counts = Counter(str(value) for value in values)
    total = sum(counts.values())
    if total == 0:
        return {}
    kept = dict(counts.most_common(top)) if top else dict(counts)
    for key, count in sorted(kept.items(), key=lambda item: -item[1]):
        share, interval = wilson(count, total)
        calibration.add(Fitted(f"{name}.{key}", share, total, interval, "sample share; Wilson score interval"))
    kept_total = sum(kept.values())
    return {key: round(count / kept_total, 5) for key, count in kept.items()}


def _coded_shares(calibration: Calibration, name: str, reasons: list[str], codes: list[str]) -> dict[str, float]:
    """The shares of ``reasons`` among the policy's ``codes``: the only reasons the simulated
    reps may give (the core refuses others); the rest are left out with a warning."""
    known = set(codes)
    uncoded = Counter(reason for reason in reasons if reason not in known)
    if uncoded:
        calibration.warn(f"{name}: reason(s) not among the policy's codes left out: "
                         + ", ".join(f"{reason} ({count})" for reason, count in uncoded.most_common()))
    return _shares(calibration, name, [reason for reason in reasons if reason in known])


# -- reps -----------------------------------------------------------------------------------------


def _fit_reps(calibration: Calibration, episodes: list[_Episode], history: History, policy: Policy,
              behaviour: dict[str, Any], defaults: Behaviour) -> None:
    reps = {rep.id: rep for rep in policy.reps}
    by_rep: dict[str, list[_Episode]] = defaultdict(list)
    for episode in episodes:
        if episode.owner and episode.assigned_at is not None:
            by_rep[episode.owner].append(episode)
    dials: dict[str, list[datetime]] = defaultdict(list)
    call_ends: dict[str, list[datetime]] = defaultdict(list)
    for journey in history.journeys():  # every call, also on leads that became MQLs before the period
        for entry in journey:
            if entry.kind is DecisionKind.ATTEMPT:
                attempt = AttemptDetail.of(entry)
                rep_id = attempt.by or entry.owner_id or ""
                dials[rep_id].append(entry.at)
                if attempt.minutes is not None:
                    call_ends[rep_id].append(entry.at + timedelta(minutes=attempt.minutes))
    for times in (*dials.values(), *call_ends.values()):
        times.sort()
    latency: dict[str, list[float]] = defaultdict(list)
    for rep_id, owned in by_rep.items():
        rep = reps.get(rep_id)
        hours = rep.hours if rep else policy.calendar
        team = rep.team if rep else "unknown"
        for episode in owned:
            if episode.touched_at is None or episode.assigned_at is None or episode.touched_at <= episode.assigned_at:
                continue  # untouched, or taken by the rep themself (a claim from the team queue): no reaction
            if history.has_durations:
                if _after_a_call(episode.touched_at, call_ends.get(rep_id, [])):
                    continue  # it waited for the rep to finish a call: not the rep's reaction
            elif not _idle_at(rep_id, episode, owned, dials):
                continue
            minutes = business_time_between(hours, episode.assigned_at, episode.touched_at).total_seconds() / 60
            if minutes > 0:
                latency[team].append(minutes)
    if latency and not history.has_durations:
        calibration.warn("behaviour.reaction_minutes: no call lengths in this source, so a first touch that waited "
                         "for the rep to finish a call cannot be told apart: the latency may read high")
    durations: dict[str, list[float]] = defaultdict(list)
    for episode in episodes:
        for _, rep_id, _, length in episode.attempts:
            if length is not None and length > 0:
                rep = reps.get(rep_id)
                durations[rep.team if rep else "unknown"].append(length)
    teams: dict[str, dict[str, Any]] = defaultdict(dict)
    for field_name, samples, default, what in (
        ("reaction_minutes", latency, defaults.reaction_minutes,
         "working minutes from assignment to first touch, leads assigned to an idle rep"),
        ("attempt_minutes", durations, defaults.attempt_minutes, "call length"),
    ):
        pooled = [value for values in samples.values() for value in values]
        fitted = _lognormal(calibration, f"behaviour.{field_name}", pooled, what, default.mean)
        if fitted is not None:
            behaviour[field_name] = fitted
        if len(samples) > 1:
            for team, values in sorted(samples.items()):
                team_fit = _lognormal(calibration, f"behaviour.teams.{team}.{field_name}", values, what, None)
                if team_fit is not None and team in {item.id for item in policy.teams}:
                    teams[team][field_name] = team_fit
    if not durations:
        calibration.warn("behaviour.attempt_minutes: no call lengths in this source (the ledger and a Task.csv without "
                         f"CallDurationInSeconds have none): the default ({defaults.attempt_minutes.mean:g} min) is kept")
    if teams:
        behaviour["teams"] = dict(teams)


def _after_a_call(touched: datetime, ends: list[datetime]) -> bool:
    """Whether a call of the rep ended within a minute of ``touched`` (the lead was next in line;
    call lengths and times are rounded to the second, so an end may read just after the touch)."""
    index = bisect.bisect_right(ends, touched + timedelta(minutes=1))
    return index > 0 and abs(touched - ends[index - 1]) <= timedelta(minutes=1)


def _idle_at(rep_id: str, episode: _Episode, owned: list[_Episode], dials: dict[str, list[datetime]]) -> bool:
    """The rep had nothing else waiting when this lead came: no other lead of theirs assigned
    and not yet touched, and no call of theirs started in the last ``IDLE_AFTER_CALL_MINUTES``."""
    at = episode.assigned_at
    assert at is not None
    for other in owned:
        if other is episode or other.assigned_at is None or other.assigned_at > at:
            continue
        if other.touched_at is None or other.touched_at > at:
            return False
    recent = at - timedelta(minutes=IDLE_AFTER_CALL_MINUTES)
    return not any(recent <= dial <= at for dial in dials.get(rep_id, []))


def _lognormal(calibration: Calibration, name: str, values: list[float], what: str, default: float | None
               ) -> dict[str, Any] | None:
    if len(values) < MIN_DURATIONS:
        if default is not None and values:
            calibration.add(Fitted(name, default, len(values), None, "default kept",
                                   warning=f"only {len(values)} observations (need {MIN_DURATIONS}): the default mean "
                                           f"{default:g} min is kept"))
        elif values:
            calibration.warn(f"{name}: only {len(values)} observations (need {MIN_DURATIONS}): not fitted")
        return None
    fit = fit_lognormal(values)
    warning = None
    if fit.ks_p_value < 0.01:
        warning = f"a lognormal fits poorly (KS D = {fit.ks_statistic:.3f}, p = {fit.ks_p_value:.3g})"
    calibration.add(Fitted(name, fit.mean, fit.n, fit.ci95, f"lognormal MLE ({what}); mean's interval by Cox's method",
                           "minutes", {"statistic": "Kolmogorov-Smirnov D", "value": fit.ks_statistic,
                                       "p_value": fit.ks_p_value}, warning, {"sigma": fit.sigma}))
    return {"kind": "lognormal", "mean": round(fit.mean, 4), "sigma": round(fit.sigma, 4)}


# -- contact --------------------------------------------------------------------------------------


def _fit_contact(calibration: Calibration, episodes: list[_Episode], behaviour: dict[str, Any]) -> None:
    tried = [0] * len(CONTACT_BINS)
    reached = [0] * len(CONTACT_BINS)
    for episode in episodes:
        for at, _, connected, _ in episode.attempts:
            hours = (at - episode.mql_at).total_seconds() / 3600
            index = max(i for i, edge in enumerate(CONTACT_BINS) if hours >= edge) if hours >= 0 else 0
            tried[index] += 1
            reached[index] += connected
    if tried[0] < MIN_CELL:
        calibration.warn(f"behaviour.contact_probability: only {tried[0]} attempts within an hour of MQL "
                         f"(need {MIN_CELL}): the default speed-to-lead curve is kept")
        return
    points: list[list[float]] = []
    base = None
    for index, edge in enumerate(CONTACT_BINS):
        upper = CONTACT_BINS[index + 1] if index + 1 < len(CONTACT_BINS) else None
        label = f"[{edge:g}, {upper:g}) h" if upper is not None else f">= {edge:g} h"
        if tried[index] < MIN_CELL:
            if tried[index]:
                calibration.warn(f"behaviour.speed_to_lead {label}: only {tried[index]} attempts (need {MIN_CELL}): "
                                 "the curve is held flat from the previous point")
            continue
        rate, interval = wilson(reached[index], tried[index])
        calibration.add(Fitted(f"behaviour.contact_rate {label} after MQL", rate, tried[index], interval,
                               "attempts connected / attempts; Wilson score interval"))
        rate = max(rate, 0.5 / tried[index])  # no connection in the bin is not a zero chance
        if base is None:
            base = rate
            behaviour["contact_probability"] = round(min(rate, 1.0), 5)
            points.append([0.0, 1.0])
        middle = edge if upper is None else (edge + upper) / 2
        if middle > points[-1][0]:
            points.append([middle, round(rate / base, 5)])
    behaviour["speed_to_lead"] = {"points": points}


# -- outcomes -------------------------------------------------------------------------------------


def _fit_outcomes(calibration: Calibration, episodes: list[_Episode], policy: Policy, behaviour: dict[str, Any]) -> None:
    reached = [episode for episode in episodes if episode.connected_at is not None]
    qualify_cases = [(e.tier, e.source, e.sql_at is not None) for e in reached if e.sql_at or e.closed_at]
    behaviour["qualify_rates"] = _rate_table(calibration, "behaviour.qualify_rates", qualify_cases,
                                             "SQL / reached leads decided")
    convert_cases = [(e.tier, e.source, e.converted) for e in episodes if e.sql_at and e.closed_at]
    behaviour["convert_rates"] = _rate_table(calibration, "behaviour.convert_rates", convert_cases,
                                             "converted / SQLs closed")
    touched = [episode for episode in episodes if episode.touched_at is not None]
    rejects = [episode.rejected for episode in touched if episode.rejected]
    share, interval = wilson(len(rejects), len(touched))
    if touched:
        calibration.add(Fitted("behaviour.reject_probability", share, len(touched), interval,
                               "rejected / MQLs a rep answered; Wilson score interval"))
        behaviour["reject_probability"] = round(share, 5)
    if rejects:  # when none of them is one of the policy's reject codes, its codes evenly
        behaviour["reject_reasons"] = (_coded_shares(calibration, "behaviour.reject_reasons", rejects,
                                                     policy.reason_codes.reject)
                                       or dict.fromkeys(policy.reason_codes.reject, 1.0))
    losses = [episode.loss for episode in episodes if episode.loss]
    coded_losses = _coded_shares(calibration, "behaviour.disqualify_reasons", losses, policy.reason_codes.disqualify)
    if coded_losses:
        behaviour["disqualify_reasons"] = coded_losses
    end = calibration.until

    def business_hours(start: datetime, stop: datetime) -> float:
        return business_time_between(policy.calendar, start, stop).total_seconds() / 3600

    decide_hours = [business_hours(e.connected_at, e.decided_at) for e in episodes if e.connected_at and e.decided_at]
    undecided = [business_hours(e.connected_at, min(e.ended_at or end, end)) for e in episodes
                 if e.connected_at and not e.decided_at and not e.closed_at and e.connected_at < end]
    _exponential(calibration, "behaviour.decide_within_hours", [max(h, 0.01) for h in decide_hours], undecided,
                 "business hours from the connected call to qualify or disqualify", "hours", behaviour)
    close_days = [(e.closed_at - e.sql_at).total_seconds() / 86400 for e in episodes if e.sql_at and e.closed_at]
    open_deals = [(min(e.ended_at or end, end) - e.sql_at).total_seconds() / 86400 for e in episodes
                  if e.sql_at and not e.closed_at]
    _exponential(calibration, "behaviour.close_within_days", [max(d, 0.01) for d in close_days], open_deals,
                 "days from SQL to converted or lost; deals open at the end count as censored", "days", behaviour)


def _rate_table(calibration: Calibration, name: str, cases: list[tuple[str, str, bool]], what: str
                ) -> dict[str, dict[str, float]]:
    by_tier: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for tier, source, success in cases:
        by_tier[tier].append((source, success))
    table: dict[str, dict[str, float]] = {}
    for tier, rows in sorted(by_tier.items()):
        if not tier:
            continue
        wins = sum(success for _, success in rows)
        rate, interval = wilson(wins, len(rows))
        warning = None if len(rows) >= MIN_CELL else f"only {len(rows)} cases (need {MIN_CELL}): a rough rate"
        calibration.add(Fitted(f"{name}.{tier}.*", rate, len(rows), interval, f"{what}; Wilson score interval",
                               warning=warning))
        table[tier] = {"*": round(rate, 5)}
        by_source: dict[str, list[bool]] = defaultdict(list)
        for source, success in rows:
            by_source[source].append(success)
        for source, outcomes in sorted(by_source.items()):
            if len(outcomes) < MIN_CELL:
                continue
            rate, interval = wilson(sum(outcomes), len(outcomes))
            calibration.add(Fitted(f"{name}.{tier}.{source}", rate, len(outcomes), interval,
                                   f"{what}; Wilson score interval"))
            table[tier][source] = round(rate, 5)
    return table


def _exponential(calibration: Calibration, name: str, values: list[float], censored: list[float], what: str,
                 unit: str, behaviour: dict[str, Any]) -> None:
    if len(values) < MIN_DURATIONS:
        calibration.warn(f"{name}: only {len(values)} observations (need {MIN_DURATIONS}): the default is kept")
        return
    mean, interval = fit_exponential(values, censored)
    calibration.add(Fitted(name, mean, len(values), interval, f"exponential MLE, right-censored ({what}); exact "
                           "chi-square interval", unit, extra={"censored": len(censored)}))
    behaviour[name.split(".")[-1]] = {"kind": "exponential", "mean": round(mean, 4)}


def engagement_rate_target(calibration: Calibration) -> tuple[float, tuple[float, float], int]:
    """Observed MQLs a week in the period, with its exact Poisson interval."""
    weeks = (calibration.until - calibration.since).total_seconds() / (7 * 86400)
    rate, interval = poisson_rate(calibration.mqls, weeks)
    return rate, interval, calibration.mqls

