"""``leadflow backtest``: hold a calibrated scenario to a period that already happened."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from cli.calibrate_command import FROM_HELP, load_period
from cli.errors import CliError, friendly_errors

out = Console(highlight=False)
progress_console = Console(stderr=True)


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "share":
        return f"{value:.1%}"
    return f"{value:,.0f}" if unit == "leads" else f"{value:,.2f}"


@friendly_errors
def backtest_command(
    scenario: str = typer.Argument(..., help="the calibrated scenario: a bundled name or a YAML file"),
    against: str = typer.Option(..., "--against", help=FROM_HELP),
    since: str = typer.Option(None, "--since", help="first day, YYYY-MM-DD (UTC); default: the scenario's measured period"),
    until: str = typer.Option(None, "--until", help="day after the last, YYYY-MM-DD; default: the scenario's"),
    mapping: Path = typer.Option(None, "--mapping", help="Salesforce: the mapping file used to calibrate"),
    replications: int = typer.Option(20, "--replications", "-r", min=2),
    seed: int = typer.Option(None, "--seed", min=0, help="default: the scenario's"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="parallel processes"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Simulate a past period under the policy that was live and print, beside the actual figures
    of the closed-loop report, SLA attainment by tier, time to first contact, MQL, SQL and MQL->SQL,
    with the simulation's 95% prediction interval and whether each actual lies inside."""
    from datetime import datetime, timedelta, timezone

    from cli.simulate_commands import _load
    from simulation.backtest import backtest

    loaded = _load(scenario)
    start = datetime.combine(loaded.scenario.start, datetime.min.time(), tzinfo=timezone.utc)
    measured_from = (start + timedelta(days=loaded.scenario.warmup_days)).date().isoformat()
    measured_to = (start + timedelta(days=loaded.scenario.horizon_days)).date().isoformat()
    policy_file = None
    if isinstance(loaded.scenario.policy, str):
        policy_file = Path(loaded.source).parent / loaded.scenario.policy
    history, _ = load_period(against, since or measured_from, until or measured_to, policy_file, mapping)
    if history.until <= history.since:
        raise CliError("the period is empty; give --since and --until")
    with Progress(TextColumn("[bold]backtesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=progress_console, transient=True) as progress:
        task = progress.add_task("backtest", total=replications)
        result = backtest(loaded, history, replications, seed, workers, lambda: progress.advance(task))
    if as_json:
        typer.echo(json.dumps({**result.model_dump(mode="json"), "inside": result.inside, "compared": result.compared}))
        return
    out.print(f"{result.scenario} vs {result.source}: {result.since.date()} to {result.until.date()}, "
              f"policy {result.policy_version}, {result.replications} replications")
    table = Table("metric", "actual", "n", "simulated", "95% prediction", "inside", box=box.SIMPLE_HEAD)
    for row in result.rows:
        interval = f"{_show(row.interval[0], row.unit)} .. {_show(row.interval[1], row.unit)}" if row.interval else "-"
        verdict = "-" if row.inside is None else ("[green]yes[/]" if row.inside else "[bold red]no[/]")
        label = row.metric.removesuffix("_business_hours")  # business hours: said below the table
        table.add_row(Text(label, no_wrap=True), _show(row.actual, row.unit), f"{row.actual_n:,}", _show(row.simulated, row.unit),
                      interval, verdict)
    out.print(table)
    out.print(f"{result.inside} of {result.compared} actual figures inside the simulation's 95% prediction interval "
              f"({result.interval_method}; ttfc in business hours)")
