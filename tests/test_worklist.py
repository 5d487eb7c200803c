"""A rep's worklist (``leadflow.worklist``): the next task per lead and the order to work them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.actions import Accept, AttemptOutcome, LogAttempt, Qualify
from leadflow.journey import Clock, Stage
from leadflow.worklist import FOLLOW_UP_WINDOW, Task, WorkItem, is_workable, priority, work_item, worklist
from tests.test_decide import T0, Journey, assigned_hot, hot_lead, ny, warm_lead


def test_each_stage_of_an_owned_lead_has_its_task(policy):
    journey = assigned_hot(policy)
    item = work_item(journey.state, policy)
    assert item is not None
    assert (item.task, item.due_at, item.workable_from) == (Task.ACCEPT, journey.state.deadlines[Clock.ACCEPTANCE], None)
    assert item.tier == "hot" and item.tier_priority == 0

    journey.act(Accept(by="rep-ana"), T0 + timedelta(minutes=5))
    item = work_item(journey.state, policy)
    assert item is not None and item.task is Task.FIRST_ATTEMPT
    assert item.due_at == journey.state.deadlines[Clock.FIRST_CONTACT]

    journey.act(LogAttempt(by="rep-ana", outcome=AttemptOutcome.NO_ANSWER), ny(2026, 11, 17, 10, 20))
    item = work_item(journey.state, policy)
    due = ny(2026, 11, 18, 17, 0)  # the end of the next business day
    assert item is not None and (item.task, item.due_at, item.attempts) == (Task.FOLLOW_UP, due, 1)
    assert item.workable_from == due - FOLLOW_UP_WINDOW
    assert not is_workable(item, ny(2026, 11, 17, 16, 0)) and is_workable(item, ny(2026, 11, 18, 9, 0))

    journey.act(LogAttempt(by="rep-ana", outcome=AttemptOutcome.CONNECTED), ny(2026, 11, 18, 11, 0))
    item = work_item(journey.state, policy)
    assert item is not None and item.task is Task.DISPOSITION
    assert item.due_at == journey.state.deadlines[Clock.DISPOSITION]

    journey.act(Qualify(by="rep-ana", budget=True, authority=True, need="x"), ny(2026, 11, 18, 12, 0))
    item = work_item(journey.state, policy)
    assert item is not None and item.task is Task.ADVANCE and item.stage is Stage.SQL


def test_a_lead_nobody_owns_is_on_no_worklist(policy):
    journey = Journey(policy)
    journey.submit(warm_lead())
    assert work_item(journey.state, policy) is None


def test_the_earliest_deadline_comes_first_then_the_hotter_tier(policy):
    hot = assigned_hot(policy, "rep-ana")
    warm = Journey(policy)
    warm.submit(hot_lead(email="w@example.com"))
    warm.state.lead_id = "L2"
    warm.assign("rep-ana", T0 - timedelta(hours=3))
    hot_item, warm_item = work_item(hot.state, policy), work_item(warm.state, policy)
    assert hot_item is not None and warm_item is not None
    # both hot; the one assigned three hours earlier is due first
    assert [item.lead_id for item in worklist([hot_item, warm_item], T0)] == ["L2", "L1"]
    # same deadline: the hotter tier first
    tied = WorkItem(**{**_fields(warm_item), "due_at": hot_item.due_at, "tier": "warm", "tier_priority": 1, "lead_id": "L0"})
    assert [item.lead_id for item in worklist([tied, hot_item], T0)] == ["L1", "L0"]


def test_a_tighter_sla_moves_its_leads_up_the_list(policy):
    """The same two leads: under a tighter hot SLA the hot lead overtakes a warm one."""
    tighter = policy.model_copy(update={"tiers": [
        tier.model_copy(update={"accept_within_hours": 0.25}) if tier.name == "hot" else tier for tier in policy.tiers]})

    def order(p):
        hot = assigned_hot(p, "rep-ana")
        warm = WorkItem(lead_id="W", journey_id="jw", task=Task.ACCEPT, stage=Stage.ASSIGNED, tier="warm",
                        tier_priority=1, due_at=T0 + timedelta(minutes=20), workable_from=None, mql_at=T0 - timedelta(hours=4),
                        attempts=0)
        item = work_item(hot.state, p)
        assert item is not None
        return [entry.lead_id for entry in worklist([warm, item], T0)]

    assert order(policy) == ["W", "L1"]
    assert order(tighter) == ["L1", "W"]


def _fields(item: WorkItem) -> dict:
    return {name: getattr(item, name) for name in item.__slots__}


NOW = datetime(2026, 3, 2, 15, tzinfo=timezone.utc)


@st.composite
def work_items(draw) -> list[WorkItem]:
    count = draw(st.integers(0, 25))
    items = []
    for index in range(count):
        due = draw(st.none() | st.integers(-120, 600))
        opens = draw(st.none() | st.integers(-600, 600))
        items.append(WorkItem(
            lead_id=f"L{index:02d}", journey_id=f"j{index}", task=draw(st.sampled_from(list(Task))), stage=Stage.WORKING,
            tier=None, tier_priority=draw(st.integers(0, 3)),
            due_at=None if due is None else NOW + timedelta(minutes=due),
            workable_from=None if opens is None else NOW + timedelta(minutes=opens),
            mql_at=NOW - timedelta(minutes=draw(st.integers(0, 50))), attempts=0))
    return items


@settings(max_examples=200, deadline=None)
@given(items=work_items(), seed=st.integers(0, 1000))
def test_the_order_is_total_and_depends_only_on_the_tasks(items, seed):
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    ordered = worklist(items, NOW)
    assert ordered == worklist(shuffled, NOW)  # whatever order they were read in
    assert sorted(item.lead_id for item in ordered) == sorted(item.lead_id for item in items)
    workable = [is_workable(item, NOW) for item in ordered]
    assert workable == sorted(workable, reverse=True)  # every workable task before any coming one
    keys = [priority(item) for item in ordered if is_workable(item, NOW)]
    assert keys == sorted(keys)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if is_workable(earlier, NOW) and is_workable(later, NOW) and earlier.due_at and later.due_at:
            assert earlier.due_at <= later.due_at
