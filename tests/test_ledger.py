"""The ledger (``activities.ledger.Ledger``) on SQLite and on the real PostgreSQL server.

Every test runs twice: once on a SQLite file in ``tmp_path`` and once on PostgreSQL in a
fresh schema of its own (selected through ``search_path`` in the URL, dropped afterwards).
Nothing is mocked.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from activities.contracts import AssignmentRequest, Claim, LeadProjection, LedgerBatch
from activities.ledger import Ledger
from activities.ledger_schema import journey_events, routing_lock
from leadflow.journey import DecisionEntry, DecisionKind, Stage
from leadflow.policy import Policy
from runtime.settings import DEFAULT_POLICY, load_policy_file
from tests.conftest import POSTGRES_URL  # noqa: E402,F401  (test_faults imports it from here)

# Tuesday 2026-11-24 18:00 UTC: 13:00 New York, 12:00 Chicago, 10:00 Los Angeles, so every
# NA rep (rep-cara works from Los Angeles) is on shift and on-shift preference changes nothing.
ON_SHIFT = datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc)
NA_REPS = ["rep-ana", "rep-ben", "rep-cara", "rep-dev"]  # roster order
NA_SMB_REPS = ["rep-ana", "rep-ben", "rep-dev"]  # rep-cara takes only mid_market / enterprise
# rep-hana (intl-sales, London, no territories = every territory) also covers NA. At ON_SHIFT
# it is 18:00 in London, so she is off shift: she gets NA leads only once the NA reps are full.
FALLBACK_REP = "rep-hana"


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_policy() -> Policy:
    return load_policy_file(DEFAULT_POLICY)


def _with_capacity(policy: Policy, capacity: int) -> Policy:
    return policy.model_copy(update={"routing": policy.routing.model_copy(update={"default_capacity": capacity})})


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    instance = Ledger(ledger_url)
    instance.create_schema()
    try:
        yield instance
    finally:
        instance.dispose()  # before the schema is dropped


# --- builders --------------------------------------------------------------------------


def _projection(lead_id: str, journey_id: str, seq: int, stage: Stage = Stage.NEW, **fields) -> LeadProjection:
    return LeadProjection(
        lead_id=lead_id,
        journey_id=journey_id,
        workflow_id=f"wf-{journey_id}",
        stage=stage,
        policy_version="2026.11-1",
        seq=seq,
        updated_at=fields.pop("updated_at", ON_SHIFT + timedelta(minutes=seq)),
        **fields,
    )


def _entry(seq: int, kind: DecisionKind = DecisionKind.CREATED, stage: Stage = Stage.NEW, **fields) -> DecisionEntry:
    return DecisionEntry(seq=seq, at=fields.pop("at", ON_SHIFT + timedelta(minutes=seq)), kind=kind, stage=stage, **fields)


def _batch(
    lead_id: str,
    journey_id: str,
    entries: list[DecisionEntry],
    projection: LeadProjection | None = None,
    **fields,
) -> LedgerBatch:
    last = max((entry.seq for entry in entries), default=0)
    return LedgerBatch(
        journey_id=journey_id,
        lead_id=lead_id,
        workflow_id=f"wf-{journey_id}",
        policy_version="2026.11-1",
        entries=entries,
        projection=projection or _projection(lead_id, journey_id, last, entries[-1].stage if entries else Stage.NEW),
        at=fields.pop("at", ON_SHIFT + timedelta(minutes=last)),
        **fields,
    )


def _request(lead_id: str, step: int = 1, journey_id: str | None = None, **fields) -> AssignmentRequest:
    return AssignmentRequest(
        journey_id=journey_id or f"j-{lead_id}",
        lead_id=lead_id,
        step=step,
        policy_version="2026.11-1",
        tier=fields.pop("tier", "warm"),
        territory=fields.pop("territory", "NA"),
        at=fields.pop("at", ON_SHIFT),
        **fields,
    )


def _as_utc(moment: datetime | None) -> datetime | None:
    """Raw assignment rows come back naive from SQLite (stored as UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def _open(ledger: Ledger) -> dict[str, int]:
    return {rep: count for rep, count in ledger.open_leads_by_rep().items() if count}


# --- schema ----------------------------------------------------------------------------


def test_create_schema_is_idempotent(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.create_schema()
        ledger.create_schema()
        ledger.apply(_batch("L-1", "j-1", [_entry(1)]))
        ledger.create_schema()  # existing tables and their rows are kept
        assert [event["seq"] for event in ledger.events("L-1")] == [1]
        with ledger.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(routing_lock)).scalar() == 1
    finally:
        ledger.dispose()


def test_a_ledger_made_before_a_column_existed_gets_it_and_keeps_its_rows(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.create_schema()
        ledger.apply(_batch("L-1", "j-1", [_entry(1)]))
        with ledger.transaction() as conn:  # as the ledger was before open journeys were kept
            conn.execute(text("ALTER TABLE leads DROP COLUMN journey_state"))
        ledger.create_schema()
        assert ledger.lead("L-1")["journey_state"] is None and ledger.lead("L-1")["seq"] == 1
    finally:
        ledger.dispose()


def test_open_journeys_come_back_without_personal_data(ledger: Ledger, default_policy: Policy) -> None:
    from tests.test_decide import assigned_hot

    journey = assigned_hot(default_policy, "rep-ana")
    state = journey.state
    assert state.lead is not None and state.lead.email
    kept = state.without_personal_data()
    ledger.apply(_batch(state.lead_id, state.journey_id, [_entry(1, stage=state.stage)],
                        _projection(state.lead_id, state.journey_id, 1, state.stage, owner_id="rep-ana", journey_state=kept)))
    ledger.apply(_batch("L-done", "j-done", [_entry(1)], _projection("L-done", "j-done", 1, outcome="converted")))
    (back,) = ledger.open_journeys()
    assert back == kept and back.lead is None and back.log == []
    assert back.deadlines == state.deadlines and back.owner_id == "rep-ana"
    assert ledger.open_journeys(owner_id="rep-ana") == [kept] and ledger.open_journeys(owner_id="rep-ben") == []


# --- journey events and the projection -------------------------------------------------


def test_apply_is_idempotent_and_events_come_back_in_order(ledger: Ledger) -> None:
    entries = [
        _entry(1, DecisionKind.CREATED, Stage.NEW, detail={"source": "webinar", "fit": 42.5}),
        _entry(2, DecisionKind.MQL, Stage.MQL, tier="warm", detail={"fast_track": False, "note": None}),
        _entry(3, DecisionKind.ASSIGNED, Stage.ASSIGNED, owner_id="rep-ana", tier="warm", detail={"step": 1}),
    ]
    sla_due = ON_SHIFT + timedelta(hours=4)
    projection = _projection(
        "L-1", "j-1", 3, Stage.ASSIGNED, tier="warm", owner_id="rep-ana", fit_score=42.5, source="webinar", sla_due_at=sla_due
    )
    batch = _batch("L-1", "j-1", entries, projection)

    ledger.apply(batch)
    ledger.apply(batch)  # a retried activity writes nothing new

    events = ledger.events("L-1")
    assert [event["seq"] for event in events] == [1, 2, 3]
    assert [event["kind"] for event in events] == ["created", "mql", "assigned"]
    assert [event["stage"] for event in events] == ["NEW", "MQL", "ASSIGNED"]
    assert [event["event_key"] for event in events] == ["j-1:1", "j-1:2", "j-1:3"]
    assert [event["at"] for event in events] == [entry.at for entry in entries]
    assert all(event["at"].tzinfo is not None for event in events)
    assert events[0]["detail"] == {"source": "webinar", "fit": 42.5}
    assert events[1]["detail"] == {"fast_track": False, "note": None}
    assert events[2]["owner_id"] == "rep-ana" and events[2]["tier"] == "warm"
    assert {event["journey_id"] for event in events} == {"j-1"}
    assert {event["workflow_id"] for event in events} == {"wf-j-1"}
    assert {event["policy_version"] for event in events} == {"2026.11-1"}
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(journey_events)).scalar() == 3

    lead = ledger.lead("L-1")
    assert lead is not None
    assert lead["journey_id"] == "j-1" and lead["workflow_id"] == "wf-j-1"
    assert lead["stage"] == "ASSIGNED"
    assert lead["owner_id"] == "rep-ana" and lead["tier"] == "warm"
    assert lead["fit_score"] == 42.5 and lead["source"] == "webinar"
    assert lead["seq"] == 3 and lead["outcome"] is None
    assert lead["updated_at"] == projection.updated_at
    assert lead["sla_due_at"] == sla_due

    # The next step overlaps the last one (seq 3 again): only the new events are stored.
    following = _batch(
        "L-1",
        "j-1",
        [_entry(3, DecisionKind.ASSIGNED, Stage.ASSIGNED), _entry(4, DecisionKind.ACCEPTED, Stage.ACCEPTED)],
        _projection("L-1", "j-1", 4, Stage.ACCEPTED, owner_id="rep-ana", tier="warm"),
    )
    ledger.apply(following)
    assert [event["seq"] for event in ledger.events("L-1")] == [1, 2, 3, 4]
    assert ledger.lead("L-1")["stage"] == "ACCEPTED"
    assert ledger.lead("L-1")["sla_due_at"] is None

    assert ledger.events("L-unknown") == []
    assert ledger.lead("L-unknown") is None


def test_apply_returns_the_number_of_new_events(ledger: Ledger) -> None:
    batch = _batch("L-1", "j-1", [_entry(1), _entry(2, DecisionKind.MQL, Stage.MQL), _entry(3, DecisionKind.QUEUED, Stage.MQL)])
    assert ledger.apply(batch).written == 3
    assert ledger.apply(batch).written == 0
    overlapping = _batch(
        "L-1", "j-1", [_entry(3, DecisionKind.QUEUED, Stage.MQL), _entry(4, DecisionKind.ASSIGNED, Stage.ASSIGNED)]
    )
    assert ledger.apply(overlapping).written == 1
    assert ledger.apply(_batch("L-1", "j-1", [], _projection("L-1", "j-1", 4, Stage.ASSIGNED))).written == 0


def test_batch_without_entries_still_updates_the_projection(ledger: Ledger) -> None:
    ledger.apply(_batch("L-1", "j-1", [], _projection("L-1", "j-1", 2, Stage.NURTURING)))
    assert ledger.lead("L-1")["stage"] == "NURTURING"
    assert ledger.events("L-1") == []


def test_older_batch_does_not_overwrite_a_newer_projection(ledger: Ledger) -> None:
    newer = _batch(
        "L-1",
        "j-1",
        [_entry(5, DecisionKind.ASSIGNED, Stage.ASSIGNED, owner_id="rep-ben")],
        _projection("L-1", "j-1", 5, Stage.ASSIGNED, owner_id="rep-ben", tier="hot"),
    )
    older = _batch(
        "L-1",
        "j-1",
        [_entry(3, DecisionKind.MQL, Stage.MQL)],
        _projection("L-1", "j-1", 3, Stage.MQL, tier="cold"),
    )
    ledger.apply(newer)
    ledger.apply(older)  # its event is still recorded, but not its projection
    lead = ledger.lead("L-1")
    assert (lead["seq"], lead["stage"], lead["owner_id"], lead["tier"]) == (5, "ASSIGNED", "rep-ben", "hot")
    assert [event["seq"] for event in ledger.events("L-1")] == [3, 5]

    # A retry of the same step (equal seq) with different content changes nothing either.
    same_seq = _batch("L-1", "j-1", [], _projection("L-1", "j-1", 5, Stage.WORKING))
    ledger.apply(same_seq)
    assert ledger.lead("L-1")["stage"] == "ASSIGNED"

    # A newer step of the same journey does replace it.
    ledger.apply(
        _batch(
            "L-1",
            "j-1",
            [_entry(6, DecisionKind.ATTEMPT, Stage.WORKING)],
            _projection("L-1", "j-1", 6, Stage.WORKING, owner_id="rep-ben"),
        )
    )
    assert (ledger.lead("L-1")["seq"], ledger.lead("L-1")["stage"]) == (6, "WORKING")


def test_a_new_journey_of_the_same_lead_replaces_the_projection(ledger: Ledger) -> None:
    ledger.apply(
        _batch(
            "L-1",
            "j-old",
            [_entry(9, DecisionKind.RECYCLED, Stage.RECYCLED)],
            _projection("L-1", "j-old", 9, Stage.RECYCLED, owner_id="rep-ana", outcome="recycled"),
        )
    )
    later = ON_SHIFT + timedelta(days=30)
    ledger.apply(
        _batch(
            "L-1",
            "j-new",
            [_entry(1, DecisionKind.CREATED, Stage.NEW, at=later)],
            _projection("L-1", "j-new", 1, Stage.NEW, updated_at=later),
            at=later,
        )
    )
    lead = ledger.lead("L-1")
    assert (lead["journey_id"], lead["workflow_id"], lead["seq"], lead["stage"]) == ("j-new", "wf-j-new", 1, "NEW")
    assert lead["owner_id"] is None and lead["outcome"] is None
    assert lead["updated_at"] == later
    # Both journeys' events are kept, ordered by time.
    assert [(event["journey_id"], event["seq"]) for event in ledger.events("L-1")] == [("j-old", 9), ("j-new", 1)]


# --- routing -----------------------------------------------------------------------------


def test_assign_is_idempotent_per_journey_and_step(ledger: Ledger, default_policy: Policy) -> None:
    request = _request("L-1")
    first = ledger.assign(request, default_policy)
    again = ledger.assign(request, default_policy)
    assert first.rep_id == "rep-ana"  # first in roster order, nobody assigned yet
    assert (first.step, first.team, first.on_shift, first.why_none) == (1, "na-sales", True, None)
    assert again == first

    rows = ledger.assignments_of("L-1")
    assert len(rows) == 1
    row = rows[0]
    assert (row["journey_id"], row["step"], row["lead_id"], row["rep_id"]) == ("j-L-1", 1, "L-1", "rep-ana")
    assert (row["team"], row["pool"], row["on_shift"], row["released_at"]) == ("na-sales", "NA/*", 1, None)
    assert _as_utc(row["assigned_at"]) == ON_SHIFT
    assert _open(ledger) == {"rep-ana": 1}

    # A retry must not advance the round-robin pointer: the next lead goes to rep-ben.
    assert ledger.assign(_request("L-2"), default_policy).rep_id == "rep-ben"


def test_successive_leads_go_round_robin_in_roster_order(ledger: Ledger, default_policy: Policy) -> None:
    chosen = [ledger.assign(_request(f"L-{n}"), default_policy).rep_id for n in range(9)]
    assert chosen == NA_REPS * 2 + NA_REPS[:1]

    # The smb pool has its own pointer and skips rep-cara (mid_market/enterprise only).
    smb = [ledger.assign(_request(f"S-{n}", segment="smb"), default_policy).rep_id for n in range(7)]
    assert smb == NA_SMB_REPS * 2 + NA_SMB_REPS[:1]
    assert ledger.assignments_of("S-0")[0]["pool"] == "NA/smb"

    assert _open(ledger) == {"rep-ana": 3 + 3, "rep-ben": 2 + 2, "rep-cara": 2, "rep-dev": 2 + 2}


def test_off_shift_reps_are_skipped_while_someone_is_on_shift(ledger: Ledger, default_policy: Policy) -> None:
    # 16:00 UTC on the same Tuesday is 08:00 in Los Angeles (rep-cara is not working yet)
    # and 16:00 in London (rep-hana, who covers every territory, is).
    early = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)
    chosen = [ledger.assign(_request(f"L-{n}", at=early), default_policy) for n in range(5)]
    assert [result.rep_id for result in chosen] == ["rep-ana", "rep-ben", "rep-dev", FALLBACK_REP, "rep-ana"]
    assert all(result.on_shift for result in chosen)
    assert ledger.assignments_of("L-3")[0]["team"] == "intl-sales"


def test_exclude_is_honoured(ledger: Ledger, default_policy: Policy) -> None:
    result = ledger.assign(_request("L-1", exclude=["rep-ana"]), default_policy)
    assert result.rep_id == "rep-ben"
    result = ledger.assign(_request("L-2", exclude=["rep-cara", "rep-dev"]), default_policy)
    assert result.rep_id == "rep-ana"  # after rep-ben comes rep-cara, rep-dev, then wraps round

    nobody = ledger.assign(_request("L-3", segment="smb", exclude=[*NA_SMB_REPS, FALLBACK_REP]), default_policy)
    assert nobody.rep_id is None and nobody.team is None
    assert nobody.why_none == "every covering rep already had this lead"
    assert ledger.assignments_of("L-3") == []


def test_release_rep_id_releases_the_previous_owner(ledger: Ledger, default_policy: Policy) -> None:
    first = ledger.assign(_request("L-1", step=1), default_policy)
    assert first.rep_id == "rep-ana"
    assert _open(ledger) == {"rep-ana": 1}

    later = ON_SHIFT + timedelta(hours=1)
    second = ledger.assign(_request("L-1", step=2, exclude=["rep-ana"], release_rep_id="rep-ana", at=later), default_policy)
    assert second.rep_id == "rep-ben"
    assert _open(ledger) == {"rep-ben": 1}

    rows = ledger.assignments_of("L-1")
    assert [(row["step"], row["rep_id"]) for row in rows] == [(1, "rep-ana"), (2, "rep-ben")]
    assert _as_utc(rows[0]["released_at"]) == later
    assert rows[1]["released_at"] is None

    # Retrying the reassignment step changes nothing.
    retry = ledger.assign(_request("L-1", step=2, exclude=["rep-ana"], release_rep_id="rep-ana", at=later), default_policy)
    assert retry == second
    assert len(ledger.assignments_of("L-1")) == 2
    assert _open(ledger) == {"rep-ben": 1}


def test_release_only_touches_the_same_journey(ledger: Ledger, default_policy: Policy) -> None:
    assert ledger.assign(_request("L-1"), default_policy).rep_id == "rep-ana"
    # Another lead releasing rep-ana does not free rep-ana's open assignment on L-1.
    ledger.assign(_request("L-2", release_rep_id="rep-ana"), default_policy)
    ledger.apply(_batch("L-3", "j-L-3", [_entry(1)], releases=["rep-ana"]))
    assert ledger.open_leads_by_rep()["rep-ana"] == 1


def test_capacity_stops_routing_until_a_release(ledger: Ledger, default_policy: Policy) -> None:
    policy = _with_capacity(default_policy, 1)
    firsts = [ledger.assign(_request(f"L-{n}"), policy).rep_id for n in range(4)]
    assert firsts == NA_REPS
    assert _open(ledger) == {rep: 1 for rep in NA_REPS}

    # With every on-shift rep full, the off-shift rep who covers NA takes the next one.
    fallback = ledger.assign(_request("L-4"), policy)
    assert (fallback.rep_id, fallback.team, fallback.on_shift) == (FALLBACK_REP, "intl-sales", False)
    assert ledger.assignments_of("L-4")[0]["on_shift"] == 0

    full = ledger.assign(_request("L-5"), policy)
    assert full.rep_id is None and full.team is None and not full.on_shift
    assert "capacity" in full.why_none
    assert ledger.assignments_of("L-5") == []
    assert _open(ledger) == {rep: 1 for rep in [*NA_REPS, FALLBACK_REP]}

    # rep-ben's lead is released by its journey's batch: capacity is back for rep-ben only.
    ledger.apply(_batch("L-1", "j-L-1", [_entry(7, DecisionKind.RECYCLED, Stage.RECYCLED)], releases=["rep-ben"]))
    assert _open(ledger) == {"rep-ana": 1, "rep-cara": 1, "rep-dev": 1, FALLBACK_REP: 1}
    assert ledger.assignments_of("L-1")[0]["released_at"] is not None

    retried = ledger.assign(_request("L-5"), policy)  # the unrouted step is retried
    assert retried.rep_id == "rep-ben"
    assert len(ledger.assignments_of("L-5")) == 1
    assert "capacity" in ledger.assign(_request("L-6"), policy).why_none


def test_batch_claims_insert_an_assignment_once(ledger: Ledger, default_policy: Policy) -> None:
    batch = _batch(
        "L-1",
        "j-L-1",
        [_entry(4, DecisionKind.ASSIGNED, Stage.ASSIGNED, owner_id="rep-dev")],
        claims=[Claim(step=3, rep_id="rep-dev")],
    )
    ledger.apply(batch)
    ledger.apply(batch)
    rows = ledger.assignments_of("L-1")
    assert len(rows) == 1
    row = rows[0]
    assert (row["journey_id"], row["step"], row["rep_id"], row["pool"], row["team"]) == ("j-L-1", 3, "rep-dev", "claim", None)
    assert row["released_at"] is None
    assert _as_utc(row["assigned_at"]) == batch.at
    assert _open(ledger) == {"rep-dev": 1}

    # The claim counts against capacity.
    policy = _with_capacity(default_policy, 1)
    chosen = [ledger.assign(_request(f"L-{n}"), policy).rep_id for n in (2, 3, 4, 5)]
    assert chosen == ["rep-ana", "rep-ben", "rep-cara", FALLBACK_REP]
    assert "capacity" in ledger.assign(_request("L-6"), policy).why_none

    # Releasing the claimed lead in a later batch frees rep-dev.
    ledger.apply(_batch("L-1", "j-L-1", [_entry(5, DecisionKind.DISQUALIFIED, Stage.DISQUALIFIED)], releases=["rep-dev"]))
    assert ledger.assign(_request("L-6"), policy).rep_id == "rep-dev"


def test_concurrent_assignment_never_overloads_or_skips(ledger: Ledger, default_policy: Policy) -> None:
    policy = _with_capacity(default_policy, 10)
    leads = [f"C-{n:02d}" for n in range(40)]
    # Each lead is asked for twice (an activity retried while the first attempt runs).
    work = [lead for lead in leads for _ in range(2)]
    start = threading.Barrier(8)

    def run(chunk: list[str]) -> list[tuple[str, str | None]]:
        start.wait(timeout=30)
        return [(lead, ledger.assign(_request(lead), policy).rep_id) for lead in chunk]

    chunks = [work[index::8] for index in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [pair for future in [pool.submit(run, chunk) for chunk in chunks] for pair in future.result()]

    answers: dict[str, set[str | None]] = {}
    for lead, rep_id in results:
        answers.setdefault(lead, set()).add(rep_id)
    assert all(len(reps) == 1 and None not in reps for reps in answers.values()), answers  # same rep on retry

    rows = {lead: ledger.assignments_of(lead) for lead in leads}
    assert all(len(lead_rows) == 1 for lead_rows in rows.values())
    assert {lead: lead_rows[0]["rep_id"] for lead, lead_rows in rows.items()} == {
        lead: next(iter(reps)) for lead, reps in answers.items()
    }

    load = ledger.open_leads_by_rep()
    assert set(load) == set(NA_REPS)
    assert max(load.values()) <= 10
    assert max(load.values()) - min(load.values()) <= 1
    assert sum(load.values()) == 40
    assert Counter(lead_rows[0]["rep_id"] for lead_rows in rows.values()) == Counter(load)

    # Every on-shift rep is now full: the next lead goes to the off-shift fallback rep.
    overflow = ledger.assign(_request("C-40"), policy)
    assert (overflow.rep_id, overflow.on_shift) == (FALLBACK_REP, False)
    with ledger.engine.connect() as conn:  # every routing transaction took the lock
        assert conn.execute(select(routing_lock.c.assignments)).scalar() == len(work) + 1


# --- policies and notifications -----------------------------------------------------------


def test_register_policy_round_trips_and_first_registration_wins(ledger: Ledger, default_policy: Policy) -> None:
    assert ledger.policy(default_policy.version) is None
    ledger.register_policy(default_policy)
    stored = ledger.policy(default_policy.version)
    assert stored == default_policy
    assert stored.model_dump() == default_policy.model_dump()

    rival = default_policy.model_copy(update={"name": "rival"})
    ledger.register_policy(rival)
    assert ledger.policy(default_policy.version).name == default_policy.name

    other = default_policy.model_copy(update={"version": "2026.12-1", "name": "december"})
    ledger.register_policy(other)
    assert ledger.policy("2026.12-1") == other
    assert ledger.policy(default_policy.version) == default_policy
    assert ledger.policy("no-such-version") is None


def test_notifications_are_marked_once(ledger: Ledger) -> None:
    key = "j-L-1:assigned:3"
    assert ledger.notification_sent(key) is False
    ledger.mark_notification_sent(key, "assigned")
    assert ledger.notification_sent(key) is True
    ledger.mark_notification_sent(key, "assigned")  # a retried activity
    ledger.mark_notification_sent(key, "sla_breach")  # first marking wins, no error
    assert ledger.notification_sent(key) is True
    assert ledger.notification_sent("j-L-1:assigned:4") is False


# --- known defect -------------------------------------------------------------------------


def test_non_utc_datetimes_keep_their_instant(ledger: Ledger) -> None:
    """Aware datetimes in other offsets come back as the same instant (SQLite keeps no offset)."""
    new_york = timezone(timedelta(hours=-5))
    at = datetime(2026, 11, 24, 11, 0, tzinfo=new_york)  # 16:00 UTC
    ledger.apply(
        _batch("L-1", "j-1", [_entry(1, at=at)], _projection("L-1", "j-1", 1, updated_at=at, sla_due_at=at), at=at)
    )
    assert ledger.events("L-1")[0]["at"] == at
    assert ledger.lead("L-1")["updated_at"] == at
    assert ledger.lead("L-1")["sla_due_at"] == at


def test_a_late_retry_of_an_older_journey_does_not_bring_back_its_projection(ledger: Ledger) -> None:
    old_at = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)
    new_at = old_at + timedelta(days=3)
    old = _batch("L-1", "j-old", [_entry(9, at=old_at)], _projection("L-1", "j-old", 9, updated_at=old_at), at=old_at)
    new = _batch("L-1", "j-new", [_entry(1, at=new_at)], _projection("L-1", "j-new", 1, updated_at=new_at), at=new_at)
    ledger.apply(old)
    ledger.apply(new)
    ledger.apply(old)  # a retried write of the older journey arrives late
    assert ledger.lead("L-1")["journey_id"] == "j-new"


# --- idempotent requests --------------------------------------------------------------------

def test_one_key_is_reserved_by_exactly_one_of_many_concurrent_requests(ledger: Ledger) -> None:
    from activities.ledger import ReservationState

    now = datetime.now(timezone.utc)
    start = threading.Barrier(8)

    def reserve(digest: str):
        start.wait(timeout=30)
        return ledger.reserve_request("client-a", "key-1", digest, now, timedelta(seconds=60))

    with ThreadPoolExecutor(max_workers=8) as pool:
        same = [future.result() for future in [pool.submit(reserve, "d1") for _ in range(8)]]
    assert Counter(found.state for found in same) == {ReservationState.RESERVED: 1, ReservationState.IN_PROGRESS: 7}
    [holder] = [found.holder for found in same if found.state is ReservationState.RESERVED]
    assert ledger.reserve_request("client-a", "key-1", "d2", now, timedelta(seconds=60)).state is ReservationState.CONFLICT
    assert ledger.reserve_request("client-b", "key-1", "d2", now, timedelta(seconds=60)).state is ReservationState.RESERVED
    ledger.complete_request("client-a", "key-1", holder, 201, '{"lead_id": "L1"}')
    done = ledger.reserve_request("client-a", "key-1", "d1", now, timedelta(seconds=60))
    assert (done.state, done.status, done.response) == (ReservationState.DONE, 201, '{"lead_id": "L1"}')
    ledger.release_request("client-a", "key-1", holder)  # a completed key is never given up
    assert ledger.reserve_request("client-a", "key-1", "d1", now, timedelta(seconds=60)).state is ReservationState.DONE


def test_a_released_or_abandoned_reservation_can_be_taken_again_and_only_its_holder_acts(ledger: Ledger) -> None:
    from activities.ledger import ReservationState

    now = datetime.now(timezone.utc)
    wait = timedelta(seconds=60)
    first = ledger.reserve_request("c", "k", "d", now, wait)
    assert first.state is ReservationState.RESERVED
    ledger.release_request("c", "k", first.holder)
    second = ledger.reserve_request("c", "k", "d", now, wait)
    assert second.state is ReservationState.RESERVED
    assert ledger.reserve_request("c", "k", "d", now + timedelta(seconds=30), wait).state is ReservationState.IN_PROGRESS
    later = now + timedelta(seconds=61)  # the holder looks dead: its reservation is taken over, once
    third = ledger.reserve_request("c", "k", "d", later, wait)
    assert third.state is ReservationState.RESERVED and third.holder != second.holder
    assert ledger.reserve_request("c", "k", "d", later, wait).state is ReservationState.IN_PROGRESS
    # The slow first holder comes back: it can neither give the key up nor store its answer.
    ledger.release_request("c", "k", second.holder)
    ledger.complete_request("c", "k", second.holder, 500, '{"stale": true}')
    assert ledger.reserve_request("c", "k", "d", later, wait).state is ReservationState.IN_PROGRESS
    ledger.complete_request("c", "k", third.holder, 201, '{"lead_id": "L2"}')
    done = ledger.reserve_request("c", "k", "d", later, wait)
    assert (done.state, done.status, done.response) == (ReservationState.DONE, 201, '{"lead_id": "L2"}')
