"""A Salesforce export folder as history events (``simulation.crm_history``).

Three files with the standard API field names (extra columns are ignored):

* ``Lead.csv``: Id, CreatedDate, LeadSource, Status, OwnerId, Country, NumberOfEmployees,
  Title, Industry, IsConverted, ConvertedDate;
* ``LeadHistory.csv``: LeadId, Field, OldValue, NewValue, CreatedDate (``Status`` changes
  give MQL, acceptance, qualification and losses; ``Owner`` changes give assignments);
* ``Task.csv``: WhoId, OwnerId, CreatedDate, TaskSubtype, CallDisposition (calls are
  contact attempts; ``CallDurationInSeconds`` is read when present).

Status values, lead sources, call dispositions and user ids differ per org: a mapping file
(YAML, ``SalesforceMapping``) says what yours mean; the defaults cover Salesforce's
standard picklists and common custom values.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.actions import AttemptOutcome
from leadflow.lead import LeadSource
from leadflow.policy import describe_validation_error
from runtime.settings import read_yaml_file
from simulation.crm_history import EventKind, HistoryError, LeadEvent, parse_instant

Ignore = Literal["ignore"]

DEFAULT_STATUSES: dict[str, EventKind | Ignore] = {
    "open - not contacted": "ignore", "working - contacted": "ignore", "open": "ignore", "new": "ignore",
    "nurturing": "ignore", "nurture": "ignore", "working": "ignore", "contacted": "ignore",
    "mql": EventKind.MQL, "marketing qualified": EventKind.MQL, "marketing qualified lead": EventKind.MQL,
    "sal": EventKind.ACCEPTED, "accepted": EventKind.ACCEPTED, "sales accepted": EventKind.ACCEPTED,
    "rejected": EventKind.REJECTED, "returned to marketing": EventKind.REJECTED,
    "sql": EventKind.QUALIFIED, "sales qualified": EventKind.QUALIFIED, "qualified": EventKind.QUALIFIED,
    "closed - converted": "ignore",  # IsConverted and ConvertedDate say it
    "closed - not converted": EventKind.DISQUALIFIED, "unqualified": EventKind.DISQUALIFIED,
    "disqualified": EventKind.DISQUALIFIED, "recycled": EventKind.RECYCLED,
}
DEFAULT_SOURCES: dict[str, LeadSource] = {
    "web": LeadSource.ORGANIC, "website": LeadSource.ORGANIC, "phone inquiry": LeadSource.CONTACT_REQUEST,
    "partner referral": LeadSource.PARTNER, "purchased list": LeadSource.OTHER, "other": LeadSource.OTHER,
    "advertisement": LeadSource.PAID_SEARCH, "employee referral": LeadSource.REFERRAL,
    "external referral": LeadSource.REFERRAL, "word of mouth": LeadSource.REFERRAL, "trade show": LeadSource.TRADE_SHOW,
    "webinar": LeadSource.WEBINAR, "seminar - internal": LeadSource.WEBINAR, "seminar - partner": LeadSource.PARTNER,
    "demo request": LeadSource.DEMO_REQUEST, "contact us": LeadSource.CONTACT_REQUEST, "ebook": LeadSource.EBOOK,
    "paid search": LeadSource.PAID_SEARCH,
} | {source.value: source for source in LeadSource}


class SalesforceMapping(BaseModel):
    """What an org's picklist values mean (keys are matched case-insensitively)."""

    model_config = ConfigDict(extra="forbid")

    statuses: dict[str, EventKind | Ignore] = Field(default_factory=dict, description="Lead Status -> event")
    lead_sources: dict[str, LeadSource] = Field(default_factory=dict)
    connected_dispositions: list[str] = Field(
        default_factory=lambda: ["connected", "spoke", "conversation", "meeting booked", "interested", "not interested"],
        description="CallDisposition values (case-insensitive) meaning the call reached the lead")
    attempt_subtypes: list[str] = Field(default_factory=lambda: ["call"], description="TaskSubtype values that are attempts")
    reps: dict[str, str] = Field(default_factory=dict, description="Salesforce user id -> the policy's rep id")
    reason_column: str | None = Field(default=None, description="a Lead.csv column holding the loss reason")
    tier_column: str | None = Field(default=None, description="a Lead.csv column holding the tier (e.g. Rating)")
    tiers: dict[str, str] = Field(default_factory=dict, description="tier column value -> the policy's tier")

    def status(self, value: str) -> EventKind | Ignore | None:
        key = value.strip().lower()
        mine = {name.lower(): kind for name, kind in self.statuses.items()}
        return mine.get(key, DEFAULT_STATUSES.get(key))

    def source(self, value: str | None) -> str | None:
        if not value:
            return None
        key = value.strip().lower()
        mine = {name.lower(): source for name, source in self.lead_sources.items()}
        found = mine.get(key) or DEFAULT_SOURCES.get(key)
        return (found or LeadSource.OTHER).value

    def rep(self, user_id: str) -> str:
        return self.reps.get(user_id, user_id)


def load_mapping(path: Path | None) -> SalesforceMapping:
    if path is None:
        return SalesforceMapping()
    data = read_yaml_file(path) or {}
    try:
        return SalesforceMapping.model_validate(data)
    except ValidationError as error:
        raise HistoryError(f"{path}: " + "; ".join(describe_validation_error(error))) from None


def _rows(folder: Path, name: str, required: set[str]) -> list[dict[str, str]]:
    path = folder / name
    if not path.exists():
        raise HistoryError(f"{folder} has no {name}; a Salesforce export needs Lead.csv, LeadHistory.csv and Task.csv")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise HistoryError(f"{path}: missing column(s) {', '.join(sorted(missing))} (standard API field names)")
        return list(reader)


def read_salesforce_export(folder: Path, mapping: SalesforceMapping) -> list[LeadEvent]:
    """The export's leads, status and owner changes and calls, as history events."""
    leads = _rows(folder, "Lead.csv", {"Id", "CreatedDate", "LeadSource", "Status", "OwnerId"})
    history = _rows(folder, "LeadHistory.csv", {"LeadId", "Field", "NewValue", "CreatedDate"})
    tasks = _rows(folder, "Task.csv", {"WhoId", "OwnerId", "CreatedDate", "TaskSubtype"})
    events: list[LeadEvent] = []
    reasons: dict[str, str] = {}
    tiers: dict[str, str] = {}
    known: set[str] = set()
    for number, row in enumerate(leads, start=2):
        where = f"Lead.csv line {number}"
        lead_id = row["Id"].strip()
        known.add(lead_id)
        size = (row.get("NumberOfEmployees") or "").strip()
        try:
            employees = int(float(size)) if size else None
        except ValueError:
            raise HistoryError(f"{where}: NumberOfEmployees {size!r} is not a number") from None
        country = (row.get("Country") or "").strip().upper()
        events.append(LeadEvent(
            lead_id=lead_id, at=parse_instant(row["CreatedDate"].strip() or None, f"{where}: CreatedDate"),
            kind=EventKind.CREATED, source=mapping.source(row.get("LeadSource")),
            country=country if len(country) == 2 else None, company_size=employees,
            title=(row.get("Title") or "").strip() or None, industry=(row.get("Industry") or "").strip().lower() or None))
        if mapping.reason_column and (row.get(mapping.reason_column) or "").strip():
            reasons[lead_id] = row[mapping.reason_column].strip().lower().replace(" ", "_")
        if mapping.tier_column and (row.get(mapping.tier_column) or "").strip():
            value = row[mapping.tier_column].strip()
            tiers[lead_id] = mapping.tiers.get(value, value.lower())
        if (row.get("IsConverted") or "").strip().lower() == "true" and (row.get("ConvertedDate") or "").strip():
            converted = parse_instant(_as_instant(row["ConvertedDate"]), f"{where}: ConvertedDate")
            events.append(LeadEvent(lead_id=lead_id, at=converted, kind=EventKind.CONVERTED,
                                    rep_id=mapping.rep(row["OwnerId"].strip())))
    tier_changes: dict[str, list[tuple[datetime, str]]] = {}
    if mapping.tier_column:  # the tier each MQL had, when the org tracks the field's history
        for number, row in enumerate(history, start=2):
            if row["Field"].strip() == mapping.tier_column and (row.get("NewValue") or "").strip():
                value = row["NewValue"].strip()
                at = parse_instant(row["CreatedDate"].strip() or None, f"LeadHistory.csv line {number}: CreatedDate")
                tier_changes.setdefault(row["LeadId"].strip(), []).append((at, mapping.tiers.get(value, value.lower())))
    qualified: set[str] = set()
    for number, row in enumerate(history, start=2):
        where = f"LeadHistory.csv line {number}"
        lead_id, field_name, value = row["LeadId"].strip(), row["Field"].strip(), (row.get("NewValue") or "").strip()
        if lead_id not in known or not value:
            continue
        at = parse_instant(row["CreatedDate"].strip() or None, f"{where}: CreatedDate")
        if field_name.lower() in ("owner", "ownerassignment"):
            if value.startswith("00G"):  # a queue, not a person
                continue
            if value.startswith("005") or value in mapping.reps:
                events.append(LeadEvent(lead_id=lead_id, at=at, kind=EventKind.ASSIGNED, rep_id=mapping.rep(value)))
        elif field_name.lower() == "status":
            kind = mapping.status(value)
            if kind is None:
                raise HistoryError(f"{where}: Status {value!r} is not mapped; add it to the mapping file's statuses "
                                   f"(one of {', '.join(EventKind)} or ignore)")
            if kind == "ignore":
                continue
            assert isinstance(kind, EventKind)
            if kind is EventKind.QUALIFIED:
                qualified.add(lead_id)
            events.append(LeadEvent(lead_id=lead_id, at=at, kind=kind,
                                    reason=reasons.get(lead_id) if kind in (EventKind.DISQUALIFIED, EventKind.REJECTED,
                                                                            EventKind.RECYCLED) else None,
                                    tier=_tier_at(tier_changes.get(lead_id), at) or tiers.get(lead_id)
                                    if kind is EventKind.MQL else None))
        elif mapping.reason_column and field_name == mapping.reason_column:
            reasons.setdefault(lead_id, value.lower().replace(" ", "_"))
    for event in events:  # a loss reason logged after the status change
        if event.kind in (EventKind.DISQUALIFIED, EventKind.REJECTED, EventKind.RECYCLED) and event.reason is None:
            event.reason = reasons.get(event.lead_id)
    for event in [event for event in events if event.kind is EventKind.CONVERTED and event.lead_id not in qualified]:
        events.append(LeadEvent(lead_id=event.lead_id, at=event.at, kind=EventKind.QUALIFIED, rep_id=event.rep_id))
    subtypes = {subtype.lower() for subtype in mapping.attempt_subtypes}
    connected = {disposition.lower() for disposition in mapping.connected_dispositions}
    for number, row in enumerate(tasks, start=2):
        where = f"Task.csv line {number}"
        lead_id = row["WhoId"].strip()
        if lead_id not in known or (row.get("TaskSubtype") or "").strip().lower() not in subtypes:
            continue
        disposition = (row.get("CallDisposition") or "").strip().lower()
        seconds = (row.get("CallDurationInSeconds") or "").strip()
        try:
            minutes = float(seconds) / 60 if seconds else None
        except ValueError:
            raise HistoryError(f"{where}: CallDurationInSeconds {seconds!r} is not a number") from None
        events.append(LeadEvent(
            lead_id=lead_id, at=parse_instant(row["CreatedDate"].strip() or None, f"{where}: CreatedDate"),
            kind=EventKind.ATTEMPT, rep_id=mapping.rep(row["OwnerId"].strip()),
            outcome=AttemptOutcome.CONNECTED if disposition in connected else AttemptOutcome.NO_ANSWER,
            duration_minutes=minutes))
    return events


def write_export_files(folder: Path, leads: list[dict], history: list[dict], tasks: list[dict]) -> None:
    """Write Lead.csv, LeadHistory.csv and Task.csv (each list's first row names the columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("Lead.csv", leads), ("LeadHistory.csv", history), ("Task.csv", tasks)):
        with (folder / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def _tier_at(changes: list[tuple[datetime, str]] | None, at: datetime) -> str | None:
    """The tier field's value at ``at`` (a change logged with the MQL counts)."""
    if not changes:
        return None
    known = [tier for changed_at, tier in sorted(changes) if changed_at <= at + timedelta(seconds=1)]
    return known[-1] if known else None


def _as_instant(value: str) -> str:
    """ConvertedDate is a date: the end of that day, UTC."""
    value = value.strip()
    return f"{value}T23:59:59Z" if len(value) == 10 else value
