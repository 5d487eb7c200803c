"""Replay recorded journey histories against the workflow code in this checkout.

Histories come from JSON files (as ``temporal workflow show --output json`` and the Web UI
export them, or as ``leadflow history export`` writes them) or straight from a server by
workflow id or visibility query. Replay uses the worker's own sandbox and data converter,
so a history that replays here replays on a worker built from the same code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, WorkflowRunner

from runtime.converter import journey_data_converter
from workflows.lead_journey import LeadJourneyWorkflow
from workflows.sandbox import workflow_runner


class HistoryError(Exception):
    """A history that cannot be read (not JSON, not a workflow history)."""


@dataclass(frozen=True)
class ReplayOutcome:
    workflow_id: str
    run_id: str | None
    source: str
    problem: str | None = None
    nothing_to_replay: bool = False  # the run has not had a workflow task yet

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def nondeterministic(self) -> bool:
        return self.problem is not None and "nondetermin" in self.problem.lower()

    def line(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        if self.nothing_to_replay:
            return f"no task yet       {self.workflow_id}{run} ({self.source}): started, no workflow task to replay"
        if self.ok:
            return f"ok                {self.workflow_id}{run} ({self.source})"
        verdict = "nondeterministic" if self.nondeterministic else "failed"
        return f"{verdict:<17} {self.workflow_id}{run} ({self.source}): {self.problem}"


def history_files(path: Path) -> list[Path]:
    """``path`` itself, or every ``*.json`` below it, in a stable order."""
    if path.is_dir():
        return sorted(path.rglob("*.json"))
    if path.is_file():
        return [path]
    raise HistoryError(f"{path}: no such file or directory")


def read_history_file(path: Path) -> WorkflowHistory:
    """A history from a JSON export.

    The workflow id comes from the start event where the server recorded it, else from the
    file name (the part before ``__``, as ``leadflow history export`` names files).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HistoryError(f"{path}: not a JSON history ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list) or not data["events"]:
        raise HistoryError(f"{path}: not a workflow history (expected an object with a non-empty 'events' list)")
    try:
        history = WorkflowHistory.from_json(path.stem.split("__")[0], data)
    except Exception as error:
        raise HistoryError(f"{path}: not a workflow history ({error})") from None
    recorded_id = history.events[0].workflow_execution_started_event_attributes.workflow_id
    return WorkflowHistory(recorded_id, history.events) if recorded_id else history


async def server_histories(client: Client, *, workflow_id: str | None = None, query: str | None = None
                           ) -> AsyncIterator[tuple[WorkflowHistory, str]]:
    """Histories from the server: one workflow's latest run, or every run a visibility query matches."""
    if workflow_id:
        handle = client.get_workflow_handle(workflow_id)
        yield await handle.fetch_history(), "server"
        return
    async for execution in client.list_workflows(query or ""):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        yield await handle.fetch_history(), "server"


def journey_replayer(workflow_class: type = LeadJourneyWorkflow, runner: WorkflowRunner | None = None) -> Replayer:
    """A replayer with the worker's sandbox and data converter (tests pass a changed workflow)."""
    return Replayer(
        workflows=[workflow_class], workflow_runner=runner or workflow_runner(), data_converter=journey_data_converter()
    )


async def replay_histories(
    histories: Iterable[tuple[WorkflowHistory, str]] | AsyncIterator[tuple[WorkflowHistory, str]],
    replayer: Replayer | None = None,
    on_outcome: Callable[[ReplayOutcome], None] | None = None,
) -> list[ReplayOutcome]:
    """Replay every history; one outcome each, in order (never raises for a failed replay)."""
    replayer = replayer or journey_replayer()
    outcomes: list[ReplayOutcome] = []

    async def each() -> AsyncIterator[tuple[WorkflowHistory, str]]:
        if hasattr(histories, "__aiter__"):
            async for item in histories:
                yield item
        else:
            for item in histories:
                yield item

    async for history, source in each():
        if not any(event.HasField("workflow_task_started_event_attributes") for event in history.events):
            # A run just started (a continue-as-new a moment ago): the replayer would wait
            # for a task that is not in the history. Nothing the code did can differ yet.
            outcome = ReplayOutcome(workflow_id=history.workflow_id, run_id=_run_id(history), source=source,
                                    nothing_to_replay=True)
        else:
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            failure = result.replay_failure
            outcome = ReplayOutcome(
                workflow_id=history.workflow_id,
                run_id=_run_id(history),
                source=source,
                problem=f"{type(failure).__name__}: {failure}" if failure else None,
            )
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    return outcomes


def _run_id(history: WorkflowHistory) -> str | None:
    started = history.events[0].workflow_execution_started_event_attributes if history.events else None
    return started.original_execution_run_id or None if started else None


async def export_histories(client: Client, query: str, out: Path, on_export: Callable[[Path], None] | None = None) -> list[Path]:
    """Write every run the visibility query matches to ``out`` as ``WORKFLOWID__RUNID.json``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    async for execution in client.list_workflows(query):
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        path = out / f"{execution.id}__{execution.run_id}.json"
        path.write_text(history.to_json(), encoding="utf-8")
        written.append(path)
        if on_export:
            on_export(path)
    return written
