"""Live journeys on the time-skipping server write the ledger; the simulator then starts from
its open journeys (``simulate --from-ledger``) and backtests against it (``backtest``)."""

from __future__ import annotations

from datetime import time, timedelta

from activities.ledger import Ledger
from activities.report_source import ledger_report
from leadflow.actions import Accept, AttemptOutcome, LogAttempt, Qualify
from leadflow.journey import OWNED_STAGES, DecisionKind
from runtime.settings import SCENARIOS_DIR, Settings
from simulation.backtest import backtest, figures
from simulation.history_source import load_history
from simulation.model import JourneyModel
from simulation.runner import replication_seeds
from simulation.scenario import load_scenario
from simulation.start_state import from_ledger
from tests.journey_helpers import hot_lead, next_local, skip_to, wait_for
from worker import running_worker
from workflows import journey_client
from workflows.journey_client import act, show

TUESDAY = 1


async def _live_morning(env, policy, task_queue, sqlite_url, start):
    """Twelve hot leads over a morning; reps work eight of them; four wait untouched."""
    client = env.client
    ids = []
    async with running_worker(client, Settings(task_queue=task_queue, database_url=sqlite_url), policy=policy):
        for number in range(12):
            await skip_to(env, start + timedelta(minutes=20 * number))
            submitted = await journey_client.submit_lead(client, hot_lead(f"ledger.live{number}@corp.io"), task_queue,
                                                         visibility=False)
            ids.append(submitted.lead_id)
            view = await wait_for(client, submitted.lead_id, lambda v: v.owner_id is not None)
            if number >= 8:
                continue
            owner = view.owner_id
            await skip_to(env, start + timedelta(minutes=20 * number + 5))
            await act(client, submitted.lead_id, Accept(by=owner))
            outcome = AttemptOutcome.CONNECTED if number % 2 == 0 else AttemptOutcome.NO_ANSWER
            await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=outcome, minutes=7.5))
            if number % 4 == 0:
                await act(client, submitted.lead_id, Qualify(by=owner, budget=True, need="live"))
        await skip_to(env, start + timedelta(hours=5))
        views = [await show(client, lead_id) for lead_id in ids]
        for lead_id in ids:
            handle = journey_client.journey_handle(client, lead_id)
            if (await handle.describe()).status.name == "RUNNING":
                await handle.terminate("test finished")
    return views


async def test_a_simulation_starts_from_the_ledgers_open_journeys_and_backtests_against_it(
        time_env, task_queue, sqlite_url, policy):
    start = next_local(await time_env.get_current_time(), TUESDAY, time(9, 0))
    views = await _live_morning(time_env, policy, task_queue, sqlite_url, start)
    as_of = start + timedelta(hours=5)

    # The ledger keeps every open journey as the workflow last saw it, without personal data.
    state = from_ledger(sqlite_url, as_of)
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
    for lead_id, saved in by_lead.items():  # each carried on once, from where the ledger left it
        seqs = [entry.seq for entry in traces.get(lead_id, [])]
        assert seqs == list(range(saved.seq + 1, saved.seq + 1 + len(seqs))), lead_id

    # A backtest of that morning: the actual side is the ledger's closed-loop report.
    history = load_history(sqlite_url, policy, start.date(), (start + timedelta(days=1)).date(), sqlite_url)
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
