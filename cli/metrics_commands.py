"""``leadflow metrics …``: what the worker's ``/metrics`` endpoint exposes."""

from __future__ import annotations

import typer

metrics_app = typer.Typer(help="The worker's Prometheus metrics.", no_args_is_help=True)


@metrics_app.command("names")
def names_command() -> None:
    """Print every metric name the worker exposes (Temporal SDK and leadflow_ business), one per line."""
    from workflows.telemetry import metric_names

    typer.echo("\n".join(metric_names()))
