"""Synthetic leads: who arrives when (a non-homogeneous Poisson process) and what they are like.

Arrivals follow the weekday and hour-of-day profiles in the policy calendar's time zone,
times any campaign bursts, sampled by thinning. Names come from Faker (a pool drawn once
per process, and only when traces are kept); fit attributes, source and intent from
the scenario's distributions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from leadflow.journey import JourneyState
from leadflow.lead import EngagementKind, Lead, LeadSource
from simulation.behaviour import pick
from simulation.memory import BehaviourStream
from simulation.scenario import Behaviour, Population
from simulation.unvalidated import unvalidated

HOURS_PER_WEEK = 168.0
_ONE_HOUR = timedelta(hours=1)
_IDENTITY_POOL = 256
_UNNAMED = "lead@sim.invalid"  # an unnamed synthetic lead's address (no rule reads it)
RESUMED_INDEX = 1 << 40  # people of journeys resumed from the ledger are numbered from here
PRIOR_INDEX = 1 << 39  # people of the nurtures already running at the start, from here


class DrawnEngagement(NamedTuple):
    """A synthetic engagement event, as scoring reads it (``leadflow.scoring.Engagement``):
    drawn by the simulator, so it needs none of ``EngagementEvent``'s validation (a named
    tuple: a nurture's scan draws dozens, and a tuple is built at half a dataclass's cost)."""

    kind: EngagementKind
    at: datetime
    weight: float | None = None


class Arrivals:
    """Arrival times in hours since the start of the horizon."""

    def __init__(self, population: Population, start: datetime, zone: str, rng: random.Random):
        self.population = population
        self.start = start
        self.zone = ZoneInfo(zone)
        self.rng = rng
        weekday, hour = population.weekday_profile, population.hour_profile
        mean_weight = sum(weekday) * sum(hour) / HOURS_PER_WEEK
        self.base_rate = population.leads_per_week / HOURS_PER_WEEK / mean_weight
        peak_campaign = 1.0  # overlapping campaigns multiply, so the peak is their product
        for campaign in population.campaigns:
            peak_campaign *= max(1.0, campaign.multiplier)
        self.peak_rate = self.base_rate * max(weekday) * max(hour) * peak_campaign
        self._local_hour = (0.0, 0.0, 0.0)  # (begins, ends, rate) of the last local hour asked about

    def rate(self, hours: float) -> float:
        begins, ends, rate = self._local_hour
        if not begins <= hours < ends:
            self._local_hour = begins, ends, rate = self._local_hour_at(hours)
        day = hours / 24
        for campaign in self.population.campaigns:
            if campaign.start_day <= day < campaign.start_day + campaign.days:
                rate *= campaign.multiplier
        return rate

    def _local_hour_at(self, hours: float) -> tuple[float, float, float]:
        """The local clock hour that ``hours`` falls in, as (begins, ends) in hours since the
        start, and the weekday and hour-of-day rate through it: thinning asks about the same
        hour several times, and the time zone conversion is the expensive part."""
        local = (self.start + timedelta(hours=hours)).astimezone(self.zone)
        rate = self.base_rate * self.population.weekday_profile[local.weekday()] * self.population.hour_profile[local.hour]
        begins = local.replace(minute=0, second=0, microsecond=0)
        ends = begins + timedelta(hours=1)  # wall-clock arithmetic: the next local hour
        return self._hours(begins), max(self._hours(ends), hours + 1e-9), rate

    def _hours(self, moment: datetime) -> float:
        return (moment - self.start) / _ONE_HOUR

    def next_after(self, hours: float) -> float:
        """The next arrival strictly after ``hours`` (thinning against the peak rate)."""
        while True:
            hours += self.rng.expovariate(self.peak_rate)
            if self.rng.random() * self.peak_rate <= self.rate(hours):
                return hours


@dataclass
class Person:
    """One synthetic lead, and the seeds of its own engagement and behaviour streams.

    Only seeds are kept per lead: engagement is drawn forward from its seed when needed
    (``engagement_after``), and the behaviour stream (``BehaviourStream``) holds a generator only while a rep is using it.
    """

    index: int
    lead: Lead
    intent: float
    arrived_hours: float
    engagement_seed: int
    behaviour_seed: int
    _behaviour: BehaviourStream | None = field(default=None, repr=False)

    @property
    def behaviour_rng(self) -> BehaviourStream:
        if self._behaviour is None:
            self._behaviour = BehaviourStream(self.behaviour_seed)
        return self._behaviour


class People:
    """Synthetic people: only what the rules read (title, size, industry, country, source)
    and how they behave. Names come only when decision traces are kept (``named``): no rule
    reads one, and a trace is easier to follow with them."""

    def __init__(self, population: Population, behaviour: Behaviour, rng: random.Random, named: bool = False):
        self.population = population
        self.behaviour = behaviour
        self.rng = rng
        # One pool per process serves every replication; which entry a lead gets still
        # comes from the replication's own stream, drawn named or not, so names change nothing.
        self.identities = _identity_pool() if named else None

    def person(self, index: int, created_at: datetime, arrived_hours: float) -> Person:
        rng, population = self.rng, self.population
        slot = rng.randrange(_IDENTITY_POOL)
        if self.identities is None:
            email, first_name, last_name, company = _UNNAMED, None, None, None
        else:
            companies, first_names, last_names, domains = self.identities
            email, company = f"sim{index}@{domains[slot]}", companies[slot]
            first_name, last_name = first_names[slot], last_names[(slot * 7 + index) % _IDENTITY_POOL]
        lead = synthetic_lead({
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "company": company,
            "phone": None,
            "title": pick(population.titles, rng.random()),
            "company_size": pick(population.company_sizes, rng.random()),
            "industry": pick(population.industries, rng.random()),
            "country": pick(population.countries, rng.random()),
            "source": pick(population.source_mix, rng.random()),
            "created_at": created_at,
            "custom": {},
        })
        intent = rng.betavariate(population.intent.a, population.intent.b)
        return Person(
            index=index,
            lead=lead,
            intent=intent,
            arrived_hours=arrived_hours,
            engagement_seed=rng.getrandbits(64),
            behaviour_seed=rng.getrandbits(64),
        )


    def resumed(self, index: int, state: JourneyState, arrived_hours: float) -> Person:
        """The person behind an open journey read from the ledger: the ledger keeps no personal
        data, so only what the journey knows (its source) is theirs; intent and their own
        random streams are drawn as for a new lead."""
        rng, population = self.rng, self.population
        lead = synthetic_lead({"email": _UNNAMED, "first_name": None, "last_name": None, "company": None, "phone": None,
                               "title": None, "company_size": None, "industry": None, "country": None,
                               "source": state.source or LeadSource.OTHER, "created_at": state.created_at, "custom": {}})
        return Person(index=index, lead=lead, intent=rng.betavariate(population.intent.a, population.intent.b),
                      arrived_hours=arrived_hours, engagement_seed=rng.getrandbits(64),
                      behaviour_seed=rng.getrandbits(64))


def synthetic_lead(fields: dict[str, object]) -> Lead:
    """A ``Lead`` of the simulator's own drawing, every field given (``simulation.unvalidated``)."""
    return unvalidated(Lead, fields)


@lru_cache(maxsize=1)
def _identity_pool() -> tuple[list[str], list[str], list[str], list[str]]:
    """Synthetic companies, first names, last names and domains, built once per process."""
    fake = _faker()
    fake.seed_instance(0)
    return ([fake.company() for _ in range(_IDENTITY_POOL)], [fake.first_name() for _ in range(_IDENTITY_POOL)],
            [fake.last_name() for _ in range(_IDENTITY_POOL)], [fake.domain_name() for _ in range(_IDENTITY_POOL)])


@lru_cache(maxsize=1)
def _faker():
    """One Faker per process: building one loads every provider, which costs more than a
    small replication; each replication reseeds it."""
    from faker import Faker

    return Faker()


def engagement_after(
    person: Person, behaviour: Behaviour, start: datetime, after_hours: float, until_hours: float
) -> Iterator[DrawnEngagement]:
    """The person's engagement events in (after, until], in order, drawn as they are read.

    Engagement is a Poisson process (rate: the person's intent times the scenario's weekly
    rate), so what happens after ``after`` does not depend on what happened before: each
    call draws forward from ``after`` on a fresh stream, and leaves the person the seed of
    the next one at once. The cost is the events read, however long ago the lead arrived.
    """
    rate = person.intent * behaviour.engagement_per_week / HOURS_PER_WEEK
    if rate <= 0:
        return iter(())
    rng = random.Random(person.engagement_seed)
    person.engagement_seed = rng.getrandbits(64)
    return _drawn(rng, rate, person.intent, behaviour, start, after_hours, until_hours)


def _drawn(rng: random.Random, rate: float, intent: float, behaviour: Behaviour, start: datetime,
           after_hours: float, until_hours: float) -> Iterator[DrawnEngagement]:
    # A nurture's scan reads every event of months of engagement: ``rng.expovariate(rate)``
    # is spelt out, the same numbers from the same draws.
    random_, log, mix = rng.random, math.log, behaviour.engagement_mix
    hours = after_hours
    while True:
        hours += -log(1.0 - random_()) / rate
        if hours > until_hours:
            return
        kind = pick(mix, random_())
        if kind is EngagementKind.DEMO_REQUEST and random_() > intent:
            kind = EngagementKind.PRICING_PAGE  # hand-raising needs intent
        yield _new_tuple(DrawnEngagement, (kind, start + timedelta(hours=hours), None))


_new_tuple = tuple.__new__  # a named tuple built without its Python-level ``__new__``
