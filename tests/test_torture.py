"""Journeys on a starved worker: the configuration that broke them, made the normal case.

Under CPU contention a workflow task can take longer than its timeout, and with a tiny
workflow cache nearly every task is a full replay. Code that issues its commands in a
different order live and on replay fails there, and only there. This test runs 150
journeys that way on the real dev server, with search attributes on:

* two CPU hogs for the whole run, a worker that caches 10 workflows while 25 journeys run at
  once (so most tasks replay the journey from the start), and a 2 s workflow-task timeout,
  so tasks time out and are retried;
* scripted reps who accept, log attempts and qualify, slow ones who breach, an absent one
  whose leads are escalated and reassigned; engagement signals racing the SLA timers; a
  query on every lead every two seconds; the demo policy's windows stretched 1.5 times;

then checks every journey reached the outcome its script implies, no workflow task failed
for any reason but a timeout, and ``leadflow replay --query`` replays every run, open and
closed, without a single non-determinism. Every ``LEADFLOW_TORTURE_*`` setting below can
be changed to explore harsher runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from leadflow.actions import LogAttempt
from leadflow.cli.demo import REP_DELAY_SECONDS, REP_STYLE, ScriptedLead, next_rep_action, synthetic_leads
from leadflow.journey import Stage
from leadflow.lead import EngagementEvent, EngagementKind
from leadflow.decide import decide, new_journey
from leadflow.journey import EngagementReceived, LeadSubmitted
from leadflow.policy import Policy, parse_policy
from leadflow.runtime.id_key import lead_id_of
from leadflow.runtime.settings import REPO_ROOT, Settings
from worker import running_worker
from workflows import search_attributes as sa
from workflows.journey_client import JourneyError, act, engage, show
from workflows.journey_io import JourneyInput
from workflows.lead_journey import LeadJourneyWorkflow
from workflows.telemetry import CORE_LOGGER

pytestmark = [
    pytest.mark.devserver,
    pytest.mark.timeout(600),
]

# Overridable to explore harsher settings; the defaults are what CI runs.
JOURNEYS = int(os.environ.get("LEADFLOW_TORTURE_JOURNEYS", "150"))
CACHED_WORKFLOWS = int(os.environ.get("LEADFLOW_TORTURE_CACHE", "10"))
TASK_TIMEOUT = timedelta(seconds=float(os.environ.get("LEADFLOW_TORTURE_TASK_TIMEOUT", "2")))
CPU_HOGS = int(os.environ.get("LEADFLOW_TORTURE_HOGS", "2"))
TIME_LIMIT_SECONDS = float(os.environ.get("LEADFLOW_TORTURE_TIME_LIMIT", "300"))
CONCURRENT_JOURNEYS = int(os.environ.get("LEADFLOW_TORTURE_CONCURRENCY", "25"))
STRETCH = float(os.environ.get("LEADFLOW_TORTURE_STRETCH", "1.5"))
QUERY_EVERY_SECONDS = float(os.environ.get("LEADFLOW_TORTURE_QUERY_EVERY", "2"))


@contextmanager
def cpu_hogs(count: int = 2) -> Iterator[None]:
    """Keep ``count`` cores busy, as another tenant of the machine would."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def stretched(policy: Policy, factor: float) -> Policy:
    """The demo policy with every SLA window and cadence step ``factor`` times longer.

    The demo's windows (a few seconds) are sized for an idle machine; on a starved one a
    fast rep would breach too. Stretched, only the slow and absent reps breach, escalate
    and get their leads reassigned, as the script means them to.
    """
    data = policy.model_dump(mode="json")
    for tier in data["tiers"]:
        tier["accept_within_hours"] *= factor
        tier["first_contact_within_hours"] *= factor
    data["cadence"]["schedule"] = [step * factor for step in data["cadence"]["schedule"]]
    data["cadence"]["disposition_within_hours"] *= factor
    data["version"] = f"{policy.version}-x{factor:g}"
    return parse_policy(data)


def qualifies(person: ScriptedLead, policy: Policy) -> bool:
    """Whether the lead's submission and engagement take it past nurture, by the core's rules."""
    at = datetime(2026, 1, 6, 10, tzinfo=timezone.utc)
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=person.lead), at, policy)
    for kind in person.engagement:
        state, _ = decide(state, EngagementReceived(event=EngagementEvent(kind=kind, at=at)), at, policy)
    return state.stage is not Stage.NURTURING


def expected_outcome(person: ScriptedLead, policy: Policy) -> str:
    """Where the script takes a lead: one that does not qualify stays in nurture, never
    answering recycles it, else it converts or not."""
    if not qualifies(person, policy):
        return "nurturing"
    if person.answers_on_attempt is None:
        return "recycled"
    return "converted" if person.converts else "disqualified"


async def _start(client, person: ScriptedLead, task_queue: str) -> None:
    """``submit_lead`` with a short workflow-task timeout, so a starved task times out."""
    lead_id = lead_id_of(person.lead)
    await client.start_workflow(
        LeadJourneyWorkflow.run,
        JourneyInput(lead_id=lead_id, visibility=True),
        id=f"lead-{lead_id}",
        task_queue=task_queue,
        task_timeout=TASK_TIMEOUT,
        start_signal="submit",
        start_signal_args=[person.lead],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.LEAD_STAGE, "NEW")]),
    )


async def _play(client, person: ScriptedLead, task_queue: str, deadline: float, rng: random.Random) -> None:
    """Submit, then act as the owner would, with engagement arriving whenever it likes."""
    await _start(client, person, task_queue)
    submitted_at = time.monotonic()
    lead_id = lead_id_of(person.lead)
    for kind in person.engagement:
        await engage(client, lead_id, EngagementEvent(kind=kind, at=datetime.now(timezone.utc)))
    owner_seen, owner_since, attempts = None, 0.0, 0
    while time.monotonic() < deadline:
        await asyncio.sleep(QUERY_EVERY_SECONDS)
        try:
            view = await show(client, lead_id)
        except JourneyError:
            continue
        if view.stage in (Stage.CONVERTED, Stage.DISQUALIFIED):
            person.outcome = view.stage.lower()
            return
        if view.stage is Stage.NURTURING:
            if view.log and view.log[-1].kind == "recycled":
                person.outcome = "recycled"
                return
            if not any(entry.kind == "assigned" for entry in view.log) and time.monotonic() > submitted_at + 20:
                person.outcome = "nurturing"  # its engagement is in and it never qualified
                return
            continue
        if rng.random() < 0.15:  # a page view while SLA timers run: a signal racing a timer
            await engage(client, lead_id, EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=datetime.now(timezone.utc)))
        owner = view.owner_id
        if owner != owner_seen:
            owner_seen, owner_since, attempts = owner, time.monotonic(), 0
        style = REP_STYLE.get(owner or "", "absent")
        if owner is None or style == "absent" or time.monotonic() - owner_since < REP_DELAY_SECONDS[style]:
            continue
        action, attempts = next_rep_action(view, person, owner, attempts)
        if isinstance(action, LogAttempt):
            owner_since = time.monotonic() - REP_DELAY_SECONDS[style] + 2.0
        try:
            if action is not None:
                await act(client, lead_id, action)
        except JourneyError:
            continue  # the journey moved on (reassigned, breached) between the look and the act
    person.outcome = "unfinished"


def _task_problems(history) -> Counter:
    """Workflow-task timeouts and failures (by cause) in one history."""
    found: Counter = Counter()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            found["timed_out"] += 1
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            found[f"failed:{event.workflow_task_failed_event_attributes.cause}"] += 1
    return found


async def test_journeys_survive_a_starved_worker_with_no_cache(dev_server, dev_client, demo_policy, tmp_path, capfd, caplog):
    queue = f"torture-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=queue, database_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    people = synthetic_leads(JOURNEYS, seed=int(os.environ.get("LEADFLOW_TORTURE_SEED", "12")))
    rng = random.Random(5)
    with cpu_hogs(CPU_HOGS):
        policy = stretched(demo_policy, STRETCH)
        async with running_worker(dev_client, settings, policy=policy,
                                  max_cached_workflows=CACHED_WORKFLOWS) as parts:
            started = time.monotonic()
            deadline = started + TIME_LIMIT_SECONDS
            gate = asyncio.Semaphore(CONCURRENT_JOURNEYS)

            async def play(person: ScriptedLead, seed: float) -> None:
                async with gate:
                    try:  # a journey that stops answering (stuck on a failing task) must not hang the run
                        await asyncio.wait_for(_play(dev_client, person, queue, deadline, random.Random(seed)),
                                               timeout=max(deadline - time.monotonic(), 0) + 30)
                    except asyncio.TimeoutError:
                        person.outcome = "unfinished"

            async def report() -> None:  # progress, for whoever reads the CI log
                while True:
                    await asyncio.sleep(30)
                    done = sum(person.outcome is not None for person in people)
                    print(f"torture: {done}/{len(people)} journeys finished after {time.monotonic() - started:.0f} s", flush=True)

            reporter = asyncio.create_task(report())
            await asyncio.gather(*(play(person, rng.random()) for person in people))
            reporter.cancel()
            print(f"torture: all {len(people)} journeys played in {time.monotonic() - started:.0f} s")
            ledger_kinds = Counter(event["kind"] for person in people for event in parts.ledger.events(lead_id_of(person.lead)))

    wrong = [(lead_id_of(person.lead), expected_outcome(person, policy), person.outcome) for person in people
             if person.outcome != expected_outcome(person, policy)]
    assert not wrong, f"{len(wrong)} journeys off script (lead, expected, got): {wrong[:10]}"
    # The run exercised what it claims to: breaches, escalations, reassignments.
    assert ledger_kinds["breach"] > 0 and ledger_kinds["escalated"] > 0 and ledger_kinds["reassigned"] > 0, ledger_kinds

    problems: Counter = Counter()
    query = f"WorkflowType = 'LeadJourney' AND TaskQueue = '{queue}'"
    async for execution in dev_client.list_workflows(query):
        history = await dev_client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        problems += _task_problems(history)
    core_lines = [record for record in caplog.records if record.name == CORE_LOGGER.name]
    print(f"workflow tasks: {dict(problems)}; ledger: {dict(ledger_kinds)}; SDK core log lines: {len(core_lines)}")
    # Whatever the SDK core logged went through Python logging, none of it to stdout.
    assert "temporalio_sdk_core" not in capfd.readouterr().out
    assert problems["timed_out"] > 0, "no workflow task timed out: the run did not starve the worker"
    assert set(problems) == {"timed_out"}, f"workflow tasks failed: {dict(problems)}"

    replay = subprocess.run(
        [sys.executable, "-m", "leadflow.cli.main", "replay", "--query", query],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
        env={**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "TEMPORAL_NAMESPACE": "default"},
    )
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-2000:]
    summary = replay.stdout.strip().splitlines()[-1]
    replayed = int(summary.split()[0])
    assert replayed >= JOURNEYS and f"{replayed} ok, 0 failed" in summary, summary
