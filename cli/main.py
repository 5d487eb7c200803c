"""Entry point of the ``leadflow`` command."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from cli import lead_commands
from cli.api_command import api_command
from cli.backtest_command import backtest_command
from cli.bench_commands import bench_app
from cli.calibrate_command import calibrate_command, example_export_command
from cli.demo import demo_command
from cli.errors import friendly_errors
from cli.metrics_commands import metrics_app
from cli.policy_commands import policy_app
from cli.replay_commands import history_app, replay_command
from cli.report_command import report_command
from cli.setup_command import setup_command
from cli.simulate_commands import capacity_command, compare_command, sim_worker_command, simulate_command
from runtime.clean_exit import run_then_exit
from runtime.settings import current_settings

app = typer.Typer(help="leadflow: lead journeys as durable Temporal workflows.", no_args_is_help=True)
app.add_typer(lead_commands.lead_app, name="lead")
app.add_typer(lead_commands.leads_app, name="leads")
app.add_typer(bench_app, name="bench")
app.add_typer(metrics_app, name="metrics")
app.add_typer(history_app, name="history")
app.add_typer(policy_app, name="policy")
app.command("replay")(replay_command)
app.command("api")(api_command)
app.command("demo")(demo_command)
app.command("simulate")(simulate_command)
app.command("compare")(compare_command)
app.command("capacity")(capacity_command)
app.command("sim-worker")(sim_worker_command)
app.command("setup")(setup_command)
app.command("report")(report_command)
app.command("calibrate")(calibrate_command)
app.command("example-export")(example_export_command)
app.command("backtest")(backtest_command)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
@friendly_errors
def worker(
    policy: Path = typer.Option(None, "--policy", help="policy YAML (default: $LEADFLOW_POLICY or scenarios/policy.yaml)"),
    task_queue: str = typer.Option(None, "--task-queue", help="default: $LEADFLOW_TASK_QUEUE or 'leadflow'"),
    metrics_address: str = typer.Option(None, "--metrics-address", help="default: $LEADFLOW_METRICS_ADDRESS or 0.0.0.0:9464"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run a worker against the Temporal server in the environment (TEMPORAL_ADDRESS, ...)."""
    from worker import serve_process

    _logging(verbose)
    asyncio.run(serve_process(current_settings().replace(policy_path=policy, task_queue=task_queue,
                                                         metrics_address=metrics_address)))


@app.command()
@friendly_errors
def dev(
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Temporal and ledger SQLite files live here (default: $LEADFLOW_DATA_DIR, else .leadflow)",
        show_default=False,
    ),
    port: int = typer.Option(7233, "--port", help="Temporal frontend port"),
    ui_port: int = typer.Option(8233, "--ui-port", help="Temporal Web UI port"),
    policy: str = typer.Option(None, "--policy", help="policy YAML or bundled name (default: $LEADFLOW_POLICY or the bundled 'policy')"),
    metrics_address: str = typer.Option(None, "--metrics-address", help="default: $LEADFLOW_METRICS_ADDRESS or 0.0.0.0:9464"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Start the embedded stack: Temporal dev server (SQLite) and a worker. Ctrl-C stops both.

    If the server or the worker stops on its own, dev says which (and where the server's
    log is), stops the other and exits non-zero.
    """
    from cli.errors import CliError
    from runtime.settings import default_data_dir, load_policy_file, resolve_policy_path
    from workflows.dev_server import DevServer, StackStopped, supervise

    # The same folder Settings (worker, `policy rollout`, ...) uses unless --data-dir says otherwise.
    data_dir = data_dir if data_dir is not None else default_data_dir()
    settings = current_settings().replace(policy_path=resolve_policy_path(policy) if policy else None, data_dir=data_dir,
                                          metrics_address=metrics_address)
    load_policy_file(settings.policy_path)  # a bad policy is reported before anything starts

    from worker import serve

    _logging(verbose)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"cannot use {data_dir} as the data dir (--data-dir or LEADFLOW_DATA_DIR): {error.strerror}") from None
    server = DevServer(data_dir, port=port, ui_port=ui_port, log_path=data_dir / "temporal.log")
    try:
        server.start()
    except (RuntimeError, FileNotFoundError) as error:
        raise CliError(str(error)) from None
    typer.echo(f"Temporal dev server on {server.address}, Web UI http://127.0.0.1:{ui_port}, data in {data_dir}")
    try:
        asyncio.run(supervise(server, serve(settings, target_host=server.address)))
    except StackStopped as stopped:
        raise CliError(f"{stopped}; leadflow dev stopped") from None
    finally:
        server.stop()
        typer.echo("stopped")


def main() -> None:
    """The ``leadflow`` console script."""
    from workflows.telemetry import use_logging_runtime

    use_logging_runtime()  # SDK core logs to stderr: stdout carries only the command's output
    run_then_exit(app)


if __name__ == "__main__":
    main()
