"""Record the golden histories in this folder from real runs of every journey path.

    python -m tests.histories.record

Run it when a workflow change is intentional (and patched: see "Changing workflow code
safely" in the README). It drives each path on the time-skipping test server, and the
continue-as-new nurture on the dev server with a lowered history threshold, then writes
each run's history as ``PATH__RUN.json``. Review the diff before committing: the new files
must still replay (``leadflow replay --history tests/histories``), and the old ones should
stay in a folder of their own for as long as journeys recorded with them can be open:
``previous/`` (started before the ``replay-stable-clock`` patch), ``updates/`` (rep actions
sent as updates, before the ``rep_action`` signal), ``before_waiting_line/`` (started before
the ``waiting-line`` patch).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify
from leadflow.journey import Stage
from leadflow.lead import EngagementEvent, EngagementKind, Lead
from leadflow.policy import Policy
from runtime.converter import journey_data_converter
from runtime.settings import DEFAULT_POLICY, DEMO_POLICY, Settings, load_policy_file
from tests.journey_helpers import hot_lead, next_local, skip_to, wait_for, warm_lead, warm_up_until_reassigned
from worker import running_worker
from workflows.dev_server import DevServer, free_port, test_server_path
from workflows.journey_client import act, connect, engage, journey_handle, submit_lead

HERE = Path(__file__).resolve().parent
TUESDAY = 1


async def _write(client: Client, name: str, lead_id: str, out: Path) -> list[Path]:
    """Every run of the lead's journey so far, oldest first, as ``NAME[.runN]__RUNID.json``."""
    handle = journey_handle(client, lead_id)
    latest = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    run_ids = [latest.original_execution_run_id]
    if latest.first_execution_run_id != latest.original_execution_run_id:  # it continued as new
        runs = [execution async for execution in client.list_workflows(f"WorkflowId = '{handle.id}'")]
        run_ids = [execution.run_id for execution in sorted(runs, key=lambda execution: execution.start_time)]
    written = []
    for index, run_id in enumerate(run_ids, start=1):
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        suffix = f".run{index}" if len(run_ids) > 1 else ""
        path = out / f"{name}{suffix}__{run_id}.json"
        path.write_text(history.to_json(), encoding="utf-8")
        written.append(path)
    return written


@asynccontextmanager
async def _golden_worker(policy: Policy) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server at a Tuesday 9:30 in New York, with a worker on ``policy``."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(test_server_path()), data_converter=journey_data_converter()
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(task_queue="golden", database_url=f"sqlite:///{folder}/ledger.db")
            await skip_to(env, next_local(await env.get_current_time(), TUESDAY, time(9, 30)))
            async with running_worker(env.client, settings, policy=policy):
                yield env
    finally:
        await env.shutdown()


async def _time_skipping_paths(policy: Policy, out: Path) -> list[Path]:
    written: list[Path] = []
    async with _golden_worker(policy) as env:
        client = env.client
        # hot lead, contacted inside the SLA
        hot = await submit_lead(client, hot_lead("golden.hot@example.com"), "golden", visibility=False)
        owner = (await wait_for(client, hot.lead_id, lambda v: v.stage is Stage.ASSIGNED)).owner_id
        await env.sleep(timedelta(minutes=20))
        await act(client, hot.lead_id, Accept(by=owner))
        await act(client, hot.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        written += await _write(client, "hot_contacted_in_sla", hot.lead_id, out)

        # SQL, then converted
        won = await submit_lead(client, hot_lead("golden.won@example.com"), "golden", visibility=False)
        owner = (await wait_for(client, won.lead_id, lambda v: v.stage is Stage.ASSIGNED)).owner_id
        await act(client, won.lead_id, Accept(by=owner))
        await act(client, won.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        await act(client, won.lead_id, Qualify(by=owner, budget=True, authority=True, need="forecasting"))
        await act(client, won.lead_id, Convert(by=owner, opportunity_id="OPP-1"))
        await journey_handle(client, won.lead_id).result()
        written += await _write(client, "sql_converted", won.lead_id, out)

        # disqualified
        lost = await submit_lead(client, hot_lead("golden.lost@example.com"), "golden", visibility=False)
        owner = (await wait_for(client, lost.lead_id, lambda v: v.stage is Stage.ASSIGNED)).owner_id
        await act(client, lost.lead_id, Accept(by=owner))
        await act(client, lost.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        await act(client, lost.lead_id, Disqualify(by=owner, reason="no_budget"))
        await journey_handle(client, lost.lead_id).result()
        written += await _write(client, "disqualified", lost.lead_id, out)

        # breach, escalation, reassignment
        warm = await submit_lead(client, warm_lead("golden.warm@example.com"), "golden", visibility=False)
        await wait_for(client, warm.lead_id, lambda v: v.stage is Stage.NURTURING)
        view = await warm_up_until_reassigned(env, client, warm.lead_id)
        await act(client, warm.lead_id, Accept(by=view.owner_id))
        written += await _write(client, "breach_escalation_reassignment", warm.lead_id, out)

        # unresponsive, recycled to nurture
        silent = await submit_lead(client, hot_lead("golden.silent@example.com"), "golden", visibility=False)
        owner = (await wait_for(client, silent.lead_id, lambda v: v.stage is Stage.ASSIGNED)).owner_id
        for attempt in range(policy.cadence.max_attempts):
            await act(client, silent.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.NO_ANSWER))
            if attempt < policy.cadence.max_attempts - 1:
                await env.sleep(timedelta(hours=20))
        await wait_for(client, silent.lead_id, lambda v: v.stage is Stage.NURTURING)
        written += await _write(client, "unresponsive_recycled", silent.lead_id, out)
        # an engagement event dated in the future, then one of today (bounded-engagement)
        written += await _future_dated_engagement(client, out)
        for lead_id in (hot.lead_id, warm.lead_id, silent.lead_id):
            await journey_handle(client, lead_id).terminate("recorded")
    return written


async def _future_dated_engagement(client: Client, out: Path) -> list[Path]:
    """A nurtured lead gets a page view dated 9999-12-31 (25 points), then a download of today
    (8): bounded, the two make 33 and an MQL; taken as sent (journeys recorded before the
    patch), the download is decayed to nothing against the year 9999 and the lead stays put."""
    lead = await submit_lead(client, warm_lead("golden.future@example.com"), "golden", visibility=False)
    await wait_for(client, lead.lead_id, lambda v: v.stage is Stage.NURTURING)
    far = datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc)
    await engage(client, lead.lead_id, EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=far, weight=25))
    await wait_for(client, lead.lead_id, lambda v: v.score >= 75 + 24)
    now = datetime.now(timezone.utc)
    await engage(client, lead.lead_id, EngagementEvent(kind=EngagementKind.CONTENT_DOWNLOAD, at=now))
    await asyncio.sleep(2)  # real seconds: the worker takes the signal (its outcome differs by code version)
    # Terminated before it is written, so the history shows the task after the download
    # issued no command: a code version that would have issued one cannot replay it.
    await journey_handle(client, lead.lead_id).terminate("recorded")
    return await _write(client, "future_dated_engagement", lead.lead_id, out)


async def _waiting_line_path(policy: Policy, out: Path) -> list[Path]:
    """One rep with one slot: the second lead waits in line and is served by signal when the
    first one closes (``waiting_line_served``); the first one's history holds the signal it
    sent (``waiting_line_freed_slot``)."""
    ana = next(rep for rep in policy.reps if rep.id == "rep-ana").model_copy(update={"capacity": 1})
    one_rep = policy.model_copy(update={"reps": [ana]})
    async with _golden_worker(one_rep) as env:
        client = env.client
        first = await submit_lead(client, hot_lead("golden.first@example.com"), "golden", visibility=False)
        await wait_for(client, first.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        waiting = await submit_lead(client, hot_lead("golden.waiting@example.com"), "golden", visibility=False)
        await wait_for(client, waiting.lead_id, lambda v: v.in_line)
        await env.sleep(timedelta(minutes=40))  # one safety-net check finds nobody free
        await act(client, first.lead_id, Accept(by=ana.id))
        await act(client, first.lead_id, LogAttempt(by=ana.id, outcome=AttemptOutcome.CONNECTED))
        await act(client, first.lead_id, Disqualify(by=ana.id, reason="no_budget"))
        await journey_handle(client, first.lead_id).result()
        await wait_for(client, waiting.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        await act(client, waiting.lead_id, Accept(by=ana.id))
        written = await _write(client, "waiting_line_freed_slot", first.lead_id, out)
        written += await _write(client, "waiting_line_served", waiting.lead_id, out)
        await journey_handle(client, waiting.lead_id).terminate("recorded")
    return written


async def _continue_as_new_path(policy: Policy, out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory() as folder:
        server = DevServer(Path(folder), port=free_port(), ui_port=None, log_path=Path(folder) / "temporal.log",
                           dynamic_config={"limit.historyCount.suggestContinueAsNew": 60})
        server.start()
        try:
            client = await connect(Settings(), target_host=server.address)
            settings = Settings(task_queue="golden", database_url=f"sqlite:///{folder}/ledger.db")
            async with running_worker(client, settings, policy=policy):
                lead = Lead(email="golden.nurture@example.com", title="Student", company_size=1, country="AQ", source="organic")
                submitted = await submit_lead(client, lead, "golden", events_per_run=30)
                await wait_for(client, submitted.lead_id, lambda v: v.stage is Stage.NURTURING)
                # 101 events, 30 a run: the fourth run handles the last 11 (so it has tasks to replay).
                for _ in range(100):
                    event = EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=datetime.now(timezone.utc), weight=1)
                    await engage(client, submitted.lead_id, event)
                await wait_for(client, submitted.lead_id, lambda v: v.submissions == 1 and v.score >= 99, timeout=30)
                written = await _write(client, "continue_as_new_nurture", submitted.lead_id, out)
                await journey_handle(client, submitted.lead_id).terminate("recorded")
            return written
        finally:
            server.stop()


async def record(out: Path = HERE) -> list[Path]:
    for old in out.glob("*.json"):
        old.unlink()
    written = await _time_skipping_paths(load_policy_file(DEFAULT_POLICY), out)
    written += await _waiting_line_path(load_policy_file(DEFAULT_POLICY), out)
    written += await _continue_as_new_path(load_policy_file(DEMO_POLICY), out)
    return written


if __name__ == "__main__":
    for path in asyncio.run(record()):
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
