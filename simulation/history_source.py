"""A CRM's history from files (``--from`` / ``--against``): a Salesforce export folder or a
generic events CSV, read into ``leadflow.history.History``. (The leadflow ledger is read by
``activities.ledger_history``; the CLI chooses.)"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from leadflow.history import History
from leadflow.policy import Policy
from simulation.crm_history import HistoryError, LeadEvent, decisions_of, read_events_csv
from simulation.salesforce_export import load_mapping, read_salesforce_export

LEDGER = "ledger"


def describe_sources() -> str:
    return ("'ledger' (LEADFLOW_DATABASE_URL), a database URL, a Salesforce export folder (Lead.csv, "
            "LeadHistory.csv, Task.csv) or a generic events CSV file")


def is_ledger(source: str) -> bool:
    return source == LEDGER or "://" in source


def load_file_history(source: str, policy: Policy, since: date | None, until: date | None,
                      mapping: Path | None = None) -> History:
    """The history of ``[since, until)`` (whole UTC days; default: all of it) from a file source."""
    path = Path(source).expanduser()
    if path.is_dir():
        events = read_salesforce_export(path, load_mapping(mapping))
        label = f"Salesforce export {path.name}"
    elif path.suffix.lower() == ".csv" and path.is_file():
        events = read_events_csv(path)
        label = f"events CSV {path.name}"
    else:
        raise HistoryError(f"history source {source!r} not found; give {describe_sources()}")
    if not events:
        raise HistoryError(f"{source}: no events")
    start, end = _period(since, until, [event.at for event in events])
    return decisions_of(_before(events, end), policy, label, start, end)


def _before(events: list[LeadEvent], end: datetime) -> list[LeadEvent]:
    return [event for event in events if event.at < end]


def _period(since: date | None, until: date | None, times: list[datetime]) -> tuple[datetime, datetime]:
    first = since or min(times).astimezone(timezone.utc).date()
    last = until or (max(times).astimezone(timezone.utc).date() + timedelta(days=1))
    start = datetime.combine(first, time(0), tzinfo=timezone.utc)
    end = datetime.combine(last, time(0), tzinfo=timezone.utc)
    if end <= start:
        raise HistoryError(f"--until ({last}) must be after --since ({first})")
    return start, end
