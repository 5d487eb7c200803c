"""A synthetic Salesforce export drawn from known parameters, independently of the simulator.

For trying ``calibrate`` and ``backtest`` without a CRM at hand, and for the parameter-
recovery tests: every value ``calibrate`` fits is set here (``ExportTruth``), so what it
recovers can be checked against the truth. The reps are the policy's; leads are handed to
a rep of their territory in turn at MQL, and no rep ever has a queue (each lead's first
touch is its rep's reaction latency, in the rep's working minutes), so the latency is
exactly what calibration measures on idle reps.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from leadflow.business_calendar import add_business_hours, add_business_time
from leadflow.policy import Policy
from leadflow.routing import territory_of
from simulation.salesforce_export import write_export_files

SALESFORCE_SOURCES = {"Web": "organic", "Webinar": "webinar", "Advertisement": "paid_search", "Trade Show": "trade_show",
                      "Phone Inquiry": "contact_request"}


@dataclass(frozen=True)
class ExportTruth:
    """The parameters a synthetic export is drawn from."""

    start: date = date(2026, 3, 2)
    weeks: int = 10
    leads_per_week: float = 300.0
    weekday_profile: tuple[float, ...] = (1.2, 1.15, 1.1, 1.05, 0.9, 0.35, 0.25)
    hour_profile: tuple[float, ...] = (0.2,) * 7 + (0.6, 1.2, 1.6, 1.7, 1.6, 1.3, 1.5, 1.6, 1.5, 1.2, 0.8, 0.5, 0.4, 0.35,
                                                     0.3, 0.25, 0.2)
    burst_day: int = 24  # a campaign: three days at three times the rate
    burst_days: int = 3
    burst_multiplier: float = 3.0
    sources: dict[str, float] = field(default_factory=lambda: {
        "Web": 0.3, "Webinar": 0.25, "Advertisement": 0.2, "Trade Show": 0.1, "Phone Inquiry": 0.15})
    countries: dict[str, float] = field(default_factory=lambda: {"US": 0.6, "GB": 0.25, "DE": 0.15})
    sizes: dict[int, float] = field(default_factory=lambda: {20: 0.3, 120: 0.3, 800: 0.3, 5000: 0.1})
    titles: dict[str, float] = field(default_factory=lambda: {"VP Sales": 0.2, "Director of IT": 0.3, "Analyst": 0.5})
    industries: dict[str, float] = field(default_factory=lambda: {"software": 0.5, "retail": 0.3, "education": 0.2})
    mql_share: float = 0.35  # of leads that do not raise a hand
    nurture_days: float = 6.0  # mean days from created to MQL (exponential)
    tiers: dict[str, float] = field(default_factory=lambda: {"Hot": 0.3, "Warm": 0.4, "Cold": 0.3})
    reaction_minutes: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        "na-sales": (20.0, 0.7), "intl-sales": (35.0, 0.6)})  # team -> (mean, sigma) of a lognormal
    attempt_minutes: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        "na-sales": (8.0, 0.5), "intl-sales": (11.0, 0.5)})
    contact_probability: float = 0.5
    speed_to_lead: tuple[tuple[float, float], ...] = ((0.0, 1.0), (1.0, 1.0), (2.0, 0.4), (24.0, 0.2))
    max_attempts: int = 5
    reject_probability: float = 0.05
    decide_hours: float = 3.0  # mean business hours from the connected call to a decision (exponential)
    qualify: dict[str, float] = field(default_factory=lambda: {"hot": 0.55, "warm": 0.35, "cold": 0.15})
    convert: float = 0.3
    close_days: float = 12.0
    loss_reasons: dict[str, float] = field(default_factory=lambda: {"no_budget": 0.5, "no_need": 0.3, "competitor": 0.2})

    def contact_chance(self, hours: float) -> float:
        points = self.speed_to_lead
        if hours <= points[0][0]:
            return self.contact_probability * points[0][1]
        for (h0, m0), (h1, m1) in itertools.pairwise(points):
            if hours <= h1:
                share = (hours - h0) / (h1 - h0)
                return self.contact_probability * math.exp(math.log(m0) + share * (math.log(m1) - math.log(m0)))
        return self.contact_probability * points[-1][1]


def _pick(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return math.exp(math.log(mean) - sigma * sigma / 2 + sigma * rng.gauss(0, 1))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def write_export(folder: Path, policy: Policy, truth: ExportTruth | None = None, seed: int = 1) -> Path:
    """Draw an export into ``folder`` (Lead.csv, LeadHistory.csv, Task.csv, mapping.yaml)."""
    truth = truth or ExportTruth()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    zone = ZoneInfo(policy.calendar.timezone)
    start = datetime.combine(truth.start, time(0), tzinfo=zone)
    end = start + timedelta(weeks=truth.weeks)
    user_of = {rep.id: f"005{index:012d}AAA" for index, rep in enumerate(policy.reps)}
    by_territory: dict[str, list] = {}
    for rep in policy.reps:
        for territory in rep.territories:
            by_territory.setdefault(territory, []).append(rep)
    turns = {territory: itertools.cycle(reps) for territory, reps in by_territory.items()}
    leads, history, tasks = [], [], []
    mean_weight = sum(truth.weekday_profile) * sum(truth.hour_profile) / 168
    peak = truth.leads_per_week / 168 / mean_weight * max(truth.weekday_profile) * max(truth.hour_profile) * truth.burst_multiplier
    moment, number = start, 0
    while True:
        moment += timedelta(hours=rng.expovariate(peak))
        if moment >= end:
            break
        local = moment.astimezone(zone)
        day = (moment - start).total_seconds() // 86400
        rate = truth.leads_per_week / 168 / mean_weight * truth.weekday_profile[local.weekday()] * truth.hour_profile[local.hour]
        if truth.burst_day <= day < truth.burst_day + truth.burst_days:
            rate *= truth.burst_multiplier
        if rng.random() * peak > rate:
            continue
        number += 1
        lead_id = f"00Q{number:012d}EAA"
        source = str(_pick(rng, truth.sources))
        country = str(_pick(rng, truth.countries))
        rating = str(_pick(rng, truth.tiers))
        row = {"Id": lead_id, "CreatedDate": _iso(moment), "LeadSource": source, "Status": "Open - Not Contacted",
               "OwnerId": "00G000000000001AAA", "Country": country, "NumberOfEmployees": _pick(rng, truth.sizes),
               "Title": _pick(rng, truth.titles), "Industry": _pick(rng, truth.industries), "IsConverted": "false",
               "ConvertedDate": "", "Rating": rating, "Disqualified_Reason__c": ""}
        leads.append(row)
        hand_raiser = SALESFORCE_SOURCES[source] == "contact_request"
        if not hand_raiser and rng.random() >= truth.mql_share:
            continue
        mql_at = moment if hand_raiser else moment + timedelta(days=rng.expovariate(1 / truth.nurture_days))
        territory = territory_of(country, policy.routing) or ""
        if mql_at >= end or territory not in turns:
            continue
        history.append({"LeadId": lead_id, "Field": "Status", "OldValue": "Open - Not Contacted",
                        "NewValue": "Marketing Qualified", "CreatedDate": _iso(mql_at)})
        rep = next(turns[territory])
        history.append({"LeadId": lead_id, "Field": "Owner", "OldValue": "00G000000000001AAA",
                        "NewValue": user_of[rep.id], "CreatedDate": _iso(mql_at)})
        row["Status"], row["OwnerId"] = "Marketing Qualified", user_of[rep.id]
        mean, sigma = truth.reaction_minutes[rep.team]
        touch = add_business_time(rep.hours, mql_at, timedelta(minutes=_lognormal(rng, mean, sigma)))
        if rng.random() < truth.reject_probability:
            history.append({"LeadId": lead_id, "Field": "Status", "OldValue": "Marketing Qualified",
                            "NewValue": "Returned to Marketing", "CreatedDate": _iso(touch)})
            row["Status"], row["Disqualified_Reason__c"] = "Returned to Marketing", "not icp"
            continue
        call_mean, call_sigma = truth.attempt_minutes[rep.team]
        attempt_at, connected_at = touch, None
        for _attempt in range(truth.max_attempts):
            if attempt_at >= end:
                break
            hours = (attempt_at - mql_at).total_seconds() / 3600
            connected = rng.random() < truth.contact_chance(hours)
            tasks.append({"WhoId": lead_id, "OwnerId": user_of[rep.id], "CreatedDate": _iso(attempt_at),
                          "TaskSubtype": "Call", "CallDisposition": "Connected" if connected else "No Answer",
                          "CallDurationInSeconds": round(60 * _lognormal(rng, call_mean, call_sigma))})
            if connected:
                connected_at = attempt_at
                break
            attempt_at = add_business_time(rep.hours, attempt_at + timedelta(hours=20), timedelta(minutes=rng.uniform(0, 240)))
        if connected_at is None:
            if attempt_at < end:
                history.append({"LeadId": lead_id, "Field": "Status", "OldValue": "Marketing Qualified",
                                "NewValue": "Recycled", "CreatedDate": _iso(attempt_at)})
                row["Status"] = "Recycled"
            continue
        decided = add_business_hours(policy.calendar, connected_at, rng.expovariate(1 / truth.decide_hours))
        if decided >= end:
            continue
        if rng.random() >= truth.qualify[rating.lower()]:
            reason = str(_pick(rng, truth.loss_reasons))
            history.append({"LeadId": lead_id, "Field": "Status", "OldValue": "Marketing Qualified",
                            "NewValue": "Closed - Not Converted", "CreatedDate": _iso(decided)})
            row["Status"], row["Disqualified_Reason__c"] = "Closed - Not Converted", reason.replace("_", " ")
            continue
        history.append({"LeadId": lead_id, "Field": "Status", "OldValue": "Marketing Qualified",
                        "NewValue": "Sales Qualified", "CreatedDate": _iso(decided)})
        row["Status"] = "Sales Qualified"
        closed = decided + timedelta(days=rng.expovariate(1 / truth.close_days))
        if closed >= end:
            continue
        if rng.random() < truth.convert:
            row["Status"], row["IsConverted"], row["ConvertedDate"] = "Closed - Converted", "true", closed.date().isoformat()
        else:
            reason = str(_pick(rng, truth.loss_reasons))
            history.append({"LeadId": lead_id, "Field": "Status", "OldValue": "Sales Qualified",
                            "NewValue": "Closed - Not Converted", "CreatedDate": _iso(closed)})
            row["Status"], row["Disqualified_Reason__c"] = "Closed - Not Converted", reason.replace("_", " ")
    write_export_files(folder, leads, history, tasks)
    mapping = {
        "statuses": {"Marketing Qualified": "mql", "Returned to Marketing": "rejected", "Sales Qualified": "qualified",
                     "Recycled": "recycled"},
        "lead_sources": SALESFORCE_SOURCES,
        "reps": {user: rep_id for rep_id, user in user_of.items()},
        "reason_column": "Disqualified_Reason__c",
        "tier_column": "Rating",
        "tiers": {"Hot": "hot", "Warm": "warm", "Cold": "cold"},
    }
    (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    return folder
