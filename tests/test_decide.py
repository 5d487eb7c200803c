"""``decide`` (``leadflow.decide``) and the journey vocabulary (``leadflow.journey``).

Unit tests walk single journeys through ``scenarios/policy.yaml``; a Hypothesis test drives
random event sequences through ``decide`` the way a shell would (timers, routing answers,
ledger accounting of who holds the lead) and checks invariants after every step.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from leadflow.actions import (
    Accept,
    AttemptOutcome,
    Convert,
    Disqualify,
    InvalidAction,
    LogAttempt,
    Qualify,
    Recycle,
)
from leadflow.business_calendar import add_business_hours, end_of_business_day
from leadflow.decide import check_action, decide, new_journey, view_score
from leadflow.journey import (
    AssignLead,
    CancelDeadline,
    ClaimLead,
    Clock,
    DeadlineReached,
    DecisionKind,
    EngagementReceived,
    Finish,
    JoinWaitingLine,
    JourneyState,
    LeadSubmitted,
    LeaveWaitingLine,
    NoRepAvailable,
    NotificationKind,
    Notify,
    Record,
    ReleaseLead,
    RepActed,
    RepAssigned,
    Stage,
    StartDeadline,
)
from leadflow.lead import EngagementEvent, EngagementKind, Lead
from leadflow.policy import Policy
from leadflow.routing import RouteRequest, RoutingSnapshot, choose_rep
from leadflow.scoring import add_engagement, qualifies, qualifying_event
from runtime.settings import DEFAULT_POLICY, DEMO_POLICY, load_policy_file

NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc
# Tuesday 2026-11-17 10:00 in New York (the policy calendar: Mon-Fri 09:00-17:00, 2026-11-26 off)
T0 = datetime(2026, 11, 17, 10, 0, tzinfo=NEW_YORK)
OWNED = (Stage.ASSIGNED, Stage.ACCEPTED, Stage.WORKING, Stage.SQL)

C = TypeVar("C")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_file(DEFAULT_POLICY)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def hot_lead(**extra: Any) -> Lead:
    """A hand-raiser (demo request) from a US mid-market software company (fit 75)."""
    fields: dict[str, Any] = dict(
        email="jo@acme.example", title="VP Sales", company_size=500, industry="software", country="US", source="demo_request"
    )
    fields.update(extra)
    return Lead(**fields)


def warm_lead() -> Lead:
    """Good fit (75) from an ebook: no engagement credit, so it needs engagement to qualify."""
    return hot_lead(source="ebook")


def poor_lead() -> Lead:
    """Fit 0: no seniority keyword, tiny company, industry and country outside the ICP."""
    return Lead(email="kim@small.example", title="Student", company_size=5, industry="retail", country="BR", source="organic")


def of(commands: list, kind: type[C]) -> list[C]:
    return [command for command in commands if isinstance(command, kind)]


def records(commands: list) -> list[DecisionKind]:
    return [command.entry.kind for command in of(commands, Record)]


def stages(state: JourneyState) -> list[Stage]:
    return [change.stage for change in state.stage_history]


class Journey:
    """One lead fed through ``decide``, remembering the last commands."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.state = new_journey("L1", "j1", policy.version)
        self.commands: list = []
        self.now = T0

    def feed(self, event: Any, at: datetime) -> list:
        self.state, self.commands = decide(self.state, event, at, self.policy)
        self.now = at
        return self.commands

    def submit(self, lead: Lead, at: datetime = T0) -> list:
        return self.feed(LeadSubmitted(lead=lead), at)

    def engage(self, kind: str, at: datetime, weight: float | None = None) -> list:
        return self.feed(EngagementReceived(event=EngagementEvent(kind=kind, at=at, weight=weight)), at)

    def act(self, action: Any, at: datetime) -> list:
        return self.feed(RepActed(action=action), at)

    def assign(self, rep_id: str, at: datetime, team: str | None = None) -> list:
        team = team or self.policy.rep(rep_id).team
        return self.feed(RepAssigned(step=self.state.assignment_step, rep_id=rep_id, team=team), at)

    def fire(self, clock: Clock) -> list:
        due = self.state.deadlines[clock]
        return self.feed(DeadlineReached(clock=clock, due_at=due), due)


def assigned_hot(policy: Policy, rep_id: str = "rep-ana") -> Journey:
    journey = Journey(policy)
    journey.submit(hot_lead())
    journey.assign(rep_id, T0)
    return journey


# --- arrival and qualification ----------------------------------------------------------------


def test_new_journey(policy):
    state = new_journey("L1", "j1", policy.version)
    assert state.stage is Stage.NEW and state.policy_version == "2026.11-1"
    assert not state.finished and state.deadlines == {} and state.sla_due_at is None


def test_demo_request_becomes_hot_mql_and_is_routed_at_once(policy):
    journey = Journey(policy)
    commands = journey.submit(hot_lead())
    state = journey.state
    assert state.stage is Stage.MQL
    assert state.tier == "hot"
    assert state.hand_raised
    assert stages(state) == [Stage.NURTURING, Stage.MQL]
    assert (state.territory, state.segment, state.fit_score) == ("NA", "mid_market", 75)
    assert records(commands) == [DecisionKind.CREATED, DecisionKind.MQL]
    assert of(commands, Record)[1].entry.detail["reason"] == "hand_raiser"
    [assign] = of(commands, AssignLead)
    assert (assign.step, assign.tier, assign.territory, assign.segment, assign.exclude, assign.release_rep_id) == (
        1, "hot", "NA", "mid_market", [], None,
    )
    # the nurture clock was armed and disarmed in one step: no timer for the shell at all
    assert not [c for c in commands if isinstance(c, (StartDeadline, CancelDeadline)) and c.clock is Clock.NURTURE]
    # first contact due one business hour later
    assert of(commands, StartDeadline) == [StartDeadline(clock=Clock.FIRST_CONTACT, due_at=ny(2026, 11, 17, 11, 0))]
    assert state.deadlines == {Clock.FIRST_CONTACT: ny(2026, 11, 17, 11, 0)}
    assert state.first_contact_due == ny(2026, 11, 17, 11, 0)
    assert state.sla_due_at == ny(2026, 11, 17, 11, 0)


def test_hot_lead_arriving_friday_evening_is_due_monday(policy):
    journey = Journey(policy)
    journey.submit(hot_lead(), ny(2026, 11, 20, 17, 30))
    assert journey.state.deadlines[Clock.FIRST_CONTACT] == ny(2026, 11, 23, 10, 0)


def test_good_fit_lead_nurtures_until_engagement_crosses_the_threshold(policy):
    journey = Journey(policy)
    commands = journey.submit(warm_lead())
    assert journey.state.stage is Stage.NURTURING
    # nurture_days are elapsed days, not calendar days in New York (a DST change lies between)
    assert of(commands, StartDeadline) == [
        StartDeadline(clock=Clock.NURTURE, due_at=T0.astimezone(UTC) + timedelta(days=180))
    ]
    assert not of(commands, AssignLead)

    journey.engage("pricing_page", T0)
    journey.engage("webinar", T0)
    assert journey.state.stage is Stage.NURTURING  # engagement 25 < 30
    assert view_score(journey.state, T0, policy) == 100

    commands = journey.engage("content_download", T0)  # 33
    state = journey.state
    assert state.stage is Stage.MQL
    assert state.tier == "warm"  # 75 + 33 = 108 >= 70
    assert of(commands, Record)[-1].entry.detail["reason"] == "score"
    assert of(commands, CancelDeadline) == [CancelDeadline(clock=Clock.NURTURE)]
    assert len(of(commands, AssignLead)) == 1
    # warm: first contact within 24 business hours: Tue 10:00 + 7 + 8 + 8 + 1 = Fri 10:00
    assert state.deadlines == {Clock.FIRST_CONTACT: ny(2026, 11, 20, 10, 0)}


def test_engagement_decays_with_the_half_life(policy):
    journey = Journey(policy)
    journey.submit(warm_lead())
    journey.engage("pricing_page", T0)
    journey.engage("webinar", T0)
    later = T0 + timedelta(days=14)  # one half-life: 25 -> 12.5
    journey.engage("content_download", later)
    assert journey.state.stage is Stage.NURTURING
    assert journey.state.engagement_score == pytest.approx(20.5)


def test_poor_fit_lead_never_qualifies_on_engagement_alone(policy):
    journey = Journey(policy)
    journey.submit(poor_lead())
    for _ in range(20):
        journey.engage("pricing_page", T0)
    assert journey.state.stage is Stage.NURTURING
    assert journey.state.engagement_score == 200
    # ...but a hand-raise fast-tracks it
    commands = journey.engage("demo_request", T0 + timedelta(minutes=5))
    assert journey.state.stage is Stage.MQL and journey.state.tier == "hot"
    assert of(commands, AssignLead)[0].territory is None  # Brazil is in no territory


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fit=st.sampled_from([0.0, 10.0, 29.9, 30.0, 55.0, 90.0]), start_score=st.floats(0, 80), hand_raised=st.booleans(),
       steps=st.lists(st.tuples(st.sampled_from(list(EngagementKind)), st.integers(0, 20 * 24 * 3600),
                                st.one_of(st.none(), st.floats(0, 40))), max_size=30))
def test_the_qualifying_event_is_the_one_a_fold_of_every_event_finds(policy, fit, start_score, hand_raised, steps):
    # ``qualifying_event`` skips folding the score of a lead only a hand raise can qualify;
    # it must find the same event and score as folding every event and asking ``qualifies``.
    events, at = [], T0
    for kind, seconds, weight in steps:
        at += timedelta(seconds=seconds)
        events.append(EngagementEvent(kind=kind, at=at, weight=weight))
    score, as_of, expected = start_score, T0, None
    for engagement in events:
        score, as_of = add_engagement(score, as_of, engagement, policy.engagement)
        raised = hand_raised or engagement.kind in policy.qualification.fast_track_kinds
        if qualifies(fit, score, raised, policy) is not None:
            expected = (engagement, score)
            break
    assert qualifying_event(fit, start_score, T0, hand_raised, iter(events), policy) == expected


def test_resubmission_merges_and_counts(policy):
    journey = Journey(policy)
    journey.submit(Lead(email="kim@small.example", source="organic"))
    assert journey.state.fit_score == 0
    commands = journey.submit(poor_lead().model_copy(update={"title": "CTO", "country": "US"}), T0 + timedelta(hours=1))
    assert records(commands) == [DecisionKind.MERGED]
    assert journey.state.submissions == 2
    assert journey.state.lead.title == "CTO"
    assert journey.state.territory == "NA"


def test_referral_source_credits_engagement(policy):
    journey = Journey(policy)
    journey.submit(hot_lead(source="referral"))
    assert journey.state.engagement_score == 15
    assert journey.state.stage is Stage.NURTURING


def test_nurture_expiry_finishes_the_journey(policy):
    journey = Journey(policy)
    journey.submit(poor_lead())
    commands = journey.fire(Clock.NURTURE)
    assert records(commands) == [DecisionKind.NURTURE_EXPIRED]
    assert of(commands, Finish) == [Finish(outcome="nurture_expired")]
    assert journey.state.finished and journey.state.deadlines == {}


# --- routing answers --------------------------------------------------------------------------------


def test_rep_assigned_arms_the_acceptance_deadline(policy):
    journey = Journey(policy)
    journey.submit(hot_lead())
    commands = journey.assign("rep-ana", T0 + timedelta(minutes=1))
    state = journey.state
    assert state.stage is Stage.ASSIGNED
    assert (state.owner_id, state.owner_team, state.previous_owners) == ("rep-ana", "na-sales", ["rep-ana"])
    # hot: accept within half a business hour
    assert of(commands, StartDeadline) == [StartDeadline(clock=Clock.ACCEPTANCE, due_at=ny(2026, 11, 17, 10, 31))]
    assert state.deadlines == {Clock.FIRST_CONTACT: ny(2026, 11, 17, 11, 0), Clock.ACCEPTANCE: ny(2026, 11, 17, 10, 31)}
    [note] = of(commands, Notify)
    assert note.kind is NotificationKind.ASSIGNED and note.recipients == ["rep-ana"]
    assert records(commands) == [DecisionKind.ASSIGNED]


def test_stale_routing_answer_is_ignored(policy):
    journey = Journey(policy)
    journey.submit(hot_lead())
    before = journey.state
    commands = journey.feed(RepAssigned(step=7, rep_id="rep-ben", team="na-sales"), T0)
    assert commands == [] and journey.state == before
    journey.assign("rep-ana", T0)
    before = journey.state
    assert journey.feed(RepAssigned(step=1, rep_id="rep-ben", team="na-sales"), T0) == []
    assert journey.state == before


def test_no_rep_available_retries_and_tells_managers_once(policy):
    journey = Journey(policy)
    journey.submit(hot_lead())
    commands = journey.feed(NoRepAvailable(step=1, why="every eligible rep is at capacity"), T0)
    assert journey.state.deadlines[Clock.ROUTING_RETRY] == T0 + timedelta(minutes=30)
    [note] = of(commands, Notify)
    assert note.kind is NotificationKind.UNROUTED and note.recipients == ["mgr-intl", "mgr-na"]
    commands = journey.fire(Clock.ROUTING_RETRY)
    [assign] = of(commands, AssignLead)
    assert assign.step == 2
    commands = journey.feed(NoRepAvailable(step=2, why="still full"), T0 + timedelta(minutes=30))
    assert not of(commands, Notify)
    assert Clock.ROUTING_RETRY in journey.state.deadlines
    journey.fire(Clock.ROUTING_RETRY)
    journey.assign("rep-ben", T0 + timedelta(hours=1))
    assert journey.state.owner_id == "rep-ben" and journey.state.routing_retries == 0


# --- SLA breaches and escalation -----------------------------------------------------------------


def test_first_contact_breach_notifies_then_reassigns(policy):
    journey = assigned_hot(policy)
    journey.act(Accept(by="rep-ana"), T0 + timedelta(minutes=10))
    assert journey.state.stage is Stage.ACCEPTED
    assert of(journey.commands, CancelDeadline) == [CancelDeadline(clock=Clock.ACCEPTANCE)]

    commands = journey.fire(Clock.FIRST_CONTACT)  # 11:00, first breach
    state = journey.state
    assert records(commands) == [DecisionKind.BREACH, DecisionKind.ESCALATED]
    [note] = of(commands, Notify)
    assert note.kind is NotificationKind.SLA_BREACH
    assert note.recipients == ["mgr-na", "rep-ana"]
    assert state.owner_id == "rep-ana" and state.owner_breaches == 1 and state.escalation_level == 1
    assert state.first_contact_met is False
    assert state.deadlines == {Clock.FIRST_CONTACT: ny(2026, 11, 17, 12, 0)}  # re-armed
    assert not of(commands, AssignLead)

    commands = journey.fire(Clock.FIRST_CONTACT)  # 12:00, second breach
    state = journey.state
    [assign] = of(commands, AssignLead)
    assert assign.step == 2
    assert "rep-ana" in assign.exclude
    assert assign.release_rep_id == "rep-ana"
    assert state.owner_id is None and state.stage is Stage.MQL
    assert state.reassignments == 1 and state.escalation_level == 2
    assert DecisionKind.REASSIGNED in records(commands)
    assert of(commands, Notify)[0].kind is NotificationKind.REASSIGNED
    assert not of(commands, ReleaseLead)  # the release travels with the AssignLead

    commands = journey.assign("rep-ben", ny(2026, 11, 17, 12, 0))
    # a reassigned lead gets fresh acceptance and first-contact clocks
    assert journey.state.deadlines == {
        Clock.ACCEPTANCE: ny(2026, 11, 17, 12, 30),
        Clock.FIRST_CONTACT: ny(2026, 11, 17, 13, 0),
    }
    assert journey.state.owner_breaches == 0


def test_after_max_reassignments_the_lead_goes_to_the_team_queue(policy):
    journey = assigned_hot(policy)
    for previous, following in (("rep-ana", "rep-ben"), ("rep-ben", "rep-dev")):
        journey.fire(Clock.ACCEPTANCE)
        journey.fire(Clock.ACCEPTANCE)
        [assign] = of(journey.commands, AssignLead)
        assert assign.release_rep_id == previous
        journey.assign(following, journey.now)
    assert journey.state.reassignments == 2
    assert journey.state.previous_owners == ["rep-ana", "rep-ben", "rep-dev"]

    journey.fire(Clock.ACCEPTANCE)
    commands = journey.fire(Clock.ACCEPTANCE)
    state = journey.state
    assert not of(commands, AssignLead)
    assert of(commands, ReleaseLead) == [ReleaseLead(rep_id="rep-dev")]
    assert state.queued_team == "na-sales"
    assert state.owner_id is None and state.stage is Stage.MQL and state.escalation_level == 3
    assert state.deadlines == {}
    [note] = of(commands, Notify)
    assert note.kind is NotificationKind.ESCALATED and note.recipients == ["mgr-na"]

    # only the queue's team (or a manager) may claim it
    with pytest.raises(InvalidAction, match="not on team na-sales"):
        journey.act(Accept(by="rep-elif"), state.log[-1].at)
    commands = journey.act(Accept(by="rep-ben"), state.log[-1].at + timedelta(minutes=5))
    assert of(commands, ClaimLead) == [ClaimLead(step=4, rep_id="rep-ben")]
    assert journey.state.owner_id == "rep-ben" and journey.state.stage is Stage.ACCEPTED
    assert journey.state.queued_team is None


def test_breach_without_an_owner_tells_the_managers(policy):
    journey = Journey(policy)
    journey.submit(hot_lead())
    journey.feed(NoRepAvailable(step=1, why="full"), T0)
    commands = journey.fire(Clock.FIRST_CONTACT)
    [note] = of(commands, Notify)
    assert note.kind is NotificationKind.SLA_BREACH and note.recipients == ["mgr-intl", "mgr-na"]
    assert journey.state.breaches == 1 and journey.state.owner_breaches == 0


def test_stale_deadline_is_a_no_op(policy):
    journey = assigned_hot(policy)
    before = journey.state
    armed = before.deadlines[Clock.FIRST_CONTACT]
    for stale in (
        DeadlineReached(clock=Clock.FIRST_CONTACT, due_at=armed - timedelta(minutes=1)),
        DeadlineReached(clock=Clock.FOLLOW_UP, due_at=armed),  # not armed at all
    ):
        state, commands = decide(before, stale, armed, policy)
        assert commands == []
        assert state == before


def test_deadline_is_matched_as_an_instant_whatever_the_zone(policy):
    journey = assigned_hot(policy)
    armed = journey.state.deadlines[Clock.ACCEPTANCE]
    commands = journey.feed(DeadlineReached(clock=Clock.ACCEPTANCE, due_at=armed.astimezone(NEW_YORK)), armed)
    assert DecisionKind.BREACH in records(commands)


# --- working the lead ------------------------------------------------------------------------------


def test_follow_up_cadence_in_business_days(policy):
    journey = assigned_hot(policy)
    first = ny(2026, 11, 17, 10, 20)
    commands = journey.act(LogAttempt(by="rep-ana", outcome="no_answer"), first)
    state = journey.state
    assert stages(state)[-2:] == [Stage.ACCEPTED, Stage.WORKING]  # an attempt implies acceptance
    assert state.first_contact_met is True
    assert records(commands) == [DecisionKind.ACCEPTED, DecisionKind.ATTEMPT, DecisionKind.FIRST_CONTACT]
    assert {c.clock for c in of(commands, CancelDeadline)} == {Clock.ACCEPTANCE, Clock.FIRST_CONTACT}
    assert state.deadlines == {Clock.FOLLOW_UP: ny(2026, 11, 18, 17, 0)}  # schedule[1] = 1 business day
    assert state.deadlines[Clock.FOLLOW_UP] == end_of_business_day(policy.calendar, first, 1)

    journey.act(LogAttempt(by="rep-ana", outcome="voicemail"), ny(2026, 11, 18, 11, 0))
    assert journey.state.deadlines == {Clock.FOLLOW_UP: ny(2026, 11, 20, 17, 0)}  # 3 business days after the first
    journey.act(LogAttempt(by="rep-ana", outcome="email_sent"), ny(2026, 11, 20, 11, 0))
    assert journey.state.deadlines == {Clock.FOLLOW_UP: ny(2026, 11, 24, 17, 0)}  # 5
    journey.act(LogAttempt(by="rep-ana", outcome="no_answer"), ny(2026, 11, 24, 11, 0))
    # 8 business days: Thursday 2026-11-26 is a holiday
    assert journey.state.deadlines == {Clock.FOLLOW_UP: ny(2026, 11, 30, 17, 0)}


def test_follow_up_breach_counts_against_the_owner(policy):
    journey = assigned_hot(policy)
    journey.act(LogAttempt(by="rep-ana", outcome="no_answer"), ny(2026, 11, 17, 10, 20))
    commands = journey.fire(Clock.FOLLOW_UP)
    assert journey.state.owner_breaches == 1
    assert of(commands, Notify)[0].recipients == ["mgr-na", "rep-ana"]
    assert Clock.FOLLOW_UP in journey.state.deadlines


def test_attempts_exhausted_without_connect_recycles_as_unresponsive(policy):
    journey = assigned_hot(policy)
    at = ny(2026, 11, 17, 10, 20)
    for attempt in range(policy.cadence.max_attempts):
        commands = journey.act(LogAttempt(by="rep-ana", outcome="no_answer"), at + timedelta(hours=attempt))
    state = journey.state
    assert state.attempts == 6
    kinds = records(commands)
    assert kinds[-2:] == [DecisionKind.UNRESPONSIVE, DecisionKind.RECYCLED]
    recycled = of(commands, Record)[-1].entry
    assert recycled.detail["reason"] == "unresponsive" and recycled.detail["by"] is None
    assert stages(state)[-4:] == [Stage.WORKING, Stage.UNRESPONSIVE, Stage.RECYCLED, Stage.NURTURING]
    assert state.stage is Stage.NURTURING
    assert state.last_reason == "unresponsive" and state.recycles == 1
    assert state.owner_id is None and state.tier is None and state.previous_owners == []
    assert of(commands, ReleaseLead) == [ReleaseLead(rep_id="rep-ana")]
    assert set(state.deadlines) == {Clock.NURTURE}
    assert not of(commands, Finish) and not state.finished


def test_connect_qualify_convert(policy):
    journey = assigned_hot(policy)
    connected_at = ny(2026, 11, 17, 10, 20)
    journey.act(LogAttempt(by="rep-ana", outcome="connected"), connected_at)
    assert journey.state.connected
    assert journey.state.deadlines == {Clock.DISPOSITION: add_business_hours(policy.calendar, connected_at, 40)}
    commands = journey.act(Qualify(by="rep-ana", budget=True, need="billing"), connected_at + timedelta(hours=2))
    assert journey.state.stage is Stage.SQL
    assert of(commands, CancelDeadline) == [CancelDeadline(clock=Clock.DISPOSITION)]
    assert journey.state.deadlines == {Clock.SQL_STALL: connected_at.astimezone(UTC) + timedelta(hours=2, days=90)}
    commands = journey.act(Convert(by="rep-ana", opportunity_id="opp-1"), connected_at + timedelta(days=3))
    state = journey.state
    assert state.stage is Stage.CONVERTED and state.outcome == "converted" and state.finished
    assert of(commands, Finish) == [Finish(outcome="converted")]
    assert of(commands, ReleaseLead) == [ReleaseLead(rep_id="rep-ana")]
    assert state.deadlines == {} and state.owner_id is None
    assert stages(state) == [
        Stage.NURTURING, Stage.MQL, Stage.ASSIGNED, Stage.ACCEPTED, Stage.WORKING, Stage.SQL, Stage.CONVERTED,
    ]


def test_disposition_deadline_recycles(policy):
    journey = assigned_hot(policy)
    journey.act(LogAttempt(by="rep-ana", outcome="connected"), ny(2026, 11, 17, 10, 20))
    commands = journey.fire(Clock.DISPOSITION)
    assert of(commands, Record)[-1].entry.detail["reason"] == "no_disposition"
    assert journey.state.stage is Stage.NURTURING


def test_disqualify_with_reason_closes_the_lead(policy):
    journey = assigned_hot(policy)
    commands = journey.act(Disqualify(by="rep-ana", reason="student"), T0 + timedelta(minutes=5))
    state = journey.state
    assert state.stage is Stage.DISQUALIFIED and state.outcome == "disqualified" and state.last_reason == "student"
    assert of(commands, Record)[-1].entry.detail["reason"] == "student"
    assert of(commands, ReleaseLead) == [ReleaseLead(rep_id="rep-ana")]
    assert {c.clock for c in of(commands, CancelDeadline)} == {Clock.ACCEPTANCE, Clock.FIRST_CONTACT}
    with pytest.raises(InvalidAction, match="the lead is closed"):
        journey.act(Accept(by="rep-ana"), T0 + timedelta(minutes=6))


def test_recycle_by_the_owner(policy):
    journey = assigned_hot(policy)
    commands = journey.act(Recycle(by="rep-ana", reason="timing"), T0 + timedelta(minutes=5))
    assert journey.state.stage is Stage.NURTURING and journey.state.last_reason == "timing"
    assert of(commands, Record)[-1].entry.detail == {"reason": "timing", "by": "rep-ana"}


# --- invalid actions -------------------------------------------------------------------------------


def test_disqualify_without_reason_lists_the_codes(policy):
    journey = assigned_hot(policy)
    codes = ", ".join(policy.reason_codes.disqualify)
    with pytest.raises(InvalidAction) as caught:
        journey.act(Disqualify(by="rep-ana"), T0)
    assert str(caught.value) == f"disqualify needs a reason code, one of: {codes}"
    with pytest.raises(InvalidAction, match=r"unknown disqualify reason 'meh'; expected one of: no_budget"):
        journey.act(Disqualify(by="rep-ana", reason="meh"), T0)
    with pytest.raises(InvalidAction, match="recycle needs a reason code, one of: timing, not_ready"):
        journey.act(Recycle(by="rep-ana", reason=""), T0)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (Qualify(by="rep-ana"), "cannot qualify a lead in stage ASSIGNED; qualify needs WORKING"),
        (Convert(by="rep-ana"), "cannot convert a lead in stage ASSIGNED; convert needs SQL"),
        (LogAttempt(by="rep-ben", outcome="no_answer"), "rep-ben does not own this lead (owner: rep-ana)"),
        (Accept(by="rep-zed"), "unknown rep 'rep-zed'"),
    ],
)
def test_action_invalid_for_the_state(policy, action, message):
    journey = assigned_hot(policy)
    before = journey.state
    with pytest.raises(InvalidAction, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_action(before, action, policy)
    with pytest.raises(InvalidAction, match=message.replace("(", r"\(").replace(")", r"\)")):
        decide(before, RepActed(action=action), T0, policy)
    assert journey.state is before


def test_more_invalid_actions(policy):
    with pytest.raises(InvalidAction, match="has not started"):
        check_action(None, Accept(by="rep-ana"), policy)
    with pytest.raises(InvalidAction, match="has not started"):
        check_action(new_journey("L", "j", "v"), Accept(by="rep-ana"), policy)
    nurturing = Journey(policy)
    nurturing.submit(warm_lead())
    with pytest.raises(InvalidAction, match="cannot recycle a lead in stage NURTURING"):
        check_action(nurturing.state, Recycle(by="mgr-na", reason="timing"), policy)
    working = assigned_hot(policy)
    working.act(LogAttempt(by="rep-ana", outcome="no_answer"), T0 + timedelta(minutes=5))
    with pytest.raises(InvalidAction, match="before a connected attempt"):
        check_action(working.state, Qualify(by="rep-ana"), policy)
    with pytest.raises(InvalidAction, match="cannot accept a lead in stage WORKING"):
        check_action(working.state, Accept(by="rep-ana"), policy)
    # a manager may act for the owner
    check_action(working.state, LogAttempt(by="mgr-na", outcome="connected"), policy)


def test_unassigned_mql_can_only_be_disqualified_by_a_manager(policy):
    journey = Journey(policy)
    journey.submit(hot_lead())
    with pytest.raises(InvalidAction, match="does not own this lead"):
        check_action(journey.state, Disqualify(by="rep-ana", reason="spam"), policy)
    journey.act(Disqualify(by="mgr-na", reason="spam"), T0)
    assert journey.state.stage is Stage.DISQUALIFIED


def test_decide_does_not_change_its_input(policy):
    journey = assigned_hot(policy)
    before = journey.state
    snapshot = copy.deepcopy(before)
    decide(before, RepActed(action=LogAttempt(by="rep-ana", outcome="connected")), T0, policy)
    decide(before, DeadlineReached(clock=Clock.ACCEPTANCE, due_at=before.deadlines[Clock.ACCEPTANCE]), T0, policy)
    assert before == snapshot


# --- known gaps (see the report): an owned lead with no running clock -----------------------------


def test_lead_accepted_after_an_unowned_first_contact_breach_keeps_a_clock(policy):
    journey = Journey(policy)
    journey.submit(hot_lead())  # FIRST_CONTACT due 11:00
    journey.feed(NoRepAvailable(step=1, why="every eligible rep is at capacity"), T0)
    while Clock.FIRST_CONTACT in journey.state.deadlines:  # retries every 30 min fail until 11:00
        clock = min(journey.state.deadlines, key=journey.state.deadlines.get)
        journey.fire(clock)
        if of(journey.commands, AssignLead):
            journey.feed(NoRepAvailable(step=journey.state.assignment_step, why="full"), journey.now)
    assert journey.state.breaches == 1 and journey.state.owner_id is None
    journey.fire(Clock.ROUTING_RETRY)
    journey.assign("rep-ana", journey.now)
    journey.act(Accept(by="rep-ana"), journey.now + timedelta(minutes=5))
    assert journey.state.stage is Stage.ACCEPTED and journey.state.owner_id == "rep-ana"
    # nothing will ever happen to this lead unless the rep acts: no SLA, cadence or stall clock
    assert journey.state.deadlines != {}


def test_lead_claimed_from_the_team_queue_keeps_a_clock(policy):
    journey = assigned_hot(policy)
    for following in ("rep-ben", "rep-dev", None):
        journey.fire(Clock.ACCEPTANCE)
        journey.fire(Clock.ACCEPTANCE)
        if following:
            journey.assign(following, journey.now)
    assert journey.state.queued_team == "na-sales"
    journey.act(Accept(by="rep-ben"), journey.now + timedelta(minutes=5))
    assert journey.state.stage is Stage.ACCEPTED
    assert journey.state.deadlines != {}


def test_a_lead_a_manager_claimed_goes_back_to_their_team_queue_when_nobody_can_take_it(policy):
    """Found by the torture test with reps at capacity: a manager who claimed a lead from the
    queue is no rep, so the lead's reassignment found no team and left it owned by nobody, in
    no queue and in no line, with no deadline: stuck for good."""
    journey = assigned_hot(policy)
    journey.fire(Clock.ACCEPTANCE)
    journey.fire(Clock.ACCEPTANCE)
    [assign] = of(journey.commands, AssignLead)
    journey.feed(NoRepAvailable(step=assign.step, why="every eligible rep is at capacity"), journey.now)
    assert journey.state.queued_team == "na-sales"
    journey.act(Accept(by="mgr-na"), journey.now + timedelta(minutes=5))
    assert journey.state.owner_id == "mgr-na"
    for _ in range(6):  # the manager never calls: breaches until the lead is reassigned
        clock = min(journey.state.deadlines, key=journey.state.deadlines.get)
        journey.fire(clock)
        if of(journey.commands, AssignLead):
            break
    [assign] = of(journey.commands, AssignLead)
    journey.feed(NoRepAvailable(step=assign.step, why="every eligible rep is at capacity"), journey.now)
    state = journey.state
    assert state.stage is Stage.MQL and state.owner_id is None
    assert state.queued_team == "na-sales", "a lead owned by nobody must wait somewhere"


def test_closing_a_queued_lead_leaves_the_queue(policy):
    journey = assigned_hot(policy)
    for following in ("rep-ben", "rep-dev", None):
        journey.fire(Clock.ACCEPTANCE)
        journey.fire(Clock.ACCEPTANCE)
        if following:
            journey.assign(following, journey.now)
    assert journey.state.queued_team == "na-sales"
    journey.act(Disqualify(by="mgr-na", reason="spam"), journey.now + timedelta(minutes=5))
    assert journey.state.stage is Stage.DISQUALIFIED
    # the CLI shows "owner: team queue na-sales" for this closed lead
    assert journey.state.queued_team is None


def test_reassignment_with_every_rep_excluded_does_not_retry_forever():
    from leadflow.policy import parse_policy

    small = parse_policy(
        {
            "version": "small-1",
            "tiers": [{"name": "hot", "min_score": 0, "accept_within_hours": 1, "first_contact_within_hours": 2}],
            "teams": [{"id": "t", "manager": "mgr"}],
            "reps": [{"id": "a", "team": "t"}, {"id": "b", "team": "t"}],
        }
    )
    journey = Journey(small)
    journey.submit(hot_lead())
    for rep_id in ("a", "b"):  # each owner breaches twice and is replaced
        journey.assign(rep_id, journey.now)
        journey.fire(Clock.ACCEPTANCE)
        journey.fire(Clock.ACCEPTANCE)
    [assign] = of(journey.commands, AssignLead)
    assert sorted(assign.exclude) == ["a", "b"]
    request = RouteRequest(territory=assign.territory, segment=assign.segment, exclude=assign.exclude, at=journey.now)
    decision = choose_rep(small, request, RoutingSnapshot())
    assert decision.why_none == "every covering rep already had this lead"
    journey.feed(NoRepAvailable(step=journey.state.assignment_step, why=decision.why_none), journey.now)
    for _ in range(3):
        if Clock.ROUTING_RETRY not in journey.state.deadlines:
            break
        journey.fire(Clock.ROUTING_RETRY)  # asks routing again with the same exclude list: can never succeed
        assert of(journey.commands, AssignLead)[0].exclude == assign.exclude
        journey.feed(NoRepAvailable(step=journey.state.assignment_step, why=decision.why_none), journey.now)
    # expected: the lead reaches the team queue (or a manager) instead of a retry every 30 minutes forever
    assert journey.state.queued_team == "t" or Clock.ROUTING_RETRY not in journey.state.deadlines


# --- random journeys --------------------------------------------------------------------------------

DEFAULT = load_policy_file(DEFAULT_POLICY)
DEMO = load_policy_file(DEMO_POLICY)
STRICT = DEFAULT.model_copy(
    update={"escalation": DEFAULT.escalation.model_copy(update={"notify_on_breach": 1, "reassign_on_breach": 1, "max_reassignments": 1})}
)
POLICIES = {"default": DEFAULT, "demo": DEMO, "strict": STRICT}

LEADS = [
    hot_lead(),
    warm_lead(),
    poor_lead(),
    Lead(email="al@eu.example", title="Head of Ops", company_size=3000, industry="fintech", country="GB", source="referral"),
    Lead(email="al@eu.example", source="contact_request"),
]
DELAYS = [timedelta(0), timedelta(minutes=1), timedelta(minutes=20), timedelta(hours=2), timedelta(days=1), timedelta(days=5), timedelta(days=40)]
ALLOWED_STAGES = {
    Clock.ACCEPTANCE: {Stage.ASSIGNED},
    Clock.FIRST_CONTACT: {Stage.MQL, Stage.ASSIGNED, Stage.ACCEPTED},
    Clock.FOLLOW_UP: {Stage.WORKING},
    Clock.DISPOSITION: {Stage.WORKING},
    Clock.NURTURE: {Stage.NURTURING},
    Clock.ROUTING_RETRY: {Stage.MQL},
    Clock.SQL_STALL: {Stage.SQL},
}


class Shell:
    """A minimal shell: timers, routing answers and the ledger's view of who holds the lead.

    It carries out commands the way ``workflows/lead_journey.py`` does: an ``AssignLead`` is
    answered at once (releasing ``release_rep_id`` first), a fired timer is forgotten before
    its ``DeadlineReached`` is fed, and the journey stops at ``Finish``.

    Invariants checked (``check_step`` after every ``decide``, ``check_state`` after each
    whole cycle): at most one rep holds the lead and the ledger's holder is the state's owner
    (every release names the current holder; nobody takes a lead still held); an owner exactly
    in the owned stages; ``decide`` never changes its input; the shell's timers equal
    ``state.deadlines`` and each clock runs only in the stages it belongs to; ``StartDeadline``
    never lies before the event time (the fired ``due_at`` for deadlines); decision log
    sequence numbers consecutive and times non-decreasing; DISQUALIFIED / RECYCLED records
    carry a policy reason code; every SQL in the stage history is preceded by ACCEPTED since
    its latest ASSIGNED; an ``AssignLead`` leaves the lead unowned in MQL, excludes exactly
    the previous owners and releases the owner it replaced; exactly one ``Finish``.

    Left out on purpose:
    - "the owner is never in the exclude list of a later AssignLead": false by design, the
      released owner *is* excluded (so it is not picked again); what holds, and is checked, is
      that an ``AssignLead`` always leaves the lead with no owner and that the rep routing
      picks is never in ``exclude``.
    - "an unfinished lead always has a running clock (or sits in the team queue)" and
      "queued_team is only set in MQL" are covered by the targeted tests above
      (``..._keeps_a_clock``, ``test_closing_a_queued_lead_leaves_the_queue``).

    Checked too: an open MQL nobody owns waits somewhere (a team queue, the waiting line,
    or a routing retry), and the shell's waiting line agrees with the state's.
    """

    def __init__(self, policy: Policy, data: st.DataObject):
        self.policy = policy
        self.data = data
        waits_in_line = data.draw(st.booleans(), label="waits in line")
        self.state = new_journey("L1", "j1", policy.version, waits_in_line=waits_in_line)
        self.in_line = False  # the shell's waiting line holds the lead
        self.now = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
        self.timers: dict[Clock, datetime] = {}
        self.holders: set[str] = set()  # reps the ledger counts as holding this lead
        self.last_record_at: datetime | None = None
        self.finishes = 0
        self.roster = [rep.id for rep in policy.reps]

    # -- feeding events ------------------------------------------------------------------

    def feed(self, event: Any, now: datetime) -> None:
        before = self.state
        snapshot = copy.deepcopy(before)
        state, commands = decide(before, event, now, self.policy)
        assert before == snapshot, "decide changed its input state"
        event_time = event.due_at if isinstance(event, DeadlineReached) else now
        self.check_step(before, state, commands, event_time)
        self.state = state
        self.carry_out(commands, now)

    def advance(self, delay: timedelta, max_fired: int = 4) -> None:
        """Move time forward, firing the timers that fall due on the way, in order.

        At most ``max_fired`` timers fire; if more are due (a routing retry every few seconds
        under the demo policy), time stops at the last one fired rather than skipping them.
        """
        target = self.now + delay
        for _ in range(max_fired):
            if self.state.finished or not self.timers or min(self.timers.values()) > target:
                self.now = max(self.now, target)
                return
            self.fire_next()

    def fire_next(self) -> None:
        clock = min(self.timers, key=lambda name: self.timers[name])
        due = self.timers.pop(clock)
        assert self.state.deadlines.get(clock) == due, "the shell's timer and the state disagree"
        self.now = max(self.now, due)
        event(f"fired {clock}")
        self.feed(DeadlineReached(clock=clock, due_at=due), self.now)

    def act(self, action: Any) -> None:
        try:
            check_action(self.state, action, self.policy)
        except InvalidAction:
            with pytest.raises(InvalidAction):
                decide(self.state, RepActed(action=action), self.now, self.policy)
            return
        event(f"acted {action.type}")
        self.feed(RepActed(action=action), self.now)

    # -- carrying out commands ------------------------------------------------------------

    def carry_out(self, commands: list, now: datetime) -> None:
        assignment = None
        for command in commands:
            if isinstance(command, StartDeadline):
                self.timers[command.clock] = command.due_at
            elif isinstance(command, CancelDeadline):
                self.timers.pop(command.clock, None)
            elif isinstance(command, ReleaseLead):
                assert command.rep_id in self.holders, f"release of {command.rep_id}, who does not hold the lead"
                self.holders.discard(command.rep_id)
            elif isinstance(command, ClaimLead):
                event("claimed from the team queue")
                self.take(command.rep_id)
            elif isinstance(command, Finish):
                self.finishes += 1
            elif isinstance(command, AssignLead):
                assignment = command
                if command.release_rep_id:
                    event("reassigned")
            elif isinstance(command, Record) and command.entry.kind is DecisionKind.UNRESPONSIVE:
                event("unresponsive")
            elif isinstance(command, JoinWaitingLine):
                assert command.step == self.state.assignment_step
                event("joined the waiting line")
                self.in_line = True
            elif isinstance(command, LeaveWaitingLine):
                assert self.in_line
                event("left the waiting line")
                self.in_line = False
        if assignment is not None:
            self.answer(assignment, now)

    def serve_from_line(self) -> None:
        """A rep's slot frees while the lead waits in line: the shell takes it out and assigns it."""
        rep_id = self.data.draw(st.sampled_from(self.roster), label="rep whose slot freed")
        self.in_line = False
        self.take(rep_id)
        event("served from the waiting line")
        self.feed(RepAssigned(step=self.state.assignment_step, rep_id=rep_id, team=self.policy.rep(rep_id).team,
                              from_line=True), self.now)

    def take(self, rep_id: str) -> None:
        assert not self.holders, f"{rep_id} takes a lead still held by {self.holders}"
        self.holders.add(rep_id)

    def answer(self, command: AssignLead, now: datetime) -> None:
        if command.release_rep_id:
            assert command.release_rep_id in self.holders
            self.holders.discard(command.release_rep_id)
        how = self.data.draw(st.sampled_from(["route", "route", "random", "none"]), label="routing answer")
        if how == "route":
            decision = choose_rep(
                self.policy,
                RouteRequest(territory=command.territory, segment=command.segment, exclude=command.exclude, at=now),
                RoutingSnapshot(),
            )
            if decision.rep_id is not None:
                assert decision.rep_id not in command.exclude
            answer: Any = (
                RepAssigned(step=command.step, rep_id=decision.rep_id, team=decision.team or "", on_shift=decision.on_shift)
                if decision.rep_id
                else NoRepAvailable(step=command.step, why=decision.why_none or "")
            )
        elif how == "random":
            rep_id = self.data.draw(st.sampled_from(self.roster), label="random rep")
            answer = RepAssigned(step=command.step, rep_id=rep_id, team=self.policy.rep(rep_id).team)
        else:
            answer = NoRepAvailable(step=command.step, why="every eligible rep is at capacity")
        if isinstance(answer, RepAssigned):
            self.take(answer.rep_id)  # the ledger books the rep before the answer goes in
        self.feed(answer, now)

    # -- invariants -------------------------------------------------------------------------

    def check_step(self, before: JourneyState, after: JourneyState, commands: list, event_time: datetime) -> None:
        seq = before.seq
        for command in commands:
            if isinstance(command, StartDeadline):
                assert command.due_at >= event_time, f"{command.clock} armed in the past"
                assert after.deadlines.get(command.clock) == command.due_at or command.clock not in after.deadlines
            elif isinstance(command, Record):
                entry = command.entry
                seq += 1
                assert entry.seq == seq, "decision log sequence numbers must be consecutive"
                assert self.last_record_at is None or entry.at >= self.last_record_at, "decision log goes back in time"
                self.last_record_at = entry.at
                if entry.kind is DecisionKind.DISQUALIFIED:
                    assert entry.detail.get("reason") in self.policy.reason_codes.disqualify
                if entry.kind is DecisionKind.RECYCLED:
                    assert entry.detail.get("reason") in self.policy.reason_codes.recycle
            elif isinstance(command, AssignLead):
                assert after.owner_id is None and after.stage is Stage.MQL and after.queued_team is None
                assert command.step == after.assignment_step
                assert command.exclude == after.previous_owners
                assert command.tier == after.tier
                if command.release_rep_id is not None:
                    assert command.release_rep_id == before.owner_id
                    assert command.release_rep_id in command.exclude
            elif isinstance(command, ReleaseLead):
                assert command.rep_id == before.owner_id
            elif isinstance(command, ClaimLead):
                assert command.rep_id == after.owner_id and before.queued_team is not None
            elif isinstance(command, Notify):
                assert command.recipients and all(command.recipients)
                assert command.recipients == sorted(set(command.recipients))
            elif isinstance(command, Finish):
                assert after.finished and after.outcome == command.outcome
        assert after.seq == seq
        if after.finished:
            assert after.deadlines == {} and after.owner_id is None

    def check_state(self) -> None:
        s = self.state
        # one owner at most, and the ledger agrees with the state on who it is
        assert self.holders == ({s.owner_id} if s.owner_id else set())
        assert (s.owner_id is not None) == (s.stage in OWNED)
        if s.queued_team and not s.finished:  # finished: see test_closing_a_queued_lead_leaves_the_queue
            assert s.stage is Stage.MQL and s.owner_id is None
        if s.stage is Stage.MQL and s.owner_id is None and not s.finished:
            assert s.queued_team or s.in_line or Clock.ROUTING_RETRY in s.deadlines, "an unowned MQL waits nowhere"
        assert self.in_line == s.in_line
        assert not s.in_line or s.waits_in_line
        if s.stage in (Stage.MQL, *OWNED):
            assert s.tier is not None
        # the shell's timers are exactly the state's deadlines
        assert self.timers == s.deadlines
        for clock in s.deadlines:
            assert s.stage in ALLOWED_STAGES[clock], f"{clock} armed in stage {s.stage}"
        if s.stage is Stage.NURTURING and not s.finished:
            assert Clock.NURTURE in s.deadlines
        # stage history: starts nurturing, ends at the stage, never repeats a stage in a row,
        # and every SQL was accepted (since its latest assignment) before
        history = stages(s)
        assert history[0] is Stage.NURTURING and history[-1] is s.stage
        assert all(a is not b for a, b in zip(history, history[1:]))
        for index, stage in enumerate(history):
            if stage is Stage.SQL:
                since = history[:index]
                last_assigned = max(i for i, item in enumerate(since) if item is Stage.ASSIGNED)
                assert Stage.ACCEPTED in since[last_assigned:]
        assert s.first_contact_met is None or s.mql_at is not None
        assert self.finishes == (1 if s.finished else 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_journeys_keep_the_invariants(data):
    name = data.draw(st.sampled_from(sorted(POLICIES)), label="policy")
    shell = Shell(POLICIES[name], data)
    managers = sorted(shell.policy.managers)
    first_lead = data.draw(st.sampled_from([LEADS[0], LEADS[0], LEADS[4], *LEADS]), label="lead")  # mostly hand-raisers
    shell.feed(LeadSubmitted(lead=first_lead), shell.now)
    shell.check_state()
    for _ in range(data.draw(st.integers(5, 60), label="steps")):
        if shell.state.finished:
            break
        op = data.draw(
            st.sampled_from(
                ["act", "act", "act", "owner", "owner", "owner", "progress", "progress", "progress"]
                + ["fire", "fire", "engage", "submit", "stale", "serve"]
            ),
            label="op",
        )
        if op != "fire":
            shell.advance(data.draw(st.sampled_from(DELAYS), label="delay"))
            if shell.state.finished:
                break
        if op == "fire":
            if shell.timers:
                shell.fire_next()
        elif op == "serve":
            if shell.in_line:
                shell.serve_from_line()
        elif op == "submit":
            shell.feed(LeadSubmitted(lead=data.draw(st.sampled_from(LEADS), label="lead")), shell.now)
        elif op == "engage":
            kind = data.draw(st.sampled_from(list(EngagementKind)), label="kind")
            back = data.draw(st.sampled_from([timedelta(0), timedelta(hours=3), timedelta(days=20)]), label="back")
            shell.feed(EngagementReceived(event=EngagementEvent(kind=kind, at=shell.now - back)), shell.now)
        elif op == "stale":
            clock = data.draw(st.sampled_from(list(Clock)), label="clock")
            due = shell.state.deadlines.get(clock, shell.now) - timedelta(seconds=1)
            before = shell.state
            after, commands = decide(before, DeadlineReached(clock=clock, due_at=due), shell.now, shell.policy)
            assert commands == [] and after == before
        elif op == "progress":  # the next step a diligent owner would take
            shell.act(data.draw(next_step(shell.state), label="next step"))
        else:
            if op == "owner" and shell.state.owner_id:
                actor = shell.state.owner_id
            else:
                actor = data.draw(st.sampled_from(shell.roster + managers + ["stranger"]), label="actor")
            shell.act(data.draw(actions(actor, shell.policy), label="action"))
        shell.check_state()
    event(f"final stage {shell.state.stage}")


def next_step(state: JourneyState) -> st.SearchStrategy:
    actor = state.owner_id or "mgr-na"
    if state.stage is Stage.MQL and state.queued_team:
        return st.sampled_from([Accept(by=rep) for rep in ("rep-ana", "rep-elif", "rep-hana", "mgr-intl")])
    if state.stage is Stage.ASSIGNED:
        return st.sampled_from([Accept(by=actor), LogAttempt(by=actor, outcome="no_answer")])
    if state.stage is Stage.WORKING and state.connected:
        return st.sampled_from([Qualify(by=actor), Recycle(by=actor, reason="not_ready")])
    if state.stage is Stage.SQL:
        return st.sampled_from([Convert(by=actor), Disqualify(by=actor, reason="competitor")])
    outcomes = ["connected", "connected", "no_answer", "voicemail", "email_sent"]
    return st.sampled_from(outcomes).map(lambda outcome: LogAttempt(by=actor, outcome=outcome))


def actions(actor: str, policy: Policy) -> st.SearchStrategy:
    disqualify_reasons = st.sampled_from([None, "", "bogus", *policy.reason_codes.disqualify])
    recycle_reasons = st.sampled_from([None, "bogus", *policy.reason_codes.recycle])
    return st.one_of(
        st.just(Accept(by=actor)),
        st.sampled_from(list(AttemptOutcome)).map(lambda outcome: LogAttempt(by=actor, outcome=outcome)),
        st.sampled_from(list(AttemptOutcome)).map(lambda outcome: LogAttempt(by=actor, outcome=outcome)),
        st.just(Qualify(by=actor, budget=True)),
        st.just(Convert(by=actor)),
        disqualify_reasons.map(lambda reason: Disqualify(by=actor, reason=reason)),
        recycle_reasons.map(lambda reason: Recycle(by=actor, reason=reason)),
    )


# -- engagement bounded in time and weight, retries counted once ----------------------------

_NURTURED = dict(title="Intern", company_size=3, country="AQ", source="organic")


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 3 * 24 * 3600),  # seconds after the previous decision
                                st.one_of(st.integers(-400 * 86400, 0), st.integers(1, 3_000_000_000)),  # event time vs now
                                st.sampled_from(list(EngagementKind)),
                                st.one_of(st.none(), st.floats(0, 1000))),
                      min_size=1, max_size=12))
def test_no_event_moves_the_decay_reference_past_now_or_counts_over_the_cap(steps):
    policy = load_policy_file(DEFAULT_POLICY)
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=Lead(email="n@x.io", **_NURTURED)), now, policy)
    for pause, offset, kind, weight in steps:
        now += timedelta(seconds=pause)
        at = min(now + timedelta(seconds=offset), datetime(9999, 12, 31, tzinfo=timezone.utc))
        before = state.engagement_score
        state, _ = decide(state, EngagementReceived(event=EngagementEvent(kind=kind, at=at, weight=weight)), now, policy)
        assert state.engagement_as_of is not None and state.engagement_as_of <= now
        cap = policy.engagement.max_event_weight
        counted = policy.engagement.weights.get(kind, 0) if weight is None else min(weight, cap)
        assert state.engagement_score <= before + counted + 1e-6


def test_an_event_from_the_year_9999_does_not_stop_later_events_counting():
    policy = load_policy_file(DEFAULT_POLICY)
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=Lead(email="n@x.io", **_NURTURED)), now, policy)
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    state, _ = decide(state, EngagementReceived(event=EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=far)), now, policy)
    later = now + timedelta(hours=1)
    state, _ = decide(state, EngagementReceived(event=EngagementEvent(kind=EngagementKind.WEBINAR, at=later)), later, policy)
    assert state.engagement_as_of == later
    assert state.engagement_score == pytest.approx(1 * 0.5 ** (1 / 24 / 14) + 15, abs=1e-3)


def test_an_event_id_seen_before_counts_once_and_the_memory_is_bounded():
    from leadflow.journey import EVENT_IDS_KEPT
    policy = load_policy_file(DEFAULT_POLICY)
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=Lead(email="n@x.io", **_NURTURED)), now, policy)
    event = EngagementReceived(event=EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=now, weight=2, event_id="evt-1"))
    once, _ = decide(state, event, now, policy)
    twice, commands = decide(once, event, now, policy)
    assert once.engagement_score == twice.engagement_score == 2 and commands == []
    for n in range(EVENT_IDS_KEPT + 10):
        twice, _ = decide(twice, EngagementReceived(event=EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=now, weight=0,
                                                                            event_id=f"e{n}")), now, policy)
    assert len(twice.engagement_event_ids) == EVENT_IDS_KEPT and "evt-1" not in twice.engagement_event_ids
