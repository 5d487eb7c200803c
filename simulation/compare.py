"""Compare two scenarios on common random numbers: paired differences with intervals."""

from __future__ import annotations

from collections.abc import Callable

from simulation.results import ComparisonResult
from simulation.runner import Backend, ReplicationOutcome, simulate
from simulation.scenario import LoadedScenario
from simulation.statistics import paired_difference


def compare(
    a: LoadedScenario,
    b: LoadedScenario,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    on_done: Callable[[ReplicationOutcome], None] | None = None,
    backend: Backend | None = None,
) -> ComparisonResult:
    """Run A and B with the same seed (the same leads) and report B minus A per metric."""
    replications = replications or max(a.scenario.replications, b.scenario.replications)
    seed = a.scenario.seed if seed is None else seed
    result_a, outcomes_a = simulate(a, replications, seed, workers, on_done, backend)
    result_b, outcomes_b = simulate(b, replications, seed, workers, on_done, backend)
    differences = {}
    for name in sorted(set(result_a.metrics) & set(result_b.metrics)):
        values_a = [outcome.metrics[name] for outcome in outcomes_a]
        values_b = [outcome.metrics[name] for outcome in outcomes_b]
        differences[name] = paired_difference(values_a, values_b)
    return ComparisonResult(a=result_a, b=result_b, differences=differences)
