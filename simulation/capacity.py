"""Capacity planning: the smallest team that meets a target, and the curve searched."""

from __future__ import annotations

from collections.abc import Callable

from leadflow.policy import Policy
from simulation.prior_history import keep_priors, priors_kept
from simulation.results import CapacityPoint, CapacityResult
from simulation.runner import Backend, ReplicationOutcome, ReplicationPool, simulate
from simulation.scenario import LoadedScenario

LOWER_IS_BETTER = {"ttfc_p50", "ttfc_p90", "ttfc_p99", "ttfc_wall_p50", "ttfc_wall_p90", "ttfc_wall_p99", "ttfc_mean",
                   "ttfc_wall_mean", "breaches", "escalations", "reassignments", "queue_depth_max", "queue_depth_mean",
                   "rep_utilisation", "recycled"}


def with_headcount(policy: Policy, headcount: int) -> Policy:
    """The roster grown or shrunk to ``headcount`` reps, cloning reps in roster order."""
    roster = policy.reps
    reps = []
    for index in range(headcount):
        base = roster[index % len(roster)]
        copy_number = index // len(roster)
        reps.append(base if copy_number == 0 else base.model_copy(update={"id": f"{base.id}-{copy_number + 1}"}))
    return policy.model_copy(update={"reps": reps})


class MetricNotMeasured(ValueError):
    """The capacity search's metric is not among what a simulation measured."""


def capacity(
    loaded: LoadedScenario,
    target: float,
    metric: str = "sla_attainment",
    smallest: int = 1,
    largest: int | None = None,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    on_done: Callable[[ReplicationOutcome], None] | None = None,
    backend: Backend | None = None,
) -> CapacityResult:
    """The smallest headcount whose whole 95% interval meets the target (gallop from today's
    team size, then bisect).

    Assumes the metric improves with headcount. Every headcount runs on the same seed
    (common random numbers), so neighbouring headcounts compare sharply; every headcount
    evaluated is part of the returned curve.
    """
    higher_is_better = metric not in LOWER_IS_BETTER
    largest = largest or 3 * len(loaded.policy.reps)
    points: dict[int, CapacityPoint] = {}

    # Every headcount starts from the same past, worked by today's team (``team_before_start``).
    team_before_start = loaded.team_before_start or tuple(loaded.policy.reps)
    pool = ReplicationPool(workers if backend is None else 1, initializer=keep_priors)

    def evaluate(headcount: int) -> bool:
        staffed = loaded.model_copy(update={"policy": with_headcount(loaded.policy, headcount),
                                            "team_before_start": team_before_start})
        result, _ = simulate(staffed, replications, seed, workers, on_done, backend or pool.run)
        if metric not in result.metrics:
            raise MetricNotMeasured(f"{metric} was not measured at headcount {headcount} (in some replication nothing "
                                    f"settled it, e.g. a clock the policy never runs); measured: {', '.join(sorted(result.metrics))}")
        estimate = result.metrics[metric]
        low, high = estimate.ci95
        meets = low >= target if higher_is_better else high <= target
        points[headcount] = CapacityPoint(headcount=headcount, metric=estimate, meets_target=meets)
        return meets

    # Start at today's team and gallop (1, 2, 4, ... reps away) to a size on each side of
    # the target, then bisect between them: near the current size, few sizes are run.
    with pool, priors_kept():
        found = _search(evaluate, min(max(len(loaded.policy.reps), smallest), largest), smallest, largest)
    return CapacityResult(
        scenario=loaded.scenario.name,
        metric=metric,
        target=target,
        higher_is_better=higher_is_better,
        curve=[points[headcount] for headcount in sorted(points)],
        smallest_meeting_target=found,
    )


def _search(evaluate: Callable[[int], bool], start: int, smallest: int, largest: int) -> int | None:
    """The smallest headcount in [smallest, largest] that ``evaluate`` passes, galloping from
    ``start`` and then bisecting; None if even ``largest`` fails."""
    if evaluate(start):
        meets, fails, step = start, smallest - 1, 1
        while meets - step >= smallest:
            if not evaluate(meets - step):
                fails = meets - step
                break
            meets, step = meets - step, step * 2
    else:
        fails, meets, step = start, None, 1
        while fails < largest:
            probe = min(fails + step, largest)
            if evaluate(probe):
                meets = probe
                break
            fails, step = probe, step * 2
    if meets is None:
        return None
    while meets - fails > 1:
        middle = (fails + meets) // 2
        if evaluate(middle):
            meets = middle
        else:
            fails = middle
    return meets
