"""``LeadJourneyWorkflow``: one durable workflow per lead, from first touch to outcome.

The workflow waits and acts; the core's ``decide`` decides. Events (the submission,
engagement signals, rep actions, fired deadlines, routing answers) go through an inbox
and are applied one at a time; the commands that come back are carried out here:

* deadlines become one durable timer each; a rep action disarms the clock and the timer,
  when it fires, finds its deadline gone (journeys started before ``REPLAY_STABLE_CLOCK``
  cancel it instead; no polling either way);
* routing, ledger writes and policy loads are activities (idempotent; local activities in
  journeys started before ``REPLAY_STABLE_CLOCK``);
* notifications are ordinary activities, run in the background with their own retries;
* a lead nobody can take waits in the ledger's waiting line (journeys started with
  ``WAITING_LINE``): the journey whose release frees a slot tells the lead served from
  the line with the ``line_served`` signal; a timer every ``routing.retry_minutes`` asks
  the line again, only as a safety net for a signal that never came.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        AssignmentRequest,
        Claim,
        JoinLineRequest,
        LeadProjection,
        LedgerBatch,
        LineServed,
        Notification,
        NotificationBatch,
        PolicyRequest,
        SettledSla,
        SlotReturn,
        StepRecorded,
    )
    from activities.journey_activities import JourneyActivities
    from leadflow.actions import ActionRequest, InvalidAction
    from leadflow.decide import check_action, decide, due_deadlines, line_entry, may_adopt, new_journey, view_score
    from leadflow.journey import (
        AssignLead,
        CancelDeadline,
        ClaimLead,
        Clock,
        Command,
        DeadlineReached,
        EngagementReceived,
        JoinWaitingLine,
        JourneyEvent,
        JourneyState,
        LeadSubmitted,
        LeaveWaitingLine,
        NoRepAvailable,
        Notify,
        PolicyAdopted,
        Record,
        ReleaseLead,
        RepActed,
        RepAssigned,
        StartDeadline,
    )
    from leadflow.kpis import SlaSettled, sla_settled
    from leadflow.lead import EngagementEvent, Lead, workflow_id_for
    from leadflow.policy import Policy
    from leadflow.scoring import needs_bounds
    from workflows import search_attributes as sa
    from workflows.journey_io import (
        ANSWERS_IN_MEMO,
        ANSWERS_KEPT,
        ANSWERS_MEMO,
        Carried,
        JourneyInput,
        JourneyOutcome,
        LeadView,
        RepActionSignal,
    )
    from workflows.journey_metrics import JourneyMetrics

LOCAL_TIMEOUT = timedelta(seconds=30)
EFFECT_TIMEOUT = timedelta(seconds=10)  # a ledger write or a routing call; a dead worker's is retried after this
# A ledger or routing call retried at most 10 s apart: a journey resumes within seconds of
# its database coming back (with 30 s, a 30 s outage cost up to 25 s more).
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_GIVE_UP = timedelta(hours=24)
# A deadline already due when armed still gets a timer: whether a timer exists must not
# depend on the clock (see ``_wait_for_deadline``).
SHORTEST_TIMER = timedelta(milliseconds=1)
# Journeys started before this patch branch on ``workflow.now()`` in their deadline code;
# they keep doing so on replay, new ones never do (README, "Why a journey replays the same
# on a busy worker").
REPLAY_STABLE_CLOCK = "replay-stable-clock"
# Journeys started with this patch take every deadline that was due before an event happened
# ahead of that event, whether or not its timer has fired yet: what the journey decides then
# does not depend on how the SDK splits a workflow task into activations (README, "Why a
# journey replays the same on a busy worker", point 5).
DUE_DEADLINES_FIRST = "due-deadlines-first"
# An engagement event dated after the moment it is handled, or weighing more than the policy's
# cap, is bounded by the core. Journeys recorded before took such an event as sent and keep
# doing so on replay. Asked only when an event needs bounds, so other histories are unchanged.
BOUNDED_ENGAGEMENT = "bounded-engagement"
# Journeys started with this patch continue as new after handling ``events_per_run`` events
# (``JourneyInput``), a count of their own that replay gives back the same way. Journeys
# recorded before read the server's suggestion when an event arrived, which a replay can read
# otherwise (README, "Why a journey replays the same on a busy worker", point 6).
CONTINUE_AS_NEW_BY_COUNT = "continue-as-new-by-count"
# Journeys started with this patch wait in the ledger's waiting line when nobody can take
# them, and are told by signal when a slot frees; journeys started before ask routing again
# on a ``ROUTING_RETRY`` deadline every ``routing.retry_minutes``, and keep doing so.
WAITING_LINE = "waiting-line"


class Arrival(NamedTuple):
    """An inbox entry: what arrived, and what the workflow task it arrived in said.

    Both readings are taken when the event is delivered (its handler runs, its timer fires),
    which happens in the same workflow task live and on replay. What the main loop does with
    an event depends on nothing else.
    """

    event: JourneyEvent | None  # None: a policy offer
    ticket: int | str | None = None  # the rep action waiting for this event's answer (update ticket or request id)
    at: datetime | None = None  # when it arrived (a deadline: when it was due)
    new_run_suggested: bool = False  # the server suggested continue-as-new by then
    offered_policy: str | None = None
    line_check: int | None = None  # the safety net asks the waiting line again for this routing step


A = TypeVar("A")
R = TypeVar("R")


@workflow.defn(name="LeadJourney")
class LeadJourneyWorkflow:
    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        carried = input.carried
        self._policy = carried.policy if carried else None
        self._state = carried.state if carried else None
        self._indexed: dict[str, object] = dict(carried.indexed) if carried else {}
        self._visibility = input.visibility
        self._lead_id = input.lead_id
        self._starting_version = input.policy_version
        # Signals the previous run received but had not handled yet come first.
        self._inbox: deque[Arrival] = deque(Arrival(event) for event in (carried.pending if carried else []))
        self._stable_clock = False  # set in ``run``: whether this run has the replay-stable clock
        self._due_first = False  # set in ``run``: whether overdue deadlines go before a later event
        self._by_count = False  # set in ``run``: whether this run continues as new after ``events_per_run`` events
        self._waiting_line = False  # set in ``run``: whether a lead nobody can take waits in the ledger's line
        self._handled_in_run = 0  # events this run has taken from its inbox
        self._new_run_wanted = False  # time to continue as new; done at the next safe point
        self._clock: datetime | None = None  # the latest time a decision was taken at
        self._armed: dict[Clock, datetime] = {}
        # Answers to rep actions: update tickets (popped by their handler) and signalled
        # requests' ids (the latest ANSWERS_KEPT, so a repeated request applies once).
        self._verdicts: dict[int | str, str | None] = {}
        if carried:
            self._verdicts.update(carried.answers)
        self._tickets = 0
        self._notifying: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._metrics: JourneyMetrics | None = None
        self._offered: str | None = carried.offered_policy if carried else None
        self._offered_policy: Policy | None = None

    @property
    def _journey(self) -> JourneyState:
        """The journey's state, once ``run`` has started it."""
        assert self._state is not None, "the journey has not started"
        return self._state

    @property
    def _rules(self) -> Policy:
        """The policy the journey follows, once ``run`` has loaded it."""
        assert self._policy is not None, "the journey has not loaded its policy"
        return self._policy

    # -- messages ------------------------------------------------------------------------

    @workflow.signal
    def submit(self, lead: Lead) -> None:
        """A (possibly repeated) submission of this person: creates or merges."""
        self._receive(LeadSubmitted(lead=lead))

    @workflow.signal
    def engage(self, event: EngagementEvent) -> None:
        """An engagement signal (page view, download, webinar, demo request...)."""
        self._receive(EngagementReceived(event=event))

    @workflow.signal
    def adopt_policy(self, version: str) -> None:
        """Switch to this policy version at the next safe point (``leadflow policy rollout --to all-open``)."""
        if self._stable_clock:  # in turn with the other events
            self._inbox.append(self._arrival(None, offered_policy=version))
        else:
            self._offered = version

    @workflow.signal
    def line_served(self, assigned: RepAssigned) -> None:
        """A slot freed for this lead while it waited in line (sent by the journey that freed it)."""
        self._receive(replace(assigned, from_line=True))

    @workflow.signal
    def rep_action(self, request: RepActionSignal) -> None:
        """A rep action; its answer goes into the memo (``_answer``).

        Rep actions arrive as signals, not updates: an update accepted in the workflow task
        after one that issued no command is applied, on replay, in one activation with that
        task's events and ahead of them, so a busy worker could not replay the journey
        (README, "Why a journey replays the same on a busy worker", point 4). A signal is a
        history event; one that arrives after its task was scheduled can still be applied in
        another order on replay (point 5 there, not fixed yet).
        """
        request_id = request.request_id
        if request_id in self._verdicts or any(arrival.ticket == request_id for arrival in self._inbox):
            return  # a client's retry of a request already taken: it applies once
        if self._state is not None and self._state.finished:
            self._answer(request_id, f"the lead is closed ({self._state.stage})")
            return
        self._receive(RepActed(action=request.action), request_id)

    @workflow.update
    async def act(self, request: ActionRequest) -> LeadView:
        """A rep action as an update, as clients sent them before ``rep_action``.

        Kept so journeys whose histories hold such updates replay; clients send ``rep_action``.
        """
        self._tickets += 1
        ticket = self._tickets
        self._receive(RepActed(action=request.action), ticket)
        await workflow.wait_condition(lambda: ticket in self._verdicts)
        problem = self._verdicts.pop(ticket)
        if problem is not None:
            raise ApplicationError(problem, type="InvalidAction", non_retryable=True)
        return self.view()

    @act.validator
    def _validate_act(self, request: ActionRequest) -> None:
        check_action(self._state, request.action, self._policy) if self._policy else _not_started()

    @workflow.query
    def view(self) -> LeadView:
        """Stage, owner, tier, score, deadlines, attempts and the decision log."""
        if self._state is None or self._policy is None:
            # Still loading its policy: the journey as it will start, not an error (the API
            # would have to tell "starting" from "broken" by the message otherwise).
            starting = new_journey(self._lead_id, workflow.info().first_execution_run_id, self._starting_version or "")
            return LeadView.of(starting, workflow.info().workflow_id, 0.0)
        return LeadView.of(self._state, workflow.info().workflow_id, view_score(self._state, workflow.now(), self._policy))

    def _answer(self, ticket: int | str, problem: str | None) -> None:
        """Record the answer to a rep action (``problem`` None: applied).

        A signalled action's answer also goes into the memo, where its client reads it from
        the server without a query (a query on a journey the worker no longer caches replays
        it). Only ``rep_action`` signals get here with a request id, so journeys recorded
        before them issue no memo command and replay unchanged.
        """
        self._verdicts[ticket] = problem
        if isinstance(ticket, str):
            signalled = [key for key in self._verdicts if isinstance(key, str)]
            for old in signalled[: max(0, len(signalled) - ANSWERS_KEPT)]:
                del self._verdicts[old]
            workflow.upsert_memo({ANSWERS_MEMO: self._memo_answers()})

    def _memo_answers(self) -> dict[str, str | None]:
        signalled = [(key, value) for key, value in self._verdicts.items() if isinstance(key, str)]
        return dict(signalled[-ANSWERS_IN_MEMO:])

    def _receive(self, event: JourneyEvent, ticket: int | str | None = None) -> None:
        """Queue an event with the time it arrived: a message handler runs in the first
        activation of its workflow task, whose time the replay sees too."""
        self._inbox.append(self._arrival(event, ticket))

    @staticmethod
    def _arrival(event: JourneyEvent | None, ticket: int | str | None = None, at: datetime | None = None,
                 offered_policy: str | None = None, line_check: int | None = None) -> Arrival:
        return Arrival(event, ticket, at or workflow.now(), workflow.info().is_continue_as_new_suggested(), offered_policy,
                       line_check)

    # -- main loop -----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyOutcome:
        self._stable_clock = workflow.patched(REPLAY_STABLE_CLOCK)
        self._due_first = self._stable_clock and workflow.patched(DUE_DEADLINES_FIRST)
        self._by_count = self._stable_clock and workflow.patched(CONTINUE_AS_NEW_BY_COUNT)
        self._waiting_line = self._stable_clock and workflow.patched(WAITING_LINE)
        if self._stable_clock:  # signals carried over from the previous run arrive now
            self._inbox = deque(self._arrival(arrival.event, arrival.ticket, arrival.at) for arrival in self._inbox)
        if self._policy is None:
            self._policy = await self._effect(JourneyActivities.load_policy, PolicyRequest(version=input.policy_version))
        if input.carried is None and self._visibility:
            started_with = workflow.info().typed_search_attributes
            self._indexed = {key.name: started_with.get(key) for key in sa.ALL}
        if self._state is None:
            self._state = new_journey(input.lead_id, workflow.info().first_execution_run_id, self._policy.version,
                                      waits_in_line=self._waiting_line)
        for clock, due_at in self._state.deadlines.items():
            self._start_timer(clock, due_at)
        if self._state.in_line:  # carried over waiting in line: the safety net goes on
            self._watch_line(self._state.assignment_step)

        if self._stable_clock:
            await self._one_event_at_a_time(input)
        else:
            await self._in_batches(input)

        self._journey_metrics().closed(self._journey)
        for arrival in self._inbox:
            if arrival.ticket is not None:
                self._answer(arrival.ticket, f"the lead is closed ({self._journey.stage})")
        await self._quiesce()
        state = self._journey
        return JourneyOutcome(
            lead_id=state.lead_id,
            outcome=state.outcome or "",
            stage=state.stage,
            tier=state.tier,
            attempts=state.attempts,
            breaches=state.breaches,
            reassignments=state.reassignments,
            recycles=state.recycles,
            first_contact_met=state.first_contact_met,
            policy_version=state.policy_version,
        )

    async def _one_event_at_a_time(self, input: JourneyInput) -> None:
        """Each event in turn, each followed by the same steps: policy adoption, search
        attributes, continue-as-new.

        So the commands depend on the order of events alone. Under load a local activity's
        result can come back in a later workflow task than the one that recorded it, and with
        it events that arrived meanwhile; on replay it comes back at once. Steps taken "when
        the inbox is empty" would then run at different points live and on replay.
        """
        while not self._journey.finished:
            await workflow.wait_condition(lambda: bool(self._inbox))
            arrival = self._inbox.popleft()
            overdue = self._overdue_before(arrival)
            if overdue:  # they come first, each followed by the same steps
                self._inbox.appendleft(arrival)
                self._inbox.extendleft(reversed(overdue))
                continue
            self._handled_in_run += 1
            if arrival.line_check is not None:
                await self._check_line(arrival.line_check, arrival.at)
            elif arrival.event is None:
                self._offered = arrival.offered_policy
            else:
                await self._handle(arrival.event, arrival.ticket, arrival.at)
            await self._adopt_offered_policy()
            self._sync_visibility()
            if self._by_count:
                self._new_run_wanted = self._handled_in_run >= input.events_per_run
            else:
                self._new_run_wanted = self._new_run_wanted or arrival.new_run_suggested
            if self._new_run_wanted and not self._journey.finished:
                await self._continue_as_new(input)

    def _overdue_before(self, arrival: Arrival) -> list[Arrival]:
        """Deadlines due by the time ``arrival`` happened whose timers have not delivered them.

        A rep action and the timer of a deadline due before it can reach the journey in one
        workflow task, and the SDK applies the two in one order live and in another on replay
        (the signal first). Taking the deadline first whatever the order makes the decisions
        the same both ways, and is what happened: the deadline was due first. Its timer, when
        it fires, finds it taken.
        """
        if not self._due_first or arrival.event is None or arrival.at is None or isinstance(arrival.event, DeadlineReached):
            return []
        overdue = []
        for due in due_deadlines(self._journey, arrival.at):
            if self._armed.get(due.clock) == due.due_at:
                del self._armed[due.clock]
                overdue.append(Arrival(due, None, due.due_at, arrival.new_run_suggested))
        return overdue

    async def _in_batches(self, input: JourneyInput) -> None:
        """The main loop of journeys started before ``REPLAY_STABLE_CLOCK`` (kept so they replay)."""
        while not self._journey.finished:
            await workflow.wait_condition(lambda: bool(self._inbox) or self._adoption_ready())
            while self._inbox and not self._journey.finished:
                arrival = self._inbox.popleft()
                assert arrival.event is not None  # offers arrive through the inbox only in patched runs
                await self._handle(arrival.event, arrival.ticket, None)
            await self._adopt_offered_policy()
            self._sync_visibility()
            if not self._journey.finished and workflow.info().is_continue_as_new_suggested():
                await self._continue_as_new(input)

    async def _continue_as_new(self, input: JourneyInput) -> None:
        """Hand the journey to a fresh run, with the signals not handled yet.

        Signals keep arriving during a long nurture, so the inbox may never be empty: its
        events travel with the state. A rep action waits for its answer in this run, so
        while one is pending the journey handles it first and tries again afterwards.
        """
        if self._by_count and self._answer_pending():  # answer the rep before waiting on notifications
            return
        if self._notifying:
            await asyncio.gather(*self._notifying)
        if self._answer_pending():
            return
        offers = [arrival.offered_policy for arrival in self._inbox if arrival.event is None]
        answers = self._memo_answers()
        workflow.continue_as_new(
            JourneyInput(
                lead_id=input.lead_id,
                policy_version=self._journey.policy_version,
                visibility=self._visibility,
                events_per_run=input.events_per_run,
                carried=Carried(
                    state=self._journey,
                    policy=self._policy,
                    indexed=self._indexed,
                    offered_policy=offers[-1] if offers else self._offered,
                    # (a safety-net check of the line is not carried: the next run starts its own)
                    pending=[arrival.event for arrival in self._inbox if arrival.event is not None],
                    answers={key: value for key, value in self._verdicts.items() if isinstance(key, str)},
                ),
            ),
            # The next run answers from the memo too, so a client waiting across the hand-over
            # still finds its answer.
            memo={ANSWERS_MEMO: answers} if answers else None,
        )

    def _answer_pending(self) -> bool:
        """A rep action waits for its answer in this run (an update handler, or a queued request)."""
        return not workflow.all_handlers_finished() or any(arrival.ticket is not None for arrival in self._inbox)

    # -- policy rollout --------------------------------------------------------------------

    def _adoption_ready(self) -> bool:
        """An offered policy not loaded yet, or loaded and safe to adopt now."""
        if self._offered is None:
            return False
        offered = self._offered_policy
        return offered is None or offered.version != self._offered or may_adopt(self._journey, offered)

    async def _adopt_offered_policy(self) -> None:
        version = self._offered
        if version is None or self._journey.finished:
            return
        if version == self._journey.policy_version:
            self._offered = None
            return
        if self._offered_policy is None or self._offered_policy.version != version:
            try:
                self._offered_policy = await self._effect(JourneyActivities.load_policy, PolicyRequest(version=version))
            except ActivityError as error:  # an unknown version: keep the policy we have
                workflow.logger.warning("policy %s not adopted: %s", version, error.cause or error)
                self._offered = None
                return
        if may_adopt(self._journey, self._offered_policy):
            self._policy = self._offered_policy
            self._offered, self._offered_policy = None, None
            await self._handle(PolicyAdopted(version=version), at=self._clock)

    async def _quiesce(self) -> None:
        """Let notifications in flight and update handlers finish."""
        if self._notifying:
            await asyncio.gather(*self._notifying)
        await workflow.wait_condition(workflow.all_handlers_finished)

    # -- carrying out decisions ----------------------------------------------------------

    def _decision_time(self, at: datetime | None) -> datetime:
        """When ``decide`` takes the next decision.

        Only times the replay sees too: an event's arrival (``_receive``), a deadline's due
        time, the instant of the decision that asked for routing. ``workflow.now()`` read after
        a local activity is not one of them: under load it differs between the first run and
        a replay. Never earlier than the decision before.
        """
        if not self._stable_clock:  # journeys started before the patch decide as they did
            return at or workflow.now()
        now = at or self._clock or workflow.now()
        if self._clock is not None and now < self._clock:
            now = self._clock
        self._clock = now
        return now

    async def _handle(self, event: JourneyEvent, ticket: int | str | None = None, at: datetime | None = None) -> None:
        now = self._decision_time(at)
        before = self._journey
        if (isinstance(event, EngagementReceived) and needs_bounds(event.event, now, self._rules.engagement)
                and not workflow.patched(BOUNDED_ENGAGEMENT)):
            event = replace(event, as_sent=True)
        try:
            self._state, commands = decide(before, event, now, self._rules)
        except InvalidAction as problem:  # the state moved on between validation and handling
            if ticket is not None:
                self._answer(ticket, str(problem))
            return
        except ValidationError as problem:
            # Data the core could not apply must not fail the workflow task: that would retry
            # it forever and jam the journey. Say which fields, never their values.
            where = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'value'}: {error['msg']}"
                              for error in problem.errors(include_input=False, include_url=False))
            workflow.logger.warning("lead %s: %s not applied (%s)", before.lead_id, type(event).__name__, where)
            if ticket is not None:
                self._answer(ticket, f"not applied: {where}")
            return
        if ticket is not None and not self._stable_clock:
            self._answer(ticket, None)
        metrics = self._journey_metrics()
        metrics.stage_changes(self._journey, self._journey.stage_history[len(before.stage_history) :], before.stage)
        entries = [command.entry for command in commands if isinstance(command, Record)]
        settled = sla_settled(before, self._journey, entries)
        metrics.decisions(entries)
        metrics.sla_settled(settled)
        await self._carry_out(commands, now, settled)
        if ticket is not None and self._stable_clock:
            self._answer(ticket, None)  # the rep's action returns once the ledger has it

    def _journey_metrics(self) -> JourneyMetrics:
        # The workflow's meter records nothing while the workflow replays: no double counts.
        if self._metrics is None:
            self._metrics = JourneyMetrics(workflow.metric_meter())
        return self._metrics

    async def _carry_out(self, commands: list[Command], decided_at: datetime, settled: list[SlaSettled] | None = None) -> None:
        state = self._journey
        entries, releases, claims, assignment = [], [], [], None
        joining: JoinWaitingLine | None = None
        left_line = False
        notes: list[Notification] = []
        for command in commands:
            if isinstance(command, StartDeadline):
                self._start_timer(command.clock, command.due_at)
            elif isinstance(command, CancelDeadline):
                self._armed.pop(command.clock, None)
            elif isinstance(command, Record):
                entries.append(command.entry)
            elif isinstance(command, ReleaseLead):
                releases.append(command.rep_id)
            elif isinstance(command, ClaimLead):
                claims.append(Claim(step=command.step, rep_id=command.rep_id))
            elif isinstance(command, Notify):
                key = f"{state.journey_id}:{state.seq}:{len(notes)}"
                notes.append(Notification(key=key, kind=command.kind, recipients=command.recipients, detail=command.detail))
            elif isinstance(command, AssignLead):
                assignment = command
            elif isinstance(command, JoinWaitingLine):
                joining = command
            elif isinstance(command, LeaveWaitingLine):
                left_line = True
        if entries or releases or claims or left_line:  # an SLA is only ever settled by a step that records a decision
            await self._record(entries, releases, claims, decided_at, settled or [], left_line)
        if notes:
            self._notify_in_background(notes)
        if assignment is not None:
            # Routing answers for the instant of the decision that asked for it, not for
            # whenever the ledger write and the routing call happened to return.
            await self._handle(await self._assign(assignment, decided_at), at=decided_at)
        if joining is not None:
            await self._join_line(joining, decided_at)

    async def _record(self, entries: list, releases: list[str], claims: list[Claim], decided_at: datetime,
                      settled: list[SlaSettled], left_line: bool = False) -> None:
        state = self._journey
        # Ledger times are decision times; the old path kept the clock reading it always had.
        at = decided_at if self._stable_clock else workflow.now()
        workflow_id = workflow.info().workflow_id
        batch = LedgerBatch(
            journey_id=state.journey_id,
            lead_id=state.lead_id,
            workflow_id=workflow_id,
            policy_version=state.policy_version,
            entries=entries,
            releases=releases,
            claims=claims,
            settled=[SettledSla(clock=item.clock, tier=item.tier, outcome=item.outcome) for item in settled],
            at=at,
            left_line=left_line,
            projection=LeadProjection(
                lead_id=state.lead_id,
                journey_id=state.journey_id,
                workflow_id=workflow_id,
                stage=state.stage,
                tier=state.tier,
                owner_id=state.owner_id,
                fit_score=state.fit_score,
                source=str(state.source) if state.source else None,
                policy_version=state.policy_version,
                sla_due_at=state.sla_due_at,
                outcome=state.outcome,
                seq=state.seq,
                updated_at=at,
                journey_state=None if state.finished else state.without_personal_data(),
            ),
        )
        recorded = await self._effect(JourneyActivities.record_journey_step, batch)
        if isinstance(recorded, StepRecorded):
            await self._tell_served(recorded.served, at)

    async def _assign(self, command: AssignLead, at: datetime) -> RepAssigned | NoRepAvailable:
        state = self._journey
        result = await self._effect(
            JourneyActivities.assign_lead,
            AssignmentRequest(
                journey_id=state.journey_id,
                lead_id=state.lead_id,
                step=command.step,
                policy_version=state.policy_version,
                tier=command.tier,
                territory=command.territory,
                segment=command.segment,
                exclude=command.exclude,
                release_rep_id=command.release_rep_id,
                at=at,
            ),
        )
        await self._tell_served(result.served, at)
        if result.rep_id is None:
            return NoRepAvailable(step=command.step, why=result.why_none or "no rep available")
        return RepAssigned(step=command.step, rep_id=result.rep_id, team=result.team or "", on_shift=result.on_shift)

    # -- the waiting line --------------------------------------------------------------------

    async def _join_line(self, entry: JoinWaitingLine, at: datetime) -> None:
        """Take a place in the ledger's line, or the slot that freed since routing said nobody."""
        state = self._journey
        result = await self._effect(
            JourneyActivities.join_waiting_line,
            JoinLineRequest(journey_id=state.journey_id, lead_id=state.lead_id, workflow_id=workflow.info().workflow_id,
                            policy_version=state.policy_version, entry=entry, at=at),
        )
        if result.rep_id is not None:
            served = RepAssigned(step=entry.step, rep_id=result.rep_id, team=result.team or "", on_shift=result.on_shift,
                                 from_line=True)
            await self._handle(served, at=at)
        else:
            self._watch_line(entry.step)

    def _watch_line(self, step: int) -> None:
        """The safety net: after ``routing.retry_minutes`` still in line for ``step``, ask again.

        The journey that frees a slot tells the lead by signal; this only catches a signal
        that never came (its sender failed between the ledger write and the signal). Like a
        deadline's, the timer always starts and is never cancelled.
        """
        task = asyncio.create_task(self._line_safety_net(step))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _line_safety_net(self, step: int) -> None:
        await workflow.sleep(timedelta(minutes=self._rules.routing.retry_minutes), summary="waiting line check")
        if self._in_line_for(step):
            self._inbox.append(self._arrival(None, line_check=step))

    def _in_line_for(self, step: int) -> bool:
        state = self._journey
        return state.in_line and state.assignment_step == step and not state.finished

    async def _check_line(self, step: int, at: datetime | None) -> None:
        if self._in_line_for(step):
            now = self._decision_time(at)
            await self._join_line(line_entry(self._journey, self._rules, now), now)

    async def _tell_served(self, served: list[LineServed], at: datetime) -> None:
        """Tell each lead served from the line by this step's freed slots.

        A journey that cannot be told (its workflow is gone) gives its slot back, and the
        line is served again from it.
        """
        waiting = list(served)
        while waiting:
            item = waiting.pop(0)
            try:
                await workflow.get_external_workflow_handle(item.workflow_id).signal(
                    LeadJourneyWorkflow.line_served, item.assigned)
            except FailureError as problem:
                workflow.logger.warning("journey %s served from the line could not be told (%s): slot given back",
                                        item.journey_id, type(problem).__name__)
                waiting += await self._effect(
                    JourneyActivities.return_line_slot,
                    SlotReturn(journey_id=item.journey_id, step=item.assigned.step, rep_id=item.assigned.rep_id,
                               policy_version=self._journey.policy_version, at=at),
                )

    async def _effect(self, method: Callable[[Any, A], R], argument: A) -> R:
        """A ledger write, a routing call or a policy load: an activity, or in journeys started
        before ``REPLAY_STABLE_CLOCK`` a local activity.

        A local activity's result can reach the workflow in a later workflow task than the one
        that recorded it, and on replay the SDK does not always rebuild that split (measured:
        "Missing associated machine for LocalActivity"). An activity's result is an event in
        the history, delivered in the same workflow task live and on replay.
        """
        if self._stable_clock:
            return await workflow.execute_activity_method(
                method, argument, start_to_close_timeout=EFFECT_TIMEOUT, retry_policy=LOCAL_RETRY
            )
        return await workflow.execute_local_activity_method(
            method, argument, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=LOCAL_RETRY
        )

    def _notify_in_background(self, notes: list[Notification]) -> None:
        task = asyncio.create_task(self._send(notes))
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _send(self, notes: list[Notification]) -> None:
        try:
            await workflow.execute_activity_method(
                JourneyActivities.send_notifications,
                NotificationBatch(notifications=notes),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                schedule_to_close_timeout=NOTIFY_GIVE_UP,
                retry_policy=NOTIFY_RETRY,
            )
        except Exception:  # a notification that cannot be delivered in a day must not fail the journey
            workflow.logger.warning("notifications for lead %s given up after retries", self._journey.lead_id)

    # -- deadlines -------------------------------------------------------------------------

    def _start_timer(self, clock: Clock, due_at: datetime) -> None:
        self._armed[clock] = due_at
        task = asyncio.create_task(self._wait_for_deadline(clock, due_at))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _wait_for_deadline(self, clock: Clock, due_at: datetime) -> None:
        if not self._stable_clock:
            await self._wait_for_deadline_unpatched(clock, due_at)
            return
        # The commands this issues depend on nothing but the decisions taken: the timer always
        # starts (its length may differ on replay, which is allowed) and is never cancelled.
        # A cancel would be issued in whichever workflow task the disarming decision ran in,
        # and under load a local activity between the start and the cancel can put them in two
        # tasks on the first run and in one on replay, where the SDK drops the pair: the
        # replay then lacks a TimerStarted the history has. A disarmed deadline's timer still
        # fires and finds its deadline gone.
        await workflow.sleep(max(due_at - workflow.now(), SHORTEST_TIMER), summary=f"{clock} deadline")
        if self._armed.get(clock) == due_at:
            # Deadlines due by this one's due time, as the simulator takes them; later ones
            # fire on their own timers.
            for due in due_deadlines(self._journey, due_at):
                if self._armed.get(due.clock) == due.due_at:
                    del self._armed[due.clock]
                    self._inbox.append(self._arrival(due, at=due.due_at))

    async def _wait_for_deadline_unpatched(self, clock: Clock, due_at: datetime) -> None:
        """The deadline wait of journeys started before ``REPLAY_STABLE_CLOCK`` (kept so they replay)."""
        remaining = due_at - workflow.now()
        if remaining > timedelta(0):
            try:
                # Disarming cancels the timer, unless it is due this very instant: it may have
                # fired already on the server, and a cancel racing a fire is best avoided.
                await workflow.wait_condition(
                    lambda: self._armed.get(clock) != due_at and workflow.now() < due_at,
                    timeout=remaining,
                    timeout_summary=f"{clock} deadline",
                )
                return  # disarmed or re-armed: the timer is cancelled
            except TimeoutError:
                pass
        if self._armed.get(clock) == due_at:
            for due in due_deadlines(self._journey, workflow.now()):
                if self._armed.get(due.clock) == due.due_at:
                    del self._armed[due.clock]
                    self._inbox.append(Arrival(due))

    # -- visibility ----------------------------------------------------------------------

    def _sync_visibility(self) -> None:
        """Upsert the search attributes that changed (one upsert, only when needed)."""
        if not self._visibility:
            return
        state = self._journey
        wanted: dict[str, object] = {
            sa.LEAD_STAGE.name: str(state.stage),
            sa.LEAD_TIER.name: state.tier,
            sa.OWNER_ID.name: state.owner_id,
            sa.SLA_DUE_AT.name: state.sla_due_at,
        }
        changed = {name: value for name, value in wanted.items() if self._indexed.get(name) != value}
        if not changed:
            return
        updates = []
        for key in sa.ALL:
            if key.name in changed:
                value = changed[key.name]
                # Each key's value has the key's type (keyword text or a datetime): ``wanted`` above.
                updates.append(key.value_unset() if value is None else key.value_set(value))  # type: ignore[arg-type]
        workflow.upsert_search_attributes(updates)
        self._indexed.update(changed)


def _not_started() -> None:
    raise InvalidAction("the journey has not started yet")


__all__ = ["LeadJourneyWorkflow", "JourneyInput", "JourneyOutcome", "LeadView", "workflow_id_for"]
