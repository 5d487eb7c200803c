"""The ledger as history: a period's decisions for calibration and backtests, and the open
journeys a simulation starts from (``leadflow.history``, ``simulate --from-ledger``)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from activities.ledger import Ledger
from activities.ledger_schema import journey_events
from activities.report_source import ledger_period, serving_policy
from leadflow.decision_details import AttemptDetail, CreatedDetail
from leadflow.history import History
from leadflow.journey import DecisionKind, JourneyState
from leadflow.policy import Policy


class LedgerHistoryError(ValueError):
    """The ledger cannot give the history asked for: the message says why and what to do."""


def _where(ledger: Ledger) -> str:
    return ledger.url.split("@")[-1]


def ledger_history(url: str, since: date | None, until: date | None, fallback: Policy) -> History:
    """The ledger's history of ``[since, until)`` (whole UTC days; default: all of it), under the
    policy most of its journeys ran (``fallback`` if the ledger does not know it)."""
    ledger = Ledger(url)
    try:
        try:
            with ledger.engine.connect() as conn:
                first, last = conn.execute(select(func.min(journey_events.c.at), func.max(journey_events.c.at))).one()
        except SQLAlchemyError as error:
            raise LedgerHistoryError(f"cannot read the ledger at {_where(ledger)}: {type(error).__name__}; "
                                     "check LEADFLOW_DATABASE_URL") from None
        if first is None:
            raise LedgerHistoryError("the ledger has no journeys yet; run some leads (or give another source)")
        first_day = since or first.astimezone(timezone.utc).date()
        last_day = until or last.astimezone(timezone.utc).date() + timedelta(days=1)
        start = datetime.combine(first_day, time(0), tzinfo=timezone.utc)
        end = datetime.combine(last_day, time(0), tzinfo=timezone.utc)
        if end <= start:
            raise LedgerHistoryError(f"--until ({last_day}) must be after --since ({first_day})")
        decisions, settlements, open_leads = ledger_period(ledger, start, end)
        versions = Counter(CreatedDetail.of(logged.entry).policy_version for logged in decisions
                           if logged.entry.kind is DecisionKind.CREATED)
        policy = serving_policy(ledger, fallback)
        if versions:
            policy = ledger.policy(versions.most_common(1)[0][0]) or policy
        durations = any(AttemptDetail.of(logged.entry).minutes is not None for logged in decisions
                        if logged.entry.kind is DecisionKind.ATTEMPT)
        return History(source="leadflow ledger", since=start, until=end, policy=policy, decisions=decisions,
                       settlements=settlements, open_leads=open_leads, has_durations=durations)
    finally:
        ledger.dispose()


def open_journeys(url: str) -> tuple[JourneyState, ...]:
    """Every open journey as the ledger last saw it (without personal data)."""
    ledger = Ledger(url)
    try:
        try:
            return tuple(state for state in ledger.open_journeys() if not state.finished)
        except SQLAlchemyError as error:
            raise LedgerHistoryError(
                f"cannot read open journeys from the ledger at {_where(ledger)}: {type(error).__name__}; check "
                "LEADFLOW_DATABASE_URL (an older ledger gains the journey_state column when a worker starts)") from None
    finally:
        ledger.dispose()
