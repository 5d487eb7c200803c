"""Routing (``leadflow.routing``): which rep gets a lead, and why nobody does."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.policy import Policy, RoutingMethod, parse_policy
from leadflow.routing import (
    RouteRequest,
    RoutingSnapshot,
    capacity_of,
    choose_rep,
    is_out_of_office,
    on_shift,
    pool_key,
    segment_of,
    territory_of,
)

ALL_WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
AROUND_THE_CLOCK = {"workdays": ALL_WEEK, "opens": "00:00", "closes": "24:00"}
# Wednesday 2026-11-18 15:00 UTC: 10:00 in New York, 15:00 in London, 02:00 (Thursday) in Sydney.
AT = datetime(2026, 11, 18, 15, 0, tzinfo=timezone.utc)
TERRITORIES = {"NA": ["US", "CA"], "EMEA": ["GB", "DE"], "APAC": ["AU", "JP"]}
SEGMENTS = [
    {"name": "smb", "max_employees": 199},
    {"name": "mid_market", "max_employees": 1999},
    {"name": "enterprise"},
]


def rep(rep_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": rep_id, "team": "sales", "hours": AROUND_THE_CLOCK, **fields}


def make_policy(reps: list[dict[str, Any]], **routing: Any) -> Policy:
    return parse_policy(
        {
            "version": "routing-test",
            "tiers": [{"name": "hot", "min_score": 0, "accept_within_hours": 1, "first_contact_within_hours": 1}],
            "teams": [{"id": "sales", "manager": "mgr"}, {"id": "intl", "manager": "mgr-intl"}],
            "reps": reps,
            "routing": {"territories": TERRITORIES, "segments": SEGMENTS, **routing},
        }
    )


def ask(policy: Policy, snapshot: RoutingSnapshot | None = None, **request: Any):
    request.setdefault("at", AT)
    return choose_rep(policy, RouteRequest(**request), snapshot or RoutingSnapshot())


def simulate(policy: Policy, rounds: int, **request: Any) -> list[str]:
    """Assign ``rounds`` leads in a row, updating the snapshot as the ledger would."""
    totals: dict[str, int] = {}
    last: str | None = None
    chosen = []
    for _ in range(rounds):
        decision = ask(policy, RoutingSnapshot(assigned_total=totals, last_assigned=last), **request)
        assert decision.rep_id is not None, decision.why_none
        totals[decision.rep_id] = totals.get(decision.rep_id, 0) + 1
        last = decision.rep_id
        chosen.append(decision.rep_id)
    return chosen


# --- territory and segment ---------------------------------------------------------------------


def test_territory_of():
    routing = make_policy([rep("a")]).routing
    assert territory_of("US", routing) == "NA"
    assert territory_of("gb", routing) == "EMEA"
    assert territory_of("BR", routing) is None
    assert territory_of(None, routing) is None
    assert territory_of("", routing) is None


def test_segment_of_uses_inclusive_upper_bounds():
    routing = make_policy([rep("a")]).routing
    assert segment_of(None, routing) is None
    assert segment_of(0, routing) == "smb"
    assert segment_of(199, routing) == "smb"
    assert segment_of(200, routing) == "mid_market"
    assert segment_of(1999, routing) == "mid_market"
    assert segment_of(2000, routing) == "enterprise"
    assert segment_of(5_000_000, routing) == "enterprise"


def test_segment_of_without_an_open_ended_segment():
    policy = parse_policy(
        {
            "version": "v",
            "tiers": [{"name": "hot", "min_score": 0, "accept_within_hours": 1, "first_contact_within_hours": 1}],
            "teams": [{"id": "sales", "manager": "mgr"}],
            "reps": [rep("a")],
            "routing": {"segments": [{"name": "small", "max_employees": 10}]},
        }
    )
    assert segment_of(11, policy.routing) is None


def test_pool_key():
    assert pool_key("NA", "smb") == "NA/smb"
    assert pool_key(None, None) == "*/*"


def test_territory_and_segment_matching():
    policy = make_policy(
        [
            rep("na-smb", territories=["NA"], segments=["smb"]),
            rep("emea-any", territories=["EMEA"]),
            rep("any-ent", segments=["enterprise"]),
            rep("generalist"),
        ],
        method="least_loaded",
    )
    # least_loaded with everyone at zero open leads follows roster order; load the earlier
    # reps to see who else is eligible.
    def eligible(**request: Any) -> set[str]:
        found: set[str] = set()
        for _ in range(4):
            decision = ask(policy, RoutingSnapshot(open_leads={rep_id: 100 for rep_id in found}), **request)
            if decision.rep_id is None:
                break
            found.add(decision.rep_id)
        return found

    assert eligible(territory="NA", segment="smb") == {"na-smb", "generalist"}
    assert eligible(territory="NA", segment="enterprise") == {"any-ent", "generalist"}
    assert eligible(territory="EMEA", segment="mid_market") == {"emea-any", "generalist"}
    assert eligible(territory="EMEA", segment="enterprise") == {"emea-any", "any-ent", "generalist"}
    assert eligible(territory=None, segment=None) == {"na-smb", "emea-any", "any-ent", "generalist"}
    assert eligible(territory="APAC", segment="smb") == {"generalist"}


def test_nobody_covers():
    policy = make_policy([rep("na", territories=["NA"]), rep("emea", territories=["EMEA"])])
    decision = ask(policy, territory="APAC", segment="smb")
    assert decision.rep_id is None
    assert decision.pool == "APAC/smb"
    assert decision.why_none == "no rep covers this territory and segment"


# --- methods -------------------------------------------------------------------------------------


def test_round_robin_follows_roster_after_the_pointer_and_wraps():
    policy = make_policy([rep("a"), rep("b"), rep("c"), rep("d")])
    assert ask(policy, RoutingSnapshot(last_assigned=None)).rep_id == "a"
    assert ask(policy, RoutingSnapshot(last_assigned="b")).rep_id == "c"
    assert ask(policy, RoutingSnapshot(last_assigned="d")).rep_id == "a"
    assert ask(policy, RoutingSnapshot(last_assigned="someone-gone")).rep_id == "a"
    assert simulate(policy, 9) == ["a", "b", "c", "d", "a", "b", "c", "d", "a"]


def test_round_robin_skips_ineligible_reps_but_keeps_roster_order():
    policy = make_policy([rep("a"), rep("b", territories=["EMEA"]), rep("c"), rep("d")])
    assert ask(policy, RoutingSnapshot(last_assigned="a"), territory="NA").rep_id == "c"
    # the pointer may be a rep outside this pool: the next eligible one in roster order
    assert ask(policy, RoutingSnapshot(last_assigned="b"), territory="NA").rep_id == "c"
    assert simulate(policy, 6, territory="NA") == ["a", "c", "d", "a", "c", "d"]


def test_weighted_gives_a_weight_two_rep_twice_the_leads():
    policy = make_policy([rep("single", weight=1), rep("double", weight=2), rep("half", weight=0.5)], method="weighted")
    counts = Counter(simulate(policy, 350))
    assert abs(counts["double"] - 2 * counts["single"]) <= 2
    assert abs(counts["single"] - 2 * counts["half"]) <= 2
    assert counts["double"] == 200


def test_weighted_picks_the_lowest_assigned_per_weight():
    policy = make_policy([rep("a", weight=1), rep("b", weight=3)], method="weighted")
    # (5+1)/1 = 6 versus (14+1)/3 = 5: b
    assert ask(policy, RoutingSnapshot(assigned_total={"a": 5, "b": 14})).rep_id == "b"
    # (5+1)/1 = 6 versus (20+1)/3 = 7: a
    assert ask(policy, RoutingSnapshot(assigned_total={"a": 5, "b": 20})).rep_id == "a"


def test_least_loaded_picks_fewest_open_leads():
    policy = make_policy([rep("a"), rep("b"), rep("c")], method="least_loaded")
    assert ask(policy, RoutingSnapshot(open_leads={"a": 5, "b": 2, "c": 3})).rep_id == "b"
    assert ask(policy, RoutingSnapshot(open_leads={"a": 1, "b": 2})).rep_id == "c"  # missing = 0
    # ties go round-robin from the pointer
    assert ask(policy, RoutingSnapshot(open_leads={"a": 1, "b": 1, "c": 1}, last_assigned="a")).rep_id == "b"


# --- capacity, exclusions, absence ----------------------------------------------------------------


def test_capacity_cap_excludes_full_reps():
    policy = make_policy([rep("a", capacity=2), rep("b"), rep("c", capacity=10)], default_capacity=3)
    assert capacity_of(policy.rep("a"), policy.routing) == 2
    assert capacity_of(policy.rep("b"), policy.routing) == 3
    snapshot = RoutingSnapshot(open_leads={"a": 2, "b": 3, "c": 9})
    assert ask(policy, snapshot).rep_id == "c"
    full = RoutingSnapshot(open_leads={"a": 2, "b": 3, "c": 10})
    decision = ask(policy, full)
    assert decision.rep_id is None
    assert decision.why_none == "every eligible rep is at capacity"


def test_excluded_reps_are_never_chosen():
    policy = make_policy([rep("a"), rep("b"), rep("c")])
    for pointer in (None, "a", "b", "c"):
        assert ask(policy, RoutingSnapshot(last_assigned=pointer), exclude=["a", "c"]).rep_id == "b"
    decision = ask(policy, exclude=["a", "b", "c"])
    assert decision.rep_id is None
    assert decision.why_none == "every covering rep already had this lead"


def test_away_reps_are_skipped():
    policy = make_policy([rep("a", away=True), rep("b")])
    assert ask(policy).rep_id == "b"
    assert ask(policy, RoutingSnapshot(last_assigned="b")).rep_id == "b"
    everyone_away = make_policy([rep("a", away=True), rep("b", away=True)])
    decision = ask(everyone_away)
    assert decision.rep_id is None
    assert decision.why_none == "every eligible rep is away"


def test_out_of_office_range_is_inclusive_and_in_the_reps_time_zone():
    sydney_hours = {**AROUND_THE_CLOCK, "timezone": "Australia/Sydney"}
    absence = [{"start": "2026-11-19", "end": "2026-11-20"}]
    policy = make_policy([rep("gus", hours=sydney_hours, out_of_office=absence), rep("other")])
    gus = policy.rep("gus")
    # 2026-11-18 12:00 UTC is 23:00 on the 18th in Sydney: in the office
    assert not is_out_of_office(gus, datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc))
    assert ask(policy, at=datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc)).rep_id == "gus"
    # 2026-11-18 14:00 UTC is already 01:00 on the 19th in Sydney: out of office
    assert is_out_of_office(gus, datetime(2026, 11, 18, 14, 0, tzinfo=timezone.utc))
    assert ask(policy, at=datetime(2026, 11, 18, 14, 0, tzinfo=timezone.utc)).rep_id == "other"
    # the last day counts; the day after does not
    assert is_out_of_office(gus, datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc))  # 23:00 on the 20th
    assert not is_out_of_office(gus, datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc))  # 00:00 on the 21st
    assert gus.out_of_office[0].start == date(2026, 11, 19)


# --- shifts ---------------------------------------------------------------------------------------


def shift_policy(prefer_on_shift: bool = True):
    return make_policy(
        [
            rep("sydney", hours={"timezone": "Australia/Sydney"}),
            rep("london", hours={"timezone": "Europe/London"}),
            rep("new-york", hours={"timezone": "America/New_York"}),
        ],
        prefer_on_shift=prefer_on_shift,
    )


def test_on_shift_in_the_reps_own_time_zone():
    policy = shift_policy()
    # AT: 10:00 New York, 15:00 London, 02:00 Sydney
    assert on_shift(policy.rep("new-york"), AT)
    assert on_shift(policy.rep("london"), AT)
    assert not on_shift(policy.rep("sydney"), AT)
    away = make_policy([rep("x", hours={"timezone": "Europe/London"}, away=True)]).rep("x")
    assert not on_shift(away, AT)


def test_prefer_on_shift_picks_on_shift_reps():
    policy = shift_policy()
    # 2026-11-18 22:00 UTC: 09:00 (Thursday) Sydney, 22:00 London, 17:00 New York (closed)
    late = datetime(2026, 11, 18, 22, 0, tzinfo=timezone.utc)
    for pointer in (None, "sydney", "london", "new-york"):
        decision = ask(policy, RoutingSnapshot(last_assigned=pointer), at=late)
        assert decision.rep_id == "sydney"
        assert decision.on_shift
    # at AT London and New York are on shift: round-robin among them
    assert ask(policy, RoutingSnapshot(last_assigned=None)).rep_id == "london"
    assert ask(policy, RoutingSnapshot(last_assigned="london")).rep_id == "new-york"
    assert ask(policy, RoutingSnapshot(last_assigned="new-york")).rep_id == "london"


def test_falls_back_to_off_shift_reps_when_nobody_is_on_shift():
    policy = shift_policy()
    saturday = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)  # a weekend everywhere
    decision = ask(policy, RoutingSnapshot(last_assigned="sydney"), at=saturday)
    assert decision.rep_id == "london"
    assert not decision.on_shift


def test_on_shift_rep_at_capacity_falls_back_to_off_shift():
    policy = shift_policy()
    late = datetime(2026, 11, 18, 22, 0, tzinfo=timezone.utc)
    decision = ask(policy, RoutingSnapshot(open_leads={"sydney": 25}), at=late)
    assert decision.rep_id == "london"
    assert not decision.on_shift


def test_shift_is_ignored_without_prefer_on_shift():
    policy = shift_policy(prefer_on_shift=False)
    late = datetime(2026, 11, 18, 22, 0, tzinfo=timezone.utc)
    decision = ask(policy, RoutingSnapshot(last_assigned="sydney"), at=late)
    assert decision.rep_id == "london"
    assert not decision.on_shift
    assert ask(policy, RoutingSnapshot(last_assigned="new-york"), at=late).on_shift  # sydney, who is on shift


def test_decision_carries_team_and_pool():
    policy = make_policy([rep("a", team="intl")])
    decision = ask(policy, territory="NA", segment="smb")
    assert (decision.rep_id, decision.team, decision.pool, decision.why_none) == ("a", "intl", "NA/smb", None)


# --- property --------------------------------------------------------------------------------------

REP_IDS = [f"rep-{index}" for index in range(6)]
ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata"]


@st.composite
def rosters(draw) -> Policy:
    reps = []
    for rep_id in REP_IDS[: draw(st.integers(1, len(REP_IDS)))]:
        absences = []
        if draw(st.booleans()):
            start = draw(st.dates(date(2026, 11, 10), date(2026, 11, 30)))
            absences.append({"start": start.isoformat(), "end": draw(st.dates(start, date(2026, 12, 5))).isoformat()})
        reps.append(
            {
                "id": rep_id,
                "team": draw(st.sampled_from(["sales", "intl"])),
                "territories": draw(st.lists(st.sampled_from(sorted(TERRITORIES)), unique=True, max_size=2)),
                "segments": draw(st.lists(st.sampled_from(["smb", "mid_market", "enterprise"]), unique=True, max_size=2)),
                "weight": draw(st.sampled_from([0.5, 1, 2, 3])),
                "capacity": draw(st.none() | st.integers(1, 4)),
                "away": draw(st.integers(0, 4)) == 0,  # one rep in five is away
                "out_of_office": absences,
                "hours": {"timezone": draw(st.sampled_from(ZONES)), "workdays": ["mon", "tue", "wed", "thu", "fri"]},
            }
        )
    return make_policy(
        reps,
        method=draw(st.sampled_from(["round_robin", "weighted", "least_loaded"])),
        default_capacity=draw(st.integers(1, 4)),
        prefer_on_shift=draw(st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_chosen_rep_is_always_eligible(data):
    policy = data.draw(rosters())
    ids = [member.id for member in policy.reps]
    snapshot = RoutingSnapshot(
        open_leads=data.draw(st.dictionaries(st.sampled_from(ids), st.integers(0, 5))),
        assigned_total=data.draw(st.dictionaries(st.sampled_from(ids), st.integers(0, 50))),
        last_assigned=data.draw(st.none() | st.sampled_from(ids + ["former-rep"])),
    )
    request = RouteRequest(
        territory=data.draw(st.none() | st.sampled_from(sorted(TERRITORIES))),
        segment=data.draw(st.none() | st.sampled_from(["smb", "mid_market", "enterprise"])),
        exclude=data.draw(st.lists(st.sampled_from(ids), unique=True)),
        at=data.draw(
            st.datetimes(datetime(2026, 11, 8), datetime(2026, 12, 8), timezones=st.just(timezone.utc))
        ),
    )
    decision = choose_rep(policy, request, snapshot)

    def eligible(member) -> bool:
        return (
            (request.territory is None or not member.territories or request.territory in member.territories)
            and (request.segment is None or not member.segments or request.segment in member.segments)
            and member.id not in request.exclude
            and not is_out_of_office(member, request.at)
            and snapshot.open_leads.get(member.id, 0) < capacity_of(member, policy.routing)
        )

    candidates = [member for member in policy.reps if eligible(member)]
    if decision.rep_id is None:
        assert not candidates, f"{decision.why_none} although {[m.id for m in candidates]} could take the lead"
        assert decision.why_none
        return
    chosen = policy.rep(decision.rep_id)
    assert chosen is not None
    assert eligible(chosen)
    assert not chosen.away
    assert decision.team == chosen.team
    assert decision.on_shift == on_shift(chosen, request.at)
    if policy.routing.prefer_on_shift and any(on_shift(member, request.at) for member in candidates):
        assert decision.on_shift
    if policy.routing.method is RoutingMethod.ROUND_ROBIN:
        # Round robin takes the first preferred candidate in roster order after the pointer.
        position = {member.id: index for index, member in enumerate(policy.reps)}
        start = position.get(snapshot.last_assigned, -1)
        preferred = [m for m in candidates if on_shift(m, request.at)] if policy.routing.prefer_on_shift else []
        turn = sorted(preferred or candidates, key=lambda m: (position[m.id] <= start, position[m.id]))
        assert decision.rep_id == turn[0].id


def test_when_nobody_is_on_shift_the_first_free_rep_in_turn_is_chosen_as_without_a_shift_preference():
    """At night nobody is on shift: preferring on-shift reps changes nothing, and the answer
    comes without walking the roster (a large team routed at night was the simulator's
    slowest path)."""
    office = {"timezone": "America/New_York", "workdays": ["mon", "tue", "wed", "thu", "fri"], "opens": "09:00", "closes": "17:00"}
    reps = [rep(f"r{n}", hours=office, territories=["NA"] if n % 3 else ["EMEA"]) for n in range(30)]
    night = datetime(2026, 11, 18, 6, 0, tzinfo=timezone.utc)  # 01:00 in New York
    preferring, indifferent = make_policy(reps), make_policy(reps, prefer_on_shift=False)
    snapshot = RoutingSnapshot(open_leads={"r1": 25, "r2": 25}, last_assigned="r29")
    for territory in ("NA", "EMEA", None):
        chosen = ask(preferring, snapshot, territory=territory, at=night)
        assert chosen == ask(indifferent, snapshot, territory=territory, at=night)
        assert chosen.rep_id is not None and not chosen.on_shift
    assert ask(preferring, snapshot, territory="NA", at=night).rep_id == "r4"  # r1, r2 full; r3 covers EMEA only
