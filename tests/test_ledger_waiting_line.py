"""The ledger's waiting line: joined under the routing lock, served the instant a slot frees,
in the core's order (``leadflow.waiting_line``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from activities.contracts import JoinLineRequest, SlotReturn
from activities.ledger import Ledger
from leadflow.journey import JoinWaitingLine, Stage
from leadflow.policy import Policy
from leadflow.waiting_line import WaitingLead, first_for
from tests.test_ledger import ON_SHIFT, _batch, _open, _projection, _request, default_policy, ledger  # noqa: F401

HOT, WARM, COLD = 0, 1, 2


@pytest.fixture
def small_team(default_policy: Policy) -> Policy:  # noqa: F811
    """Ana (NA) and Elif (EMEA), one open lead each."""
    reps = [rep.model_copy(update={"capacity": 1}) for rep in default_policy.reps if rep.id in ("rep-ana", "rep-elif")]
    return default_policy.model_copy(update={"reps": reps})


def _join(lead_id: str, priority: int, mql_minute: float, territory: str = "NA", step: int = 1,
          at: datetime = ON_SHIFT) -> JoinLineRequest:
    return JoinLineRequest(
        journey_id=f"j-{lead_id}", lead_id=lead_id, workflow_id=f"wf-{lead_id}", policy_version="2026.11-1",
        entry=JoinWaitingLine(step=step, priority=priority, mql_at=ON_SHIFT + timedelta(minutes=mql_minute),
                              territory=territory),
        at=at,
    )


def _release(lead_id: str, rep_id: str, seq: int, **fields):
    """The step of ``lead_id``'s journey that closes it and frees ``rep_id``'s slot."""
    projection = _projection(lead_id, f"j-{lead_id}", seq, Stage.DISQUALIFIED, outcome="disqualified")
    return _batch(lead_id, f"j-{lead_id}", [], projection, releases=[rep_id], **fields)


def _fill(ledger: Ledger, policy: Policy) -> None:  # noqa: F811
    """Both reps busy: Ana with L-na, Elif with L-emea."""
    assert ledger.assign(_request("L-na"), policy).rep_id == "rep-ana"
    assert ledger.assign(_request("L-emea", territory="EMEA"), policy).rep_id == "rep-elif"


def test_a_lead_nobody_can_take_joins_the_line_once(ledger: Ledger, small_team: Policy) -> None:  # noqa: F811
    _fill(ledger, small_team)
    assert ledger.join_line(_join("L-1", COLD, 0), small_team).rep_id is None
    assert ledger.join_line(_join("L-1", COLD, 0), small_team).rep_id is None  # a retried join keeps its place
    assert [(row["lead_id"], row["step"]) for row in ledger.waiting()] == [("L-1", 1)]
    assert ledger.line_summary() == (1, ON_SHIFT)  # what the worker's waiting-line gauges show


def test_a_freed_slot_goes_to_the_hottest_then_earliest_lead_its_rep_may_take(ledger: Ledger, small_team: Policy) -> None:  # noqa: F811
    _fill(ledger, small_team)
    for request in (_join("L-cold-early", COLD, 0), _join("L-hot-late", HOT, 30), _join("L-hot-early", HOT, 10),
                    _join("L-emea-hot", HOT, 0, territory="EMEA")):
        ledger.join_line(request, small_team)
    assert [row["lead_id"] for row in ledger.waiting()] == ["L-emea-hot", "L-hot-early", "L-hot-late", "L-cold-early"]

    recorded = ledger.apply(_release("L-na", "rep-ana", 5), small_team)

    # Ana covers NA only: the EMEA lead, first in line, is not hers to take.
    assert [(served.workflow_id, served.assigned.rep_id, served.assigned.step, served.assigned.from_line)
            for served in recorded.served] == [("wf-L-hot-early", "rep-ana", 1, True)]
    assert [row["lead_id"] for row in ledger.waiting()] == ["L-emea-hot", "L-hot-late", "L-cold-early"]
    assert [row["rep_id"] for row in ledger.assignments_of("L-hot-early")] == ["rep-ana"]
    assert _open(ledger) == {"rep-ana": 1, "rep-elif": 1}
    assert ledger.apply(_release("L-na", "rep-ana", 5), small_team).served == []  # a retried step serves nobody twice


def test_a_slot_freed_between_routing_and_joining_is_taken_at_once(ledger: Ledger, small_team: Policy) -> None:  # noqa: F811
    _fill(ledger, small_team)
    assert ledger.apply(_release("L-na", "rep-ana", 5), small_team).served == []  # nobody in line yet
    joined = ledger.join_line(_join("L-1", WARM, 0), small_team)
    assert joined.rep_id == "rep-ana" and ledger.waiting() == []


def test_a_lost_signal_is_found_by_joining_again(ledger: Ledger, small_team: Policy) -> None:  # noqa: F811
    _fill(ledger, small_team)
    ledger.join_line(_join("L-1", WARM, 0), small_team)
    ledger.apply(_release("L-na", "rep-ana", 5), small_team)  # served; say the signal never arrived
    again = ledger.join_line(_join("L-1", WARM, 0), small_team)  # the journey's safety net
    assert again.rep_id == "rep-ana" and ledger.waiting() == []
    assert _open(ledger) == {"rep-ana": 1, "rep-elif": 1}


def test_leaving_the_line_gives_back_a_slot_served_meanwhile(ledger: Ledger, small_team: Policy) -> None:  # noqa: F811
    _fill(ledger, small_team)
    ledger.join_line(_join("L-1", HOT, 0), small_team)
    ledger.join_line(_join("L-2", COLD, 0), small_team)
    served = ledger.apply(_release("L-na", "rep-ana", 5), small_team).served
    assert [item.journey_id for item in served] == ["j-L-1"]
    # L-1 escalated to its team queue before it heard: its step leaves the line.
    left = _batch("L-1", "j-L-1", [], _projection("L-1", "j-L-1", 6, Stage.MQL), left_line=True)
    recorded = ledger.apply(left, small_team)
    assert [(item.journey_id, item.assigned.rep_id) for item in recorded.served] == [("j-L-2", "rep-ana")]
    assert [row["released_at"] is not None for row in ledger.assignments_of("L-1")] == [True]
    assert ledger.waiting() == [] and _open(ledger) == {"rep-ana": 1, "rep-elif": 1}


def test_a_slot_returned_by_a_journey_that_is_gone_serves_the_next(ledger: Ledger, small_team: Policy) -> None:  # noqa: F811
    _fill(ledger, small_team)
    ledger.join_line(_join("L-1", HOT, 0), small_team)
    ledger.join_line(_join("L-2", HOT, 5), small_team)
    (first,) = ledger.apply(_release("L-na", "rep-ana", 5), small_team).served
    returned = SlotReturn(journey_id=first.journey_id, step=1, rep_id="rep-ana", policy_version="2026.11-1",
                          at=ON_SHIFT + timedelta(minutes=6))
    assert [item.journey_id for item in ledger.return_slot(returned, small_team)] == ["j-L-2"]
    assert ledger.return_slot(returned, small_team) == []  # returned once


def test_a_reassignment_serves_the_line_from_the_previous_owner(ledger: Ledger, small_team: Policy,  # noqa: F811
                                                                 default_policy: Policy) -> None:  # noqa: F811
    dev = next(rep for rep in default_policy.reps if rep.id == "rep-dev").model_copy(update={"capacity": 1})
    more = small_team.model_copy(update={"reps": [*small_team.reps, dev]})
    assert ledger.assign(_request("L-na"), more).rep_id == "rep-ana"
    assert ledger.assign(_request("L-na2"), more).rep_id == "rep-dev"
    ledger.join_line(_join("L-1", WARM, 0), more)
    moved = ledger.assign(_request("L-na", step=2, exclude=["rep-ana"], release_rep_id="rep-ana"), more)
    assert moved.rep_id is None  # Dev is full and Ana already had it
    assert [(item.journey_id, item.assigned.rep_id) for item in moved.served] == [("j-L-1", "rep-ana")]


def test_the_ledger_serves_the_lead_the_core_would(ledger: Ledger, default_policy: Policy,  # noqa: F811
                                                   ledger_url: str) -> None:
    """Coverage by territory and segment, in SQL, matches ``first_for`` on random lines."""
    if not ledger_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the order itself")
    generator = random.Random(7)
    territories, segments = [None, "NA", "EMEA", "APAC"], [None, "smb", "mid_market", "enterprise"]
    for trial in range(40):
        waiting = [WaitingLead(lead_id=f"T{trial}-{index}", step=1, priority=generator.randrange(3),
                               mql_at=ON_SHIFT + timedelta(minutes=generator.randrange(5)),
                               territory=generator.choice(territories), segment=generator.choice(segments))
                   for index in range(6)]
        for lead in waiting:
            ledger.join_line(JoinLineRequest(journey_id=f"j-{lead.lead_id}", lead_id=lead.lead_id, workflow_id="wf",
                                             policy_version="2026.11-1",
                                             entry=JoinWaitingLine(step=1, priority=lead.priority, mql_at=lead.mql_at,
                                                                   territory=lead.territory, segment=lead.segment),
                                             at=ON_SHIFT), _nobody_free(default_policy))
        rep = default_policy.reps[generator.randrange(len(default_policy.reps))].model_copy(
            update={"territories": generator.sample(["NA", "EMEA", "APAC"], generator.randrange(3)),
                    "segments": generator.sample(["smb", "mid_market", "enterprise"], generator.randrange(3))})
        with ledger.engine.connect() as conn:
            head = conn.execute(ledger._first_in_line_for(rep)).first()
        expected = first_for(rep, waiting)
        assert (head.lead_id if head else None) == (expected.lead_id if expected else None), (rep, waiting)
        with ledger.transaction() as conn:
            conn.exec_driver_sql("DELETE FROM waiting_line")


def _nobody_free(policy: Policy) -> Policy:
    """The policy with nobody on the roster: every join waits."""
    return policy.model_copy(update={"reps": []})
