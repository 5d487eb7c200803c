"""``leadflow replay`` and ``leadflow history export``: prove new code replays recorded journeys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.errors import CliError, friendly_errors
from runtime.settings import current_settings

if TYPE_CHECKING:
    from temporalio.client import WorkflowHistory

history_app = typer.Typer(help="Workflow histories: export them for replay.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _progress(total: int | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=total is not None and total < 2,
    )


@friendly_errors
def replay_command(
    history: list[Path] = typer.Option(None, "--history", help="a JSON history, or a folder of them (repeatable)"),
    workflow_id: str = typer.Option(None, "--workflow-id", help="replay this workflow's latest run from the server"),
    query: str = typer.Option(
        None, "--query", help="replay every run a visibility query matches, e.g. \"CloseTime > '2026-11-17T00:00:00Z'\""),
) -> None:
    """Replay histories against this checkout's workflow code; exit 1 if any does not replay."""
    from temporalio.service import RPCError

    from workflows.replay import HistoryError, read_history_file, replay_histories, server_histories

    if sum(bool(choice) for choice in (history, workflow_id, query)) != 1:
        raise CliError("give exactly one of --history, --workflow-id or --query")

    async def run() -> list:
        source: list[tuple[WorkflowHistory, str]] | AsyncIterator[tuple[WorkflowHistory, str]]
        total: int | None
        if history:
            try:
                files = [path for source in history for path in _files(source)]
            except HistoryError as error:
                raise CliError(str(error)) from None
            if not files:
                raise CliError(f"no *.json histories in {', '.join(map(str, history))}")
            loaded: list[tuple[WorkflowHistory, str]] = []
            for path in files:
                try:
                    loaded.append((read_history_file(path), str(path)))
                except HistoryError as error:
                    raise CliError(str(error)) from None
            source, total = loaded, len(loaded)
        else:
            from workflows.journey_client import connect

            client = await connect(current_settings())
            source, total = server_histories(client, workflow_id=workflow_id, query=query), None
        with _progress(total) as progress:
            task = progress.add_task("replaying", total=total)

            def report(outcome) -> None:
                out.print(outcome.line(), markup=False)
                progress.advance(task)

            try:
                return await replay_histories(source, on_outcome=report)
            except RPCError as error:
                raise CliError(f"the server refused: {error.message}") from None

    outcomes = asyncio.run(run())
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if not outcomes:
        raise CliError("nothing to replay: the query matched no workflow")
    waiting = sum(outcome.nothing_to_replay for outcome in outcomes)
    out.print(f"{len(outcomes)} replayed: {len(outcomes) - len(failed)} ok, {len(failed)} failed"
              + (f" ({waiting} with no workflow task yet)" if waiting else ""))
    if failed:
        raise typer.Exit(1)


def _files(source: Path) -> list[Path]:
    from workflows.replay import history_files

    return history_files(source)


@history_app.command("export")
@friendly_errors
def export_command(
    query: str = typer.Option(..., "--query", help="visibility query, e.g. \"WorkflowType = 'LeadJourney'\""),
    out_dir: Path = typer.Option(..., "--out", help="folder to write WORKFLOWID__RUNID.json files into"),
) -> None:
    """Write the histories a visibility query matches, in the JSON the Temporal CLI exports."""
    from temporalio.service import RPCError

    from workflows.journey_client import connect
    from workflows.replay import export_histories

    async def run() -> list[Path]:
        client = await connect(current_settings())
        with _progress(None) as progress:
            task = progress.add_task("exporting", total=None)
            try:
                return await export_histories(client, query, out_dir, on_export=lambda _path: progress.advance(task))
            except RPCError as error:
                raise CliError(f"the server refused: {error.message}") from None

    written = asyncio.run(run())
    out.print(f"{len(written)} histories written to {out_dir}")
