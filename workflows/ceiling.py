"""The ceiling of ``leadflow bench live``: a workflow shaped like a journey that decides nothing.

It takes the same messages and issues the same commands as a happy-path journey (a
signal-with-start, local activities, ordinary activities, timers started and cancelled,
validated updates) with empty bodies, so its throughput is what this Temporal server and
this machine allow for that shape. Run its worker with ``python -m workflows.ceiling``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

CEILING_TASK_QUEUE = "leadflow-ceiling"


class Shape(BaseModel):
    """How many of each command one journey issues (read off a real journey's history)."""

    local_activities: int
    activities: int
    timers: int
    updates: int


@activity.defn(name="ceiling_noop")
def noop(step: int) -> int:
    return step


@workflow.defn(name="Ceiling")
class CeilingWorkflow:
    """Same commands as a journey, nothing decided.

    A journey's deadlines are timers started in one workflow task and cancelled in a later
    one (when the rep acts), so the server records both; the ceiling's timers do the same.
    A timer started and cancelled within one task would never reach the server at all.
    """

    @workflow.init
    def __init__(self, shape: Shape) -> None:
        self._shape = shape
        self._updates = 0
        self._submitted = False
        self._timers_started = 0
        self._live_timers: list[asyncio.Task] = []

    @workflow.signal
    def submit(self, payload: str) -> None:
        self._submitted = True

    @workflow.update
    async def act(self, step: int) -> int:
        self._updates += 1
        # As a journey does per action: a ledger write (local activity), the old deadline
        # cancelled and, while the journey goes on, a fresh one.
        await workflow.execute_local_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        self._cancel_timer()
        if self._updates < self._shape.updates:
            self._start_timer()
        return self._updates

    @act.validator
    def _validate(self, step: int) -> None:
        if step < 0:
            raise ValueError("negative step")

    def _start_timer(self) -> None:
        if self._timers_started < self._shape.timers:
            self._timers_started += 1
            self._live_timers.append(asyncio.create_task(workflow.sleep(timedelta(hours=1))))

    def _cancel_timer(self) -> None:
        if self._live_timers:
            self._live_timers.pop(0).cancel()

    @workflow.run
    async def run(self, shape: Shape) -> int:
        await workflow.wait_condition(lambda: self._submitted)
        for step in range(max(0, shape.local_activities - shape.updates)):
            await workflow.execute_local_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        # The updates start all but one of the timers (the last update only cancels).
        for _ in range(max(1, shape.timers - max(0, shape.updates - 1))):
            self._start_timer()
        for step in range(shape.activities):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self._updates >= shape.updates)
        await workflow.wait_condition(workflow.all_handlers_finished)
        while self._live_timers:
            self._cancel_timer()
        return self._updates


async def _serve() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker

    from leadflow.runtime.settings import Settings
    from workflows.journey_client import connect

    client = await connect(Settings.from_env())
    worker = Worker(client, task_queue=CEILING_TASK_QUEUE, workflows=[CeilingWorkflow], activities=[noop],
                    activity_executor=ThreadPoolExecutor(16))
    await worker.run()


if __name__ == "__main__":
    from leadflow.runtime.clean_exit import run_then_exit

    run_then_exit(lambda: asyncio.run(_serve()))
