"""Decision details the shells read are typed: ``decide`` writes them and readers get them
back through ``leadflow.decision_details``, never by a string key."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from leadflow.actions import AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify, Recycle
from leadflow.decision_details import (
    AttemptDetail,
    BreachDetail,
    ConvertedDetail,
    CreatedDetail,
    DisqualifiedDetail,
    EscalatedDetail,
    FirstContactDetail,
    ReassignedDetail,
    RecycledDetail,
    WrongDecision,
)
from leadflow.journey import Clock, EscalationLevel
from runtime.settings import REPO_ROOT
from simulation.scripted import ScriptedModel
from tests.journey_helpers import hot_lead

TYPED = (AttemptDetail, BreachDetail, ConvertedDetail, CreatedDetail, DisqualifiedDetail, EscalatedDetail,
         FirstContactDetail, ReassignedDetail, RecycledDetail)
START = datetime(2026, 11, 17, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # a Tuesday


def test_every_typed_detail_decide_records_reads_back_exactly(policy):
    """A scripted day with contacts, breaches, escalations of every level and reassignments."""
    model = ScriptedModel(policy, START)
    at = START.astimezone(timezone.utc)
    model.submit("contacted", hot_lead("contacted@details.io"), at)
    model.submit("ignored", hot_lead("ignored@details.io"), at)
    model.act("contacted", at + timedelta(minutes=20),
              lambda s: LogAttempt(by=s.owner_id, outcome=AttemptOutcome.CONNECTED))
    model.act("contacted", at + timedelta(minutes=40), lambda s: Qualify(by=s.owner_id, budget=True, authority=True, need="x"))
    model.act("contacted", at + timedelta(minutes=50), lambda s: Convert(by=s.owner_id))
    for key, close in (("lost", lambda s: Disqualify(by=s.owner_id, reason="no_budget")),
                       ("later", lambda s: Recycle(by=s.owner_id, reason="timing"))):
        model.submit(key, hot_lead(f"{key}@details.io"), at)
        model.act(key, at + timedelta(minutes=15), close)
    traces = model.run_until(at + timedelta(days=3))
    entries = [entry for trace in traces.values() for entry in trace]
    seen = set()
    for entry in entries:
        for typed in TYPED:
            if entry.kind is typed.kind:
                detail = typed.of(entry)
                assert detail.to_detail() == entry.detail, entry  # the same keys and values the ledger stores
                seen.add(typed)
    assert seen == set(TYPED)
    levels = {EscalatedDetail.of(entry).level for entry in entries if entry.kind is EscalatedDetail.kind}
    assert levels == {EscalationLevel.NOTIFY, EscalationLevel.REASSIGN, EscalationLevel.TEAM_QUEUE}
    clocks = {BreachDetail.of(entry).clock for entry in entries if entry.kind is BreachDetail.kind}
    assert Clock.FIRST_CONTACT in clocks or Clock.ACCEPTANCE in clocks
    with pytest.raises(WrongDecision):
        BreachDetail.of(next(entry for entry in entries if entry.kind is AttemptDetail.kind))


def test_no_shell_reads_a_decision_detail_by_key():
    readers = []
    for package in ("leadflow", "workflows", "activities", "simulation", "api", "cli", "bench"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            if path.name == "decision_details.py":
                continue
            if re.search(r"\.detail(\.get\(|\[)", path.read_text(encoding="utf-8")):
                readers.append(str(path.relative_to(REPO_ROOT)))
    assert readers == []
