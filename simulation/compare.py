"""Compare two scenarios on common random numbers: paired differences with intervals.

Every metric both runs report is tested (paired t test over replications) and the family
is held at 5% with Holm's step-down, so that among twenty metrics one is not called
different by chance. With ``precision``, replications are added in batches until the
chosen metric's difference is known to that relative precision.
"""

from __future__ import annotations

from collections.abc import Callable

from simulation.results import SHARE_METRICS, ComparisonResult
from simulation.runner import Backend, ReplicationOutcome, simulate
from simulation.scenario import LoadedScenario
from simulation.statistics import holm, paired_difference, pooled_ttfc_differences

PRECISION_BATCH = 10  # replications added per round when running to a precision


def compare(
    a: LoadedScenario,
    b: LoadedScenario,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    on_done: Callable[[ReplicationOutcome], None] | None = None,
    backend: Backend | None = None,
    precision: float | None = None,
    precision_metric: str = "sla_attainment",
    max_replications: int = 200,
) -> ComparisonResult:
    """Run A and B with the same seed (the same leads) and report B minus A per metric.

    ``precision``: from at least ``PRECISION_BATCH`` pairs on, keep adding replications (up
    to ``max_replications``) until the 95% interval of ``precision_metric``'s difference is
    no wider, either side, than ``precision`` times A's mean of it.
    """
    replications = replications or max(a.scenario.replications, b.scenario.replications)
    if precision is not None:  # a variance from a handful of pairs is too rough to stop on
        replications = max(replications, PRECISION_BATCH)
    seed = a.scenario.seed if seed is None else seed
    result_a, outcomes_a = simulate(a, replications, seed, workers, on_done, backend)
    result_b, outcomes_b = simulate(b, replications, seed, workers, on_done, backend)
    rule = None
    if precision is not None:
        while True:
            half = _half_width(outcomes_a, outcomes_b, precision_metric)
            reference = abs(result_a.metrics[precision_metric].mean) if precision_metric in result_a.metrics else 0.0
            reached = half is not None and half <= precision * reference
            if reached or len(outcomes_a) >= max_replications:
                rule = (f"{precision_metric}: half-width of the difference <= {precision:g} x A's mean "
                        f"{'reached' if reached else 'NOT reached'} after {len(outcomes_a)} replications")
                break
            more = min(PRECISION_BATCH, max_replications - len(outcomes_a))
            outcomes_a += _more(a, outcomes_a, more, seed, workers, on_done, backend)
            outcomes_b += _more(b, outcomes_b, more, seed, workers, on_done, backend)
            result_a, result_b = _summary(a, outcomes_a, seed), _summary(b, outcomes_b, seed)
    # Time to first contact: the pooled figures simulate shows, B - A by the paired jackknife.
    pooled = pooled_ttfc_differences([o.life_tables() for o in outcomes_a], [o.life_tables() for o in outcomes_b])
    differences = {}
    for name in sorted(set(result_a.metrics) & set(result_b.metrics)):
        if name in pooled:
            differences[name] = pooled[name]
        elif all(name in outcome.metrics for outcome in outcomes_a + outcomes_b):
            differences[name] = paired_difference([o.metrics[name] for o in outcomes_a], [o.metrics[name] for o in outcomes_b],
                                                  bounds=(-1.0, 1.0) if name in SHARE_METRICS else None)
    return ComparisonResult(a=result_a, b=result_b, differences=holm(differences), precision=rule)


def _half_width(outcomes_a: list[ReplicationOutcome], outcomes_b: list[ReplicationOutcome], name: str) -> float | None:
    if not all(name in outcome.metrics for outcome in outcomes_a + outcomes_b):
        return None
    low, high = paired_difference([o.metrics[name] for o in outcomes_a], [o.metrics[name] for o in outcomes_b]).difference.ci95
    return (high - low) / 2


def _more(loaded: LoadedScenario, done: list[ReplicationOutcome], count: int, seed: int, workers: int,
          on_done: Callable[[ReplicationOutcome], None] | None, backend: Backend | None) -> list[ReplicationOutcome]:
    """``count`` more replications, numbered after those done (the same streams in A and B)."""
    from simulation.runner import run_replications

    start = len(done)
    if backend is None:
        fresh = run_replications(loaded, start + count, seed, workers, on_done, first=start)
    else:  # a sweep on Temporal runs replications 0..n-1: the earlier ones again (same results), then these
        fresh = backend(loaded, start + count, seed, workers, on_done)[start:]
    return fresh


def _summary(loaded: LoadedScenario, outcomes: list[ReplicationOutcome], seed: int):
    from simulation.runner import summarise

    return summarise(loaded, outcomes, seed, wall_seconds=0.0)
