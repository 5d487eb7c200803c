"""Entry point of the ``leadflow`` command."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from leadflow.cli import lead_commands
from leadflow.cli.api_command import api_command
from leadflow.cli.bench_commands import bench_app
from leadflow.cli.metrics_commands import metrics_app
from leadflow.cli.policy_commands import policy_app
from leadflow.cli.replay_commands import history_app, replay_command
from leadflow.runtime.clean_exit import run_then_exit
from leadflow.cli.demo import demo_command
from leadflow.cli.simulate_commands import capacity_command, compare_command, sim_worker_command, simulate_command
from leadflow.cli.errors import friendly_errors
from leadflow.runtime.settings import Settings

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
    import os

    from worker import serve

    _logging(verbose)
    if metrics_address:
        os.environ["LEADFLOW_METRICS_ADDRESS"] = metrics_address
    asyncio.run(serve(Settings.from_env(policy_path=policy, task_queue=task_queue)))


@app.command()
@friendly_errors
def dev(
    data_dir: Path = typer.Option(Path(".leadflow"), "--data-dir", help="Temporal and ledger SQLite files live here"),
    port: int = typer.Option(7233, "--port", help="Temporal frontend port"),
    ui_port: int = typer.Option(8233, "--ui-port", help="Temporal Web UI port"),
    policy: Path = typer.Option(None, "--policy", help="policy YAML (default: scenarios/policy.yaml)"),
    metrics_address: str = typer.Option(None, "--metrics-address", help="default: $LEADFLOW_METRICS_ADDRESS or 0.0.0.0:9464"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Start the embedded stack: Temporal dev server (SQLite) and a worker. Ctrl-C stops both."""
    import os

    if metrics_address:
        os.environ["LEADFLOW_METRICS_ADDRESS"] = metrics_address

    from leadflow.runtime.dev_stack import DevServer
    from worker import serve

    _logging(verbose)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = DevServer(data_dir, port=port, ui_port=ui_port, log_path=data_dir / "temporal.log")
    server.start()
    typer.echo(f"Temporal dev server on {server.address}, Web UI http://127.0.0.1:{ui_port}, data in {data_dir}")
    os.environ["TEMPORAL_ADDRESS"] = server.address
    try:
        asyncio.run(serve(Settings.from_env(policy_path=policy, data_dir=data_dir)))
    finally:
        server.stop()
        typer.echo("stopped")


def main() -> None:
    """The ``leadflow`` console script."""
    run_then_exit(app)


if __name__ == "__main__":
    main()
