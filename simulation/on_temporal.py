"""Replications as Temporal activities, so more machines mean more throughput.

``leadflow simulate|compare|capacity --on-temporal`` starts a ``SimulationSweep`` workflow on
the ``simulation`` task queue; it runs each replication as an activity, and any number of
``leadflow sim-worker`` processes, on any machines, pick them up. A replication is the same
pure function of (scenario, seed, replication) as locally, so the metrics are identical to a
local run with the same seed. Plot samples are thinned to keep payloads small, and a sweep's
result holds every replication: keep a sweep to a few hundred replications.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from leadflow.policy import Policy
    from simulation.runner import ReplicationOutcome, run_replication
    from simulation.scenario import LoadedScenario, Scenario

SIMULATION_TASK_QUEUE = "simulation"
_SAMPLES_OVER_THE_WIRE = 1_000  # plot samples per replication; payloads stay small


class ScenarioPayload(BaseModel):
    scenario: dict[str, Any]
    policy: dict[str, Any]
    source: str


class ReplicationRequest(BaseModel):
    setup: ScenarioPayload
    seed: int
    replication: int


class SweepInput(BaseModel):
    setup: ScenarioPayload
    seed: int
    replications: list[int]


@activity.defn(name="simulate_replication")
def simulate_replication(request: ReplicationRequest) -> ReplicationOutcome:
    """One replication, exactly as a local run would compute it."""
    setup = request.setup
    loaded = LoadedScenario(
        scenario=Scenario.model_validate(setup.scenario), policy=Policy.model_validate(setup.policy), source=setup.source
    )
    outcome = run_replication(loaded, request.seed, request.replication)
    return outcome.model_copy(
        update={
            "ttfc_business": outcome.ttfc_business[:_SAMPLES_OVER_THE_WIRE],
            "ttfc_wall": outcome.ttfc_wall[:_SAMPLES_OVER_THE_WIRE],
        }
    )


@workflow.defn(name="SimulationSweep")
class SimulationSweep:
    @workflow.run
    async def run(self, sweep: SweepInput) -> list[ReplicationOutcome]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        simulate_replication,
                        ReplicationRequest(setup=sweep.setup, seed=sweep.seed, replication=replication),
                        start_to_close_timeout=timedelta(hours=2),
                        retry_policy=RetryPolicy(maximum_attempts=3),
                        summary=f"replication {replication}",
                    )
                    for replication in sweep.replications
                )
            )
        )


def sim_worker(client: Client, identity: str | None = None, task_queue: str = SIMULATION_TASK_QUEUE) -> Worker:
    """A worker that runs one replication at a time (a replication keeps one core busy)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SimulationSweep],
        activities=[simulate_replication],
        activity_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="replication"),
        max_concurrent_activities=1,
        identity=identity,
    )


async def run_replications_on_temporal(
    client: Client, loaded: LoadedScenario, replications: int, seed: int, task_queue: str = SIMULATION_TASK_QUEUE
) -> list[ReplicationOutcome]:
    """Every replication's outcome, computed by whichever simulation workers are running."""
    setup = ScenarioPayload(
        scenario=loaded.scenario.model_dump(mode="json"), policy=loaded.policy.model_dump(mode="json"), source=loaded.source
    )
    replies = await client.execute_workflow(
        SimulationSweep.run,
        SweepInput(setup=setup, seed=seed, replications=list(range(replications))),
        id=f"simulation-{loaded.scenario.name}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    return sorted(replies, key=lambda outcome: outcome.replication)
