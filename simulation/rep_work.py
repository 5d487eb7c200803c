"""The reps' side of simulated journeys, as callbacks: no suspended generator per lead.

A lead in a rep's hands spends most of its life waiting: for the rep to respond, for the
next attempt on the cadence, for the rep to decide, for the deal to close. Each wait is one
SimPy timeout whose callback carries the work on, so a waiting lead holds a small object
(``OwnerWork``), not a generator. Calls take the rep's desk, one call at a time, hottest
tier first, then first come (``RepDesk``).

The steps read as the process they describe:
``start`` -> ``respond`` (accept or reject) -> ``queue_call`` -> ``dial`` -> ``hang_up``
-> (not connected: ``follow_up`` -> ``queue_call`` ...) -> ``decide`` -> ``close``.
Each step first checks the rep still owns the lead: a deadline, an escalation or a
reassignment may have moved it on meanwhile.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING

from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify, Reject
from leadflow.journey import Clock, Stage
from leadflow.policy import Rep
from leadflow.scoring import fit_score
from simulation.behaviour import likelihood, pick, sample

if TYPE_CHECKING:
    from simulation.model import JourneyModel, LeadJourney


class RepDesk:
    """A rep: working hours from the roster and one call at a time (hottest tier first)."""

    __slots__ = ("rep", "busy", "waiting")

    def __init__(self, rep: Rep):
        self.rep = rep
        self.busy = False
        self.waiting: list[tuple[int, int, Callable[[], None]]] = []  # (tier rank, order of asking, start)

    def take(self, priority: int, order: int, start: Callable[[], None]) -> None:
        """Start a call now if the desk is free, else when it is this call's turn."""
        if self.busy:
            heapq.heappush(self.waiting, (priority, order, start))
        else:
            self.busy = True
            start()

    def free(self) -> None:
        """The call is over: the next one waiting starts now."""
        if self.waiting:
            heapq.heappop(self.waiting)[2]()
        else:
            self.busy = False


class OwnerWork:
    """The owner's side of one lead: respond, call on the cadence, decide, close."""

    __slots__ = ("model", "journey", "desk", "step", "connected")

    def __init__(self, model: JourneyModel, journey: LeadJourney, desk: RepDesk, step: int):
        self.model = model
        self.journey = journey
        self.desk = desk
        self.step = step
        self.connected = False

    def owned(self) -> bool:
        return self.journey.owned_by(self.desk.rep.id, self.step)

    def start(self, _event: object = None) -> None:
        journey = self.journey
        if journey.state.stage is Stage.ASSIGNED:  # (a lead claimed from a team queue is accepted already)
            model = self.model
            rng = journey.person.behaviour_rng
            model.later(rng, model.working_delay(self.desk.rep, sample(model.behaviour.rep_response_minutes, rng.random())),
                        self.respond)
        else:
            self.queue_call()

    def respond(self, _event: object = None) -> None:
        """The SAL gate: accept or reject, unless the policy's auto-accept took the lead meanwhile."""
        journey = self.journey
        if not self.owned():
            return
        if journey.state.stage is Stage.ASSIGNED:
            behaviour, rng, rep_id = self.model.behaviour, journey.person.behaviour_rng, self.desk.rep.id
            if behaviour.reject_probability and rng.random() < behaviour.reject_probability:
                journey.act(Reject(by=rep_id, reason=pick(behaviour.reject_reasons, rng.random())))
                return
            if not journey.act(Accept(by=rep_id)):
                return
        self.queue_call()

    def queue_call(self) -> None:
        model = self.model
        self.desk.take(model.tier_rank.get(self.journey.state.tier or "", 99), next(model.call_order), self.at_desk)

    def at_desk(self) -> None:
        """The desk is this lead's; outside the rep's hours the call waits for the shift."""
        shift_wait = self.model.working_delay(self.desk.rep, 0.0)
        if shift_wait > 0:
            self.model.env.timeout(shift_wait).callbacks.append(self.dial)
        else:
            self.dial()

    def dial(self, _event: object = None) -> None:
        journey, model = self.journey, self.model
        if not self.owned():
            self.hand_back_desk()
            return
        state, rng = journey.state, journey.person.behaviour_rng
        since_mql = model.env.now - model.hours(state.mql_at) if state.mql_at else 0.0
        self.connected = connected = rng.random() < model.contact.probability(since_mql)
        outcome = AttemptOutcome.CONNECTED if connected else AttemptOutcome.NO_ANSWER
        if not journey.act(LogAttempt(by=self.desk.rep.id, outcome=outcome)):
            self.hand_back_desk()
            return
        duration = sample(model.behaviour.attempt_minutes, rng.random()) / 60
        model.stats.busy(model.env.now, duration)
        model.env.timeout(duration).callbacks.append(self.hang_up)

    def hand_back_desk(self) -> None:
        """No call after all: the next call at the desk starts in a moment, not from inside
        this one (a run of leads that moved on would otherwise nest call within call)."""
        self.model.env.timeout(0).callbacks.append(lambda _event: self.desk.free())

    def hang_up(self, _event: object = None) -> None:
        self.desk.free()
        journey, model = self.journey, self.model
        if not self.owned():
            return
        rng = journey.person.behaviour_rng
        if self.connected:
            model.later(rng, model.business_delay(sample(model.behaviour.decide_within_hours, rng.random())), self.decide)
            return
        due = journey.state.deadlines.get(Clock.FOLLOW_UP)
        if due is None:
            return
        # The next attempt lands at a random moment of the working day it is due on.
        wait = model.hours(due) - model.env.now
        model.later(rng, max(0.0, wait - rng.random() * min(wait, 8.0)), self.follow_up)

    def follow_up(self, _event: object = None) -> None:
        if self.owned():
            self.queue_call()

    def decide(self, _event: object = None) -> None:
        """Qualify or disqualify the connected lead."""
        journey, model = self.journey, self.model
        if not self.owned():
            return
        person, rng, rep_id, behaviour = journey.person, journey.person.behaviour_rng, self.desk.rep.id, model.behaviour
        if rng.random() >= likelihood(behaviour.qualify, fit_score(person.lead, model.policy.fit), person.intent):
            journey.act(Disqualify(by=rep_id, reason=pick(behaviour.disqualify_reasons, rng.random())))
            return
        if not journey.act(Qualify(by=rep_id, budget=True, authority=True, need="simulated")):
            return
        model.later(rng, sample(behaviour.close_within_days, rng.random()) * 24, self.close)

    def close(self, _event: object = None) -> None:
        journey, model = self.journey, self.model
        if not self.owned() or journey.state.stage is not Stage.SQL:
            return
        person, rng, rep_id, behaviour = journey.person, journey.person.behaviour_rng, self.desk.rep.id, model.behaviour
        if rng.random() < likelihood(behaviour.convert, fit_score(person.lead, model.policy.fit), person.intent):
            journey.act(Convert(by=rep_id))
        else:
            journey.act(Disqualify(by=rep_id, reason=pick(behaviour.disqualify_reasons, rng.random())))


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
        delay = model.working_delay(desk.rep, sample(model.behaviour.rep_response_minutes, rng.random()))
        model.later(rng, delay, cls(journey, team, step, desk.rep.id).claim)

    def claim(self, _event: object = None) -> None:
        state = self.journey.state
        if (state.outcome is None and state.stage is Stage.MQL and state.queued_team == self.team
                and state.assignment_step == self.step):
            self.journey.act(Accept(by=self.rep_id))
