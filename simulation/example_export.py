"""A Salesforce export of a simulated quarter (``leadflow example-export``).

One replication of a scenario (by default ``scenarios/example-history.yaml``) is run with
its decisions kept, and written as Salesforce would have recorded it: ``Lead.csv`` (Rating
holds the tier), ``LeadHistory.csv`` (Status and Owner changes), ``Task.csv`` (calls, with
their length), ``mapping.yaml`` (what this org's status values and user ids mean) and
``policy.yaml`` (the policy that was live). So
``calibrate`` and ``backtest`` can be tried without a CRM at hand, on a history whose true
parameters are the scenario's. No names: ids, times and the lead's firmographics only.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from leadflow.actions import AttemptOutcome
from leadflow.decision_details import AcceptedDetail, AttemptDetail, DisqualifiedDetail, RecycledDetail, RejectedDetail
from leadflow.journey import DecisionEntry, DecisionKind
from leadflow.lead import Lead, LeadSource
from simulation.model import JourneyModel, LeadJourney
from simulation.runner import replication_seeds
from simulation.salesforce_export import write_export_files
from simulation.scenario import LoadedScenario

SOURCE_NAMES = {LeadSource.ORGANIC: "Web", LeadSource.WEBINAR: "Webinar", LeadSource.PAID_SEARCH: "Advertisement",
                LeadSource.TRADE_SHOW: "Trade Show", LeadSource.CONTACT_REQUEST: "Phone Inquiry",
                LeadSource.DEMO_REQUEST: "Demo Request", LeadSource.EBOOK: "eBook", LeadSource.REFERRAL: "Employee Referral",
                LeadSource.PARTNER: "Partner Referral", LeadSource.OTHER: "Other"}
STATUS_OF = {DecisionKind.MQL: "Marketing Qualified", DecisionKind.ACCEPTED: "Accepted",
             DecisionKind.REJECTED: "Returned to Marketing", DecisionKind.QUALIFIED: "Sales Qualified",
             DecisionKind.DISQUALIFIED: "Closed - Not Converted", DecisionKind.RECYCLED: "Recycled",
             DecisionKind.CONVERTED: "Closed - Converted"}
QUEUE = "00G000000000001AAA"


class _Recorded(JourneyModel):
    """A replication that keeps each lead's firmographics."""

    def __init__(self, loaded: LoadedScenario, seed: int):
        super().__init__(loaded, replication_seeds(seed, 0), keep_traces=True)
        self.leads: dict[str, Lead] = {}

    def observe(self, journey: LeadJourney, entry: DecisionEntry) -> None:
        super().observe(journey, entry)
        if entry.kind is DecisionKind.CREATED:
            self.leads[journey.state.lead_id] = journey.person.lead


def _reason(entry: DecisionEntry) -> str | None:
    """The reason a lead was lost or handed back, if the decision gives one."""
    if entry.kind is DecisionKind.REJECTED:
        return RejectedDetail.of(entry).reason
    if entry.kind is DecisionKind.DISQUALIFIED:
        return DisqualifiedDetail.of(entry).reason
    if entry.kind is DecisionKind.RECYCLED:
        return RecycledDetail.of(entry).reason
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def write_example_export(loaded: LoadedScenario, folder: Path, seed: int | None = None) -> tuple[datetime, datetime]:
    """Simulate ``loaded`` once and write its export into ``folder``; the measured period."""
    model = _Recorded(loaded, loaded.scenario.seed if seed is None else seed)
    model.run()
    user_of = {rep.id: f"005{index:012d}AAA" for index, rep in enumerate(loaded.policy.reps)}
    leads, history, tasks = [], [], []
    for lead_id, entries in (model.traces or {}).items():
        person = model.leads.get(lead_id)
        if person is None:
            continue
        sf_id = f"00Q{int(lead_id[1:]):012d}EAA"
        row: dict[str, str | int] = {"Id": sf_id, "CreatedDate": _iso(entries[0].at), "LeadSource": SOURCE_NAMES[person.source],
               "Status": "Open - Not Contacted", "OwnerId": QUEUE, "Country": person.country or "",
               "NumberOfEmployees": person.company_size if person.company_size is not None else "",
               "Title": person.title or "", "Industry": person.industry or "", "IsConverted": "false",
               "ConvertedDate": "", "Rating": "", "Disqualified_Reason__c": ""}
        leads.append(row)
        owner = QUEUE
        for entry in entries:
            kind = entry.kind
            if entry.owner_id and entry.owner_id in user_of and user_of[entry.owner_id] != owner:
                history.append({"LeadId": sf_id, "Field": "Owner", "OldValue": owner,
                                "NewValue": user_of[entry.owner_id], "CreatedDate": _iso(entry.at)})
                owner = row["OwnerId"] = user_of[entry.owner_id]
            if kind is DecisionKind.MQL and entry.tier and entry.tier.capitalize() != row["Rating"]:
                history.append({"LeadId": sf_id, "Field": "Rating", "OldValue": str(row["Rating"]),
                                "NewValue": entry.tier.capitalize(), "CreatedDate": _iso(entry.at)})
                row["Rating"] = entry.tier.capitalize()
            if kind is DecisionKind.ATTEMPT:
                attempt = AttemptDetail.of(entry)
                tasks.append({"WhoId": sf_id, "OwnerId": user_of.get(attempt.by, owner),
                              "CreatedDate": _iso(entry.at), "TaskSubtype": "Call",
                              "CallDisposition": "Connected" if attempt.outcome is AttemptOutcome.CONNECTED else "No Answer",
                              "CallDurationInSeconds": round(60 * (attempt.minutes or 0.0))})
            if kind in STATUS_OF and not (kind is DecisionKind.ACCEPTED and AcceptedDetail.of(entry).auto):
                reason = _reason(entry)
                if reason and kind is not DecisionKind.MQL:
                    row["Disqualified_Reason__c"] = str(reason)
                if kind is DecisionKind.CONVERTED:
                    row["IsConverted"], row["ConvertedDate"] = "true", entry.at.astimezone(timezone.utc).date().isoformat()
                else:
                    history.append({"LeadId": sf_id, "Field": "Status", "OldValue": str(row["Status"]),
                                    "NewValue": STATUS_OF[kind], "CreatedDate": _iso(entry.at)})
                row["Status"] = STATUS_OF[kind]
    write_export_files(folder, leads, history, tasks)
    mapping = {
        "statuses": {"Marketing Qualified": "mql", "Accepted": "accepted", "Returned to Marketing": "rejected",
                     "Sales Qualified": "qualified", "Recycled": "recycled", "Closed - Converted": "ignore",
                     "Closed - Not Converted": "disqualified"},
        "lead_sources": {name: source.value for source, name in SOURCE_NAMES.items()},
        "reps": {user: rep_id for rep_id, user in user_of.items()},
        "reason_column": "Disqualified_Reason__c",
        "tier_column": "Rating",
        "tiers": {tier.name.capitalize(): tier.name for tier in loaded.policy.tiers},
    }
    (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    (folder / "policy.yaml").write_text("# The policy that was live over this history.\n" + yaml.safe_dump(
        loaded.policy.model_dump(mode="json", exclude_defaults=True), sort_keys=False))
    since = model.start + timedelta(hours=model.warmup)
    return since, model.start + timedelta(hours=model.horizon)
