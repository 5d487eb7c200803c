"""A nurture that receives more than 5,000 engagement signals stays under history limits.

A journey continues as new after handling ``EVENTS_PER_RUN`` events (250), so it must do
so about twenty times while signals keep arriving; every signal must still count exactly
once, and no run comes near the server's history limits.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from leadflow.journey import Stage
from leadflow.lead import EngagementEvent, EngagementKind, Lead
from tests.journey_helpers import wait_for
from tests.test_dev_server import settings_for, unique
from worker import running_worker
from workflows.journey_client import engage, journey_handle, submit_lead

pytestmark = pytest.mark.devserver
SIGNALS = 5_001
BURST = 100


async def test_five_thousand_signals_continue_as_new_and_none_is_lost(dev_client, demo_policy, tmp_path):
    queue = unique("signals")
    async with running_worker(dev_client, settings_for(queue, tmp_path), policy=demo_policy):
        # Poor fit: never an MQL however engaged, so it nurtures throughout.
        lead = Lead(email=f"{queue}@corp.io", title="Student", company_size=1, country="AQ", source="organic")
        submitted = await submit_lead(dev_client, lead, queue)
        fit = (await wait_for(dev_client, submitted.lead_id, lambda v: v.stage is Stage.NURTURING)).fit_score
        sent_at = datetime.now(timezone.utc)  # one instant for all: decay is then the same for every signal
        gate = asyncio.Semaphore(64)

        async def send() -> None:
            async with gate:
                await engage(dev_client, submitted.lead_id, EngagementEvent(kind=EngagementKind.PAGE_VIEW, at=sent_at, weight=1))

        # In bursts, as engagement really arrives: under an unbroken stream of signals the
        # server refuses continue-as-new while signals are buffered (so nothing is lost),
        # which postpones it until the stream pauses.
        for start in range(0, SIGNALS, BURST):
            await asyncio.gather(*(send() for _ in range(min(BURST, SIGNALS - start))))
            await asyncio.sleep(0.2)
        print(f"injected: {SIGNALS} engagement signals into {submitted.workflow_id}")

        # With a 14-day half-life, a few minutes of decay costs far less than one signal's point.
        view = await wait_for(dev_client, submitted.lead_id, lambda v: v.score - fit > SIGNALS - 1, timeout=180)
        assert SIGNALS - 1 < view.score - fit <= SIGNALS
        assert view.stage is Stage.NURTURING and view.submissions == 1

        runs = [execution async for execution in dev_client.list_workflows(f"WorkflowId = '{submitted.workflow_id}'")]
        continued = [execution for execution in runs if execution.status and execution.status.name == "CONTINUED_AS_NEW"]
        longest = max([len((await dev_client.get_workflow_handle(r.id, run_id=r.run_id).fetch_history()).events) for r in runs])
        print(f"verified: score {view.score - fit:.3f} from {SIGNALS} signals over {len(runs)} runs, longest run {longest} events")
        assert len(continued) >= 10, f"only {len(continued)} continue-as-new for {SIGNALS} signals"
        assert longest < 10_240  # the server warns at 10,240 events and refuses more than 51,200
        await journey_handle(dev_client, submitted.lead_id).terminate("test finished")
