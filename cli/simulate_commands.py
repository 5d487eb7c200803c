"""``leadflow simulate``, ``leadflow compare`` and ``leadflow capacity``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from cli.errors import CliError, friendly_errors
from leadflow.report import Dimension
from runtime.settings import current_settings
from simulation.results import METRIC_DESCRIPTIONS, metric_unit
from simulation.results import SHARE_METRICS as SHARES

if TYPE_CHECKING:
    from simulation.scenario import LoadedScenario

out = Console(highlight=False)
progress_console = Console(stderr=True)

SHOWN = [
    "sla_attainment", "sla_attainment_hot", "sla_attainment_warm", "sla_attainment_cold", "sla_attainment_acceptance",
    "sla_attainment_follow_up", "first_contact_within_5m", "first_contact_within_60m", "ttfc_p50", "ttfc_p90",
    "ttfc_p99", "ttfc_wall_p50", "ttfc_wall_p90", "ttfc_wall_p99", "uncontacted_at_horizon", "breaches", "escalations", "reassignments",
    "queue_depth_max", "queue_depth_mean", "rep_utilisation", "mql", "sql", "mql_to_sql", "acceptance_rate", "attempts_per_lead",
    "recycled",
]


def _known_metrics(*scenarios: LoadedScenario) -> set[str]:
    """Every metric a run of these scenarios can report: the fixed ones and each tier's attainment."""
    return {*METRIC_DESCRIPTIONS, *(f"sla_attainment_{tier.name}" for loaded in scenarios for tier in loaded.policy.tiers)}


def _format(name: str, value: float) -> str:
    return f"{value:.1%}" if name in SHARES else f"{value:,.2f}"


@contextmanager
def _progress(total: int, label: str) -> Iterator:
    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=progress_console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda _outcome: progress.advance(task)


def _backend(on_temporal: bool):
    """Where replications run: here (None) or as activities on the ``simulation`` task queue."""
    if not on_temporal:
        return None
    import asyncio

    from simulation.on_temporal import run_replications_on_temporal
    from workflows.journey_client import connect

    def on_workers(loaded, replications, seed, _workers, on_done):
        async def run():
            return await run_replications_on_temporal(await connect(current_settings()), loaded, replications, seed)

        outcomes = asyncio.run(run())
        for outcome in outcomes:
            if on_done:
                on_done(outcome)
        return outcomes

    return on_workers


ON_TEMPORAL_HELP = "run replications as activities on the 'simulation' task queue (start `leadflow sim-worker`s)"


def _from_ledger(loaded, as_of: str | None):
    """The scenario started from the ledger's open journeys at ``as_of`` (default: now)."""
    from datetime import datetime, timezone

    from activities.ledger_history import LedgerHistoryError, open_journeys
    from simulation.start_state import StartState

    moment = datetime.now(timezone.utc)
    if as_of is not None:
        try:
            moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(f"--as-of {as_of!r} is not an ISO 8601 time (2026-12-07T09:00:00Z)") from None
        if moment.tzinfo is None:
            raise CliError(f"--as-of {as_of!r} has no UTC offset; add Z or +hh:mm")
    try:
        journeys = open_journeys(current_settings().ledger_url)
    except LedgerHistoryError as error:
        raise CliError(str(error)) from None
    reps = {rep.id for rep in loaded.policy.reps}
    kept = tuple(journey for journey in journeys if journey.owner_id is None or journey.owner_id in reps)
    if len(kept) < len(journeys):
        progress_console.print(f"[yellow]note:[/] {len(journeys) - len(kept)} open journeys are owned by reps the "
                               "scenario's policy does not have; they are left out")
    return loaded.model_copy(update={"start_state": StartState(as_of=moment, journeys=kept)})


def _load(scenario: str, **overrides):
    """A scenario by bundled name (``baseline``) or by path, read and validated."""
    from runtime.settings import resolve_scenario_path
    from simulation.scenario import load_scenario

    return load_scenario(resolve_scenario_path(scenario), **overrides)


SCENARIO_HELP = "scenario: a bundled name (e.g. baseline) or the path of a YAML file"


@friendly_errors
def simulate_command(
    scenario: str = typer.Argument(..., help=SCENARIO_HELP),
    replications: int = typer.Option(None, "--replications", "-r", min=2, help="default: the scenario's"),
    seed: int = typer.Option(None, "--seed", min=0, help="default: the scenario's"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="parallel processes"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    html: Path = typer.Option(None, "--html", help="write a self-contained report with plots"),
    on_temporal: bool = typer.Option(False, "--on-temporal", help=ON_TEMPORAL_HELP),
    report: bool = typer.Option(
        False, "--report",
        help="print the closed-loop SLA report of the first replication's measured period instead, in the shape of "
        "`leadflow report` (with --json: its JSON; with --html: its page)"),
    by: Dimension = typer.Option(None, "--by", help="with --report: break the funnel down by this [default: source]"),
    from_ledger: bool = typer.Option(
        False, "--from-ledger",
        help="start from the ledger's open journeys (LEADFLOW_DATABASE_URL) as they are now: stages, owners, "
             "deadlines, attempts, reps' loads; no warm-up, the scenario's measured length from then"),
    as_of: str = typer.Option(None, "--as-of", help="with --from-ledger: the simulation clock's start (ISO 8601 with "
                              "offset; default: now); the journeys are always the ledger's latest state"),
) -> None:
    """Simulate a scenario: SLA attainment, time to first contact, load and conversions, with 95% intervals."""
    from simulation.prior_history import PRIOR_CYCLES
    from simulation.report_html import simulation_report, write_report
    from simulation.runner import simulate
    from simulation.scenario import NurturesAtStart

    loaded = _load(scenario)
    if from_ledger:
        if on_temporal:
            raise CliError("--from-ledger runs here, not --on-temporal (the sweep's workers do not get the open journeys)")
        loaded = _from_ledger(loaded, as_of)
    elif as_of is not None:
        raise CliError("--as-of goes with --from-ledger")
    if by is not None and not report:
        raise CliError("--by goes with --report (it breaks the report's funnel down)")
    if report:
        from cli.report_command import show
        from cli.report_html import write_report_html
        from simulation.closed_loop import simulated_report

        closed_loop = simulated_report(loaded, seed if seed is not None else loaded.scenario.seed, 0, by or Dimension.SOURCE)
        if html:
            write_report_html(closed_loop, html)
        if as_json:
            typer.echo(closed_loop.model_dump_json(indent=2))
        else:
            out.print(f"{loaded.scenario.name}: replication 1 (seed {seed if seed is not None else loaded.scenario.seed}), "
                      "simulated")
            show(closed_loop)
        return
    total = replications or loaded.scenario.replications
    with _progress(total, f"simulating {loaded.scenario.name}") as advance:
        result, _ = simulate(loaded, replications, seed, workers, advance, _backend(on_temporal))
    if html:
        write_report(simulation_report(result), html)
    if as_json:
        start = loaded.start_state
        typer.echo(json.dumps({
            **result.json_summary(),
            "start": {"from_ledger": True, "open_journeys": len(start.journeys), "as_of": start.as_of.isoformat(),
                      "warmup_days": 0} if start is not None else
                     {"from_ledger": False, "warmup_days": loaded.scenario.warmup_days,
                      "nurtures_at_start": str(loaded.scenario.nurtures_at_start)},
        }))
        return
    table = Table("metric", "mean", "95% interval", "unit", title=f"{result.scenario}: {result.replications} replications, "
                  f"{result.leads_simulated:,} leads, {result.wall_seconds:.1f} s")
    for name in SHOWN:
        if name in result.metrics:
            estimate = result.metrics[name]
            low, high = estimate.ci95
            table.add_row(name, _format(name, estimate.mean), f"{_format(name, low)} .. {_format(name, high)}",
                          metric_unit(name))
    out.print(table)
    if loaded.start_state is not None:
        out.print(f"started from {len(loaded.start_state.journeys):,} open journeys in the ledger as of "
                  f"{loaded.start_state.as_of.isoformat(timespec='minutes')}: no warm-up")
    else:
        out.print(f"warm-up cut: the first {loaded.scenario.warmup_days:g} of {loaded.scenario.horizon_days:g} days "
                  "(what happens then is simulated, not counted)")
        if loaded.scenario.nurtures_at_start is NurturesAtStart.STEADY:
            out.print(f"started with the nurture pool a steady inflow leaves ({PRIOR_CYCLES * loaded.policy.nurture_days:g} "
                      "days of arrivals lived out, recycles included)")
    if result.steady_state is not None:
        out.print(("" if result.steady_state.steady else "[bold yellow]warning:[/] ") + result.steady_state.note)
    if html:
        out.print(f"report: {html}")


@friendly_errors
def compare_command(
    a: str = typer.Argument(..., help="scenario A (e.g. today): a bundled name or a YAML file"),
    b: str = typer.Argument(..., help="scenario B (the proposed change): a bundled name or a YAML file"),
    replications: int = typer.Option(None, "--replications", "-r", min=2),
    seed: int = typer.Option(None, "--seed", min=0, help="default: A's seed"),
    workers: int = typer.Option(1, "--workers", "-w", min=1),
    as_json: bool = typer.Option(False, "--json"),
    html: Path = typer.Option(None, "--html", help="write a self-contained report with overlays"),
    on_temporal: bool = typer.Option(False, "--on-temporal", help=ON_TEMPORAL_HELP),
    precision: float = typer.Option(
        None, "--precision", min=0.0001, max=1.0,
        help="add replications until the difference of --precision-metric is known to this share of A's value "
             "(e.g. 0.05: the 95%% interval is at most +/-5%% of A's mean)",
    ),
    precision_metric: str = typer.Option("sla_attainment", "--precision-metric", help="the metric --precision is about"),
    max_replications: int = typer.Option(200, "--max-replications", min=2, help="the most --precision may run"),
) -> None:
    """Compare two scenarios on the same leads (common random numbers): B minus A with intervals.

    "significant" holds the whole family of metrics at 5% (Holm's step-down over every metric compared).
    """
    from simulation.compare import compare
    from simulation.report_html import comparison_report, write_report

    first, second = _load(a), _load(b)
    known = _known_metrics(first, second)
    if precision is not None and precision_metric not in known:
        raise typer.BadParameter(f"unknown metric {precision_metric!r}; try one of: {', '.join(sorted(known))}",
                                 param_hint="--precision-metric")
    total = 2 * (max_replications if precision is not None else
                 replications or max(first.scenario.replications, second.scenario.replications))
    with _progress(total, f"comparing {first.scenario.name} with {second.scenario.name}") as advance:
        result = compare(first, second, replications, seed, workers, advance, _backend(on_temporal),
                         precision=precision, precision_metric=precision_metric, max_replications=max_replications)
    if html:
        write_report(comparison_report(result), html)
    if as_json:
        typer.echo(json.dumps({
            "a": result.a.json_summary(),
            "b": result.b.json_summary(),
            "differences": {name: diff.model_dump(mode="json") for name, diff in result.differences.items()},
            "multiple_testing": f"Holm step-down over {len(result.differences)} metrics, family-wise 5%",
            "precision": result.precision,
        }))
        return
    # Metric names are never cut short (several share a long prefix); narrow terminals wrap the figures instead.
    table = Table(Column("metric", no_wrap=True), result.a.scenario, result.b.scenario, "B - A (95% interval)", "significant",
                  title=f"{result.b.scenario} vs {result.a.scenario}: {result.a.replications} paired replications",
                  caption=f"significant: family-wise 5% over {len(result.differences)} metrics (Holm)"
                          + (f"; {result.precision}" if result.precision else ""))
    for name in SHOWN:
        if name in result.differences:
            diff = result.differences[name]
            low, high = diff.difference.ci95
            scale = 100 if name in SHARES else 1
            unit = " pp" if name in SHARES else ""
            table.add_row(
                name, _format(name, diff.a), _format(name, diff.b),
                f"{diff.difference.mean * scale:+,.2f}{unit} ({low * scale:+,.2f} .. {high * scale:+,.2f})",
                "[bold green]yes[/]" if diff.significant else "no",
            )
    out.print(table)


@friendly_errors
def capacity_command(
    scenario: str = typer.Argument(..., help=SCENARIO_HELP),
    target_sla: float = typer.Option(None, "--target-sla", min=0, max=1, help="e.g. 0.9: SLA attainment to reach"),
    metric: str = typer.Option("sla_attainment", "--metric", help="metric the target applies to"),
    target: float = typer.Option(None, "--target", help="target for --metric (instead of --target-sla)"),
    smallest: int = typer.Option(1, "--min", min=1, help="smallest headcount to consider"),
    largest: int = typer.Option(None, "--max", min=1, help="largest headcount (default: 3x the roster)"),
    replications: int = typer.Option(None, "--replications", "-r", min=2),
    seed: int = typer.Option(None, "--seed", min=0),
    workers: int = typer.Option(1, "--workers", "-w", min=1),
    as_json: bool = typer.Option(False, "--json"),
    html: Path = typer.Option(None, "--html", help="write the capacity curve as a report"),
    on_temporal: bool = typer.Option(False, "--on-temporal", help=ON_TEMPORAL_HELP),
) -> None:
    """The smallest team that meets a target (its whole 95% interval), with the curve searched."""
    from cli.errors import CliError
    from simulation.capacity import MetricNotMeasured, capacity
    from simulation.report_html import capacity_report, write_report

    goal = target if target is not None else target_sla
    if goal is None:
        raise CliError("say what to reach: --target-sla 0.9, or --metric NAME --target VALUE")
    if largest is not None and largest < smallest:
        raise typer.BadParameter(f"--max {largest} is below --min {smallest}; give a range with min <= max",
                                 param_hint="--max")
    loaded = _load(scenario)
    known = _known_metrics(loaded)
    if metric not in known:
        raise typer.BadParameter(f"unknown metric {metric!r}; try one of: {', '.join(sorted(known))}", param_hint="--metric")
    with Progress(TextColumn("[bold]searching headcount"), TimeElapsedColumn(), console=progress_console, transient=True) as progress:
        progress.add_task("search")
        try:
            result = capacity(loaded, goal, metric, smallest, largest, replications, seed, workers,
                              backend=_backend(on_temporal))
        except MetricNotMeasured as error:
            raise CliError(str(error)) from None
    if html:
        write_report(capacity_report(result), html)
    if as_json:
        typer.echo(result.model_dump_json())
        return
    table = Table("headcount", metric, "95% interval", "meets target", title=f"{result.scenario}: {metric} target {goal}")
    for point in result.curve:
        low, high = point.metric.ci95
        table.add_row(str(point.headcount), _format(metric, point.metric.mean), f"{_format(metric, low)} .. {_format(metric, high)}",
                      "yes" if point.meets_target else "no")
    out.print(table)
    if result.smallest_meeting_target is None:
        out.print(f"no headcount up to {result.curve[-1].headcount if result.curve else largest} meets the target")
    else:
        out.print(f"smallest team meeting the target: [bold]{result.smallest_meeting_target}[/] reps")


@friendly_errors
def sim_worker_command(
    identity: str = typer.Option(None, "--identity", help="worker identity shown in Temporal (default: host and pid)"),
    task_queue: str = typer.Option("simulation", "--task-queue", help="task queue of simulation sweeps"),
) -> None:
    """Run replications for `--on-temporal` sweeps (one at a time; start one per core, on any machine)."""
    import asyncio
    import signal

    from simulation.on_temporal import sim_worker
    from workflows.journey_client import connect

    async def serve() -> None:
        worker = sim_worker(await connect(current_settings()), identity, task_queue)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        run = asyncio.create_task(worker.run())
        await asyncio.wait([run, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            await worker.shutdown()
        await run

    progress_console.print(f"simulation worker: polling task queue {task_queue!r}; Ctrl-C stops")
    asyncio.run(serve())
