"""The simulator's estimators (``simulation.life_table``, ``simulation.statistics``):
censoring, pooling over replications, and tests of many metrics at once."""

from __future__ import annotations

import math
import random

import pytest

from leadflow.policy import Absence
from simulation.compare import compare
from simulation.life_table import RELATIVE_WIDTH, LifeTable
from simulation.results import Difference, Estimate
from simulation.runner import simulate
from simulation.statistics import holm, paired_difference, pooled_ttfc


def exponential_waits_with_a_horizon(seed: int, leads: int, horizon: float, mean: float = 1.0) -> tuple[LifeTable, list[float]]:
    """Leads arriving evenly over ``horizon`` hours, each waiting Exp(mean) for a contact;
    those not contacted by the horizon are still waiting. The table, and the waits that a
    list of contacted leads would hold."""
    rng, table, contacted = random.Random(seed), LifeTable(), []
    for _ in range(leads):
        arrived, wait = rng.uniform(0, horizon), rng.expovariate(1 / mean)
        if arrived + wait <= horizon:
            table.contacted(wait)
            contacted.append(wait)
        else:
            table.still_waiting(horizon - arrived)
    return table, contacted


def test_leads_still_waiting_at_the_horizon_are_counted_not_dropped():
    # A short horizon next to the waits, as in an overloaded week: 1 in 4 leads still waits.
    table, contacted = exponential_waits_with_a_horizon(seed=1, leads=40_000, horizon=4.0)
    assert 0.2 < table.waiting / (table.waiting + table.contacts) < 0.3
    truth_median, truth_p90 = math.log(2), math.log(10)
    dropped = sorted(contacted)
    # Dropping them understates the median and the tail badly...
    assert dropped[len(dropped) // 2] < 0.8 * truth_median and dropped[int(0.9 * len(dropped))] < 0.75 * truth_p90
    # ...the life table does not (within its 1% bins and sampling error).
    assert table.quantile(0.5) == pytest.approx(truth_median, rel=0.03)
    assert table.quantile(0.9) == pytest.approx(truth_p90, rel=0.05)
    # Its mean is restricted to the longest contact seen (< 4 h): the restricted mean of Exp(1).
    longest = max(contacted)
    assert table.restricted_mean() == pytest.approx(1 - math.exp(-longest), rel=0.02)
    assert sum(contacted) / len(contacted) < 0.75 * table.restricted_mean()


def test_percentiles_read_from_the_table_are_within_the_bin_width():
    rng = random.Random(3)
    waits = sorted(rng.lognormvariate(0, 1.5) for _ in range(20_001))
    table = LifeTable()
    for wait in waits:
        table.contacted(wait)
    for share in (0.5, 0.9, 0.99):
        exact = waits[int(share * (len(waits) - 1))]
        assert exact <= table.quantile(share) <= exact * (1 + RELATIVE_WIDTH) ** 2
    assert table.restricted_mean() == pytest.approx(sum(waits) / len(waits), rel=RELATIVE_WIDTH)
    assert table.within(1.0) == pytest.approx(sum(wait <= 1.0 for wait in waits) / len(waits), abs=0.005)


def test_pooled_tail_percentiles_are_not_biased_like_averaged_ones():
    """A hundred replications of 60 leads: a p99 of 60 waits is about their largest, so the mean
    of a hundred such p99s is far from the true p99 however many replications run; the p99 of
    the pooled 6,000 is close, and its jackknife interval holds the truth."""
    replications, per_replication_p99 = [], []
    for seed in range(100):
        table, _ = exponential_waits_with_a_horizon(seed=seed, leads=60, horizon=1e6)
        replications.append((table, table))
        per_replication_p99.append(table.quantile(0.99))
    truth = math.log(100)
    averaged = sum(per_replication_p99) / len(per_replication_p99)
    pooled = pooled_ttfc(replications)["ttfc_wall_p99"]
    assert abs(averaged - truth) > 0.05 * truth
    assert abs(pooled.mean - truth) < 0.5 * abs(averaged - truth)
    assert pooled.ci95[0] <= truth <= pooled.ci95[1]


def test_tables_add_and_subtract():
    first, _ = exponential_waits_with_a_horizon(seed=5, leads=500, horizon=3.0)
    second, _ = exponential_waits_with_a_horizon(seed=6, leads=700, horizon=3.0)
    both = first.merged(second)
    assert both.contacts == first.contacts + second.contacts and both.waiting == first.waiting + second.waiting
    assert both.without(second) == first
    assert LifeTable.from_sparse(*both.sparse()) == both


def difference(p_value: float) -> Difference:
    return Difference(a=1.0, b=1.1, difference=Estimate(mean=0.1, ci95=(0.0, 0.2)), p_value=p_value, significant=p_value < 0.05)


def test_holm_holds_twenty_metrics_to_five_percent_together():
    p_values = {"clear": 0.0005, "also clear": 0.002, "borderline": 0.004, **{f"noise {i}": 0.01 + 0.04 * i for i in range(17)}}
    alone = {name: difference(p) for name, p in p_values.items()}
    adjusted = holm(alone)
    # Alone, four metrics look "significant" at 5%; as a family of twenty, only the two clear ones.
    assert sum(diff.significant for diff in alone.values()) == 4
    assert sorted(name for name, diff in adjusted.items() if diff.significant) == ["also clear", "clear"]
    # A metric that is the same in every pair (identical arrivals under common random numbers) is no test.
    same = Difference(a=5.0, b=5.0, difference=Estimate(mean=0.0, ci95=(0.0, 0.0)), p_value=1.0, significant=False)
    assert holm({**alone, "leads": same})["borderline"].significant is adjusted["borderline"].significant


# --- through the simulator ---------------------------------------------------------------------


def test_an_overloaded_team_counts_the_leads_it_never_reached():
    """rho = 1.2: the line grows all run. Leads still waiting at the horizon are reported, and
    the time to first contact counts them instead of averaging only the lucky ones."""
    from tests.test_simulation import mmc_scenario

    result, outcomes = simulate(mmc_scenario(5, 6.0, horizon_days=8, replications=3), workers=1)
    waiting = result.metrics["uncontacted_at_horizon"]
    assert waiting.ci95[0] > 0.05
    contacted_only = [wait for outcome in outcomes for wait in outcome.ttfc_wall]
    assert result.metrics["ttfc_wall_mean"].mean > 1.1 * sum(contacted_only) / len(contacted_only)
    assert result.metrics["ttfc_wall_p90"].mean > sorted(contacted_only)[int(0.9 * len(contacted_only))]


def test_compare_adds_replications_until_the_difference_is_known_well_enough():
    from tests.test_simulation import mmc_scenario

    a, b = (mmc_scenario(servers, 2.1, horizon_days=2, replications=3, warmup_days=0.5) for servers in (3, 4))
    result = compare(a, b, replications=3, workers=2, precision=0.1, precision_metric="sla_attainment",
                     max_replications=40)
    assert result.precision is not None and "reached" in result.precision and "NOT" not in result.precision
    low, high = result.differences["sla_attainment"].difference.ci95
    assert (high - low) / 2 <= 0.1 * result.a.metrics["sla_attainment"].mean
    assert 10 < result.a.replications <= 40 and result.a.replications == result.b.replications


@pytest.mark.parametrize("absent", ["away", "out_of_office"])
def test_utilisation_is_busy_time_over_time_reps_were_there(absent):
    """Three servers, one of them absent all run (marked away, or out of office for the whole
    horizon): an M/M/2 queue, utilisation lambda / (2 mu) = 0.5, not 1/3 of a roster of three."""
    from datetime import timedelta

    from tests.test_simulation import mmc_scenario

    loaded = mmc_scenario(3, 1.0, horizon_days=12, replications=4, warmup_days=2)
    start = loaded.scenario.start
    absence = ({"away": True} if absent == "away" else
               {"out_of_office": [Absence(start=start - timedelta(days=1), end=start + timedelta(days=30))]})
    reps = [*loaded.policy.reps[:2], loaded.policy.reps[2].model_copy(update=absence)]
    loaded = loaded.model_copy(update={"policy": loaded.policy.model_copy(update={"reps": reps})})
    result, _ = simulate(loaded, workers=1)
    assert result.metrics["rep_utilisation"].mean == pytest.approx(0.5, abs=0.04)


def test_a_run_whose_queue_keeps_growing_says_it_has_no_steady_state():
    from tests.test_simulation import mmc_scenario

    stable, _ = simulate(mmc_scenario(2, 1.0, horizon_days=20, replications=4), workers=1)
    assert stable.steady_state is not None and stable.steady_state.steady, stable.steady_state
    overloaded, _ = simulate(mmc_scenario(5, 6.0, horizon_days=8, replications=3), workers=1)
    assert overloaded.steady_state is not None and not overloaded.steady_state.steady
    assert overloaded.steady_state.queue_growth_per_day.ci95[0] > 0
    assert "NOT steady" in overloaded.steady_state.note and "grows" in overloaded.steady_state.note
    assert overloaded.json_summary()["steady_state"]["steady"] is False


def test_bench_sim_reports_its_ratios_and_where_the_time_goes():
    from runtime.settings import resolve_scenario_path
    from simulation.benchmark import MMC_TARGET_RATIO, bench_sim

    figures = bench_sim(resolve_scenario_path("baseline"), horizon_days=40, mmc_days=10, profiled_days=7)
    for key in ("leads_per_s", "simpy_mmc_customers_per_s", "ratio_vs_simpy", "mmc_same_queue_ratio", "python_calls_per_lead"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["mmc_customers"] > 500
    assert figures["mmc_same_queue_ratio"] == pytest.approx(
        figures["mmc_stack_customers_per_s"] / figures["mmc_simpy_customers_per_s"], rel=0.01)
    shares = figures["time_by_function"]
    assert shares and abs(sum(area["share"] for area in shares) - 1) < 0.5 and any("core" in area["area"] for area in shares)
    assert len(figures["rss_mb_by_month"]) == 1  # 40 days: one 30-day mark
    assert len(figures["seconds_by_month"]) == len(figures["decisions_by_month"]) == 1
    assert figures["decisions_by_month"][0] > figures["leads_simulated"] * 30 / 40  # several decisions per lead
    # the rules' own cost, timed per call: a share of the run, and the ceiling it sets on the same-queue ratio
    assert figures["decide_calls_per_lead"] > 1 and figures["mmc_decide_calls_per_customer"] > 3
    assert 0 < figures["decide_share"] < 1 and 0 < figures["mmc_decide_share"] < 1
    assert figures["mmc_ratio_ceiling_decide_only"] > figures["mmc_same_queue_ratio"]
    # a customer's microseconds: the rules' part and the rest add up to the whole, and the
    # budget the target leaves the rest follows from raw SimPy's time and the rules' part
    assert figures["mmc_us_per_customer"] == pytest.approx(1e6 / figures["mmc_stack_customers_per_s"], rel=0.01)
    assert figures["mmc_decide_us_per_customer"] + figures["mmc_shell_us_per_customer"] == pytest.approx(
        figures["mmc_us_per_customer"], abs=0.2)
    assert figures["mmc_simpy_us_per_customer"] == pytest.approx(1e6 / figures["mmc_simpy_customers_per_s"], rel=0.01)
    assert figures["mmc_shell_budget_us_at_target"] == pytest.approx(
        figures["mmc_simpy_us_per_customer"] / MMC_TARGET_RATIO - figures["mmc_decide_us_per_customer"], abs=0.5)


def test_replications_added_later_are_the_ones_a_longer_run_draws():
    from simulation.runner import run_replications
    from tests.test_simulation import mmc_scenario

    loaded = mmc_scenario(3, 2.1, horizon_days=1, replications=3, warmup_days=0.2)
    whole = run_replications(loaded, 5, seed=7)
    assert run_replications(loaded, 5, seed=7, first=3) == whole[3:]


def test_compare_shows_the_same_ttfc_figures_as_simulate():
    """A and B columns are the pooled figures each run reports, and B - A is their difference."""
    from tests.test_simulation import mmc_scenario

    a, b = (mmc_scenario(servers, 2.1, horizon_days=4, replications=4, warmup_days=1) for servers in (3, 4))
    result = compare(a, b)
    for name in ("ttfc_wall_p50", "ttfc_wall_p90", "ttfc_wall_mean", "first_contact_within_15m"):
        diff = result.differences[name]
        assert diff.a == result.a.metrics[name].mean and diff.b == result.b.metrics[name].mean
        assert diff.difference.mean == pytest.approx(diff.b - diff.a)
        low, high = diff.difference.ci95
        assert low <= diff.difference.mean <= high
    # A fourth rep cuts the wait: more leads are reached within 15 minutes.
    assert result.differences["first_contact_within_15m"].difference.mean > 0


def test_a_difference_of_two_shares_is_never_outside_plus_or_minus_one():
    # Two replications disagreeing wildly: Student t on 1 degree of freedom reaches far
    # past what a difference of two shares can be; the interval stops at -1 and +1.
    a, b = [0.95, 0.20], [0.10, 0.90]
    unbounded = paired_difference(a, b).difference.ci95
    assert unbounded[0] < -1 and unbounded[1] > 1
    low, high = paired_difference(a, b, bounds=(-1.0, 1.0)).difference.ci95
    assert (low, high) == (-1.0, 1.0)
