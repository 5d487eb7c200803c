"""``leadflow bench sim``: simulator speed against raw SimPy and Ciw on matched load."""

from __future__ import annotations

import cProfile
import gc
import platform
import pstats
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import simulation.model as model_module
from runtime.settings import resolve_scenario_path
from simulation.capacity import with_headcount
from simulation.mmc_reference import ciw_mmc, simpy_mmc
from simulation.model import JourneyModel
from simulation.population import HOURS_PER_WEEK
from simulation.runner import replication_seeds, run_replication
from simulation.scenario import LoadedScenario, NurturesAtStart, load_scenario

MONTH_HOURS = 30 * 24  # RSS is noted every 30 simulated days
MMC_TARGET_RATIO = 0.1  # issue 16's target for mmc_same_queue_ratio
MMC_DAYS = 60  # the same-queue comparison: 60 days of the bundled M/M/c (about 6,500 customers)
REFERENCE_CUSTOMERS = 200_000  # at most, through raw SimPy and Ciw
PROFILED_DAYS = 14  # the profiled replication: long enough for journeys to reach reps,
PROFILED_LEADS = 10_000  # ...and at most about this many arrivals (a large team's few days)


def bench_sim(
    scenario_path: Path,
    replications: int = 1,
    seed: int = 1,
    horizon_days: float | None = None,
    leads_per_week: float | None = None,
    headcount: int | None = None,
    mmc_days: float = MMC_DAYS,
    profiled_days: float = PROFILED_DAYS,
) -> dict[str, object]:
    """Simulate the scenario, then an M/M/c queue with as many customers (up to
    ``REFERENCE_CUSTOMERS``), in raw SimPy and in Ciw.

    ``horizon_days``, ``leads_per_week`` and ``headcount`` scale the run (e.g. a year of
    1,000,000 leads, with a team big enough for them, to measure peak memory).
    """
    # The engine's speed on the run's own leads: a steady start's prior lives (a fixed cost
    # per replication, ``simulation.prior_history``) are left out, as in the figures before it.
    loaded = load_scenario(scenario_path, nurtures_at_start=NurturesAtStart.NONE)
    if horizon_days is not None:  # a warm-up of at most half the run
        scenario = loaded.scenario.model_copy(
            update={"horizon_days": horizon_days, "warmup_days": min(loaded.scenario.warmup_days, horizon_days / 2)})
        loaded = loaded.model_copy(update={"scenario": scenario})
    if leads_per_week is not None:
        population = loaded.scenario.population.model_copy(update={"leads_per_week": leads_per_week})
        loaded = loaded.model_copy(update={"scenario": loaded.scenario.model_copy(update={"population": population})})
    if headcount is not None:
        loaded = loaded.model_copy(update={"policy": with_headcount(loaded.policy, headcount)})
    started = time.perf_counter()
    rss_by_month: list[float] = []
    work_by_month: dict[str, list[float]] = {"seconds": [], "decisions": []}
    leads = _monitored_replication(loaded, seed, rss_by_month, work_by_month)
    leads += sum(run_replication(loaded, seed, replication).leads_simulated for replication in range(1, replications))
    sim_seconds = time.perf_counter() - started
    leads_per_s = leads / sim_seconds
    sim_peak_rss_mb = _peak_rss_mb()  # before the references, which keep every customer they move
    gc.collect()  # so the references do not pay for collecting the simulator's garbage
    # Matched load: as many customers through a 5-server queue at utilisation 0.9, up to
    # REFERENCE_CUSTOMERS: a rate is steady long before that, and the references keep every
    # customer they move (a year's million would only hold memory and time).
    reference_customers = min(leads, REFERENCE_CUSTOMERS)
    raw = simpy_mmc(arrival_rate=4.5, service_rate=1.0, servers=5, customers=reference_customers, seed=seed)
    ciw = ciw_mmc(arrival_rate=4.5, service_rate=1.0, servers=5, customers=reference_customers, seed=seed)
    same_queue = _same_queue(seed, mmc_days)
    leads_per_day = loaded.scenario.population.leads_per_week / 7
    profiled_days = min(profiled_days, max(1.0, PROFILED_LEADS / leads_per_day))
    calls_per_lead, where = _profile(loaded, seed, profiled_days)
    decide_time = _decide_time(loaded, seed, profiled_days)
    return {
        "scenario": loaded.scenario.name,
        "replications": replications,
        "leads_simulated": leads,
        "sim_seconds": round(sim_seconds, 3),
        "leads_per_s": round(leads_per_s, 1),
        "reference_customers": reference_customers,
        "simpy_mmc_customers_per_s": round(raw.customers_per_s, 1),
        "ciw_customers_per_s": round(ciw.customers_per_s, 1),
        "ratio_vs_simpy": round(leads_per_s / raw.customers_per_s, 4),
        "ratio_vs_ciw": round(leads_per_s / ciw.customers_per_s, 4),
        **same_queue,
        "profiled_days": round(profiled_days, 2),
        "python_calls_per_lead": calls_per_lead,
        **decide_time,
        "time_by_function": where,
        "sim_peak_rss_mb": sim_peak_rss_mb,
        "rss_mb_by_month": rss_by_month,
        "seconds_by_month": work_by_month["seconds"],
        "decisions_by_month": work_by_month["decisions"],
        "peak_rss_mb": _peak_rss_mb(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "date": date.today().isoformat(),
    }


def _monitored_replication(loaded: LoadedScenario, seed: int, rss_by_month: list[float],
                           work_by_month: dict[str, list[float]]) -> int:
    """Replication 0, with the process's resident memory, the seconds taken and the events
    fed to ``decide`` noted every 30 simulated days (and a line on stderr, so a run stopped
    part-way still says how far it got)."""
    model = JourneyModel(loaded, replication_seeds(seed, 0))
    started = time.perf_counter()

    def monitor():
        month_started, decisions_before = started, 0
        while True:
            yield model.env.timeout(MONTH_HOURS)
            now = time.perf_counter()
            rss_by_month.append(_current_rss_mb())
            work_by_month["seconds"].append(round(now - month_started, 1))
            work_by_month["decisions"].append(model.decisions - decisions_before)
            month_started, decisions_before = now, model.decisions
            seconds = now - started
            print(f"bench sim: day {model.env.now / 24:.0f} of {loaded.scenario.horizon_days:g}, {model.leads_simulated:,} leads, "
                  f"{model.decisions:,} decisions, {seconds:.0f} s, {model.leads_simulated / seconds:,.0f} leads/s, "
                  f"RSS {rss_by_month[-1]:,.0f} MB", file=sys.stderr, flush=True)

    model.env.process(monitor())
    model.run()
    return model.leads_simulated


def _same_queue(seed: int, days: float) -> dict[str, float]:
    """The bundled M/M/c scenario through the whole stack (journeys, ``decide``, routing, the
    waiting line) against raw SimPy on the same lambda, mu, c and number of customers."""
    loaded = load_scenario(resolve_scenario_path("mmc-erlang"), horizon_days=days)
    started = time.perf_counter()
    customers = run_replication(loaded, seed, 0).leads_simulated
    stack_per_s = customers / (time.perf_counter() - started)
    rate = loaded.scenario.population.leads_per_week / HOURS_PER_WEEK
    service_rate = 60 / loaded.scenario.behaviour.attempt_minutes.mean
    raw = simpy_mmc(arrival_rate=rate, service_rate=service_rate, servers=len(loaded.policy.reps), customers=customers, seed=seed)
    with _timed_decide() as decide_time:
        run_replication(loaded, seed, 0)
    calls, seconds = decide_time
    decide_per_customer = seconds / max(customers, 1)
    return {
        "mmc_customers": customers,
        "mmc_stack_customers_per_s": round(stack_per_s, 1),
        "mmc_simpy_customers_per_s": round(raw.customers_per_s, 1),
        "mmc_same_queue_ratio": round(stack_per_s / raw.customers_per_s, 4),
        "mmc_decide_calls_per_customer": round(calls / max(customers, 1), 2),
        "mmc_decide_us_per_call": round(seconds / max(calls, 1) * 1e6, 1),
        "mmc_decide_share": round(decide_per_customer * stack_per_s, 3),
        # The ratio if the shell around the rules cost nothing: the most the design allows
        # while every customer's steps go through the same ``decide`` as the live workflow.
        "mmc_ratio_ceiling_decide_only": round(1 / decide_per_customer / raw.customers_per_s, 4),
        **_per_customer(stack_per_s, raw.customers_per_s, decide_per_customer),
    }


def _per_customer(stack_per_s: float, simpy_per_s: float, decide_seconds_per_customer: float) -> dict[str, float]:
    """Where an M/M/c customer's time goes, in microseconds, against what the target allows
    (``decide``'s part timed per call in a second run of the same replication):
    ``mmc_shell_budget_us_at_target`` is the most everything but ``decide`` (SimPy, routing,
    the waiting line, the reps' behaviour, statistics) may cost a customer for the stack to
    reach ``MMC_TARGET_RATIO`` of raw SimPy's speed, with ``decide`` as it is."""
    stack_us, decide_us, simpy_us = 1e6 / stack_per_s, decide_seconds_per_customer * 1e6, 1e6 / simpy_per_s
    return {
        "mmc_us_per_customer": round(stack_us, 1),
        "mmc_decide_us_per_customer": round(decide_us, 1),
        "mmc_shell_us_per_customer": round(stack_us - decide_us, 1),
        "mmc_simpy_us_per_customer": round(simpy_us, 1),
        "mmc_shell_budget_us_at_target": round(simpy_us / MMC_TARGET_RATIO - decide_us, 1),
    }


@contextmanager
def _timed_decide() -> Iterator[list[float]]:
    """Count and time every ``decide`` call the simulator makes inside the block:
    yields ``[calls, seconds]``, filled in as it runs (a wall-clock timer per call, no profiler)."""
    original = model_module.decide
    totals = [0.0, 0.0]
    clock = time.perf_counter

    def timed(*args, **kwargs):
        began = clock()
        try:
            return original(*args, **kwargs)
        finally:
            totals[0] += 1
            totals[1] += clock() - began

    model_module.decide = timed
    try:
        yield totals
    finally:
        model_module.decide = original


def _short(loaded: LoadedScenario, days: float) -> LoadedScenario:
    horizon = min(days, loaded.scenario.horizon_days)
    warmup = min(loaded.scenario.warmup_days, horizon / 2)
    return loaded.model_copy(update={"scenario": loaded.scenario.model_copy(update={"horizon_days": horizon, "warmup_days": warmup})})


def _decide_time(loaded: LoadedScenario, seed: int, days: float) -> dict[str, float]:
    """The rules' own share of a short replication: ``decide`` calls per lead, their mean
    cost, and what share of the run they take (unprofiled, so the share is not skewed)."""
    short = _short(loaded, days)
    started = time.perf_counter()
    with _timed_decide() as decide_time:
        leads = run_replication(short, seed, 0).leads_simulated
    total = time.perf_counter() - started
    calls, seconds = decide_time
    return {
        "decide_calls_per_lead": round(calls / max(leads, 1), 2),
        "decide_us_per_call": round(seconds / max(calls, 1) * 1e6, 1),
        "decide_share": round(seconds / total, 3),
    }


def _profile(loaded: LoadedScenario, seed: int, days: float) -> tuple[float, list[dict[str, object]]]:
    """Python calls per lead over a short profiled replication, and where its time goes."""
    short = _short(loaded, days)
    profiler = cProfile.Profile()
    profiler.enable()
    leads = run_replication(short, seed, 0).leads_simulated
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    calls = sum(primitive for primitive, _, _, _, _ in entries.values())
    total = sum(own for _, _, own, _, _ in entries.values()) or 1.0
    by_area: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in entries.items():
        by_area[_area(filename)] = by_area.get(_area(filename), 0.0) + own
    where = [{"area": area, "share": round(own / total, 3)} for area, own in sorted(by_area.items(), key=lambda item: -item[1])]
    return round(calls / max(leads, 1), 1), where[:8]


def _area(filename: str) -> str:
    """Which part of the code a profiled function belongs to."""
    path = filename.replace("\\", "/")
    for marker, name in (("/leadflow/", "core: leadflow/"), ("/simulation/", "shell: simulation/"), ("/pydantic", "pydantic"),
                         ("/simpy/", "simpy"), ("/faker/", "faker"), ("/random.py", "random"), ("/zoneinfo", "zoneinfo")):
        if marker in path:
            if marker in ("/leadflow/", "/simulation/"):
                return name + path.rsplit("/", 1)[-1]
            return name
    if path == "<string>":  # code built at import: dataclasses' __init__, ``copy_state``
        return "generated: dataclass construction and state copy"
    return "python builtins and other" if path.startswith("~") or "<" in path else "other: " + path.rsplit("/", 1)[-1]


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * resource.getpagesize() / 2**20, 1)
    except OSError:
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
