"""Two independent discrete-event M/M/c queues: the references the simulator is validated against.

``simpy_mmc`` is a minimal raw SimPy model and ``ciw_mmc`` the same queue in Ciw, a second
library that shares no code with ours. Both use one convention, Ciw's ``method="Finish"``:
the run stops when ``warmup + customers`` customers have finished service; those are ordered by
arrival, the first ``warmup`` are dropped (they saw the empty start-up system) and the
statistics cover the remaining ``customers``. Service is first come, first served.

Ciw is a test/benchmark dependency only, so it is imported inside ``ciw_mmc``.
"""

from __future__ import annotations

import random
import time

import simpy
from pydantic import BaseModel, Field

from simulation.erlang import utilisation

__all__ = ["MMCResult", "simpy_mmc", "ciw_mmc"]


class MMCResult(BaseModel):
    """One replication of an M/M/c queue."""

    customers: int = Field(description="customers served after the warm-up, the ones the statistics cover")
    waited_fraction: float = Field(description="share of those customers whose wait in queue was > 0")
    mean_wait: float = Field(description="mean wait in queue before service, in the rates' time unit")
    wall_seconds: float = Field(description="wall-clock time of the run (time.perf_counter)")
    customers_per_s: float = Field(description="customers simulated, warm-up included, per wall-clock second")


def _check_run(arrival_rate: float, service_rate: float, servers: int, customers: int, warmup: int) -> None:
    utilisation(servers, arrival_rate, service_rate)  # validates servers and rates
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a whole number >= 1, got {customers!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a whole number >= 0, got {warmup!r}")


def _summarise(arrivals_and_waits: list[tuple[float, float]], warmup: int, wall_seconds: float) -> MMCResult:
    kept = [wait for _, wait in sorted(arrivals_and_waits)[warmup:]]
    return MMCResult(
        customers=len(kept),
        waited_fraction=sum(wait > 0 for wait in kept) / len(kept),
        mean_wait=sum(kept) / len(kept),
        wall_seconds=wall_seconds,
        customers_per_s=len(arrivals_and_waits) / wall_seconds if wall_seconds > 0 else float("inf"),
    )


def simpy_mmc(
    arrival_rate: float, service_rate: float, servers: int, customers: int, seed: int, warmup: int = 0
) -> MMCResult:
    """Simulate an M/M/c queue with raw SimPy (one ``simpy.Resource`` of capacity ``servers``)."""
    _check_run(arrival_rate, service_rate, servers, customers, warmup)
    started = time.perf_counter()
    total = warmup + customers
    rng = random.Random(seed)
    env = simpy.Environment()
    team = simpy.Resource(env, capacity=servers)
    finished: list[tuple[float, float]] = []
    enough = env.event()

    def customer():
        arrived = env.now
        with team.request() as turn:
            yield turn
            waited = env.now - arrived
            yield env.timeout(rng.expovariate(service_rate))
        finished.append((arrived, waited))
        if len(finished) == total:
            enough.succeed()

    def source():
        while True:
            yield env.timeout(rng.expovariate(arrival_rate))
            env.process(customer())

    env.process(source())
    env.run(until=enough)
    return _summarise(finished, warmup, time.perf_counter() - started)


def ciw_mmc(
    arrival_rate: float, service_rate: float, servers: int, customers: int, seed: int, warmup: int = 0
) -> MMCResult:
    """Simulate the same M/M/c queue with Ciw. ``ciw.seed`` reseeds the global ``random`` module."""
    import ciw

    _check_run(arrival_rate, service_rate, servers, customers, warmup)
    started = time.perf_counter()
    ciw.seed(seed)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=service_rate)],
        number_of_servers=[servers],
    )
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(warmup + customers, method="Finish")
    finished = [
        (record.arrival_date, record.waiting_time)
        for record in sim.get_all_records()
        if record.record_type == "service"
    ]
    wall_seconds = time.perf_counter() - started
    if len(finished) != warmup + customers:
        raise RuntimeError(f"Ciw finished {len(finished)} customers, expected {warmup + customers}")
    return _summarise(finished, warmup, wall_seconds)
