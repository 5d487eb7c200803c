"""Live journeys on the dev server write the ledger; the simulator then starts from its open
journeys (``simulate --from-ledger``) and backtests against it (``backtest``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from activities.ledger import Ledger
from activities.ledger_history import ledger_history, open_journeys
from activities.report_source import ledger_report
from leadflow.actions import Accept, AttemptOutcome, LogAttempt, Qualify
from leadflow.journey import OWNED_STAGES, DecisionKind, Stage
from runtime.settings import SCENARIOS_DIR, Settings
from simulation.backtest import backtest, figures
from simulation.model import JourneyModel
from simulation.runner import replication_seeds
from simulation.scenario import load_scenario
from simulation.start_state import StartState
from tests.journey_helpers import hot_lead, wait_for
from worker import running_worker
from workflows import journey_client
from workflows.journey_client import act, show

pytestmark = pytest.mark.devserver


async def _live_journeys(client, policy, task_queue, sqlite_url):
    """Twelve hot leads; reps work eight of them; four wait untouched."""
    ids = []
    run = uuid.uuid4().hex[:8]
    async with running_worker(client, Settings(task_queue=task_queue, database_url=sqlite_url), policy=policy):
        for number in range(12):
            submitted = await journey_client.submit_lead(client, hot_lead(f"ledger.live{number}.{run}@corp.io"),
                                                         task_queue)
            ids.append(submitted.lead_id)
            view = await wait_for(client, submitted.lead_id, lambda v: v.owner_id is not None)
            if number >= 8:
                continue
            owner = view.owner_id
            await act(client, submitted.lead_id, Accept(by=owner))
            outcome = AttemptOutcome.CONNECTED if number % 2 == 0 else AttemptOutcome.NO_ANSWER
            await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=outcome, minutes=7.5))
            if number % 4 == 0:
                await act(client, submitted.lead_id, Qualify(by=owner, budget=True, need="live"))
        views = [await show(client, lead_id) for lead_id in ids]
        for lead_id in ids:
            handle = journey_client.journey_handle(client, lead_id)
            if (await handle.describe()).status.name == "RUNNING":
                await handle.terminate("test finished")
    return views


async def test_a_simulation_starts_from_the_ledgers_open_journeys_and_backtests_against_it(
        dev_client, task_queue, sqlite_url, policy):
    started = datetime.now(timezone.utc)
    views = await _live_journeys(dev_client, policy, task_queue, sqlite_url)
    as_of = datetime.now(timezone.utc)

    # The ledger keeps every open journey as the workflow last saw it, without personal data.
    state = StartState(as_of=as_of, journeys=open_journeys(sqlite_url))
    assert {journey.lead_id for journey in state.journeys} == {view.lead_id for view in views}
    by_lead = {journey.lead_id: journey for journey in state.journeys}
    for view in views:
        saved = by_lead[view.lead_id]
        assert (saved.stage, saved.owner_id, saved.attempts) == (view.stage, view.owner_id, view.attempts)
        assert saved.deadlines == view.deadlines and saved.lead is None

    # Started from them: reps hold their leads, and the untouched ones get their first contact.
    scenario = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=14, warmup_days=7, replications=2)
    model = JourneyModel(scenario.model_copy(update={"start_state": state}), replication_seeds(1, 0), keep_traces=True)
    assert model.start == as_of and model.warmup == 0 and model.horizon == 7 * 24
    ledger = Ledger(sqlite_url)
    try:
        loads = {rep: count for rep, count in ledger.open_leads_by_rep().items() if count}
    finally:
        ledger.dispose()
    model.prepare()
    assert {rep: count for rep, count in model.routing.open_leads.items() if count} == loads
    model.run()
    untouched = [view.lead_id for view in views if view.stage in OWNED_STAGES and view.attempts == 0]
    assert len(untouched) == 4
    traces = model.traces or {}
    for lead_id in untouched:
        assert DecisionKind.ATTEMPT in {entry.kind for entry in traces[lead_id]}, lead_id
    assert all(views[number].stage is Stage.WORKING for number in (1, 3, 5, 7))
    # the cadence's next attempt is made for leads resumed between calls
    for number in (1, 3, 5, 7):  # by the same owner, not after a breach moved it on
        owner = views[number].owner_id
        attempts = [entry for entry in traces.get(views[number].lead_id, []) if entry.kind is DecisionKind.ATTEMPT]
        assert attempts and attempts[0].owner_id == owner, (views[number].lead_id, attempts[:1])
    for lead_id, saved in by_lead.items():  # each carried on once, from where the ledger left it
        seqs = [entry.seq for entry in traces.get(lead_id, [])]
        assert seqs == list(range(saved.seq + 1, saved.seq + 1 + len(seqs))), lead_id

    # A backtest of that morning: the actual side is the ledger's closed-loop report.
    history = ledger_history(sqlite_url, started.date(), (as_of + timedelta(days=1)).date(), policy)
    tiers = [tier.name for tier in policy.tiers]
    ledger = Ledger(sqlite_url)
    try:
        report = ledger_report(ledger, policy, history.since, history.until)
    finally:
        ledger.dispose()
    result = backtest(scenario, history, replications=3)
    actual = {row.metric: (row.actual, row.actual_n) for row in result.rows}
    assert actual == figures(report, tiers)
    assert actual["mql"] == (12.0, 12)
    assert all(row.interval is not None for row in result.rows if row.metric in ("mql", "sql"))
