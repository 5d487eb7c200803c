"""Erlang C and the two discrete-event M/M/c references (raw SimPy, Ciw) agree with each other."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from simulation.erlang import erlang_c, mean_wait, utilisation
from simulation.mmc_reference import MMCResult, ciw_mmc, simpy_mmc

REPLICATIONS = 10
CUSTOMERS = 10_000
WARMUP = 1_000
CONFIDENCE = 0.99

# (servers, arrival rate, service rate): moderate load rho = 0.7, heavy load rho = 0.9;
# rates other than 1 so that a rate passed where a mean is expected cannot go unnoticed
LOADS = {"moderate": (3, 4.2, 2.0), "heavy": (5, 9.0, 2.0)}
MODELS = {"simpy": simpy_mmc, "ciw": ciw_mmc}
BASE_SEED = {"simpy": 1_000, "ciw": 2_000}


def direct_erlang_c(servers: int, offered: Fraction) -> Fraction:
    """Textbook Erlang C, exactly in rationals: a^c/c! * c/(c-a) over sum_k<c a^k/k! + that."""
    top = offered**servers / math.factorial(servers) * servers / (servers - offered)
    return top / (sum(offered**k / math.factorial(k) for k in range(servers)) + top)


def t_interval(samples: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    values = np.asarray(samples, dtype=float)
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def welch_interval(a: list[float], b: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Interval for mean(a) - mean(b), Welch-Satterthwaite degrees of freedom."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(va + vb)
    difference = float(np.mean(a) - np.mean(b))
    return difference - half, difference + half


# ---- Erlang C ---------------------------------------------------------------------------------


def test_single_server_waits_with_probability_rho():
    assert erlang_c(1, 0.75, 1.0) == pytest.approx(0.75, rel=1e-12)
    assert erlang_c(1, 3.0, 4.0) == pytest.approx(0.75, rel=1e-12)
    # M/M/1: Wq = rho / (mu - lambda)
    assert mean_wait(1, 3.0, 4.0) == pytest.approx(0.75 / (4.0 - 3.0), rel=1e-12)


def test_two_servers_at_half_load_wait_one_third_of_the_time():
    assert erlang_c(2, 1.0, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    assert mean_wait(2, 1.0, 1.0) == pytest.approx((1 / 3) / (2 - 1), rel=1e-12)
    assert utilisation(2, 1.0, 1.0) == 0.5


def test_ten_servers_match_the_direct_factorial_formula():
    expected = float(direct_erlang_c(10, Fraction(8)))
    assert erlang_c(10, 8.0, 1.0) == pytest.approx(expected, rel=1e-12)
    assert erlang_c(10, 16.0, 2.0) == pytest.approx(expected, rel=1e-12)  # only lambda/mu matters
    assert 0.4 < expected < 0.41  # published tables: C(10, a=8) ~ 0.409
    assert mean_wait(10, 8.0, 1.0) == pytest.approx(expected / (10 - 8), rel=1e-12)


def test_hundreds_of_servers_stay_accurate():
    # 300 agents at rho = 0.95: a^c / c! overflows floats, the recursion must not.
    expected = float(direct_erlang_c(300, Fraction(285)))
    assert 0 < expected < 1
    assert erlang_c(300, 285.0, 1.0) == pytest.approx(expected, rel=1e-9)


def test_more_servers_mean_less_waiting():
    probabilities = [erlang_c(c, 4.0, 1.0) for c in range(5, 12)]
    assert all(a > b for a, b in zip(probabilities, probabilities[1:]))


@pytest.mark.parametrize("servers, arrival_rate, service_rate", [(1, 1.0, 1.0), (3, 3.0, 1.0), (2, 5.0, 1.0)])
def test_unstable_queue_is_rejected(servers, arrival_rate, service_rate):
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(servers, arrival_rate, service_rate)
    with pytest.raises(ValueError, match="unstable"):
        mean_wait(servers, arrival_rate, service_rate)
    assert utilisation(servers, arrival_rate, service_rate) >= 1  # overload is still reportable


@pytest.mark.parametrize(
    "servers, arrival_rate, service_rate, field",
    [
        (0, 1.0, 2.0, "servers"),
        (2.5, 1.0, 2.0, "servers"),
        (2, 0.0, 1.0, "arrival_rate"),
        (2, -1.0, 1.0, "arrival_rate"),
        (2, 1.0, 0.0, "service_rate"),
        (2, 1.0, math.nan, "service_rate"),
        (2, math.inf, 1.0, "arrival_rate"),
    ],
)
def test_invalid_inputs_are_rejected(servers, arrival_rate, service_rate, field):
    for function in (erlang_c, mean_wait, utilisation):
        with pytest.raises(ValueError, match=field):
            function(servers, arrival_rate, service_rate)


# ---- discrete-event references ---------------------------------------------------------------


@pytest.fixture(scope="module")
def replications() -> dict[tuple[str, str], list[MMCResult]]:
    """Independent replications of every model at every load, shared by the tests below."""
    runs: dict[tuple[str, str], list[MMCResult]] = {}
    for model, simulate in MODELS.items():
        for load, (servers, arrival_rate, service_rate) in LOADS.items():
            runs[model, load] = [
                simulate(arrival_rate, service_rate, servers, CUSTOMERS, seed=BASE_SEED[model] + r, warmup=WARMUP)
                for r in range(REPLICATIONS)
            ]
    return runs


@pytest.mark.parametrize("model", MODELS)
def test_runs_are_reproducible_and_seeds_matter(model):
    simulate = MODELS[model]
    first, again, other = (simulate(2.1, 1.0, 3, 2_000, seed=s, warmup=100) for s in (7, 7, 8))
    assert first.mean_wait == again.mean_wait and first.waited_fraction == again.waited_fraction
    assert first.mean_wait != other.mean_wait
    assert first.customers == 2_000
    assert first.wall_seconds > 0 and first.customers_per_s > 0


@pytest.mark.parametrize("model", MODELS)
def test_run_inputs_are_checked(model):
    simulate = MODELS[model]
    with pytest.raises(ValueError, match="customers"):
        simulate(1.0, 1.0, 2, 0, seed=1)
    with pytest.raises(ValueError, match="warmup"):
        simulate(1.0, 1.0, 2, 10, seed=1, warmup=-1)
    with pytest.raises(ValueError, match="servers"):
        simulate(1.0, 1.0, 0, 10, seed=1)


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("model", MODELS)
def test_reference_reproduces_erlang_c(replications, model, load):
    servers, arrival_rate, service_rate = LOADS[load]
    runs = replications[model, load]
    assert all(run.customers == CUSTOMERS for run in runs)

    expected_probability = erlang_c(servers, arrival_rate, service_rate)
    expected_wait = mean_wait(servers, arrival_rate, service_rate)
    low_p, high_p = t_interval([run.waited_fraction for run in runs])
    low_w, high_w = t_interval([run.mean_wait for run in runs])
    assert low_p <= expected_probability <= high_p, (model, load, expected_probability, (low_p, high_p))
    assert low_w <= expected_wait <= high_w, (model, load, expected_wait, (low_w, high_w))

    # The intervals are tight enough to catch a model error: a 5% slower service rate would
    # be outside them (this is what keeps the check above from passing trivially).
    assert not low_w <= mean_wait(servers, arrival_rate, service_rate * 0.95) <= high_w
    assert not low_w <= mean_wait(servers, arrival_rate, service_rate * 1.05) <= high_w
    assert not low_p <= erlang_c(servers, arrival_rate, service_rate * 1.05) <= high_p


@pytest.mark.parametrize("load", LOADS)
def test_simpy_and_ciw_agree(replications, load):
    servers, arrival_rate, service_rate = LOADS[load]
    simpy_runs, ciw_runs = replications["simpy", load], replications["ciw", load]
    for metric, formula in (("waited_fraction", erlang_c), ("mean_wait", mean_wait)):
        a = [getattr(run, metric) for run in simpy_runs]
        b = [getattr(run, metric) for run in ciw_runs]
        low, high = welch_interval(a, b)
        assert low <= 0 <= high, (load, metric, (low, high))
        # The comparison has teeth: one library running one server too many would shift the
        # metric by more than the whole width of the interval of the difference.
        off_by_one = formula(servers, arrival_rate, service_rate) - formula(servers + 1, arrival_rate, service_rate)
        assert high - low < off_by_one, (load, metric, (low, high), off_by_one)
