"""Replications: independent random streams, common random numbers, parallel processes.

Replication ``r`` of seed ``s`` always draws from the same streams (arrivals, people,
names), whichever scenario it runs and however many worker processes share the work, so
results are identical for the same seed at any ``--workers``, and two scenarios compared
with the same seed see the same leads (common random numbers).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext

import numpy as np
from pydantic import BaseModel

from simulation.life_table import LifeTable
from simulation.model import JourneyModel
from simulation.results import SHARE_METRICS, Estimate, SimulationResult, Timeline
from simulation.scenario import LoadedScenario
from simulation.statistics import estimate, pooled_ttfc, steady_state

# Worker processes are forked from a clean server process, never from the caller: a caller
# with threads (the Temporal client's runtime, a web server, a test runner) may hold locks
# at the fork, and a child that inherits them held hangs (seen: a child stuck in the garbage
# collection that starts a replication). The server imports the simulator once, so a
# process does not import it again.
_PROCESSES: BaseContext
if "forkserver" in multiprocessing.get_all_start_methods():
    _PROCESSES = multiprocessing.get_context("forkserver")
    multiprocessing.set_forkserver_preload(["simulation.runner"])
else:  # Windows: each process starts afresh
    _PROCESSES = multiprocessing.get_context("spawn")


def process_pool(workers: int, initializer: Callable[[], None] | None = None) -> ProcessPoolExecutor:
    """A pool of ``workers`` simulator processes (see ``_PROCESSES``)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=_PROCESSES, initializer=initializer)


class ReplicationOutcome(BaseModel):
    """What one replication measured (plain data: it also travels as an activity result)."""

    replication: int
    metrics: dict[str, float]
    timeline: tuple[list[float], list[float], list[float], list[float]]  # hours, queue, utilisation, MQLs
    daily: tuple[list[float], list[float]] = ([], [])  # per day: mean queue depth, MQLs
    ttfc_business: list[float]
    ttfc_wall: list[float]
    leads_simulated: int
    # The replication's TTFC life tables (``simulation.life_table``), non-empty bins only:
    # business-hours events, business-hours censored, wall events, wall censored.
    ttfc_tables: tuple[dict[int, int], dict[int, int], dict[int, int], dict[int, int]] = ({}, {}, {}, {})

    def life_tables(self) -> tuple[LifeTable, LifeTable]:
        business_events, business_censored, wall_events, wall_censored = self.ttfc_tables
        return LifeTable.from_sparse(business_events, business_censored), LifeTable.from_sparse(wall_events, wall_censored)


def replication_seeds(seed: int, replication: int) -> tuple[int, int, int]:
    arrivals, people, names = np.random.SeedSequence(entropy=seed, spawn_key=(replication,)).generate_state(3)
    return int(arrivals), int(people), int(names)


def run_replication(loaded: LoadedScenario, seed: int, replication: int) -> ReplicationOutcome:
    model = JourneyModel(loaded, replication_seeds(seed, replication))
    stats = model.run()
    return ReplicationOutcome(
        replication=replication,
        metrics=stats.metrics(),
        timeline=stats.timeline(),
        daily=stats.daily(),
        ttfc_business=list(stats.ttfc_business),
        ttfc_wall=list(stats.ttfc_wall),
        leads_simulated=model.leads_simulated,
        ttfc_tables=(*stats.ttfc_business_table.sparse(), *stats.ttfc_wall_table.sparse()),
    )


def run_replications(
    loaded: LoadedScenario,
    replications: int,
    seed: int,
    workers: int = 1,
    on_done: Callable[[ReplicationOutcome], None] | None = None,
    first: int = 0,
) -> list[ReplicationOutcome]:
    """The outcomes of replications ``first`` .. ``replications - 1``, in replication order."""
    outcomes: list[ReplicationOutcome] = []
    if workers <= 1:
        for replication in range(first, replications):
            outcomes.append(run_replication(loaded, seed, replication))
            if on_done:
                on_done(outcomes[-1])
    else:
        with process_pool(workers) as pool:
            futures = [pool.submit(run_replication, loaded, seed, replication) for replication in range(first, replications)]
            for future in futures:
                outcomes.append(future.result())
                if on_done:
                    on_done(outcomes[-1])
    return outcomes


class ReplicationPool:
    """Worker processes kept across several runs, replication ``r`` always on process
    ``r % workers``: what a process remembers of a replication (its prior history,
    ``simulation.prior_history``) is there when another run asks for it again, as a
    capacity search does at every headcount. Results do not depend on it."""

    def __init__(self, workers: int, initializer: Callable[[], None] | None = None):
        self.workers = max(1, workers)
        self.processes = [process_pool(1, initializer)
                          for _ in range(self.workers)] if self.workers > 1 else []

    def __enter__(self) -> ReplicationPool:
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes:
            process.shutdown(cancel_futures=True)

    def run(self, loaded: LoadedScenario, replications: int, seed: int, workers: int = 1,
            on_done: Callable[[ReplicationOutcome], None] | None = None) -> list[ReplicationOutcome]:
        """Like ``run_replications`` (``workers`` is the pool's own)."""
        if not self.processes:
            return run_replications(loaded, replications, seed, 1, on_done)
        futures = [self.processes[replication % self.workers].submit(run_replication, loaded, seed, replication)
                   for replication in range(replications)]
        outcomes: list[ReplicationOutcome] = []
        for future in futures:
            outcomes.append(future.result())
            if on_done:
                on_done(outcomes[-1])
        return outcomes


def summarise(loaded: LoadedScenario, outcomes: list[ReplicationOutcome], seed: int, wall_seconds: float) -> SimulationResult:
    names = sorted({name for outcome in outcomes for name in outcome.metrics})
    metrics: dict[str, Estimate] = {}
    for name in names:
        values = [outcome.metrics[name] for outcome in outcomes if name in outcome.metrics]
        if len(values) == len(outcomes):
            metrics[name] = estimate(values, bounds=(0.0, 1.0) if name in SHARE_METRICS else (0.0, math.inf))  # none negative
    # Time to first contact: pooled over replications, not averaged (``pooled_ttfc``).
    metrics.update(pooled_ttfc([outcome.life_tables() for outcome in outcomes]))
    hours = outcomes[0].timeline[0]
    timeline = Timeline(
        hours=hours,
        queue_depth=[float(v) for v in np.mean([o.timeline[1] for o in outcomes], axis=0)],
        utilisation=[float(v) for v in np.mean([o.timeline[2] for o in outcomes], axis=0)],
        warmup_hours=_measured_hours(loaded)[0],
    )
    return SimulationResult(
        scenario=loaded.scenario.name,
        replications=len(outcomes),
        leads_simulated=sum(outcome.leads_simulated for outcome in outcomes),
        wall_seconds=wall_seconds,
        seed=seed,
        metrics=metrics,
        distributions={
            "ttfc_business_hours": [v for o in outcomes for v in o.ttfc_business],
            "ttfc_wall_hours": [v for o in outcomes for v in o.ttfc_wall],
        },
        timeline=timeline,
        steady_state=steady_state([o.daily for o in outcomes], *_measured_hours(loaded)),
    )


def _measured_hours(loaded: LoadedScenario) -> tuple[float, float]:
    """(warm-up, horizon) in hours as the replications ran: no warm-up from the ledger's open journeys."""
    scenario = loaded.scenario
    if loaded.start_state is not None:
        return 0.0, (scenario.horizon_days - scenario.warmup_days) * 24
    return scenario.warmup_days * 24, scenario.horizon_days * 24


Backend = Callable[[LoadedScenario, int, int, int, "Callable[[ReplicationOutcome], None] | None"], list[ReplicationOutcome]]


def simulate(
    loaded: LoadedScenario,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    on_done: Callable[[ReplicationOutcome], None] | None = None,
    backend: Backend | None = None,
) -> tuple[SimulationResult, list[ReplicationOutcome]]:
    """Run a scenario's replications (here, or on ``backend``) and summarise them with 95% intervals."""
    replications = replications or loaded.scenario.replications
    seed = loaded.scenario.seed if seed is None else seed
    started = time.perf_counter()
    outcomes = (backend or run_replications)(loaded, replications, seed, workers, on_done)
    return summarise(loaded, outcomes, seed, time.perf_counter() - started), outcomes
