"""The waiting line (``leadflow.waiting_line``) and how ``decide`` uses it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.actions import Accept, Disqualify, InvalidAction
from leadflow.decide import decide, new_journey
from leadflow.journey import (
    AssignLead,
    Clock,
    DeadlineReached,
    JoinWaitingLine,
    LeadSubmitted,
    LeaveWaitingLine,
    NoRepAvailable,
    RepActed,
    RepAssigned,
    Stage,
)
from leadflow.waiting_line import WaitingLead, WaitingLine, first_for, line_position, may_take, tier_priority
from runtime.settings import DEFAULT_POLICY, load_policy_file
from tests.test_decide import hot_lead
from tests.test_routing import make_policy, rep

T0 = datetime(2026, 3, 2, 15, tzinfo=timezone.utc)
POLICY = make_policy([rep("na-1", territories=["NA"]), rep("emea-1", territories=["EMEA"]), rep("any-1"),
                      rep("smb-1", segments=["smb"])])
TERRITORY = st.sampled_from([None, "NA", "EMEA", "APAC"])
SEGMENT = st.sampled_from([None, "smb", "mid_market", "enterprise"])


@st.composite
def waiting_leads(draw) -> list[WaitingLead]:
    count = draw(st.integers(0, 30))
    return [
        WaitingLead(lead_id=f"L{index:03d}", step=1, priority=draw(st.integers(0, 2)),
                    mql_at=T0 + timedelta(minutes=draw(st.integers(0, 20))),  # ties are common
                    territory=draw(TERRITORY), segment=draw(SEGMENT))
        for index in range(count)
    ]


@settings(max_examples=200, deadline=None)
@given(waiting=waiting_leads(), served_by=st.lists(st.sampled_from(POLICY.reps), max_size=40),
       leaving=st.sets(st.integers(0, 29), max_size=8))
def test_the_line_serves_the_first_lead_each_rep_may_take(waiting, served_by, leaving):
    """Whatever the order of joins, departures and freed slots: each slot goes to the first
    lead in line (priority, MQL time, id) that the rep covers, as the one-line definition says."""
    line = WaitingLine()
    for lead in reversed(waiting):  # the order of joining does not matter, only the key
        line.join(lead)
    remaining = list(waiting)
    for index in sorted(leaving):
        if index < len(waiting):
            line.leave(waiting[index].lead_id)
            remaining = [lead for lead in remaining if lead.lead_id != waiting[index].lead_id]
    for rep_ in served_by:
        expected = first_for(rep_, remaining)
        assert line.serve(rep_) == expected
        if expected is not None:
            assert may_take(rep_, expected)
            remaining.remove(expected)
            assert all(line_position(expected) <= line_position(lead) for lead in remaining if may_take(rep_, lead))
    assert len(line) == len(remaining)


def test_a_rep_never_takes_a_lead_outside_their_territory_or_segment():
    line = WaitingLine()
    line.join(WaitingLead(lead_id="L1", step=1, priority=0, mql_at=T0, territory="EMEA", segment="enterprise"))
    na, smb = POLICY.rep("na-1"), POLICY.rep("smb-1")
    assert line.serve(na) is None and line.serve(smb) is None
    assert line.serve(POLICY.rep("emea-1")).lead_id == "L1"
    assert len(line) == 0


def test_hotter_tiers_go_first_then_the_earliest_mql():
    line = WaitingLine()
    line.join(WaitingLead(lead_id="cold-early", step=1, priority=2, mql_at=T0))
    line.join(WaitingLead(lead_id="hot-late", step=1, priority=0, mql_at=T0 + timedelta(hours=2)))
    line.join(WaitingLead(lead_id="hot-early", step=1, priority=0, mql_at=T0 + timedelta(hours=1)))
    anyone = POLICY.rep("any-1")
    assert [line.serve(anyone).lead_id for _ in range(3)] == ["hot-early", "hot-late", "cold-early"]
    assert line.serve(anyone) is None


def test_tier_priority_ranks_by_min_score():
    policy = load_policy_file(DEFAULT_POLICY)
    ranked = [tier.name for tier in sorted(policy.tiers, key=lambda tier: -tier.min_score)]
    assert [tier_priority(policy, name) for name in ranked] == list(range(len(ranked)))
    assert tier_priority(policy, "no-such-tier") == len(ranked)


# --- decide ----------------------------------------------------------------------------------


def unrouted(policy, lead=None):
    state = new_journey("L1", "j1", policy.version, waits_in_line=True)
    state, commands = decide(state, LeadSubmitted(lead=lead or hot_lead()), T0, policy)
    [assign] = [command for command in commands if isinstance(command, AssignLead)]
    state, commands = decide(state, NoRepAvailable(step=assign.step, why="every eligible rep is at capacity"), T0, policy)
    return state, commands


def test_a_lead_nobody_can_take_joins_the_line_with_no_retry_timer():
    policy = load_policy_file(DEFAULT_POLICY)
    state, commands = unrouted(policy)
    [join] = [command for command in commands if isinstance(command, JoinWaitingLine)]
    assert join.step == state.assignment_step and join.mql_at == state.mql_at == T0
    assert join.priority == tier_priority(policy, state.tier) and join.territory == state.territory
    assert Clock.ROUTING_RETRY not in state.deadlines and state.in_line
    # A slot frees: the shell answers the same step, and the lead is assigned at that instant.
    served_at = T0 + timedelta(hours=3)
    state, commands = decide(state, RepAssigned(step=join.step, rep_id="rep-ana", team="na-sales"), served_at, policy)
    assert state.owner_id == "rep-ana" and state.stage is Stage.ASSIGNED and not state.in_line
    assert not [command for command in commands if isinstance(command, LeaveWaitingLine)]  # the shell took it out


def test_a_journey_started_before_the_line_still_retries_on_a_timer():
    policy = load_policy_file(DEFAULT_POLICY)
    state = new_journey("L1", "j1", policy.version)
    state, _ = decide(state, LeadSubmitted(lead=hot_lead()), T0, policy)
    state, commands = decide(state, NoRepAvailable(step=1, why="full"), T0, policy)
    assert Clock.ROUTING_RETRY in state.deadlines
    assert not [command for command in commands if isinstance(command, JoinWaitingLine)]


def test_a_lead_that_stops_waiting_leaves_the_line():
    policy = load_policy_file(DEFAULT_POLICY)
    state, _ = unrouted(policy)
    # A manager disqualifies it while it waits: out of the line, once.
    state, commands = decide(state, RepActed(action=Disqualify(by=sorted(policy.managers)[0], reason="spam")), T0, policy)
    assert state.stage is Stage.DISQUALIFIED and not state.in_line
    assert len([command for command in commands if isinstance(command, LeaveWaitingLine)]) == 1
    # A stale first-contact deadline or breach while waiting keeps it in line.
    state, _ = unrouted(policy)
    state, commands = decide(state, DeadlineReached(clock=Clock.FIRST_CONTACT, due_at=state.deadlines[Clock.FIRST_CONTACT]),
                             state.deadlines[Clock.FIRST_CONTACT], policy)
    assert state.in_line and not [command for command in commands if isinstance(command, LeaveWaitingLine)]


def test_accepting_a_waiting_lead_is_refused_and_leaves_it_in_line():
    policy = load_policy_file(DEFAULT_POLICY)
    state, _ = unrouted(policy)
    with pytest.raises(InvalidAction, match="needs ASSIGNED"):
        decide(state, RepActed(action=Accept(by="rep-ana")), T0, policy)
    assert state.in_line and state.stage is Stage.MQL
