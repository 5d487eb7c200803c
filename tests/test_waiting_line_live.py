"""The waiting line on the live side: journeys on the time-skipping server wait in the ledger's
line, are told by signal the instant a slot frees (hottest tier first), a journey that is gone
gives its slot to the next, and the safety net finds a slot whose signal was lost."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

import pytest
from temporalio.api.enums.v1 import EventType

from activities.contracts import SlotReturn
from leadflow.actions import Accept, AttemptOutcome, Disqualify, LogAttempt
from leadflow.journey import Clock, Stage
from leadflow.lead import EngagementEvent, EngagementKind
from leadflow.policy import Policy
from tests.journey_helpers import hot_lead, next_local, skip_to, wait_for, warm_lead
from tests.test_journey_workflow import journey_worker, settings_for, submit_lead
from workflows.journey_client import act, engage, journey_handle, show
from workflows.replay import journey_replayer, replay_histories

TUESDAY = 1


@pytest.fixture
def one_rep(policy: Policy) -> Policy:
    """Ana alone, one open lead at a time."""
    ana = next(rep for rep in policy.reps if rep.id == "rep-ana").model_copy(update={"capacity": 1})
    return policy.model_copy(update={"reps": [ana]})


def _in_line(view) -> bool:
    return view.in_line and view.stage is Stage.MQL and view.owner_id is None


async def _line_in_ledger(ledger, expected: list[str], timeout: float = 15.0) -> list[str]:
    """The ledger's waiting line once it reads ``expected`` (or as it stands at ``timeout``).

    A journey says it is in line as soon as it decided to join; its activity writes the row
    a moment later, so a check right after the journey's answer can be early under load."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        line = [row["lead_id"] for row in ledger.waiting()]
        if line == expected or asyncio.get_running_loop().time() > deadline:
            return line
        await asyncio.sleep(0.1)


async def test_waiting_leads_are_served_in_line_order_by_signal(time_env, task_queue, sqlite_url, one_rep):
    client = time_env.client
    start = next_local(await time_env.get_current_time(), TUESDAY, time(10, 0))
    await skip_to(time_env, start)
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=one_rep) as parts:
        ledger = parts.ledger
        first = (await submit_lead(client, hot_lead("line.first@corp.io"), task_queue, visibility=False)).lead_id
        assert (await wait_for(client, first, lambda v: v.stage is Stage.ASSIGNED)).owner_id == "rep-ana"

        # A warm MQL first, then three hot ones: all wait, the hot ones ahead of the warm one.
        warm = (await submit_lead(client, warm_lead("line.warm@corp.io"), task_queue, visibility=False)).lead_id
        await wait_for(client, warm, lambda v: v.submissions >= 1)
        await engage(client, warm, EngagementEvent(kind=EngagementKind.PRICING_PAGE, at=start, weight=40))
        assert (await wait_for(client, warm, _in_line)).tier == "warm"
        hot = []
        for name in ("gone", "next", "later"):
            await time_env.sleep(timedelta(minutes=1))
            lead_id = (await submit_lead(client, hot_lead(f"line.{name}@corp.io"), task_queue, visibility=False)).lead_id
            await wait_for(client, lead_id, _in_line)
            hot.append(lead_id)
        gone, served_next, later = hot
        assert await _line_in_ledger(ledger, [gone, served_next, later, warm]) == [gone, served_next, later, warm]

        # The first in line is gone (an operator terminated it) when Ana's slot frees.
        await journey_handle(client, gone).terminate("test: a journey that is gone")
        await act(client, first, Accept(by="rep-ana"))
        await act(client, first, LogAttempt(by="rep-ana", outcome=AttemptOutcome.CONNECTED))
        await act(client, first, Disqualify(by="rep-ana", reason="no_budget"))
        view = await wait_for(client, served_next, lambda v: v.stage is Stage.ASSIGNED)
        assert view.owner_id == "rep-ana" and not view.in_line
        assigned = next(entry for entry in view.log if str(entry.kind) == "assigned")
        closed_at = (await show(client, first)).log[-1].at
        assert assigned.at - closed_at < timedelta(seconds=5)  # at the instant the slot freed, not a retry later
        assert [row["released_at"] is not None for row in ledger.assignments_of(gone)] == [True]  # given back
        assert [row["lead_id"] for row in ledger.waiting()] == [later, warm]
        assert ledger.open_leads_by_rep() == {"rep-ana": 1}

        # A slot served with no signal (its sender died after the ledger write): the next
        # lead's safety net finds it within ``retry_minutes``.
        journey_id = ledger.assignments_of(served_next)[0]["journey_id"]
        lost = ledger.return_slot(SlotReturn(journey_id=journey_id, step=1, rep_id="rep-ana",
                                             policy_version=one_rep.version, at=await time_env.get_current_time()),
                                  one_rep)
        assert [item.assigned.rep_id for item in lost] == ["rep-ana"]
        assert _in_line(await show(client, later))
        await time_env.sleep(timedelta(minutes=one_rep.routing.retry_minutes + 1))
        assert (await wait_for(client, later, lambda v: v.stage is Stage.ASSIGNED)).owner_id == "rep-ana"
        assert _in_line(await show(client, warm)) and [row["lead_id"] for row in ledger.waiting()] == [warm]

        histories = [await journey_handle(client, lead_id).fetch_history() for lead_id in (first, warm, *hot)]
        views = [await show(client, lead_id) for lead_id in (warm, served_next, later)]

    # No journey polled routing: no routing-retry deadline, no repeated "queued" decisions.
    for history in histories:
        timers = [event.user_metadata.summary.data.decode() for event in history.events
                  if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
        assert timers and not any(Clock.ROUTING_RETRY.value in summary for summary in timers), timers
    for view in views:
        assert [str(entry.kind) for entry in view.log].count("queued") <= 1, view.log
    signals = [event.workflow_execution_signaled_event_attributes.signal_name for event in histories[3].events
               if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    assert "line_served" in signals
    outcomes = await replay_histories([(history, f"line-{index}") for index, history in enumerate(histories)],
                                      journey_replayer())
    assert [outcome.ok for outcome in outcomes] == [True] * len(histories), outcomes
