"""The reps' side of simulated journeys: each rep works their own worklist, in their hours.

A rep is one short SimPy process (``RepDesk.work``): inside their working hours they take
the first task of their worklist, in the core's order (``leadflow.worklist.priority``:
earliest deadline, then hotter tier), spend the task's time on it, and take the next; with
nothing to do they wait for work. So time to first touch is the rep's reaction latency
plus the wait behind the work already on their desk: more reps, or fewer leads each,
answer faster when reps are busy, and a tighter SLA moves its leads up the list.

A lead in a rep's hands is a small ``OwnerWork``, not a generator: its steps are callbacks.
``start`` -> (reaction latency) -> on the worklist -> ``perform`` (accept or reject, dial)
-> ``hang_up`` -> (not reached: on the worklist again when the cadence's next attempt is
workable ...) -> ``decide`` -> ``close``. Each step first checks the rep still owns the
lead: a deadline, an escalation or a reassignment may have moved it on meanwhile.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

import simpy
from pydantic import BaseModel

from leadflow.actions import MAX_CALL_MINUTES, Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify, Reject
from leadflow.journey import Stage
from leadflow.policy import Rep
from leadflow.worklist import Task, WorkItem
from simulation.behaviour import pick, sample
from simulation.scenario import Behaviour, Distribution
from simulation.unvalidated import unvalidated

if TYPE_CHECKING:
    from simulation.model import JourneyModel, LeadJourney

# Tasks a rep spends desk time on; the rest (qualify, close) follow a connected call by
# the behaviour's own delays.
DESK_TASKS = frozenset({Task.ACCEPT, Task.FIRST_ATTEMPT, Task.FOLLOW_UP})


A = TypeVar("A", bound=BaseModel)


def drawn(kind: type[A], **values: Any) -> A:
    """A rep action the simulator made from values it drew or holds (a reason from the
    scenario's own codes, a rep of the roster): every field given, built unvalidated."""
    given = {**values, "type": kind.model_fields["type"].default}
    in_order = {name: given.pop(name) for name in kind.model_fields if name in given}  # as validation orders them
    return unvalidated(kind, {**in_order, **given})  # a name left over is refused


def reaction_minutes(behaviour: Behaviour, rep: Rep) -> Distribution:
    """How long the rep takes to get to a new task when idle: their team's, else everyone's."""
    team = behaviour.teams.get(rep.team)
    return (team and team.reaction_minutes) or behaviour.reaction_minutes


def attempt_minutes(behaviour: Behaviour, rep: Rep) -> Distribution:
    """How long one of the rep's calls takes: their team's, else everyone's."""
    team = behaviour.teams.get(rep.team)
    return (team and team.attempt_minutes) or behaviour.attempt_minutes


class RepDesk:
    """A rep and their worklist, worked one task at a time inside their hours."""

    __slots__ = ("model", "rep", "worklist", "idle", "order", "reaction", "call", "on_until")

    def __init__(self, model: JourneyModel, rep: Rep):
        self.model = model
        self.rep = rep
        self.reaction = reaction_minutes(model.behaviour, rep)
        self.call = attempt_minutes(model.behaviour, rep)
        self.on_until = -1.0  # the end of the working window the rep is in (hours), once known
        self.worklist: list[tuple[tuple[Any, ...], int, OwnerWork]] = []
        self.idle: simpy.Event | None = None
        self.order = itertools.count()

    def add(self, work: OwnerWork, key: tuple[Any, ...]) -> None:
        """Put a task on the worklist at its place in the core's order (``key``); wake the rep if idle."""
        heapq.heappush(self.worklist, (key, next(self.order), work))
        idle = self.idle
        if idle is not None:
            self.idle = None
            idle.succeed()

    def work(self) -> Generator[simpy.Event, Any, None]:
        """The rep's day: wait for work, wait for the shift, do the first task, repeat."""
        model, worklist = self.model, self.worklist
        env = model.env
        while True:
            if not worklist:
                self.idle = env.event()
                yield self.idle
                continue
            if env.now >= self.on_until:
                off_shift = model.off_duty_delay(self.rep)
                if off_shift > 0:
                    yield env.timeout(off_shift)
                    continue
                self.on_until = model.end_of_working_day(self.rep)
            key, _, work = heapq.heappop(worklist)
            task = work.current_task()
            if task is None or task[0].task not in DESK_TASKS:
                continue  # the lead moved on while it waited
            item, now_key = task
            if now_key != key:  # its deadline moved: back in line at its new place
                heapq.heappush(worklist, (now_key, next(self.order), work))
                continue
            hours = work.perform(item)
            if hours > 0:
                model.stats.busy(env.now, hours)
                yield env.timeout(hours)
                work.hang_up()


class OwnerWork:
    """The owner's side of one lead: notice it, call on the cadence, decide, close."""

    __slots__ = ("model", "journey", "desk", "step", "connected")

    def __init__(self, model: JourneyModel, journey: LeadJourney, desk: RepDesk, step: int):
        self.model = model
        self.journey = journey
        self.desk = desk
        self.step = step
        self.connected = False

    def owned(self) -> bool:
        return self.journey.owned_by(self.desk.rep.id, self.step)

    def current_task(self) -> tuple[WorkItem, tuple[Any, ...]] | None:
        """The lead's next task and its worklist key, while the rep still owns it."""
        if not self.owned():
            return None
        return self.journey.next_task()

    def start(self, _event: object = None) -> None:
        """The lead is the rep's: it reaches their worklist after their reaction latency."""
        model, rng = self.model, self.journey.person.behaviour_rng
        latency = sample(self.desk.reaction, rng.random())
        model.later(rng, model.working_delay(self.desk.rep, latency), self.on_worklist)

    def on_worklist(self, _event: object = None) -> None:
        task = self.current_task()
        if task is None or task[0].task not in DESK_TASKS:
            return
        item, model = task[0], self.model
        if item.workable_from is not None and item.workable_from > model.now_dt():
            model.at(item.workable_from, self.on_worklist)  # a cadence step not open yet
        else:
            self.desk.add(self, task[1])

    def perform(self, item: WorkItem) -> float:
        """Do the task now; the hours of the rep's time it takes (0: nothing to do after all)."""
        journey, model = self.journey, self.model
        rep_id, behaviour, rng = self.desk.rep.id, model.behaviour, journey.person.behaviour_rng
        if item.task is Task.ACCEPT:
            if behaviour.reject_probability and rng.random() < behaviour.reject_probability:
                journey.act(drawn(Reject, by=rep_id, reason=pick(behaviour.reject_reasons, rng.random())))
                return 0.0
            # Accepting is the dial itself: the core takes an owner's attempt on an assigned
            # lead as its acceptance too (the same decisions, in one transition, not two).
        state = journey.state
        since_mql = model.env.now - model.hours(state.mql_at) if state.mql_at else 0.0
        self.connected = connected = rng.random() < model.contact.probability(since_mql)
        outcome = AttemptOutcome.CONNECTED if connected else AttemptOutcome.NO_ANSWER
        minutes = sample(self.desk.call, rng.random())
        logged = round(min(minutes, MAX_CALL_MINUTES), 2)  # a day at most, as the API takes it
        attempt = drawn(LogAttempt, by=rep_id, outcome=outcome, minutes=logged)
        if not journey.act(attempt):
            return 0.0
        return minutes / 60

    def hang_up(self) -> None:
        """After the call: decide if reached, else back on the worklist when the cadence says."""
        journey, model = self.journey, self.model
        if not self.owned():
            return
        rng = journey.person.behaviour_rng
        if self.connected:
            model.later(rng, model.business_delay(sample(model.behaviour.decide_within_hours, rng.random())), self.decide)
            return
        rng.rest()
        task = journey.next_task()
        if task is None or task[0].task is not Task.FOLLOW_UP:
            return
        self.on_worklist()

    def decide(self, _event: object = None) -> None:
        """Qualify or disqualify the connected lead."""
        journey, model = self.journey, self.model
        if not self.owned():
            return
        rng, rep_id, behaviour = journey.person.behaviour_rng, self.desk.rep.id, model.behaviour
        if rng.random() >= model.chance(behaviour.qualify_rates, behaviour.qualify, journey):
            journey.act(drawn(Disqualify, by=rep_id, reason=pick(behaviour.disqualify_reasons, rng.random())))
            return
        if not journey.act(drawn(Qualify, by=rep_id, budget=True, authority=True, need="simulated", timeline_days=None)):
            return
        model.later(rng, sample(behaviour.close_within_days, rng.random()) * 24, self.close)

    def close(self, _event: object = None) -> None:
        journey, model = self.journey, self.model
        if not self.owned() or journey.state.stage is not Stage.SQL:
            return
        rng, rep_id, behaviour = journey.person.behaviour_rng, self.desk.rep.id, model.behaviour
        if rng.random() < model.chance(behaviour.convert_rates, behaviour.convert, journey):
            journey.act(drawn(Convert, by=rep_id, opportunity_id=None))
        else:
            journey.act(drawn(Disqualify, by=rep_id, reason=pick(behaviour.disqualify_reasons, rng.random())))


class QueueClaim:
    """A lead in a team queue: the team's manager hands it to whoever answers first."""

    __slots__ = ("journey", "team", "step", "rep_id")

    def __init__(self, journey: LeadJourney, team: str, step: int, rep_id: str):
        self.journey, self.team, self.step, self.rep_id = journey, team, step, rep_id

    @classmethod
    def start(cls, model: JourneyModel, journey: LeadJourney, team: str, step: int) -> None:
        members = model.team_desks.get(team, [])
        if not members:
            return
        rng = journey.person.behaviour_rng
        desk = members[int(rng.random() * len(members))]
        delay = model.working_delay(desk.rep, sample(desk.reaction, rng.random()))
        model.later(rng, delay, cls(journey, team, step, desk.rep.id).claim)

    def claim(self, _event: object = None) -> None:
        state = self.journey.state
        if (state.outcome is None and state.stage is Stage.MQL and state.queued_team == self.team
                and state.assignment_step == self.step):
            self.journey.act(drawn(Accept, by=self.rep_id))
