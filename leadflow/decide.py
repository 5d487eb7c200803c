"""``decide``: the whole lead journey as one pure transition function.

    decide(state, event, now, policy) -> (new_state, commands)

No I/O, no clock (``now`` is given), no randomness. Both shells call it: the Temporal
workflow with ``workflow.now()``, the simulator with simulated time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from leadflow.actions import (
    Accept,
    AttemptOutcome,
    Convert,
    Disqualify,
    InvalidAction,
    LogAttempt,
    Qualify,
    Recycle,
    Reject,
    RepAction,
)
from leadflow.business_calendar import add_business_hours, business_time_between, end_of_business_day
from leadflow.decision_details import (
    AcceptedDetail,
    AttemptDetail,
    BreachDetail,
    ConvertedDetail,
    CreatedDetail,
    DisqualifiedDetail,
    EscalatedDetail,
    FirstContactDetail,
    ReassignedDetail,
    RecycledDetail,
    RejectedDetail,
    TypedDetail,
)
from leadflow.journey import (
    EVENT_IDS_KEPT,
    LOG_LIMIT,
    OWNED_STAGES,
    SLA_CLOCKS,
    TERMINAL_STAGES,
    AssignLead,
    CancelDeadline,
    ClaimLead,
    Clock,
    Command,
    DeadlineReached,
    DecisionEntry,
    DecisionKind,
    Detail,
    EngagementReceived,
    EscalationLevel,
    Finish,
    JoinWaitingLine,
    JourneyEvent,
    JourneyState,
    LeadSubmitted,
    LeaveWaitingLine,
    NoRepAvailable,
    NotificationKind,
    Notify,
    Outcome,
    PolicyAdopted,
    Record,
    ReleaseLead,
    RepActed,
    RepAssigned,
    Stage,
    StageChange,
    StartDeadline,
    copy_state,
)
from leadflow.lead import EngagementEvent
from leadflow.policy import CadenceUnit, Policy
from leadflow.routing import segment_of, territory_of
from leadflow.scoring import Engagement, SourceCredit, add_engagement, bounded, decayed, fit_score, qualifies
from leadflow.waiting_line import tier_priority


def line_entry(state: JourneyState, policy: Policy, at: datetime) -> JoinWaitingLine:
    """The lead's place in the waiting line: the command that puts it there (``at``: the
    decision that found nobody, used only for a lead with no MQL time)."""
    return JoinWaitingLine(
        step=state.assignment_step,
        priority=tier_priority(policy, state.tier),
        mql_at=state.mql_at or at,
        territory=state.territory,
        segment=state.segment,
    )


def first_contact_due(policy: Policy, tier: str | None, mql_at: datetime) -> datetime:
    """When a lead that became an MQL of ``tier`` at ``mql_at`` is due its first contact attempt."""
    rules = policy.tier(tier or policy.tiers[-1].name)
    return add_business_hours(policy.calendar, mql_at, rules.first_contact_within_hours)


def new_journey(lead_id: str, journey_id: str, policy_version: str, waits_in_line: bool = False) -> JourneyState:
    """The state of a journey before its first event.

    ``waits_in_line``: a lead nobody can take joins the waiting line (``JoinWaitingLine``)
    rather than asking routing again every ``routing.retry_minutes``.
    """
    return JourneyState(lead_id=lead_id, journey_id=journey_id, policy_version=policy_version, waits_in_line=waits_in_line)


def decide(
    state: JourneyState, event: JourneyEvent, now: datetime, policy: Policy
) -> tuple[JourneyState, list[Command]]:
    """Apply one event at ``now`` and return the new state and the commands to carry out.

    A rep action that is not valid for the state raises ``InvalidAction`` and changes
    nothing. A deadline that is no longer armed (cancelled or re-armed meanwhile) is a no-op.
    """
    if isinstance(event, RepActed):
        check_action(state, event.action, policy)
    step = _Transition(state, now, policy)
    step.apply(event)
    step.settle_overdue_first_contact()
    step.leave_line_if_served_otherwise()
    return step.state, step.commands


# Deadlines that are a commitment to a rep or a lead; a journey switches policy between them.
_COMMITTED_CLOCKS = SLA_CLOCKS | {Clock.DISPOSITION}


def may_adopt(state: JourneyState, policy: Policy) -> bool:
    """Whether an open journey may switch to ``policy`` now.

    At a safe point: no SLA or disposition deadline running (a nurture or routing retry is
    no commitment to anyone), unless ``policy.rollout.interrupt_running_deadlines`` says so.
    A closed journey never switches.
    """
    if state.finished:
        return False
    return policy.rollout.interrupt_running_deadlines or not (_COMMITTED_CLOCKS & state.deadlines.keys())


def check_action(state: JourneyState | None, action: RepAction, policy: Policy) -> None:
    """Raise ``InvalidAction`` with a clear reason if ``action`` cannot be taken now."""
    if state is None or state.stage is Stage.NEW:
        raise InvalidAction("the journey has not started yet")
    stage = state.stage
    if stage in TERMINAL_STAGES:
        raise InvalidAction(f"the lead is closed ({stage}); no further actions are possible")
    actor = action.by
    actor_rep = policy.rep(actor)
    is_manager = actor in policy.managers
    if actor_rep is None and not is_manager:
        raise InvalidAction(f"unknown rep {actor!r}: not in the policy's roster or a team manager")

    def require_owner() -> None:
        if actor != state.owner_id and not is_manager:
            raise InvalidAction(f"{actor} does not own this lead (owner: {state.owner_id or 'nobody'})")

    def require_stage(*allowed: Stage) -> None:
        if stage not in allowed:
            names = ", ".join(str(item) for item in allowed)
            raise InvalidAction(f"cannot {action.type} a lead in stage {stage}; {action.type} needs {names}")

    if isinstance(action, Accept):
        if stage is Stage.MQL and state.queued_team:
            in_team = actor_rep is not None and actor_rep.team == state.queued_team
            if not (in_team or is_manager):
                raise InvalidAction(f"{actor} is not on team {state.queued_team}, whose queue holds this lead")
            return
        require_stage(Stage.ASSIGNED)
        require_owner()
    elif isinstance(action, LogAttempt):
        require_stage(Stage.ASSIGNED, Stage.ACCEPTED, Stage.WORKING)
        require_owner()
    elif isinstance(action, Qualify):
        require_stage(Stage.WORKING)
        require_owner()
        if not state.connected:
            raise InvalidAction("cannot qualify before a connected attempt has been logged")
    elif isinstance(action, Convert):
        require_stage(Stage.SQL)
        require_owner()
    elif isinstance(action, Reject):
        codes = policy.reason_codes.reject
        if not action.reason:
            raise InvalidAction(f"reject needs a reason code, one of: {', '.join(codes)}")
        if action.reason not in codes:
            raise InvalidAction(f"unknown reject reason {action.reason!r}; expected one of: {', '.join(codes)}")
        require_stage(Stage.ASSIGNED)
        require_owner()
    elif isinstance(action, (Disqualify, Recycle)):
        kind = "disqualify" if isinstance(action, Disqualify) else "recycle"
        codes = policy.reason_codes.disqualify if kind == "disqualify" else policy.reason_codes.recycle
        if not action.reason:
            raise InvalidAction(f"{kind} needs a reason code, one of: {', '.join(codes)}")
        if action.reason not in codes:
            raise InvalidAction(f"unknown {kind} reason {action.reason!r}; expected one of: {', '.join(codes)}")
        if kind == "disqualify":
            require_stage(Stage.MQL, *OWNED_STAGES)
        else:
            require_stage(*OWNED_STAGES)
        require_owner()


def view_score(state: JourneyState, now: datetime, policy: Policy) -> float:
    """Fit plus engagement decayed to ``now``."""
    engagement = decayed(state.engagement_score, state.engagement_as_of, now, policy.engagement.half_life_days)
    return round(state.fit_score + engagement, 2)


_CLOCK_RANK = {clock: rank for rank, clock in enumerate(Clock)}


def due_deadlines(state: JourneyState, now: datetime) -> list[DeadlineReached]:
    """The deadlines due at or before ``now``, in the order ``decide`` must see them.

    Deadlines falling due together (a hot lead's second acceptance breach and its
    first-contact deadline often do) are taken by time, then in ``Clock`` order, so every
    shell makes the same decisions whatever order its timers fire in.
    """
    due = sorted((at, _CLOCK_RANK[clock], clock) for clock, at in state.deadlines.items() if at <= now)
    return [DeadlineReached(clock=clock, due_at=at) for at, _, clock in due]


class _Transition:
    """Builds one transition: a copy of the state and the commands it produces."""

    def __init__(self, state: JourneyState, now: datetime, policy: Policy):
        self.state = copy_state(state)
        # The deadlines change in place, so they are copied; the lists (log, stage history,
        # previous owners) are replaced, never changed, so the input state keeps its own.
        self.state.deadlines = dict(state.deadlines)
        self._armed_before = state.deadlines  # the input state's, never changed
        self._armed_here: set[Clock] = set()  # clocks with a StartDeadline among this transition's commands
        self.now = now if now.tzinfo is timezone.utc else now.astimezone(timezone.utc)
        self.at = self.now
        self.policy = policy
        self.commands: list[Command] = []

    # -- dispatch ---------------------------------------------------------------------

    def apply(self, event: JourneyEvent) -> None:
        # By exact type, the most frequent first: events are plain dataclasses, never subclassed.
        if type(event) is RepActed:
            self._acted(event.action)
        elif type(event) is LeadSubmitted:
            self._submitted(event)
        elif type(event) is RepAssigned:
            self._assigned(event)
        elif type(event) is DeadlineReached:
            self._deadline(event)
        elif type(event) is EngagementReceived:
            self._engaged(event.event if event.as_sent else bounded(event.event, self.at, self.policy.engagement))
        elif type(event) is NoRepAvailable:
            self._unrouted(event)
        elif type(event) is PolicyAdopted:
            self._adopted(event)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown event {event!r}")

    def _adopted(self, event: PolicyAdopted) -> None:
        previous = self.state.policy_version
        if event.version == previous:
            return
        self.state.policy_version = event.version
        self.record(DecisionKind.POLICY_ADOPTED, previous_version=previous, version=event.version)

    def leave_line_if_served_otherwise(self) -> None:
        """A lead in the waiting line that stopped waiting for a rep (escalated to a team
        queue, closed, recycled) is taken out of line. One served from the line was taken
        out by the shell that served it."""
        s = self.state
        if s.in_line and not (s.stage is Stage.MQL and s.owner_id is None and s.queued_team is None):
            s.in_line = False
            self.commands.append(LeaveWaitingLine())

    def settle_overdue_first_contact(self) -> None:
        """Past its first-contact due time with no attempt, the SLA is missed, whatever clock
        a reassignment has re-armed since: settled by the first transition that decides
        anything (a no-op, such as a stale timer, settles nothing). See ``leadflow.kpis``."""
        s = self.state
        if (self.commands and s.first_contact_met is None and s.first_contact_at is None
                and s.first_contact_due is not None and self.at > s.first_contact_due):
            s.first_contact_met = False

    # -- helpers ----------------------------------------------------------------------

    def record_typed(self, detail: TypedDetail) -> None:
        """Record a decision whose detail the shells read (``leadflow.decision_details``)."""
        self._record(detail.kind, detail.to_detail())

    def record(self, kind: DecisionKind, **detail: str | int | float | bool | None) -> None:
        self._record(kind, detail)

    def _record(self, kind: DecisionKind, detail: Detail) -> None:
        """``detail``: a mapping of this decision's own, kept as given."""
        s = self.state
        s.seq += 1
        entry = DecisionEntry(seq=s.seq, at=self.at, kind=kind, stage=s.stage, owner_id=s.owner_id, tier=s.tier, detail=detail)
        log = s.log
        s.log = [*log, entry] if len(log) < LOG_LIMIT else [*log[1 - LOG_LIMIT:], entry]
        self.commands.append(Record(entry=entry))

    def set_stage(self, stage: Stage) -> None:
        if self.state.stage is not stage:
            self.state.stage = stage
            self.state.stage_history = [*self.state.stage_history, StageChange(stage=stage, at=self.at)]

    def arm(self, clock: Clock, due_at: datetime) -> None:
        due_at = max(due_at, self.at)
        self.state.deadlines[clock] = due_at
        self.commands.append(StartDeadline(clock=clock, due_at=due_at))
        self._armed_here.add(clock)

    def disarm(self, *clocks: Clock) -> None:
        for clock in clocks:
            if self.state.deadlines.pop(clock, None) is None:
                continue
            if clock in self._armed_here:  # armed and disarmed in one step: the shell never needs a timer
                self._armed_here.discard(clock)
                self.commands = [c for c in self.commands if not (isinstance(c, StartDeadline) and c.clock is clock)]
                if clock in self._armed_before:
                    self.commands.append(CancelDeadline(clock=clock))
            else:
                self.commands.append(CancelDeadline(clock=clock))

    def disarm_all(self) -> None:
        self.disarm(*sorted(self.state.deadlines))

    def notify(self, kind: NotificationKind, recipients: Iterable[str | None], **detail: str | int | float | bool | None) -> None:
        people = sorted({person for person in recipients if person})
        if people:
            detail = {"lead_id": self.state.lead_id, "tier": self.state.tier, **detail}
            self.commands.append(Notify(kind=kind, recipients=people, detail=Detail(detail)))

    def business_hours_later(self, start: datetime, hours: float) -> datetime:
        return add_business_hours(self.policy.calendar, start, hours)

    def tier_window(self, clock: Clock) -> float:
        tier = self.policy.tier(self.state.tier or self.policy.tiers[-1].name)
        return tier.accept_within_hours if clock is Clock.ACCEPTANCE else tier.first_contact_within_hours

    def release_owner(self) -> None:
        s = self.state
        if s.owner_id:
            self.commands.append(ReleaseLead(rep_id=s.owner_id))
        s.owner_id = None
        s.owner_team = None

    def finish(self, outcome: Outcome) -> None:
        self.state.outcome = outcome
        self.state.closed_at = self.at
        self.commands.append(Finish(outcome=outcome))

    # -- arrival and nurture --------------------------------------------------------------

    def _submitted(self, event: LeadSubmitted) -> None:
        s, policy, lead = self.state, self.policy, event.lead
        hand_raise = lead.source in policy.qualification.fast_track_sources
        if s.stage is Stage.NEW:
            s.lead = lead
            s.source = lead.source
            s.created_at = self.at
            s.submissions = 1
            s.fit_score = fit_score(lead, policy.fit)
            s.territory = territory_of(lead.country, policy.routing)
            s.segment = segment_of(lead.company_size, policy.routing)
            self.set_stage(Stage.NURTURING)
            self.record_typed(CreatedDetail(source=str(lead.source), fit=s.fit_score, territory=s.territory,
                                            segment=s.segment, policy_version=s.policy_version))
            self.arm(Clock.NURTURE, self.at + timedelta(days=policy.nurture_days))
        else:
            dropped = 0
            if s.lead:
                merged = s.lead.merged_with(lead, policy.intake.custom_fields_overflow)
                dropped = len(s.lead.custom.keys() | lead.custom.keys()) - len(merged.custom)
                s.lead = merged
            else:
                s.lead = lead
            s.submissions += 1
            if s.stage in (Stage.NURTURING, Stage.MQL):
                s.fit_score = fit_score(s.lead, policy.fit)
            if s.owner_id is None and s.stage in (Stage.NURTURING,):
                s.territory = territory_of(s.lead.country, policy.routing)
                s.segment = segment_of(s.lead.company_size, policy.routing)
            overflow = {"custom_fields_dropped": dropped} if dropped else {}  # how many, never which (names may be personal)
            self.record(DecisionKind.MERGED, source=str(lead.source), submissions=s.submissions, **overflow)
        credit = policy.engagement.source_points.get(lead.source)
        if credit:
            self._score(SourceCredit(at=self.at, weight=credit))
        if hand_raise:
            s.hand_raised = True
        if s.stage is Stage.NURTURING:
            self._maybe_qualify()

    def _score(self, event: Engagement) -> None:
        s = self.state
        s.engagement_score, s.engagement_as_of = add_engagement(
            s.engagement_score, s.engagement_as_of, event, self.policy.engagement
        )

    def _engaged(self, event: EngagementEvent) -> None:
        if event.event_id is not None:
            seen = self.state.engagement_event_ids
            if event.event_id in seen:
                return  # a retry of an event already counted
            self.state.engagement_event_ids = [*seen, event.event_id][-EVENT_IDS_KEPT:]
        self._score(event)
        if event.kind in self.policy.qualification.fast_track_kinds:
            self.state.hand_raised = True
        if self.state.stage is Stage.NURTURING:
            self._maybe_qualify()

    def _maybe_qualify(self) -> None:
        s = self.state
        engagement = decayed(s.engagement_score, s.engagement_as_of, self.at, self.policy.engagement.half_life_days)
        verdict = qualifies(s.fit_score, engagement, s.hand_raised, self.policy)
        if verdict is None:
            return
        tier, reason = verdict
        s.tier = tier
        s.mql_at = self.at
        self.set_stage(Stage.MQL)
        self.disarm(Clock.NURTURE)
        self.record(DecisionKind.MQL, reason=reason, fit=s.fit_score, engagement=round(engagement, 2))
        s.first_contact_due = first_contact_due(self.policy, s.tier, self.at)
        self.arm(Clock.FIRST_CONTACT, s.first_contact_due)
        self._request_assignment()

    # -- routing --------------------------------------------------------------------------

    def _request_assignment(self, release: str | None = None) -> None:
        s = self.state
        s.assignment_step += 1
        self.commands.append(
            AssignLead(
                step=s.assignment_step,
                tier=s.tier or self.policy.tiers[-1].name,
                territory=s.territory,
                segment=s.segment,
                exclude=list(s.previous_owners),
                release_rep_id=release,
            )
        )

    def _assigned(self, event: RepAssigned) -> None:
        s = self.state
        if event.step != s.assignment_step or s.stage is not Stage.MQL or s.owner_id is not None:
            return  # a stale answer to an earlier routing request
        if event.from_line and not s.in_line:
            return  # served after it left the line (escalated meanwhile): the shell gave the slot back
        reassigned = bool(s.previous_owners)
        self._take_ownership(event.rep_id, event.team)
        self.record(
            DecisionKind.ASSIGNED, step=event.step, team=event.team, on_shift=event.on_shift, reassigned=reassigned
        )
        self.arm(Clock.ACCEPTANCE, self.business_hours_later(self.at, self.tier_window(Clock.ACCEPTANCE)))
        auto_accept = self.policy.sal_gate.auto_accept_after_hours
        if auto_accept is not None:
            self.arm(Clock.AUTO_ACCEPT, self.business_hours_later(self.at, auto_accept))
        self.notify(NotificationKind.ASSIGNED, [event.rep_id])

    def _take_ownership(self, rep_id: str, team: str) -> None:
        s = self.state
        s.owner_id, s.owner_team, s.queued_team = rep_id, team, None
        s.in_line = False  # served from the line (the shell took it out) or routed at once
        s.previous_owners = [*s.previous_owners, rep_id]
        s.assigned_at = self.at
        s.owner_breaches = 0
        s.owner_attempts = 0
        s.owner_first_attempt_at = None
        s.connected = False
        s.routing_retries = 0
        self.set_stage(Stage.ASSIGNED)
        if Clock.FIRST_CONTACT not in s.deadlines:  # a new owner (reassigned, claimed, or late) gets a fresh window
            self.arm(Clock.FIRST_CONTACT, self.business_hours_later(self.at, self.tier_window(Clock.FIRST_CONTACT)))

    def _unrouted(self, event: NoRepAvailable) -> None:
        s = self.state
        if event.step != s.assignment_step or s.stage is not Stage.MQL or s.owner_id is not None:
            return
        if s.previous_owners:
            # A reassignment nobody can take (everyone covering the lead already had it, or
            # is away or full): the team queue, not an endless retry.
            s.owner_team = self._team_of(s.previous_owners[-1]) or s.owner_team
            self.record(DecisionKind.QUEUED, why=event.why, retry=s.routing_retries)
            self._escalate_to_queue()
            return
        self.record(DecisionKind.QUEUED, why=event.why, retry=s.routing_retries)
        if s.routing_retries == 0:
            self.notify(NotificationKind.UNROUTED, self.policy.managers, why=event.why)
        s.routing_retries += 1
        if s.waits_in_line:
            s.in_line = True
            self.commands.append(line_entry(s, self.policy, self.at))
            return
        self.arm(Clock.ROUTING_RETRY, self.at + timedelta(minutes=self.policy.routing.retry_minutes))

    # -- deadlines ------------------------------------------------------------------------

    def _deadline(self, event: DeadlineReached) -> None:
        s = self.state
        if s.deadlines.get(event.clock) != event.due_at:
            return  # cancelled or re-armed since this timer was started
        self.at = max(event.due_at.astimezone(timezone.utc), s.log[-1].at if s.log else event.due_at)
        del s.deadlines[event.clock]
        if event.clock in SLA_CLOCKS:
            self._breach(event.clock)
        elif event.clock is Clock.DISPOSITION:
            self._recycle("no_disposition", by=None)
        elif event.clock is Clock.SQL_STALL:
            self._recycle("stalled", by=None)
        elif event.clock is Clock.AUTO_ACCEPT:
            if s.stage is Stage.ASSIGNED and s.owner_id is not None:
                self._accept(s.owner_id, automatically=True)
        elif event.clock is Clock.ROUTING_RETRY:
            if s.stage is Stage.MQL and s.owner_id is None and s.queued_team is None:
                self._request_assignment()
        elif event.clock is Clock.NURTURE:
            self.record(DecisionKind.NURTURE_EXPIRED)
            self.disarm_all()
            self.finish(Outcome.NURTURE_EXPIRED)

    def _breach(self, clock: Clock) -> None:
        s, escalation = self.state, self.policy.escalation
        s.breaches += 1
        if clock is Clock.FIRST_CONTACT and s.first_contact_at is None and s.first_contact_met is None:
            s.first_contact_met = False
        if s.owner_id is None:
            self.record_typed(BreachDetail(clock=clock, owner_breach=0))
            self.notify(NotificationKind.SLA_BREACH, self.policy.managers, clock=str(clock))
            return
        s.owner_breaches += 1
        self.record_typed(BreachDetail(clock=clock, owner_breach=s.owner_breaches))
        if s.owner_breaches >= escalation.reassign_on_breach:
            if s.reassignments < escalation.max_reassignments:
                self._reassign()
            else:
                self._escalate_to_queue()
            return
        manager = self.policy.manager_of(s.owner_id)
        if s.owner_breaches >= escalation.notify_on_breach:
            s.escalation_level = max(s.escalation_level, EscalationLevel.NOTIFY)
            self.record_typed(EscalatedDetail(level=EscalationLevel.NOTIFY, action="notify", clock=clock))
            self.notify(NotificationKind.SLA_BREACH, [s.owner_id, manager], clock=str(clock))
        window = self.tier_window(Clock.ACCEPTANCE if clock is Clock.ACCEPTANCE else Clock.FIRST_CONTACT)
        self.arm(clock, self.business_hours_later(self.at, window))

    def _reassign(self) -> None:
        s = self.state
        previous = s.owner_id
        manager = self.policy.manager_of(previous)
        s.reassignments += 1
        s.escalation_level = max(s.escalation_level, EscalationLevel.REASSIGN)
        self.disarm(Clock.ACCEPTANCE, Clock.AUTO_ACCEPT, Clock.FIRST_CONTACT, Clock.FOLLOW_UP, Clock.DISPOSITION)
        s.owner_id = None
        s.owner_team = None
        self.set_stage(Stage.MQL)
        self.record_typed(ReassignedDetail(previous_owner=previous, reassignment=s.reassignments))
        self.record_typed(EscalatedDetail(level=EscalationLevel.REASSIGN, action="reassign"))
        self.notify(NotificationKind.REASSIGNED, [previous, manager], previous_owner=previous)
        self._request_assignment(release=previous)

    def _team_of(self, rep_id: str) -> str | None:
        """The team of a rep, or of the manager who claimed the lead from their team queue."""
        rep = self.policy.rep(rep_id)
        if rep is not None:
            return rep.team
        return next((team.id for team in self.policy.teams if team.manager == rep_id), None)

    def _escalate_to_queue(self) -> None:
        s = self.state
        team = s.owner_team
        team_record = self.policy.team(team) if team else None
        manager = team_record.manager if team_record else self.policy.manager_of(s.owner_id)
        s.escalation_level = EscalationLevel.TEAM_QUEUE
        self.disarm(Clock.ACCEPTANCE, Clock.AUTO_ACCEPT, Clock.FIRST_CONTACT, Clock.FOLLOW_UP, Clock.DISPOSITION)
        self.release_owner()
        s.queued_team = team
        self.set_stage(Stage.MQL)
        self.record_typed(EscalatedDetail(level=EscalationLevel.TEAM_QUEUE, action="team_queue", team=team))
        self.notify(NotificationKind.ESCALATED, [manager], team=team)

    # -- rep actions ------------------------------------------------------------------------

    def _acted(self, action: RepAction) -> None:
        if isinstance(action, Accept):
            self._accept(action.by)
        elif isinstance(action, LogAttempt):
            self._attempt(action)
        elif isinstance(action, Qualify):
            self._qualify(action)
        elif isinstance(action, Convert):
            self._close(Stage.CONVERTED, ConvertedDetail(by=action.by), Outcome.CONVERTED)
        elif isinstance(action, Disqualify):
            self.state.last_reason = action.reason
            self._close(Stage.DISQUALIFIED, DisqualifiedDetail(by=action.by, reason=action.reason), Outcome.DISQUALIFIED)
        elif isinstance(action, Recycle):
            self._recycle(action.reason or "", by=action.by)
        elif isinstance(action, Reject):
            self._back_to_marketing(RejectedDetail(by=action.by, reason=action.reason or ""))

    def _accept(self, by: str, automatically: bool = False) -> None:
        """``by`` accepts the lead (claims it from the team queue, if it is there)."""
        s = self.state
        if s.stage is Stage.MQL and s.queued_team:
            rep = self.policy.rep(by)
            s.assignment_step += 1
            self.commands.append(ClaimLead(step=s.assignment_step, rep_id=by))
            self._take_ownership(by, rep.team if rep else s.queued_team)
            self.record(DecisionKind.ASSIGNED, step=s.assignment_step, team=s.owner_team, claimed=True)
        s.accepted_at = self.at
        self.set_stage(Stage.ACCEPTED)
        self.disarm(Clock.ACCEPTANCE, Clock.AUTO_ACCEPT)
        self.record_typed(AcceptedDetail(by=by, auto=automatically))  # auto: the SAL gate's, on the owner's behalf

    def _attempt(self, action: LogAttempt) -> None:
        s, cadence = self.state, self.policy.cadence
        if s.stage is Stage.ASSIGNED:
            self._accept(action.by)
        self.set_stage(Stage.WORKING)
        s.attempts += 1
        s.owner_attempts += 1
        self.record_typed(AttemptDetail(by=action.by, outcome=action.outcome, attempt=s.owner_attempts,
                                        minutes=action.minutes))
        if s.first_contact_at is None:
            s.first_contact_at = self.at
            s.first_contact_met = s.first_contact_due is None or self.at <= s.first_contact_due
            start = s.mql_at or self.at
            self.record_typed(FirstContactDetail(
                wall_seconds=(self.at - start).total_seconds(),
                business_seconds=business_time_between(self.policy.calendar, start, self.at).total_seconds(),
                met=s.first_contact_met,
            ))
        if s.owner_first_attempt_at is None:
            s.owner_first_attempt_at = self.at
            self.disarm(Clock.FIRST_CONTACT)
        if action.outcome is AttemptOutcome.CONNECTED:
            s.connected = True
            self.disarm(Clock.FOLLOW_UP)
            self.arm(Clock.DISPOSITION, self.business_hours_later(self.at, cadence.disposition_within_hours))
        elif s.connected:
            return
        elif s.owner_attempts >= cadence.max_attempts:
            self.set_stage(Stage.UNRESPONSIVE)
            self.record(DecisionKind.UNRESPONSIVE, attempts=s.owner_attempts)
            self._recycle("unresponsive", by=None)
        else:
            self.arm(Clock.FOLLOW_UP, self._next_follow_up(s.owner_first_attempt_at, cadence.schedule[s.owner_attempts]))

    def _next_follow_up(self, anchor: datetime, offset: float) -> datetime:
        calendar = self.policy.calendar
        if self.policy.cadence.unit is CadenceUnit.BUSINESS_DAY:
            due = end_of_business_day(calendar, anchor, int(offset))
        else:
            due = add_business_hours(calendar, anchor, offset)
        if due <= self.at:  # behind the cadence: the next attempt is due by the end of this business day
            due = end_of_business_day(calendar, self.at, 0)
        return due

    def _qualify(self, action: Qualify) -> None:
        s = self.state
        s.sql_at = self.at
        self.set_stage(Stage.SQL)
        self.disarm(Clock.DISPOSITION, Clock.FOLLOW_UP)
        self.record(
            DecisionKind.QUALIFIED,
            by=action.by,
            budget=action.budget,
            authority=action.authority,
            need=bool(action.need),
            timeline_days=action.timeline_days,
        )
        self.arm(Clock.SQL_STALL, self.at + timedelta(days=self.policy.sql_stall_days))

    def _close(self, stage: Stage, detail: TypedDetail, outcome: Outcome) -> None:
        self.state.queued_team = None
        self.disarm_all()
        self.set_stage(stage)
        self.record_typed(detail)
        self.release_owner()
        self.finish(outcome)

    def _recycle(self, reason: str, by: str | None) -> None:
        self._back_to_marketing(RecycledDetail(reason=reason, by=by))

    def _back_to_marketing(self, detail: RecycledDetail | RejectedDetail) -> None:
        """Recycled, or rejected by sales: back to nurturing, a new MQL episode if it qualifies again."""
        s = self.state
        s.last_reason = detail.reason
        self.disarm_all()
        self.set_stage(Stage.RECYCLED)
        self.record_typed(detail)
        self.release_owner()
        s.recycles += 1
        s.tier = None
        s.queued_team = None
        s.previous_owners = []
        s.reassignments = 0
        s.owner_breaches = 0
        s.owner_attempts = 0
        s.owner_first_attempt_at = None
        s.connected = False
        s.hand_raised = False
        s.engagement_score, s.engagement_as_of = 0.0, self.at
        s.mql_at = s.first_contact_at = s.first_contact_due = s.first_contact_met = None
        s.escalation_level = EscalationLevel.NONE
        self.set_stage(Stage.NURTURING)
        self.arm(Clock.NURTURE, self.at + timedelta(days=self.policy.nurture_days))
