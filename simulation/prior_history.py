"""The nurture pool a steady inflow would have left at the start of a run (``nurtures_at_start: steady``).

A run that starts with no leads sees its MQL inflow climb for months: nurtures qualify up
to ``nurture_days`` after they arrive, and recycled leads come back to nurturing and qualify
again, cycle after cycle. No affordable warm-up hides that. So the run starts from the leads
the same arrival process brought in the ``prior_days`` before it, each one's past lived on
its own through the core's ``decide``:

* nurturing until its engagement qualifies it (``leadflow.scoring.qualifying_event``);
* then one sales episode, worked by an *idle* team (the policy's, or the scenario's
  ``team_before_start``: a capacity search keeps today's team for the past whatever
  headcount it tries, so each replication's past is lived once per process): routed by
  the core with every rep free, rejected at the SAL gate with the scenario's ``reject_probability``, else called on
  the cadence from the owner's reaction latency, each attempt connecting with the
  scenario's contact curve; never reached, the core recycles it (``unresponsive``);
  reached, the lead leaves the pool (qualified or disqualified: the rest of its story
  does not feed the nurture pool);
* a recycled or rejected lead nurtures again, and so on up to the start.

Kept are the leads nurturing at the start whose next qualifying engagement comes after it,
and the episodes still being worked at the start (not yet reached): the run takes those
over as it takes over a ledger's open journeys (``simulate --from-ledger``), the owner's
slot taken and the next attempt on their worklist. What this leaves out, and the warm-up
covers: the queueing of the past (an idle team reaches more leads than a busy one, so
somewhat fewer recycled leads are in the pool), the reached leads still open at the start
(SQLs among them: reps start with fewer) and recycles of SQLs that stall.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from leadflow.actions import AttemptOutcome, InvalidAction, LogAttempt, Reject
from leadflow.business_calendar import add_business_time
from leadflow.decide import decide, new_journey
from leadflow.journey import (
    AssignLead,
    DecisionEntry,
    EngagementReceived,
    JourneyEvent,
    JourneyState,
    LeadSubmitted,
    NoRepAvailable,
    Record,
    RepActed,
    Stage,
)
from leadflow.lead import EngagementEvent
from leadflow.worklist import work_item
from simulation.behaviour import pick, sample
from simulation.memory import forget_observed
from simulation.population import PRIOR_INDEX, Arrivals, People, Person
from simulation.rep_work import reaction_minutes
from simulation.routing_book import RoutingBook
from simulation.unvalidated import unvalidated

if TYPE_CHECKING:
    from simulation.model import JourneyModel

# prior_days = this many nurture_days: of the leads nurturing at a start, about 2% arrived
# earlier than that (baseline, measured), and those are left out.
PRIOR_CYCLES = 2


class EpisodeEnd(StrEnum):
    """How a past MQL episode ended, as far as the start of the run can tell."""

    RECYCLED = "recycled"  # back to nurturing before the start (or rejected at the SAL gate)
    OPEN = "open"  # still being worked at the start: the run takes it over
    LEFT = "left"  # reached: qualified or disqualified, out of the pool


@dataclass(slots=True)
class PriorLead:
    """A lead of the past still in play at the start: nurturing, with the engagement event that
    will make it an MQL (``qualifies``), or in an episode still being worked (``qualifies`` None)."""

    person: Person
    state: JourneyState
    qualifies: EngagementEvent | None
    history: list[DecisionEntry]  # its decisions before the start (kept only with traces)

    def copied(self) -> PriorLead:
        """A copy the run may change (its person's streams and its state move on) without
        touching the cached one: the containers the run can alter are copied, records shared."""
        state = self.state
        return PriorLead(
            person=replace(self.person),
            state=replace(state, stage_history=list(state.stage_history),
                          engagement_event_ids=list(state.engagement_event_ids),
                          previous_owners=list(state.previous_owners), deadlines=dict(state.deadlines),
                          log=list(state.log)),
            qualifies=self.qualifies,
            history=list(self.history),
        )


# The prior of a replication depends only on the scenario, the team before the start and the
# replication's seeds, not on the team the run tries: a capacity search asks for the same
# prior at every headcount, so while it runs (``priors_kept``) each process keeps the priors
# it lived. Outside one, nothing is kept: a long-lived process (the API) holds no leads.
_cache: OrderedDict[tuple[object, ...], list[PriorLead]] | None = None
_CACHE_SIZE = 64  # replications a process may be asked for again (about 2 MB each for the baseline)


def keep_priors() -> None:
    """Keep the priors this process lives from now on (a worker process of a capacity search)."""
    global _cache
    if _cache is None:
        _cache = OrderedDict()


@contextmanager
def priors_kept() -> Iterator[None]:
    """Within the block, this process lives each replication's prior once; after it, forgets them."""
    global _cache
    outer = _cache
    keep_priors()
    try:
        yield
    finally:
        _cache = outer


def prior_leads(model: JourneyModel, seeds: tuple[int, int, int]) -> list[PriorLead]:
    """The leads in play at the start of ``model``'s run (see the module doc); lived once per
    scenario, team before the start and seeds while priors are kept, and copied for each run."""
    history = PriorHistory(model, seeds)
    if _cache is None:
        return history.leads(model._qualifying_engagement)
    key = (
        model.scenario.model_dump_json(),
        model.policy.model_copy(update={"reps": []}).model_dump_json(),
        history.policy.model_dump_json(),
        seeds, history.keep_history, model.waits_in_line, model.start, model.horizon,
    )
    kept = _cache.get(key)
    if kept is None:
        kept = history.leads(model._qualifying_engagement)
        _cache[key] = kept
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return [prior.copied() for prior in kept]


class PriorHistory:
    """Lives the leads of the ``prior_days`` before the start, each on its own."""

    def __init__(self, model: JourneyModel, seeds: tuple[int, int, int]):
        arrival_seed, people_seed, episode_seed = seeds
        self.model = model
        team = model.team_before_start
        self.policy = model.policy if team is None else model.policy.model_copy(update={"reps": list(team)})
        self.reps = {rep.id: rep for rep in self.policy.reps}
        self.reaction = {rep.id: reaction_minutes(model.behaviour, rep) for rep in self.policy.reps}
        self.keep_history = model.traces is not None
        population = model.scenario.population.model_copy(update={"campaigns": []})
        self.span = PRIOR_CYCLES * self.policy.nurture_days * 24.0
        self.began = model.start - timedelta(hours=self.span)
        self.arrivals = Arrivals(population, self.began, self.policy.calendar.timezone, random.Random(arrival_seed))
        self.people = People(population, model.behaviour, random.Random(people_seed), named=self.keep_history)
        self.rng = random.Random(episode_seed)
        self.routing = RoutingBook(self.policy)

    def leads(self, qualifying: Callable[[Person, JourneyState, float], EngagementEvent | None]) -> list[PriorLead]:
        """The leads in play at the start: nurturing ones that qualify after it, and episodes
        still being worked. ``qualifying(person, state, after_hours)``: the engagement event
        that next makes a nurturing lead an MQL."""
        kept: list[PriorLead] = []
        index, hours = PRIOR_INDEX, self.arrivals.next_after(0.0)
        while hours < self.span:
            arrived = hours - self.span  # hours since the start: negative
            created = self.model.start + timedelta(hours=arrived)
            person = self.people.person(index, created, arrived)
            index += 1
            hours = self.arrivals.next_after(hours)
            found = self._live(person, created, qualifying)
            if found is not None:
                kept.append(found)
        return kept

    def _live(self, person: Person, created: datetime,
              qualifying: Callable[[Person, JourneyState, float], EngagementEvent | None]) -> PriorLead | None:
        model, start = self.model, self.model.start
        lead_id = f"S{person.index}"
        state = new_journey(lead_id, lead_id, self.policy.version, waits_in_line=model.waits_in_line)
        history: list[DecisionEntry] = []
        state, commands = self._feed(state, LeadSubmitted(lead=person.lead), created, history)
        while True:
            if state.outcome is not None:
                return None
            if state.stage is Stage.NURTURING:
                event = qualifying(person, state, model.hours(state.engagement_as_of or created))
                if event is None:
                    return None  # never qualifies (or not before the run ends)
                if event.at >= start:
                    return PriorLead(person, state, event, history)
                state, commands = self._feed(state, EngagementReceived(event=event), event.at, history)
                continue
            if state.stage is not Stage.MQL:
                return None
            end, state = self._episode(state, commands, history)
            if end is EpisodeEnd.LEFT:
                return None
            if end is EpisodeEnd.OPEN:
                return PriorLead(person, state, None, history)

    def _feed(self, state: JourneyState, event: JourneyEvent, at: datetime,
              history: list[DecisionEntry]) -> tuple[JourneyState, list]:
        state, commands = decide(state, event, at, self.policy)
        if self.keep_history:
            history.extend(command.entry for command in commands if isinstance(command, Record))
        if not self.keep_history:
            forget_observed(state)
        return state, commands

    def _episode(self, state: JourneyState, commands: list, history: list[DecisionEntry]) -> tuple[EpisodeEnd, JourneyState]:
        """One MQL episode worked by an idle team, up to the start at most."""
        start = self.model.start
        assign = next((command for command in commands if isinstance(command, AssignLead)), None)
        mql_at = state.mql_at
        if assign is None or mql_at is None:
            return EpisodeEnd.LEFT, state
        answer = self.routing.assign(assign, mql_at)
        if isinstance(answer, NoRepAvailable):
            return EpisodeEnd.LEFT, state
        self.routing.release(answer.rep_id)  # an idle team: every rep stays free
        rep = self.reps[answer.rep_id]
        state, _ = self._feed(state, answer, mql_at, history)
        behaviour, rng = self.model.behaviour, self.rng
        at = add_business_time(rep.hours, mql_at, timedelta(minutes=sample(self.reaction[rep.id], rng.random())))
        if at >= start:
            return EpisodeEnd.OPEN, state
        if behaviour.reject_probability and rng.random() < behaviour.reject_probability:
            reason = pick(behaviour.reject_reasons, rng.random())
            try:
                rejected, _ = self._feed(state, RepActed(action=Reject(by=rep.id, reason=reason)), at, history)
            except InvalidAction:  # a reason the policy does not know: the rep works the lead, as in the run
                rejected = None
            if rejected is not None:
                return (EpisodeEnd.RECYCLED if rejected.stage is Stage.NURTURING else EpisodeEnd.LEFT), rejected
        while True:
            hours_since_mql = (at - mql_at).total_seconds() / 3600
            if rng.random() < self.model.contact.probability(hours_since_mql):
                return EpisodeEnd.LEFT, state
            attempt = unvalidated(LogAttempt, {"by": rep.id, "type": "attempt", "outcome": AttemptOutcome.NO_ANSWER,
                                               "minutes": None})
            state, _ = self._feed(state, RepActed(action=attempt), at, history)
            if state.stage is Stage.NURTURING:
                return EpisodeEnd.RECYCLED, state  # the cadence ran out: recycled as unresponsive
            item = work_item(state, self.policy)
            if item is None:
                return EpisodeEnd.LEFT, state
            at = add_business_time(rep.hours, max(at, item.workable_from or at), timedelta(0))
            if at >= start:
                return EpisodeEnd.OPEN, state
