"""Simulated reps driven by their workload: response time comes from load, not a fixed draw."""

from __future__ import annotations

import pytest

from leadflow.policy import Policy
from runtime.settings import SCENARIOS_DIR
from simulation.capacity import with_headcount
from simulation.results import SimulationResult
from simulation.runner import simulate
from simulation.scenario import LoadedScenario, NurturesAtStart, load_scenario


def _run(loaded: LoadedScenario, policy: Policy, replications: int = 4) -> SimulationResult:
    result, _ = simulate(loaded.model_copy(update={"policy": policy}), replications, None, 2)
    return result


@pytest.fixture(scope="module")
def baseline() -> LoadedScenario:
    """The baseline's team under four times its volume, started empty: reps busy enough for
    headcount to matter within three weeks."""
    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=21, warmup_days=3, replications=4,
                           nurtures_at_start=NurturesAtStart.NONE)
    population = loaded.scenario.population.model_copy(update={"leads_per_week": 400})
    return loaded.model_copy(update={"scenario": loaded.scenario.model_copy(update={"population": population})})


def test_sla_attainment_rises_with_headcount_until_reaction_latency_dominates(baseline):
    curve = {headcount: _run(baseline, with_headcount(baseline.policy, headcount)) for headcount in (3, 5, 8, 32)}
    attainment = {headcount: result.metrics["sla_attainment"] for headcount, result in curve.items()}
    # more reps: better, each step clear of the last one's interval
    assert attainment[3].ci95[1] < attainment[5].ci95[0]
    assert attainment[5].mean < attainment[8].mean
    # ... until the reps are idle and what is left is how fast they react: 4x the reps at 8
    # gain little, and the median first touch is about the reaction latency itself.
    assert attainment[32].mean - attainment[8].mean < 0.05
    reaction = baseline.scenario.behaviour.reaction_minutes
    assert curve[32].metrics["ttfc_p50"].mean * 60 < 2 * reaction.mean
    assert curve[32].metrics["rep_utilisation"].mean < curve[8].metrics["rep_utilisation"].mean / 3


def test_busy_reps_answer_faster_when_there_are_more_of_them(baseline):
    """Reps who cover every lead and never run out of routing slots: only their desk time
    limits them, and time to first touch is the wait behind the work on their desks."""
    everyone = [rep.model_copy(update={"territories": [], "segments": [], "hours": baseline.policy.calendar})
                for rep in baseline.policy.reps]
    open_routing = baseline.policy.routing.model_copy(update={"default_capacity": 10_000})
    policy = baseline.policy.model_copy(update={"reps": everyone, "routing": open_routing})
    long_calls = baseline.scenario.behaviour.model_copy(
        update={"attempt_minutes": baseline.scenario.behaviour.attempt_minutes.model_copy(update={"mean": 60})})
    busy = baseline.model_copy(update={"scenario": baseline.scenario.model_copy(update={"behaviour": long_calls})})
    few, more = _run(busy, with_headcount(policy, 3)), _run(busy, with_headcount(policy, 6))
    assert few.metrics["rep_utilisation"].mean > 0.4  # busy indeed
    assert more.metrics["ttfc_p50"].ci95[1] < few.metrics["ttfc_p50"].ci95[0]
    assert more.metrics["sla_attainment"].mean > few.metrics["sla_attainment"].mean
