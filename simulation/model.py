"""The SimPy model: synthetic leads on their journeys, and reps working them.

The journey is the core's ``decide``, exactly as in the Temporal workflow: this shell feeds
it events (arrival, the engagement that qualifies a lead, rep actions, deadlines, routing
answers) and carries out the commands it returns. Deadlines are SimPy timeouts, one per
journey at its earliest deadline; a timer whose deadline was cancelled or re-armed meanwhile
finds nothing due when it fires, which is what ``decide`` would do with it. Routing goes
through the core's ``choose_rep`` over in-memory routing state (``simulation.routing_book``).

``arrive`` is the generator process that brings leads in, and each rep is a process working
their own worklist in the core's order (``simulation.rep_work``); a lead's own steps (on
the worklist, after a call, qualify, close) and a manager's hand-off from a team queue are
callbacks on timeouts, so a waiting lead holds no generator. What
is done only to save memory (dormant nurtures, trimmed logs, resting random streams, cut
timers) lives in ``simulation.memory``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from functools import partial

import simpy

from leadflow.actions import (
    InvalidAction,
    RepAction,
)
from leadflow.business_calendar import add_business_time, business_time_between, end_of_business_day
from leadflow.decide import decide, due_deadlines, line_entry, new_journey
from leadflow.journey import (
    OWNED_STAGES,
    AssignLead,
    ClaimLead,
    Clock,
    DecisionEntry,
    DecisionKind,
    EngagementReceived,
    JoinWaitingLine,
    JourneyEvent,
    JourneyState,
    LeadSubmitted,
    LeaveWaitingLine,
    Record,
    ReleaseLead,
    RepActed,
    Stage,
)
from leadflow.kpis import SlaSettled, sla_settled
from leadflow.lead import EngagementEvent
from leadflow.policy import Policy, Rep
from leadflow.routing import is_out_of_office
from leadflow.scoring import decayed, qualifying_event
from leadflow.waiting_line import tier_priority
from leadflow.worklist import WorkItem, priority, work_item
from simulation.behaviour import ContactCurve, likelihood, sample
from simulation.memory import (
    ArmedDeadline,
    BehaviourStream,
    DormantJourney,
    Packer,
    collector_off,
    forget_observed,
    untimed_clocks,
)
from simulation.population import RESUMED_INDEX, Arrivals, People, Person, engagement_after
from simulation.prior_history import prior_leads
from simulation.rep_work import OwnerWork, QueueClaim, RepDesk
from simulation.routing_book import RoutingBook
from simulation.scenario import Likelihood, LoadedScenario, NurturesAtStart
from simulation.start_state import StartState
from simulation.statistics import ReplicationStats
from simulation.timers import Cancellable, Timers

_PRIOR_STREAM = 0x5EED_0F_9A57  # mixed into the seeds of the nurtures running at the start


class LeadJourney:
    """One lead: its journey state, fed through ``decide``, and the shell around it."""

    __slots__ = ("model", "person", "state", "owner_work", "timer", "timer_at", "task_of", "task")

    def __init__(self, model: SimShell, person: Person):
        self.model = model
        self.person = person
        self.owner_work: tuple[str, int] | None = None
        self.timer: ArmedDeadline | None = None
        self.timer_at: datetime | None = None
        self.task_of: JourneyState | None = None
        self.task: tuple[WorkItem, tuple[object, ...]] | None = None
        lead_id = f"S{person.index}"
        self.state: JourneyState = new_journey(lead_id, lead_id, model.policy.version, waits_in_line=model.waits_in_line)

    # -- feeding the core -----------------------------------------------------------------

    def feed(self, event: JourneyEvent) -> None:
        model = self.model
        model.decisions += 1
        now = model.now_dt()
        before = self.state
        self.state, commands = decide(before, event, now, model.policy)
        entries: list[DecisionEntry] = []
        assignment = None
        freed: list[str] = []
        routing = model.routing
        for command in commands:  # by exact type: commands are plain dataclasses, never subclassed
            if type(command) is Record:
                entries.append(command.entry)
            elif type(command) is AssignLead:
                assignment = command
            elif type(command) is ReleaseLead:
                routing.release(command.rep_id)
                freed.append(command.rep_id)
            elif type(command) is ClaimLead:
                routing.take(command.rep_id)
            elif type(command) is JoinWaitingLine:
                model.join_line(self, command)
            elif type(command) is LeaveWaitingLine:
                model.leave_line(self)
        # Routing's and the line's books are kept above; the statistics read neither.
        for settled in sla_settled(before, self.state, entries):
            model.sla_settled(self, settled)
        for entry in entries:
            model.observe(self, entry)
        if model.traces is None:
            forget_observed(self.state)
        self._retime()
        if assignment is not None:
            if assignment.release_rep_id:
                freed.append(assignment.release_rep_id)
            self.feed(routing.assign(assignment, now))
        else:
            self._after_decision()
        for rep_id in freed:
            model.offer_slots(rep_id)

    def _retime(self) -> None:
        """Keep one timer, due at the journey's earliest deadline, rather than one per deadline.

        The core's ``StartDeadline`` and ``CancelDeadline`` are read off the state instead:
        its ``deadlines`` are exactly the armed ones. A timer left behind by a cancelled or
        later re-armed deadline fires, finds nothing due, and times the next one, which is
        what ``decide`` would do with a stale timer; a timer no longer needed is cut loose
        (``ArmedDeadline``), and dropped if it is still held back (``simulation.timers``), so
        few cancelled timers stay in SimPy's queue.
        """
        state, earliest = self.state, None
        if state.outcome is None:
            untimed = self.model.untimed
            for clock, due_at in state.deadlines.items():
                if (earliest is None or due_at < earliest) and clock not in untimed:
                    earliest = due_at
        timer = self.timer
        if timer is not None:
            if earliest is not None and self.timer_at is not None and self.timer_at <= earliest:
                return
            timer.journey = None
            self.timer = self.timer_at = None
        if earliest is not None:
            timer = self.timer = ArmedDeadline(self)
            self.timer_at = earliest
            self.model.at(earliest, timer.fire, cancellable=timer)

    def act(self, action: RepAction) -> bool:
        """A rep action; False if the journey had moved on and the core refused it."""
        try:
            self.feed(RepActed(action=action))
        except InvalidAction:
            return False
        return True

    @classmethod
    def restored(cls, model: SimShell, person: Person, state: JourneyState,
                 owner_work: tuple[str, int] | None) -> LeadJourney:
        """A journey woken from ``DormantJourney``, as it was put away."""
        journey = cls.__new__(cls)
        journey.model, journey.timer, journey.timer_at = model, None, None
        journey.task_of = journey.task = None
        journey.person, journey.state, journey.owner_work = person, state, owner_work
        return journey

    def next_task(self) -> tuple[WorkItem, tuple[object, ...]] | None:
        """The owner's next task and its place on a worklist (the core's ``work_item`` and
        ``priority``), worked out once per state: a rep's steps ask several times between
        two decisions, and every decision makes a new state."""
        state = self.state
        if self.task_of is not state:
            item = work_item(state, self.model.policy)
            self.task = None if item is None else (item, priority(item))
            self.task_of = state
        return self.task

    def timer_fired(self) -> None:
        """The journey's timer: feed every deadline due by now, in the core's order."""
        self.timer = self.timer_at = None
        for due in due_deadlines(self.state, self.model.now_dt()):
            if self.state.outcome is None and self.state.deadlines.get(due.clock) == due.due_at:
                self.feed(due)
        self._retime()

    def _after_decision(self) -> None:
        state, model = self.state, self.model
        if state.outcome is not None:
            return
        if state.stage is Stage.NURTURING:
            model.nurturing(self)
        elif (state.stage in (Stage.ASSIGNED, Stage.ACCEPTED) and state.owner_id
              and self.owner_work != (state.owner_id, state.assignment_step)):
            self.owner_work = (state.owner_id, state.assignment_step)
            model.owned(self, state.owner_id, state.assignment_step)
        elif state.stage is Stage.MQL and state.queued_team and self.owner_work != (state.queued_team, state.assignment_step):
            self.owner_work = (state.queued_team, state.assignment_step)
            model.queued(self, state.queued_team, state.assignment_step)

    def resume(self, _event: object = None) -> None:
        """Go on from where the ledger left this journey (``simulate --from-ledger``)."""
        model = self.model
        assert isinstance(model, JourneyModel)
        model.resume(self)

    def owned_by(self, rep_id: str, step: int) -> bool:
        state = self.state
        return state.outcome is None and state.owner_id == rep_id and state.assignment_step == step and state.stage in OWNED_STAGES


class SimShell:
    """What every simulated journey needs around it: a clock, timers, routing, observers."""

    # Leads nobody can take wait in line (``leadflow.waiting_line``), as in live journeys
    # started with the workflow's ``waiting-line`` patch.
    waits_in_line = True

    def __init__(self, policy: Policy, start: datetime, keep_traces: bool = False):
        self.policy = policy
        self.env = simpy.Environment()
        self.timers = Timers(self.env)
        self.start = start
        self.routing = RoutingBook(policy)
        self.in_line: dict[str, LeadJourney] = {}
        self.packer = Packer(dataclasses=(Person,))
        self.decisions = 0  # events fed to ``decide``
        self.traces: dict[str, list[DecisionEntry]] | None = {} if keep_traces else None
        self.untimed = untimed_clocks(keep_traces)
        self._exact: tuple[float, datetime] = (0.0, start)

    def now_dt(self) -> datetime:
        """Now as a datetime: exactly the scheduled instant when a timer fired."""
        at_hours, moment = self._exact
        now = self.env.now
        if at_hours == now:
            return moment
        moment = self.start + timedelta(hours=now)
        self._exact = (now, moment)  # asked again at this instant, the same answer
        return moment

    def hours(self, moment: datetime) -> float:
        return (moment - self.start).total_seconds() / 3600

    def at(self, moment: datetime, callback, *args, cancellable: Cancellable | None = None) -> None:
        """Call ``callback(*args)`` at ``moment`` (at once if it is not in the future); not at
        all if ``cancellable`` is cut while the timer is still held back (``simulation.timers``)."""
        current = self.now_dt()
        when = moment if moment > current else current
        self.timers.after(max(0.0, self.hours(when) - self.env.now), partial(self._fire, when, callback, args), cancellable)

    def _fire(self, moment: datetime, callback, args, _event: object) -> None:
        self._exact = (self.env.now, moment)
        callback(*args)

    def join_line(self, journey: LeadJourney, command: JoinWaitingLine) -> None:
        self.in_line[journey.state.lead_id] = journey
        self.routing.join_line(journey.state.lead_id, command)

    def leave_line(self, journey: LeadJourney) -> None:
        self.in_line.pop(journey.state.lead_id, None)
        self.routing.line.leave(journey.state.lead_id)

    def offer_slots(self, rep_id: str) -> None:
        """A slot of ``rep_id`` may have freed: serve the line from it, at this instant."""
        while (served := self.routing.serve(rep_id, self.now_dt())) is not None:
            lead_id, answer = served
            journey = self.in_line.pop(lead_id)
            journey.feed(answer)
            if journey.state.owner_id != rep_id:  # the core refused it (cannot happen while in line)
                self.routing.release(rep_id)
                return

    def observe(self, journey: LeadJourney, entry: DecisionEntry) -> None:
        if self.traces is not None:
            self.traces.setdefault(journey.state.lead_id, []).append(entry)

    def sla_settled(self, journey: LeadJourney, settled: SlaSettled) -> None:
        """One of a lead's SLAs was settled (``leadflow.kpis``); the scripted shell keeps no statistics."""

    # What the people around a journey do; the scripted shell leaves it to its script.
    def nurturing(self, journey: LeadJourney) -> None: ...
    def owned(self, journey: LeadJourney, rep_id: str, step: int) -> None: ...
    def queued(self, journey: LeadJourney, team: str, step: int) -> None: ...


class JourneyModel(SimShell):
    """One replication: arrivals, journeys and reps over the scenario's horizon."""

    def __init__(self, loaded: LoadedScenario, seeds: tuple[int, int, int], keep_traces: bool = False):
        scenario = loaded.scenario
        self.start_state: StartState | None = loaded.start_state
        if self.start_state is None:
            start = datetime.combine(scenario.start, time(0, 0), tzinfo=timezone.utc)
        else:  # from today's open journeys: no warm-up, the measured length from now
            start = self.start_state.as_of
        super().__init__(loaded.policy, start, keep_traces)
        self.scenario = scenario
        self.behaviour = scenario.behaviour
        if self.start_state is None:
            self.horizon = scenario.horizon_days * 24
            self.warmup = scenario.warmup_days * 24
        else:
            self.horizon = (scenario.horizon_days - scenario.warmup_days) * 24
            self.warmup = 0.0
        arrival_seed, people_seed, _names_seed = seeds  # names come from one pool per process now
        self.arrivals = Arrivals(scenario.population, self.start, self.policy.calendar.timezone, random.Random(arrival_seed))
        self.people = People(scenario.population, self.behaviour, random.Random(people_seed), named=keep_traces)
        # The nurtures already running at the start come from streams of their own, so a
        # policy with other nurture_days leaves the run's own arrivals as they were.
        self.prior_seeds = (arrival_seed ^ _PRIOR_STREAM, people_seed ^ _PRIOR_STREAM, people_seed ^ (_PRIOR_STREAM << 1))
        self.team_before_start = loaded.team_before_start
        self.desks = {rep.id: RepDesk(self, rep) for rep in self.policy.reps}
        self.team_desks: dict[str, list[RepDesk]] = {}
        for desk in self.desks.values():
            self.team_desks.setdefault(desk.rep.team, []).append(desk)
        self.contact = ContactCurve(self.behaviour.contact_probability, self.behaviour.speed_to_lead)
        self.tier_rank = {tier.name: tier_priority(self.policy, tier.name) for tier in self.policy.tiers}
        self.stats = ReplicationStats(
            warmup_hours=self.warmup, horizon_hours=self.horizon, tiers=tuple(tier.name for tier in self.policy.tiers)
        )
        self.leads_simulated = 0
        self.prepared = False

    def working_delay(self, rep: Rep, minutes: float) -> float:
        """Hours until ``minutes`` of the rep's working time have passed."""
        now = self.now_dt()
        return self.hours(add_business_time(rep.hours, now, timedelta(minutes=minutes))) - self.env.now

    def chance(self, table: dict[str, dict[str, float]], rule: Likelihood, journey: LeadJourney) -> float:
        """A lead's chance from a calibrated rate table (tier, source), else from fit and intent."""
        state, person = journey.state, journey.person
        rate = self.behaviour.rate(table, state.tier, str(person.lead.source))
        if rate is not None:
            return rate
        return likelihood(rule, state.fit_score, person.intent)

    def end_of_working_day(self, rep: Rep) -> float:
        """When the rep's current working window closes (hours), for a rep at work now."""
        return self.hours(end_of_business_day(rep.hours, self.now_dt(), 0))

    def off_duty_delay(self, rep: Rep) -> float:
        """Hours until the rep is next at work: 0 inside their hours, absences taken out."""
        if rep.away:
            return max(self.horizon - self.env.now, 0.0) + 1.0
        now = self.now_dt()
        if rep.out_of_office and is_out_of_office(rep, now):
            local_day = now.astimezone(rep.hours.zone).date()
            end = max(absence.end for absence in rep.out_of_office if absence.start <= local_day <= absence.end)
            back = datetime.combine(end + timedelta(days=1), time(0, 0), tzinfo=rep.hours.zone)
            return self.hours(back) - self.env.now
        return self.working_delay(rep, 0.0)

    def nurturing(self, journey: LeadJourney) -> None:
        self.schedule_qualifying_engagement(journey)

    def owned(self, journey: LeadJourney, rep_id: str, step: int) -> None:
        desk = self.desks.get(rep_id)
        if desk is None:
            # An open journey taken over whose owner is not on this run's team (a rep who has
            # left, or a capacity search's smaller team): nobody works it, and its SLA clocks
            # run out into escalation, which hands it to someone who is, as live.
            return
        # Started once the decision that gave the rep the lead is fully carried out.
        work = OwnerWork(self, journey, desk, step)
        # A lead a manager handed over from the team queue was taken by the rep already.
        self.env.timeout(0).callbacks.append(work.on_worklist if journey.state.stage is Stage.ACCEPTED else work.start)

    def queued(self, journey: LeadJourney, team: str, step: int) -> None:
        QueueClaim.start(self, journey, team, step)

    # -- running --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Start the arrivals and the reps, and put any open journeys in place (once)."""
        if self.prepared:
            return
        self.prepared = True
        self.env.process(self.arrive())
        for desk in self.desks.values():
            self.env.process(desk.work())
        if self.start_state is not None:
            self._resume_open_journeys(self.start_state)
        elif self.scenario.nurtures_at_start is NurturesAtStart.STEADY:
            self._nurtures_already_running()

    def run(self) -> ReplicationStats:
        self.prepare()
        self._rep_capacity()
        self._absences_end()
        with collector_off():
            self.env.run(until=self.horizon)
        end = self.start + timedelta(hours=self.horizon)
        self.stats.finish(
            lambda mql_hours: business_time_between(self.policy.calendar, self.start + timedelta(hours=mql_hours), end)
            .total_seconds() / 3600
        )
        return self.stats

    def arrive(self):
        index = 0
        while True:
            next_at = self.arrivals.next_after(self.env.now)
            if next_at >= self.horizon:
                return
            yield self.env.timeout(next_at - self.env.now)
            person = self.people.person(index, self.now_dt(), self.env.now)
            index += 1
            self.leads_simulated += 1
            self.stats.arrived(self.env.now)
            journey = LeadJourney(self, person)
            journey.feed(LeadSubmitted(lead=person.lead))

    def sla_settled(self, journey: LeadJourney, settled: SlaSettled) -> None:
        self.stats.sla_settled(settled, self.env.now)

    def _resume_open_journeys(self, start: StartState) -> None:
        """Put today's open journeys in place: reps' loads, the waiting line, every deadline,
        and each journey's next step (``simulation.start_state``)."""
        for number, saved in enumerate(start.journeys):
            state = copy.deepcopy(saved)  # replications share the saved states
            person = self.people.resumed(RESUMED_INDEX + number, state, self.env.now)
            self._take_over(LeadJourney.restored(self, person, state, None), counted=True)

    def _take_over(self, journey: LeadJourney, counted: bool) -> None:
        """Carry on an open journey begun before the run: the owner's slot, its place in line,
        its deadlines, and its next step. ``counted``: whether its first contact, if still to
        come, counts (the ledger's open MQLs do; the prior history's belong to the past)."""
        state = journey.state
        if state.stage in OWNED_STAGES and state.owner_id and state.owner_id in self.desks:
            self.routing.take(state.owner_id)
        if state.in_line:
            self.join_line(journey, line_entry(state, self.policy, self.now_dt()))
        if state.mql_at is not None and state.first_contact_at is None and state.stage in (
                Stage.MQL, Stage.ASSIGNED, Stage.ACCEPTED):
            due = state.first_contact_due
            self.stats.already_waiting(journey.person.index, state.tier, self.hours(due) if due else None, self.env.now,
                                       counted)
        journey._retime()
        self.env.timeout(0).callbacks.append(journey.resume)

    def resume(self, journey: LeadJourney) -> None:
        """Carry a journey read from the ledger on from where it is."""
        state = journey.state
        if state.outcome is not None:
            return
        if state.stage is Stage.WORKING and state.connected and state.owner_id in self.desks:
            work = OwnerWork(self, journey, self.desks[state.owner_id], state.assignment_step)
            journey.owner_work = (state.owner_id, state.assignment_step)
            work.connected = True
            work.hang_up()  # reached already: the owner decides next
        elif state.stage is Stage.WORKING and state.owner_id in self.desks:  # the cadence's next attempt
            work = OwnerWork(self, journey, self.desks[state.owner_id], state.assignment_step)
            journey.owner_work = (state.owner_id, state.assignment_step)
            work.on_worklist()
        elif state.stage is Stage.SQL and state.owner_id in self.desks:
            work = OwnerWork(self, journey, self.desks[state.owner_id], state.assignment_step)
            journey.owner_work = (state.owner_id, state.assignment_step)
            rng = journey.person.behaviour_rng
            self.later(rng, sample(self.behaviour.close_within_days, rng.random()) * 24, work.close)
        else:
            journey._after_decision()

    def observe(self, journey: LeadJourney, entry: DecisionEntry) -> None:
        if entry.at >= self.start:  # not the prior history's (``simulation.prior_history``)
            due = journey.state.first_contact_due if entry.kind is DecisionKind.MQL else None  # read only of an MQL
            self.stats.decided(
                journey.person.index, entry, journey.state, self.env.now, self.hours(due) if due else None
            )
        super().observe(journey, entry)

    def _absences_end(self) -> None:
        """A rep back from an absence takes leads from the line at the start of that day."""
        for rep in self.policy.reps:
            for absence in rep.out_of_office:
                back = datetime.combine(absence.end + timedelta(days=1), time(0, 0), tzinfo=rep.hours.zone)
                if self.start < back < self.start + timedelta(hours=self.horizon):
                    self.at(back, self.offer_slots, rep.id)

    def _rep_capacity(self) -> None:
        """Each rep's working time per bucket, absences and holidays taken out: utilisation is
        busy time over time a rep was actually there to work."""
        stats = self.stats
        size = stats.bucket_hours
        for bucket in range(stats.buckets):
            lo, hi = self.start + timedelta(hours=bucket * size), self.start + timedelta(hours=(bucket + 1) * size)
            after_warmup = max(0.0, min(1.0, ((bucket + 1) * size - self.warmup) / size))
            by_calendar: dict[tuple[object, ...], timedelta] = {}  # reps on the same hours share them
            for desk in self.desks.values():
                hours = desk.rep.hours
                working = by_calendar.get(hours.content)
                if working is None:
                    working = by_calendar[hours.content] = business_time_between(hours, lo, hi)
                available = _available_hours(desk.rep, lo, hi, working)
                stats.bucket_capacity[bucket] += available
                stats.working_hours += available * after_warmup

    # -- leads -----------------------------------------------------------------------------------

    def _nurtures_already_running(self) -> None:
        """Start with the nurture pool a steady inflow would have left (``simulation.prior_history``)."""
        if self.policy.nurture_days <= 0:
            return
        for prior in prior_leads(self, self.prior_seeds):
            journey = LeadJourney.restored(self, prior.person, prior.state, None)
            for entry in prior.history:  # with traces only
                self.observe(journey, entry)
            if self.traces is None:
                forget_observed(prior.state)
            if prior.qualifies is None:
                self._take_over(journey, counted=False)
            else:
                journey._retime()
                self._send_when_qualifying(journey, prior.qualifies)

    def _qualifying_engagement(self, person: Person, state: JourneyState, after_hours: float) -> EngagementEvent | None:
        """The one engagement event, after ``after_hours``, that makes the nurturing lead an
        MQL, carrying the engagement accumulated by then; None if none does before its
        nurture ends or the horizon.

        Asking the core (``qualifying_event``) which event crosses the threshold, and sending
        one event that carries the engagement accumulated by then, gives ``decide`` the same
        score at the same moment as sending every page view, at a fraction of the cost.
        """
        nurture_due = state.deadlines.get(Clock.NURTURE)
        until = self.hours(nurture_due) if nurture_due else self.horizon
        events = engagement_after(person, self.behaviour, self.start, after_hours, min(until, self.horizon))
        found = qualifying_event(
            state.fit_score, state.engagement_score, state.engagement_as_of, state.hand_raised, events, self.policy
        )
        if found is None:
            return None
        crossing, score = found
        already = decayed(state.engagement_score, state.engagement_as_of, crossing.at, self.policy.engagement.half_life_days)
        return EngagementEvent(kind=crossing.kind, at=crossing.at, weight=max(0.0, round(score - already, 6)))

    def schedule_qualifying_engagement(self, journey: LeadJourney) -> None:
        """Find when the lead's engagement would make it an MQL, and send it then, in one event."""
        event = self._qualifying_engagement(journey.person, journey.state, self.env.now)
        if event is not None:
            self._send_when_qualifying(journey, event)

    def _send_when_qualifying(self, journey: LeadJourney, event: EngagementEvent) -> None:
        state = journey.state
        cycle = state.recycles
        if self.traces is None and journey.timer is None:
            # Nothing else can happen to a nurturing lead before this event, so until then it
            # is kept as bytes, not as a live journey: most of a year's memory is such leads.
            dormant = DormantJourney(journey, self.packer)
            self.env.timeout(0).callbacks.append(dormant.pack)
            self.at(event.at, self._wake, dormant, event, cycle)
        else:
            self.at(event.at, self._engage, journey, event, cycle)

    def _wake(self, dormant: DormantJourney, event: EngagementEvent, cycle: int) -> None:
        journey = dormant.wake(lambda *parts: LeadJourney.restored(self, *parts))
        assert isinstance(journey, LeadJourney)
        self._engage(journey, event, cycle)

    def _engage(self, journey: LeadJourney, event: EngagementEvent, cycle: int) -> None:
        state = journey.state
        if state.outcome is None and state.stage is Stage.NURTURING and state.recycles == cycle:
            journey.feed(EngagementReceived(event=event))

    # -- reps ------------------------------------------------------------------------------------

    def later(self, rng: BehaviourStream, hours: float, callback: Callable[[object], None]) -> None:
        """Carry a rep's work on a lead on after ``hours``; meanwhile the lead's random stream
        lets its generator go (``simulation.memory``)."""
        rng.rest()
        self.timers.after(hours, callback)

    def business_delay(self, hours: float) -> float:
        return self.hours(add_business_time(self.policy.calendar, self.now_dt(), timedelta(hours=hours))) - self.env.now


def _available_hours(rep: Rep, start: datetime, end: datetime, working: timedelta) -> float:
    """Hours of ``rep``'s working time between ``start`` and ``end`` (``working``, before
    absences), less their absences."""
    if rep.away:
        return 0.0
    hours = working
    covered = start  # absences may overlap: each stretch of time is taken out once
    for absence in sorted(rep.out_of_office, key=lambda absence: absence.start):
        away_from = datetime.combine(absence.start, time(0, 0), tzinfo=rep.hours.zone)
        away_until = datetime.combine(absence.end + timedelta(days=1), time(0, 0), tzinfo=rep.hours.zone)
        overlap_start, overlap_end = max(covered, away_from), min(end, away_until)
        if overlap_end > overlap_start:
            hours -= business_time_between(rep.hours, overlap_start, overlap_end)
            covered = overlap_end
    return hours.total_seconds() / 3600
