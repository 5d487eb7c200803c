"""Routing: which rep gets a lead.

Pure: the caller supplies a snapshot of routing state (open leads per rep, assignments
so far, the round-robin pointer of the pool) and gets back a decision. The Temporal
shell keeps that state in the ledger inside one transaction; the simulator keeps it in
memory. Both call ``choose_rep``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from leadflow.business_calendar import BusinessCalendar, is_open
from leadflow.policy import Policy, Rep, Routing, RoutingMethod, roster_positions


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingSnapshot:
    """Routing state at the moment of a decision."""

    open_leads: dict[str, int] = field(default_factory=dict)
    assigned_total: dict[str, int] = field(default_factory=dict)
    last_assigned: str | None = None  # the round-robin pointer of the pool


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRequest:
    """The lead to route: its pool, the reps who already had it, and when."""

    territory: str | None = None
    segment: str | None = None
    exclude: list[str] = field(default_factory=list)
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDecision:
    """The rep chosen for a lead, or why nobody can take it (``why_none``)."""

    pool: str
    rep_id: str | None = None
    team: str | None = None
    on_shift: bool = False
    why_none: str | None = None


def territory_of(country: str | None, routing: Routing) -> str | None:
    """The territory whose country list holds ``country`` (None when unknown or unmapped)."""
    if not country:
        return None
    for name, countries in routing.territories.items():
        if country.upper() in countries:
            return name
    return None


def segment_of(company_size: int | None, routing: Routing) -> str | None:
    """The first segment whose upper bound holds ``company_size`` (None when size is unknown)."""
    if company_size is None:
        return None
    for segment in routing.segments:
        if segment.max_employees is None or company_size <= segment.max_employees:
            return segment.name
    return None


def pool_key(territory: str | None, segment: str | None) -> str:
    return f"{territory or '*'}/{segment or '*'}"


def is_out_of_office(rep: Rep, at: datetime) -> bool:
    if rep.away:
        return True
    if not rep.out_of_office:
        return False
    local_day = at.astimezone(rep.hours.zone).date()
    return any(absence.start <= local_day <= absence.end for absence in rep.out_of_office)


def on_shift(rep: Rep, at: datetime) -> bool:
    """Within the rep's working hours (in the rep's time zone) and not out of office."""
    return not is_out_of_office(rep, at) and is_open(rep.hours, at)


def capacity_of(rep: Rep, routing: Routing) -> int:
    return rep.capacity if rep.capacity is not None else routing.default_capacity


def covers(rep: Rep, territory: str | None, segment: str | None) -> bool:
    """Whether the rep works this territory and segment (an empty list on the rep means every one)."""
    territory_ok = territory is None or not rep.territories or territory in rep.territories
    segment_ok = segment is None or not rep.segments or segment in rep.segments
    return territory_ok and segment_ok


def _in_turn(policy: Policy, pointer: str | None) -> Iterator[Rep]:
    """The roster in round-robin order: starting just after the pointer, wrapping around."""
    roster = policy.reps
    start = _start_after(policy, pointer)
    for offset in range(len(roster)):
        yield roster[(start + offset) % len(roster)]


def _start_after(policy: Policy, pointer: str | None) -> int:
    """The roster position round robin starts from: just after the pointer's rep."""
    position = roster_positions(policy).get(pointer) if pointer else None
    return position + 1 if position is not None else 0


@dataclass(frozen=True, slots=True)
class PoolRoster:
    """The reps who cover one pool (territory and segment), as roster positions in roster
    order: all of them, and grouped by working-hours calendar (reps often share one)."""

    everyone: list[int]
    by_calendar: list[tuple[BusinessCalendar, list[int]]]


# Built once per policy object and pool: a team of thousands is walked on every routing
# step. Policies are frozen, and an entry keeps its policy alive, so it cannot describe another.
_POOL_ROSTERS: dict[tuple[int, str | None, str | None], tuple[Policy, PoolRoster]] = {}
_POOL_ROSTERS_KEPT = 1024


def pool_roster(policy: Policy, territory: str | None, segment: str | None) -> PoolRoster:
    """Who covers ``territory`` and ``segment`` in ``policy``'s roster (see ``PoolRoster``)."""
    key = (id(policy), territory, segment)
    entry = _POOL_ROSTERS.get(key)
    if entry is None or entry[0] is not policy:
        if len(_POOL_ROSTERS) >= _POOL_ROSTERS_KEPT:
            _POOL_ROSTERS.clear()
        everyone: list[int] = []
        # Reps whose hours say the same share one list, however each was written down: one
        # list walks in turn with no merge.
        by_calendar: dict[tuple[object, ...], tuple[BusinessCalendar, list[int]]] = {}
        for index, rep in enumerate(policy.reps):
            if covers(rep, territory, segment):
                everyone.append(index)
                by_calendar.setdefault(rep.hours.content, (rep.hours, []))[1].append(index)
        entry = _POOL_ROSTERS[key] = (policy, PoolRoster(everyone, list(by_calendar.values())))
    return entry[1]


def _from(positions: list[int], start: int) -> Iterator[int]:
    """``positions`` (sorted) in round-robin order from ``start``, wrapping around."""
    cut = bisect_left(positions, start)
    return chain(_between(positions, cut, len(positions)), _between(positions, 0, cut))


def _between(positions: list[int], lo: int, hi: int) -> Iterator[int]:
    """``positions[lo:hi]`` read lazily: a walk usually stops at its first rep, so copying
    thousands of positions to read one would cost more than the whole choice."""
    return map(positions.__getitem__, range(lo, hi))


def _on_shift_in_turn(open_positions: list[list[int]], start: int) -> Iterator[int]:
    """The positions of reps whose calendar is open, in round-robin order from ``start``:
    only they are walked, however many are off shift in other time zones."""
    if len(open_positions) == 1:
        return _from(open_positions[0], start)
    cuts = [bisect_left(positions, start) for positions in open_positions]
    return chain(heapq.merge(*(_between(positions, cut, len(positions)) for positions, cut in zip(open_positions, cuts))),
                 heapq.merge(*(_between(positions, 0, cut) for positions, cut in zip(open_positions, cuts))))


def _next_in_turn(policy: Policy, request: RouteRequest, snapshot: RoutingSnapshot) -> tuple[Rep, bool] | None:
    """Round robin: the first eligible rep after the pointer (on shift first, when preferred).

    Walks only as far as it must, and only the reps who cover the lead's pool: those on
    shift first (found through their calendars), then, when none of them can take the lead,
    all of them for the first free rep.
    """
    routing, exclude, roster, at = policy.routing, request.exclude, policy.reps, request.at
    open_leads = snapshot.open_leads

    def free(rep: Rep) -> bool:
        return (
            open_leads.get(rep.id, 0) < capacity_of(rep, routing)
            and rep.id not in exclude
            and not is_out_of_office(rep, at)
        )

    pool = pool_roster(policy, request.territory, request.segment)
    # Outside every rep's hours (nights, weekends) nobody can be on shift: the first free rep
    # in turn is the answer, found without walking the rest of the roster in search of one.
    open_positions = [positions for hours, positions in pool.by_calendar if is_open(hours, at)]
    start = _start_after(policy, snapshot.last_assigned)
    if routing.prefer_on_shift and open_positions:
        for index in _on_shift_in_turn(open_positions, start):
            if free(roster[index]):
                return roster[index], True
    open_now: dict[int, bool] = {}  # by calendar object: reps often share one
    for index in _from(pool.everyone, start):
        rep = roster[index]
        if free(rep):
            shift = open_now.get(id(rep.hours))
            if shift is None:
                shift = open_now[id(rep.hours)] = is_open(rep.hours, at)
            return rep, shift  # off shift when preferred: every free rep on shift was found above
    return None


def choose_rep(policy: Policy, request: RouteRequest, snapshot: RoutingSnapshot) -> RouteDecision:
    """Pick the rep for a lead, or say why nobody can take it."""
    routing = policy.routing
    pool = pool_key(request.territory, request.segment)
    if routing.method is RoutingMethod.ROUND_ROBIN:
        found = _next_in_turn(policy, request, snapshot)
        if found is not None:
            rep, on_shift_now = found
            return RouteDecision(pool=pool, rep_id=rep.id, team=rep.team, on_shift=on_shift_now)
    covering = [rep for rep in policy.reps if covers(rep, request.territory, request.segment)]
    if not covering:
        return RouteDecision(pool=pool, why_none="no rep covers this territory and segment")
    fresh = [rep for rep in covering if rep.id not in request.exclude]
    if not fresh:
        return RouteDecision(pool=pool, why_none="every covering rep already had this lead")
    present = [rep for rep in fresh if not is_out_of_office(rep, request.at)]
    if not present:
        return RouteDecision(pool=pool, why_none="every eligible rep is away")
    free = [rep for rep in present if snapshot.open_leads.get(rep.id, 0) < capacity_of(rep, routing)]
    if not free:
        return RouteDecision(pool=pool, why_none="every eligible rep is at capacity")
    shift = [rep for rep in free if on_shift(rep, request.at)]
    candidates = set(map(id, shift if (shift and routing.prefer_on_shift) else free))
    ordered = [rep for rep in _in_turn(policy, snapshot.last_assigned) if id(rep) in candidates]
    if routing.method is RoutingMethod.WEIGHTED:
        chosen = min(ordered, key=lambda rep: (snapshot.assigned_total.get(rep.id, 0) + 1) / rep.weight)
    else:  # least loaded (round robin found its rep above whenever anyone was free)
        chosen = min(ordered, key=lambda rep: snapshot.open_leads.get(rep.id, 0))
    return RouteDecision(pool=pool, rep_id=chosen.id, team=chosen.team, on_shift=chosen in shift)
