"""The ceiling of ``leadflow bench live``: a workflow shaped like a journey that decides nothing.

It takes the same messages and issues the same commands as a happy-path journey (a
signal-with-start, local activities, ordinary activities, timers started and left to fire,
rep actions as signals answered through the memo and read with a query, search-attribute
upserts when visibility is on) with empty bodies, so its throughput is what this Temporal server and this machine allow
for that shape. Run its worker with ``python -m bench.ceiling``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel
from temporalio import activity, workflow

from workflows import search_attributes as sa

CEILING_TASK_QUEUE = "leadflow-ceiling"


class Shape(BaseModel):
    """How many of each command one journey issues (read off a real journey's history)."""

    local_activities: int
    activities: int
    timers: int
    actions: int  # rep actions: ``rep_action`` signals, each answered in the memo
    memo_upserts: int = 0
    upserts: int = 0  # search-attribute upserts (0 with visibility off), not counting patch markers
    patches: int = 0  # ``workflow.patched`` markers (each also upserts TemporalChangeVersion)


@activity.defn(name="ceiling_noop")
def noop(step: int) -> int:
    return step


@workflow.defn(name="Ceiling")
class CeilingWorkflow:
    """Same commands as a journey, nothing decided.

    A journey starts a timer per deadline and never cancels one (a disarmed deadline's timer
    fires later and is ignored; ``LeadJourneyWorkflow._wait_for_deadline`` says why), so the
    ceiling's timers are started as the journey's are and left pending when it completes.
    """

    @workflow.init
    def __init__(self, shape: Shape) -> None:
        self._shape = shape
        self._actions: deque[int] = deque()
        self._answered: set[int] = set()
        self._submitted = False
        self._timers: list[asyncio.Task] = []
        self._upserts = 0

    @workflow.signal
    def submit(self, payload: str) -> None:
        self._submitted = True

    @workflow.signal
    def act(self, step: int) -> None:
        self._actions.append(step)

    @workflow.query
    def answer(self, step: int) -> int | None:
        return len(self._answered) if step in self._answered else None

    async def _take_action(self, step: int) -> None:
        # As a journey does per action: a ledger write (an activity) and, while the journey
        # goes on, a fresh deadline.
        if self._shape.activities >= self._shape.actions:
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        else:
            await workflow.execute_local_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        if len(self._answered) + 1 < self._shape.actions:
            self._start_timer()
        self._upsert()  # each action moves a journey's stage
        self._answered.add(step)
        if len(self._answered) <= self._shape.memo_upserts:
            workflow.upsert_memo({"answers": {str(done): None for done in self._answered}})

    def _start_timer(self) -> None:
        if len(self._timers) < self._shape.timers:
            self._timers.append(asyncio.create_task(workflow.sleep(timedelta(hours=1))))

    def _upsert(self) -> None:
        """One upsert of the journey's four search attributes, while the shape asks for more."""
        if self._upserts < self._shape.upserts:
            self._upserts += 1
            workflow.upsert_search_attributes([
                sa.LEAD_STAGE.value_set(f"STEP{self._upserts}"),
                sa.LEAD_TIER.value_set("A"),
                sa.OWNER_ID.value_set("rep-ceiling"),
                sa.SLA_DUE_AT.value_set(datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=self._upserts)),
            ])

    @workflow.run
    async def run(self, shape: Shape) -> int:
        await workflow.wait_condition(lambda: self._submitted)
        for patch in range(shape.patches):
            workflow.patched(f"ceiling-{patch}")
        self._upsert()  # routed: stage, tier, owner and due time set
        actions_run_activities = shape.activities >= shape.actions
        for step in range(shape.local_activities - (0 if actions_run_activities else shape.actions)):
            await workflow.execute_local_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        # The actions start all but one of the timers (the last action starts none).
        for _ in range(max(1, shape.timers - max(0, shape.actions - 1))):
            self._start_timer()
        for step in range(shape.activities - (shape.actions if actions_run_activities else 0)):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        while len(self._answered) < shape.actions:  # one action at a time, as a journey takes them
            await workflow.wait_condition(lambda: bool(self._actions))
            await self._take_action(self._actions.popleft())
        while self._upserts < shape.upserts:
            self._upsert()
        return len(self._answered)


async def _serve() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from runtime.settings import current_settings
    from workflows.journey_client import connect

    client = await connect(current_settings())
    worker = Worker(client, task_queue=CEILING_TASK_QUEUE, workflows=[CeilingWorkflow], activities=[noop],
                    activity_executor=ThreadPoolExecutor(16))
    await worker.run()


if __name__ == "__main__":
    from runtime.clean_exit import run_then_exit
    from workflows.telemetry import use_logging_runtime

    use_logging_runtime()
    run_then_exit(lambda: asyncio.run(_serve()))
