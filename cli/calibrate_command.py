"""``leadflow calibrate``: fit a scenario to the team's own history."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import typer
import yaml
from rich.console import Console

from cli.errors import CliError, friendly_errors

out = Console(highlight=False)
progress_console = Console(stderr=True)

SHORT_UNITS = {"minutes": "min", "hours": "h", "leads/week": "/week", "events/week": "/week"}
FROM_HELP = ("history: 'ledger' (LEADFLOW_DATABASE_URL), a database URL, a Salesforce export folder "
             "(Lead.csv, LeadHistory.csv, Task.csv) or a generic events CSV (README: Calibrating from your own history)")


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r} is not a day; give YYYY-MM-DD") from None


def load_period(source: str, since: str | None, until: str | None, policy: Path | None, mapping: Path | None):
    """The history named on the command line, under the policy it ran (``--policy`` for files;
    the ledger knows its own)."""
    from activities.ledger_history import LedgerHistoryError, ledger_history
    from runtime.settings import current_settings, load_policy_file, resolve_policy_path
    from simulation.crm_history import HistoryError
    from simulation.history_source import is_ledger, load_file_history

    settings = current_settings()
    policy_path = resolve_policy_path(policy) if policy else settings.policy_path
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    try:
        if is_ledger(source):
            url = settings.ledger_url if source == "ledger" else source
            return ledger_history(url, first, last, load_policy_file(policy_path)), policy_path
        return load_file_history(source, load_policy_file(policy_path), first, last, mapping), policy_path
    except (HistoryError, LedgerHistoryError) as error:
        raise CliError(str(error)) from None


@friendly_errors
def calibrate_command(
    source: str = typer.Option(..., "--from", help=FROM_HELP),
    out_path: Path = typer.Option(..., "--out", help="the scenario file to write (e.g. scenarios/calibrated.yaml)"),
    since: str = typer.Option(None, "--since", help="first day, YYYY-MM-DD (UTC); default: the history's first"),
    until: str = typer.Option(None, "--until", help="day after the last, YYYY-MM-DD (UTC); default: after the last event"),
    policy: Path = typer.Option(None, "--policy", help="the policy the history ran under (files only; the ledger "
                                "knows its own); default: LEADFLOW_POLICY"),
    mapping: Path = typer.Option(None, "--mapping", help="Salesforce: a YAML file saying what your status values, "
                                 "lead sources, call dispositions and user ids mean"),
    name: str = typer.Option(None, "--name", help="scenario name; default: the file name"),
    as_json: bool = typer.Option(False, "--json", help="print every fitted value with n and 95% interval as JSON"),
) -> None:
    """Fit arrivals, mixes, rep latency and call lengths, contact, qualify and convert rates
    to a history, and write a scenario that simulates the same period."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from simulation.calibration import calibrate
    from simulation.history_source import is_ledger
    from simulation.simulated_moments import engagement_fitter

    history, policy_path = load_period(source, since, until, policy, mapping)
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                  console=progress_console, transient=True) as progress:
        task = progress.add_task("fitting engagement by simulation", total=None)
        fitted = calibrate(history, engagement_fitter(history.policy, lambda: progress.advance(task)))
    out_path = out_path.expanduser()
    if out_path.suffix.lower() not in (".yaml", ".yml"):
        raise CliError(f"--out {out_path}: give a .yaml file name")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    scenario_name = name or out_path.stem
    if is_ledger(source):
        policy_file = out_path.with_name(f"{out_path.stem}-policy.yaml")
        policy_file.write_text(yaml.safe_dump(history.policy.model_dump(mode="json", exclude_defaults=True),
                                              sort_keys=False))
        reference = policy_file.name
    else:
        relative = os.path.relpath(Path(policy_path).resolve(), out_path.parent.resolve())
        reference = relative if not relative.startswith("..") else str(Path(policy_path).resolve())
    header = (f"# Calibrated by `leadflow calibrate --from {source}`: {history.since.date()} to {history.until.date()}.\n"
              "# Every value below was fitted (see --json for n and 95% intervals) or is the documented default.\n")
    out_path.write_text(header + yaml.safe_dump(fitted.scenario(scenario_name, reference), sort_keys=False))
    if as_json:
        typer.echo(json.dumps({**fitted.as_json(), "scenario": str(out_path)}))
        return
    out.print(f"{fitted.source}: {fitted.leads:,} leads, {fitted.mqls:,} MQLs, {history.since.date()} to "
              f"{history.until.date()} (n, 95% intervals and estimators of every value: --json)")
    for section in ("population", "behaviour"):
        out.print(f"\n[bold]{section:<37}[/] {'value':>13} {'n':>6}  95% interval")
        for item in fitted.fitted:
            if not item.name.startswith(section + ".") or "profile[" in item.name:
                continue  # the 31 weekday and hour profile values: in --json
            interval = f"{item.ci95[0]:.3g} .. {item.ci95[1]:.3g}" if item.ci95 else ""
            unit = SHORT_UNITS.get(item.unit, item.unit)
            value = f"{item.value:.4g}{(' ' + unit) if unit else ''}"
            out.print(f"{item.name.removeprefix(section + '.'):<37} {value:>13} {item.n:>6,}  {interval}", markup=False)
    out.print()
    for warning in fitted.warnings:
        out.print(f"[bold yellow]warning:[/] {warning}")
    out.print(f"wrote {out_path}")



@friendly_errors
def example_export_command(
    folder: Path = typer.Argument(..., help="the folder to write Lead.csv, LeadHistory.csv, Task.csv, mapping.yaml and "
                                  "policy.yaml to"),
    scenario: str = typer.Option("example-history", "--scenario", help="the quarter to simulate: a bundled name or a "
                                 "YAML file; its behaviour values are the truth calibrate should recover"),
    seed: int = typer.Option(None, "--seed", min=0, help="default: the scenario's"),
) -> None:
    """Write a Salesforce export of a simulated quarter, to try `calibrate` and `backtest` on."""
    from cli.simulate_commands import _load
    from simulation.example_export import write_example_export

    loaded = _load(scenario)
    with progress_console.status(f"simulating {loaded.scenario.name}"):
        since, until = write_example_export(loaded, folder.expanduser(), seed)
    out.print(f"wrote {folder}/Lead.csv, LeadHistory.csv, Task.csv, mapping.yaml and policy.yaml (the policy that "
              f"was live); calibrate it with:\n  leadflow calibrate --from {folder} --mapping {folder}/mapping.yaml "
              f"--policy {folder}/policy.yaml --since {since.date()} --until {until.date()} --out scenarios/calibrated.yaml")
