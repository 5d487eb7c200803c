"""Lead journeys on the time-skipping test server: whole journeys in seconds.

Each test runs its own worker on a unique task queue with a fresh SQLite ledger; time
moves only when a test skips it, so SLA clocks are exact.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta

import pytest
from temporalio.api.enums.v1 import EventType

from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify
from leadflow.journey import Clock, Stage
from leadflow.lead import EngagementEvent, EngagementKind
from runtime.settings import Settings
from tests.journey_helpers import NEW_YORK, hot_lead, next_local, skip_to, skip_until, wait_for, warm_lead
from worker import running_worker
from workflows import journey_client
from workflows.journey_client import JourneyError, act, engage, journey_handle, show

TUESDAY, FRIDAY = 1, 4
_started: list[str] = []


async def submit_lead(client, lead, task_queue, **options):
    submitted = await journey_client.submit_lead(client, lead, task_queue, **options)
    _started.append(submitted.lead_id)
    return submitted


async def _terminate_started(client) -> None:
    while _started:
        handle = journey_handle(client, _started.pop())
        # Let tasks in flight finish first: the test server keeps time frozen for a
        # workflow or activity task whose workflow was terminated under it.
        for _ in range(100):
            raw = (await handle.describe()).raw_description
            if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
                break
            await asyncio.sleep(0.05)
        try:
            await handle.terminate("test finished")
        except Exception:
            pass  # already closed


@asynccontextmanager
async def journey_worker(client, settings, **options):
    """A worker that, before it stops, terminates the journeys the test left running.

    The time-skipping server will not skip time past a journey with work nobody picks up.
    """
    async with running_worker(client, settings, **options) as parts:
        try:
            yield parts
        finally:
            await _terminate_started(client)


def settings_for(task_queue: str, sqlite_url: str) -> Settings:
    return Settings(task_queue=task_queue, database_url=sqlite_url)


def kinds(view) -> list[str]:
    return [str(entry.kind) for entry in view.log]


async def submit_and_wait_assigned(client, lead, task_queue):
    submitted = await submit_lead(client, lead, task_queue, visibility=False)
    view = await wait_for(client, submitted.lead_id, lambda v: v.stage is Stage.ASSIGNED)
    return submitted, view


async def test_hot_hand_raiser_contacted_inside_sla(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), TUESDAY, time(10, 0)))
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy) as parts:
        submitted, view = await submit_and_wait_assigned(client, hot_lead("hot.hand@raiser.io"), task_queue)
        assert view.tier == "hot"
        owner = view.owner_id
        assert view.deadlines[Clock.FIRST_CONTACT] - view.log[0].at == timedelta(hours=1)

        await time_env.sleep(timedelta(minutes=20))
        await act(client, submitted.lead_id, Accept(by=owner))
        view = await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        assert view.stage is Stage.WORKING
        assert view.first_contact_met is True
        assert view.breaches == 0
        assert Clock.FIRST_CONTACT not in view.deadlines

        await act(client, submitted.lead_id, Qualify(by=owner, budget=True, authority=True, need="forecasting"))
        await act(client, submitted.lead_id, Convert(by=owner, opportunity_id="OPP-1"))
        outcome = await journey_handle(client, submitted.lead_id).result()
        assert outcome.outcome == "converted" and outcome.stage is Stage.CONVERTED
        assert outcome.policy_version == policy.version

        ledger_kinds = [event["kind"] for event in parts.ledger.events(submitted.lead_id)]
        assert ledger_kinds == [
            "created", "mql", "assigned", "accepted", "attempt", "first_contact", "qualified", "converted"
        ]
        first_contact = next(e for e in parts.ledger.events(submitted.lead_id) if e["kind"] == "first_contact")
        assert first_contact["detail"]["met"] is True
        assert 20 * 60 <= first_contact["detail"]["business_seconds"] < 21 * 60
        assert parts.ledger.open_leads_by_rep().get(owner, 0) == 0


async def test_warm_lead_breach_escalates_then_reassigns_to_another_rep(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), TUESDAY, time(9, 30)))
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy) as parts:
        submitted = await submit_lead(client, warm_lead("warm.lead@corp.io"), task_queue, visibility=False)
        await wait_for(client, submitted.lead_id, lambda v: v.stage is Stage.NURTURING)
        now = await time_env.get_current_time()
        for kind in (EngagementKind.PRICING_PAGE, EngagementKind.WEBINAR, EngagementKind.CONTENT_DOWNLOAD):
            await engage(client, submitted.lead_id, EngagementEvent(kind=kind, at=now))
        view = await wait_for(client, submitted.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        assert view.tier == "warm"
        first_owner = view.owner_id

        # Nobody touches the lead: 4 business hours -> first breach (notify), 4 more (the next
        # morning, as the clock pauses overnight) -> reassignment.
        view = await skip_until(
            time_env, client, submitted.lead_id, lambda v: v.reassignments == 1, timedelta(hours=1), 48
        )
        assert view.stage is Stage.ASSIGNED
        assert view.owner_id not in (None, first_owner)
        assert view.escalation_level == 2
        breaches = [e for e in view.log if e.kind == "breach"]
        assert [e.detail["clock"] for e in breaches] == ["acceptance", "acceptance"]
        escalations = [e.detail["level"] for e in view.log if e.kind == "escalated"]
        assert escalations == [1, 2]
        # The second breach came 4 business hours after the first, which came 4 after assignment.
        assigned_at = next(e.at for e in view.log if e.kind == "assigned")
        assert breaches[0].at == assigned_at + timedelta(hours=4)

        rows = parts.ledger.assignments_of(submitted.lead_id)
        assert [row["rep_id"] for row in rows] == [first_owner, view.owner_id]
        assert rows[0]["released_at"] is not None and rows[1]["released_at"] is None


async def test_attempts_exhausted_lead_is_unresponsive_and_recycled(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), TUESDAY, time(10, 0)))
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy) as parts:
        submitted, view = await submit_and_wait_assigned(client, hot_lead("never.answers@corp.io"), task_queue)
        owner = view.owner_id
        for attempt in range(policy.cadence.max_attempts):
            view = await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.NO_ANSWER))
            if attempt < policy.cadence.max_attempts - 1:
                assert view.stage is Stage.WORKING and Clock.FOLLOW_UP in view.deadlines
                await time_env.sleep(timedelta(hours=20))
        assert view.stage is Stage.NURTURING
        assert view.owner_id is None
        recycled = [e for e in view.log if e.kind == "recycled"]
        assert recycled and recycled[-1].detail["reason"] == "unresponsive"
        assert "unresponsive" in kinds(view)
        assert Clock.NURTURE in view.deadlines
        assert parts.ledger.open_leads_by_rep().get(owner, 0) == 0
        assert parts.ledger.lead(submitted.lead_id)["stage"] == "NURTURING"


async def test_refused_actions_say_why_and_change_nothing(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy) as parts:
        submitted, view = await submit_and_wait_assigned(client, hot_lead("no.reason@corp.io"), task_queue)
        owner = view.owner_id
        await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        with pytest.raises(JourneyError, match="disqualify needs a reason code"):
            await act(client, submitted.lead_id, Disqualify(by=owner))
        with pytest.raises(JourneyError, match="unknown disqualify reason 'meh'"):
            await act(client, submitted.lead_id, Disqualify(by=owner, reason="meh"))
        history = await journey_handle(client, submitted.lead_id).fetch_history()
        # Refused actions are recorded as signals and change nothing: no decision, no ledger write.
        actions = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                   and e.workflow_execution_signaled_event_attributes.signal_name == "rep_action"]
        assert len(actions) == 3
        view = await show(client, submitted.lead_id)
        assert view.stage is Stage.WORKING and [entry.kind for entry in view.log].count("attempt") == 1
        assert [event["kind"] for event in parts.ledger.events(submitted.lead_id)].count("disqualified") == 0

        view = await act(client, submitted.lead_id, Disqualify(by=owner, reason="no_budget"))
        assert view.stage is Stage.DISQUALIFIED
        outcome = await journey_handle(client, submitted.lead_id).result()
        assert outcome.outcome == "disqualified"


async def test_actions_invalid_for_the_stage_are_rejected(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy):
        submitted, view = await submit_and_wait_assigned(client, hot_lead("wrong.stage@corp.io"), task_queue)
        owner = view.owner_id
        with pytest.raises(JourneyError, match="cannot qualify a lead in stage ASSIGNED"):
            await act(client, submitted.lead_id, Qualify(by=owner))
        with pytest.raises(JourneyError, match="cannot convert a lead in stage ASSIGNED"):
            await act(client, submitted.lead_id, Convert(by=owner))
        other = next(rep.id for rep in policy.reps if rep.id != owner)
        with pytest.raises(JourneyError, match=f"{other} does not own this lead"):
            await act(client, submitted.lead_id, Accept(by=other))
        await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.NO_ANSWER))
        with pytest.raises(JourneyError, match="cannot qualify before a connected attempt"):
            await act(client, submitted.lead_id, Qualify(by=owner))
        assert (await show(client, submitted.lead_id)).stage is Stage.WORKING


async def test_duplicate_submission_merges_into_the_running_journey(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), TUESDAY, time(11, 0)))
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy) as parts:
        first = await submit_lead(client, warm_lead("dana.dupe@corp.io"), task_queue, visibility=False)
        view = await wait_for(client, first.lead_id, lambda v: v.submissions == 1)
        assert view.stage is Stage.NURTURING and view.owner_id is None

        # The same person, typed differently, asks for a demo: one journey, now a hot MQL.
        second = await submit_lead(client, hot_lead("Dana.Dupe@CORP.io"), task_queue, visibility=False)
        assert second.workflow_id == first.workflow_id
        assert second.run_id == first.run_id
        view = await wait_for(client, first.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        assert view.submissions == 2
        assert view.tier == "hot"
        assert "merged" in kinds(view)
        assert kinds(view).count("assigned") == 1
        assert len(parts.ledger.assignments_of(first.lead_id)) == 1

        history = await journey_handle(client, first.lead_id).fetch_history()
        started = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
        assert len(started) == 1


async def test_friday_evening_hot_lead_is_due_monday_morning(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    friday = next_local(await time_env.get_current_time(), FRIDAY, time(17, 30))
    monday = friday.astimezone(NEW_YORK).date() + timedelta(days=3)
    holiday_policy = policy.model_copy(
        update={"version": "test-monday-holiday", "calendar": policy.calendar.model_copy(update={"holidays": [monday]})}
    )
    expected = [
        (policy, "friday.evening@corp.io", datetime.combine(monday, time(10, 0), tzinfo=NEW_YORK)),
        (holiday_policy, "friday.holiday@corp.io", datetime.combine(monday + timedelta(days=1), time(10, 0), tzinfo=NEW_YORK)),
    ]
    await skip_to(time_env, friday)
    for index, (rules, email, due) in enumerate(expected):
        queue = f"{task_queue}-{index}"
        async with journey_worker(client, settings_for(queue, sqlite_url.replace(".db", f"{index}.db")), policy=rules):
            submitted = await submit_lead(client, hot_lead(email), queue, visibility=False)
            view = await wait_for(client, submitted.lead_id, lambda v: v.stage is Stage.ASSIGNED)
            assert view.log[0].at.astimezone(NEW_YORK).strftime("%a %H:%M") == "Fri 17:30"
            assert view.deadlines[Clock.FIRST_CONTACT] == due
            assert view.deadlines[Clock.ACCEPTANCE] == due - timedelta(minutes=30)


async def test_worker_restart_mid_journey_continues_from_history(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    settings = settings_for(task_queue, sqlite_url)
    # The first worker keeps no workflow cache, so no task is routed to its sticky queue
    # after it is gone (the test server never times a sticky queue out).
    async with running_worker(client, settings, policy=policy, max_cached_workflows=0):
        submitted, view = await submit_and_wait_assigned(client, hot_lead("restart@corp.io"), task_queue)
        owner = view.owner_id
        await act(client, submitted.lead_id, Accept(by=owner))
    # A brand-new worker (new process state, empty cache) replays the history and carries on.
    async with journey_worker(client, settings, policy=policy) as parts:
        await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        await act(client, submitted.lead_id, Qualify(by=owner, budget=True))
        await act(client, submitted.lead_id, Convert(by=owner))
        outcome = await journey_handle(client, submitted.lead_id).result()
        assert outcome.outcome == "converted"
        events = parts.ledger.events(submitted.lead_id)
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert [event["kind"] for event in events].count("assigned") == 1
        assert len(parts.ledger.assignments_of(submitted.lead_id)) == 1
