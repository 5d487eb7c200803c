"""``leadflow bench …``: benchmarks that print JSON (figures in the README come from here)."""

from __future__ import annotations

import json
import os

import typer

from cli.errors import friendly_errors
from runtime.settings import resolve_scenario_path

bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)


@bench_app.command("sim")
@friendly_errors
def bench_sim_command(
    scenario: str = typer.Option("baseline", "--scenario", help="scenario to time: a bundled name or a YAML file"),
    replications: int = typer.Option(1, "--replications", "-r", min=1),
    seed: int = typer.Option(1, "--seed", min=0),
    # The workload the speed targets were set on: the baseline as it was (400 leads a week, 35 days).
    horizon_days: float = typer.Option(35.0, "--horizon-days", min=1, help="the simulated days"),
    leads_per_week: float = typer.Option(400.0, "--leads-per-week", min=1, help="the arrival volume"),
    headcount: int = typer.Option(None, "--headcount", min=1, help="grow or shrink the roster to this many reps"),
    as_json: bool = typer.Option(True, "--json/--no-json", help="print JSON (the default)"),
) -> None:
    """Leads per second of full journeys, against raw SimPy and Ciw M/M/c customers per second."""
    from simulation.benchmark import bench_sim

    figures = bench_sim(resolve_scenario_path(scenario), replications, seed, horizon_days, leads_per_week, headcount)
    figures["cpus"] = os.cpu_count()
    typer.echo(json.dumps(figures) if as_json else "\n".join(f"{key}: {value}" for key, value in figures.items()))


@bench_app.command("live")
@friendly_errors
def bench_live_command(
    leads: int = typer.Option(200, "--leads", "-n", min=1, max=100_000, help="how many journeys (and ceiling runs)"),
    visibility: bool = typer.Option(
        True, "--visibility/--no-visibility", help="journeys index their search attributes, as users run them (the default)"
    ),
    as_json: bool = typer.Option(True, "--json/--no-json", help="print JSON (the default)"),
) -> None:
    """Full journeys per second through the embedded stack, against a same-shape ceiling workflow."""
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.live import bench_live

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:

        def progress(what: str, total: int):
            task = bar.add_task(what, total=total)
            return lambda: bar.advance(task)

        figures = asyncio.run(bench_live(leads, progress, visibility=visibility))
    typer.echo(json.dumps(figures) if as_json else "\n".join(f"{key}: {value}" for key, value in figures.items()))
