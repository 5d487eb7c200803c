"""Where a history comes from (``--from`` / ``--against``): the ledger, a Salesforce export
folder, or a generic events CSV; read into ``simulation.history.History``."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from activities.ledger import Ledger
from activities.ledger_schema import journey_events
from activities.report_source import ledger_period, serving_policy
from leadflow.policy import Policy
from simulation.history import History, HistoryError, LeadEvent, decisions_of, read_events_csv
from simulation.salesforce_export import load_mapping, read_salesforce_export

LEDGER = "ledger"


def describe_sources() -> str:
    return ("'ledger' (LEADFLOW_DATABASE_URL), a database URL, a Salesforce export folder (Lead.csv, "
            "LeadHistory.csv, Task.csv) or a generic events CSV file")


def load_history(source: str, policy: Policy, since: date | None, until: date | None, ledger_url: str,
                 mapping: Path | None = None) -> History:
    """The history of ``[since, until)`` (whole days, UTC; default: all of it) from ``source``.

    For the ledger, ``policy`` is only the fallback: the policy the period's journeys ran
    under is read from the ledger itself.
    """
    if source == LEDGER or "://" in source:
        return _from_ledger(ledger_url if source == LEDGER else source, policy, since, until)
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
    return decisions_of(_in_or_before(events, end), policy, label, start, end)


def _in_or_before(events: list[LeadEvent], end: datetime) -> list[LeadEvent]:
    return [event for event in events if event.at < end]


def _period(since: date | None, until: date | None, times: list[datetime]) -> tuple[datetime, datetime]:
    first = since or min(times).astimezone(timezone.utc).date()
    last = until or (max(times).astimezone(timezone.utc).date() + timedelta(days=1))
    start = datetime.combine(first, time(0), tzinfo=timezone.utc)
    end = datetime.combine(last, time(0), tzinfo=timezone.utc)
    if end <= start:
        raise HistoryError(f"--until ({last}) must be after --since ({first})")
    return start, end


def _from_ledger(url: str, fallback: Policy, since: date | None, until: date | None) -> History:
    ledger = Ledger(url)
    try:
        try:
            with ledger.engine.connect() as conn:
                first, last = conn.execute(select(func.min(journey_events.c.at), func.max(journey_events.c.at))).one()
        except SQLAlchemyError as error:
            raise HistoryError(f"cannot read the ledger at {ledger.url.split('@')[-1]}: {type(error).__name__}; "
                               "check LEADFLOW_DATABASE_URL") from None
        if first is None:
            raise HistoryError("the ledger has no journeys yet; run some leads (or give another source)")
        start, end = _period(since, until, [first, last])
        decisions, settlements, open_leads = ledger_period(ledger, start, end)
        versions = Counter(str(logged.entry.detail.get("policy_version")) for logged in decisions
                           if logged.entry.kind == "created")
        policy = serving_policy(ledger, fallback)
        if versions:
            policy = ledger.policy(versions.most_common(1)[0][0]) or policy
        durations = any(logged.entry.kind == "attempt" and logged.entry.detail.get("minutes") is not None
                        for logged in decisions)
        return History(source="leadflow ledger", since=start, until=end, policy=policy, decisions=decisions,
                       settlements=settlements, open_leads=open_leads, has_durations=durations)
    finally:
        ledger.dispose()
