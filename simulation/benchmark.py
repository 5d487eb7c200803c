"""``leadflow bench sim``: simulator speed against raw SimPy and Ciw on matched load."""

from __future__ import annotations

import gc
import platform
import resource
import time
from datetime import date
from pathlib import Path

from simulation.capacity import with_headcount
from simulation.mmc_reference import ciw_mmc, simpy_mmc
from simulation.runner import run_replication
from simulation.scenario import load_scenario


def bench_sim(
    scenario_path: Path,
    replications: int = 1,
    seed: int = 1,
    horizon_days: float | None = None,
    leads_per_week: float | None = None,
    headcount: int | None = None,
) -> dict[str, object]:
    """Simulate the scenario, then an M/M/c queue with as many customers, in raw SimPy and in Ciw.

    ``horizon_days``, ``leads_per_week`` and ``headcount`` scale the run (e.g. a year of
    1,000,000 leads, with a team big enough for them, to measure peak memory).
    """
    loaded = load_scenario(scenario_path, horizon_days=horizon_days)
    if leads_per_week is not None:
        population = loaded.scenario.population.model_copy(update={"leads_per_week": leads_per_week})
        loaded = loaded.model_copy(update={"scenario": loaded.scenario.model_copy(update={"population": population})})
    if headcount is not None:
        loaded = loaded.model_copy(update={"policy": with_headcount(loaded.policy, headcount)})
    started = time.perf_counter()
    leads = sum(run_replication(loaded, seed, replication).leads_simulated for replication in range(replications))
    sim_seconds = time.perf_counter() - started
    leads_per_s = leads / sim_seconds
    sim_peak_rss_mb = _peak_rss_mb()  # before the references, which keep every customer they move
    gc.collect()  # so the references do not pay for collecting the simulator's garbage
    # Matched load: the same number of customers through a 5-server queue at utilisation 0.9.
    raw = simpy_mmc(arrival_rate=4.5, service_rate=1.0, servers=5, customers=leads, seed=seed)
    ciw = ciw_mmc(arrival_rate=4.5, service_rate=1.0, servers=5, customers=leads, seed=seed)
    return {
        "scenario": loaded.scenario.name,
        "replications": replications,
        "leads_simulated": leads,
        "sim_seconds": round(sim_seconds, 3),
        "leads_per_s": round(leads_per_s, 1),
        "simpy_mmc_customers_per_s": round(raw.customers_per_s, 1),
        "ciw_customers_per_s": round(ciw.customers_per_s, 1),
        "ratio_vs_simpy": round(leads_per_s / raw.customers_per_s, 4),
        "ratio_vs_ciw": round(leads_per_s / ciw.customers_per_s, 4),
        "sim_peak_rss_mb": sim_peak_rss_mb,
        "peak_rss_mb": _peak_rss_mb(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "date": date.today().isoformat(),
    }


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
