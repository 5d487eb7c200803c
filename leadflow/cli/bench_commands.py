"""``leadflow bench …``: benchmarks that print JSON (figures in the README come from here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from leadflow.cli.errors import friendly_errors
from leadflow.runtime.settings import SCENARIOS_DIR

bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)


@bench_app.command("sim")
@friendly_errors
def bench_sim_command(
    scenario: Path = typer.Option(SCENARIOS_DIR / "baseline.yaml", "--scenario", help="scenario to time"),
    replications: int = typer.Option(1, "--replications", "-r", min=1),
    seed: int = typer.Option(1, "--seed", min=0),
    horizon_days: float = typer.Option(None, "--horizon-days", min=1, help="override the scenario's horizon"),
    leads_per_week: float = typer.Option(None, "--leads-per-week", min=1, help="override the arrival volume"),
    headcount: int = typer.Option(None, "--headcount", min=1, help="grow or shrink the roster to this many reps"),
    as_json: bool = typer.Option(True, "--json/--no-json", help="print JSON (the default)"),
) -> None:
    """Leads per second of full journeys, against raw SimPy and Ciw M/M/c customers per second."""
    from simulation.benchmark import bench_sim

    figures = bench_sim(scenario, replications, seed, horizon_days, leads_per_week, headcount)
    figures["cpus"] = os.cpu_count()
    typer.echo(json.dumps(figures) if as_json else "\n".join(f"{key}: {value}" for key, value in figures.items()))
