"""Replay: golden histories of every journey path, caught non-determinism, the patch lifecycle."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import time, timezone
from pathlib import Path

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner

from leadflow.journey import Stage
from runtime.settings import REPO_ROOT
from tests import journey_variants as variants
from tests.journey_helpers import hot_lead, next_local, skip_to, wait_for
from tests.test_journey_workflow import journey_worker, settings_for, submit_lead
from workflows.journey_client import journey_handle
from workflows.lead_journey import (
    BOUNDED_ENGAGEMENT,
    CONTINUE_AS_NEW_BY_COUNT,
    DUE_DEADLINES_FIRST,
    REPLAY_STABLE_CLOCK,
    WAITING_LINE,
)
from workflows.replay import HistoryError, history_files, journey_replayer, read_history_file, replay_histories

GOLDEN = REPO_ROOT / "tests" / "histories"
PATHS = ("hot_contacted_in_sla", "breach_escalation_reassignment", "unresponsive_recycled", "disqualified",
         "sql_converted", "continue_as_new_nurture")


def golden() -> list[tuple]:
    return [(read_history_file(path), path.name) for path in history_files(GOLDEN)]


def _replayer(workflow_class):
    return journey_replayer(workflow_class, UnsandboxedWorkflowRunner())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=120)


def test_golden_histories_cover_every_journey_path():
    names = [path.name for path in history_files(GOLDEN)]
    for journey_path in PATHS:
        assert any(name.startswith(journey_path) for name in names), f"no golden history for {journey_path}"
    assert sum(name.startswith("continue_as_new_nurture.run") for name in names) >= 2
    first_run = next(path for path in history_files(GOLDEN) if path.name.startswith("continue_as_new_nurture.run1"))
    assert json.loads(first_run.read_text())["events"][-1]["eventType"] in (
        "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW", "WorkflowExecutionContinuedAsNew")


def test_leadflow_replay_replays_every_golden_history():
    result = _cli("replay", "--history", str(GOLDEN))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len([line for line in lines if line.startswith("ok ")]) == len(history_files(GOLDEN))
    assert lines[-1] == f"{len(history_files(GOLDEN))} replayed: {len(history_files(GOLDEN))} ok, 0 failed"


_COMMAND_EVENTS = ("marker_recorded_event_attributes", "timer_started_event_attributes",
                   "activity_task_scheduled_event_attributes", "workflow_execution_continued_as_new_event_attributes",
                   "workflow_execution_completed_event_attributes")


def records_commands(history) -> bool:
    """A journey's first run, recorded from its start: replay can compare what it did.

    (A later run that only re-armed a carried timer cannot tell one timer from another: core
    matches timers by sequence, not by duration.)
    """
    started = history.events[0].workflow_execution_started_event_attributes
    return not started.continued_execution_run_id and any(
        event.HasField(field) for event in history.events for field in _COMMAND_EVENTS
    )


async def test_a_nondeterministic_change_is_caught_by_replay():
    histories = golden()
    outcomes = await replay_histories(histories, _replayer(variants.NaiveDebounce))
    comparable = [outcome for (history, _), outcome in zip(histories, outcomes) if records_commands(history)]
    assert len(comparable) >= len(PATHS)
    assert all(outcome.nondeterministic for outcome in comparable), [outcome.problem for outcome in comparable]
    assert "nondeterministic" in comparable[0].line()


async def test_a_run_without_a_workflow_task_has_nothing_to_replay_and_does_not_hang():
    """A run continued as new a moment ago holds only its start event."""
    from temporalio.client import WorkflowHistory

    path = next(path for path in history_files(GOLDEN) if path.name.startswith("continue_as_new_nurture.run2"))
    recorded = read_history_file(path)
    (outcome,) = await replay_histories([(WorkflowHistory(recorded.workflow_id, recorded.events[:1]), "just started")])
    assert outcome.ok and outcome.nothing_to_replay and "no workflow task" in outcome.line()


def test_leadflow_replay_exits_non_zero_for_a_history_that_does_not_match(tmp_path):
    source = next(path for path in history_files(GOLDEN) if path.name.startswith("sql_converted"))
    history = json.loads(source.read_text())
    # Somebody else's code: the notification activity the journey scheduled is now another one.
    scheduled = [event for event in history["events"] if "activityTaskScheduledEventAttributes" in event]
    scheduled[0]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "send_fax"
    del history["events"][-1]  # and the run is still open, so replay must get that far
    (tmp_path / "tampered__run.json").write_text(json.dumps(history))
    (tmp_path / "good__run.json").write_text(source.read_text())
    result = _cli("replay", "--history", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 ok, 1 failed" in result.stdout
    assert any(line.startswith(("nondeterministic", "failed")) and "tampered" in line for line in result.stdout.splitlines())


@pytest.mark.parametrize("content, problem", [
    ("not json", "not a JSON history"),
    ('{"events": []}', "not a workflow history"),
    ('[1, 2]', "not a workflow history"),
])
def test_bad_history_files_get_a_clear_error(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(HistoryError, match=problem):
        read_history_file(path)
    result = _cli("replay", "--history", str(path))
    assert result.returncode == 1 and problem in result.stderr and "Traceback" not in result.stderr


def test_replay_needs_exactly_one_source():
    result = _cli("replay")
    assert result.returncode == 1 and "exactly one of --history, --workflow-id or --query" in result.stderr
    missing = _cli("replay", "--history", "no/such/folder")
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr


async def test_patch_lifecycle_worked_example(time_env, task_queue, sqlite_url, policy, tmp_path):
    """patch -> deprecate -> remove, each step replaying what the step before it recorded."""
    # Before the change: the golden histories. The patched code replays them (old path).
    assert all(outcome.ok for outcome in await replay_histories(golden(), _replayer(variants.PatchedDebounce)))

    recorded = {}
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), 1, time(10, 0)))
    for step in (variants.PatchedDebounce, variants.DeprecatedDebounce):
        async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy, workflow_class=step,
                                  runner=UnsandboxedWorkflowRunner()):
            submitted = await submit_lead(client, hot_lead(f"{step.__name__.lower()}@corp.io"), task_queue, visibility=False)
            await wait_for(client, submitted.lead_id, lambda view: view.stage is Stage.ASSIGNED)
            history = await journey_handle(client, submitted.lead_id).fetch_history()
        recorded[step] = [(history, step.__name__)]
        assert any(event.HasField("marker_recorded_event_attributes") for event in history.events), "no patch marker"

    async def replays(histories, workflow_class) -> bool:
        return all(outcome.ok for outcome in await replay_histories(histories, _replayer(workflow_class)))

    # 1. Patched: new runs take the new path and replay; old runs replay on the old path.
    assert await replays(recorded[variants.PatchedDebounce], variants.PatchedDebounce)
    # 2. Deprecated: replays runs recorded by step 1 (and its own), but not runs from before
    #    the patch, which is why it ships only once those have all closed.
    assert await replays(recorded[variants.PatchedDebounce], variants.DeprecatedDebounce)
    assert await replays(recorded[variants.DeprecatedDebounce], variants.DeprecatedDebounce)
    assert not await replays([item for item in golden() if records_commands(item[0])][:1], variants.DeprecatedDebounce)
    # 3. Removed: replays runs recorded by step 2.
    assert await replays(recorded[variants.DeprecatedDebounce], variants.DebounceOnly)
    # Without the patch, the change breaks every run recorded before it.
    assert not await replays([item for item in golden() if records_commands(item[0])][:1], variants.NaiveDebounce)


def test_golden_folder_holds_only_histories_and_the_recorder():
    unexpected = [path.name for path in GOLDEN.iterdir()
                  if path.suffix not in (".json", ".py") and path.name not in ("__pycache__", "previous", "updates", "unbounded_engagement",
                                                                            "suggested_continue_as_new", "before_waiting_line")]
    assert unexpected == []
    assert (GOLDEN / "record.py").is_file()


def _patch_ids(path: Path) -> set[str]:
    history = read_history_file(path)
    return {json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
            for event in history.events
            if event.marker_recorded_event_attributes.marker_name == "core_patch"}


def _rep_actions(path: Path) -> tuple[int, int]:
    """(rep actions sent as updates, rep actions sent as ``rep_action`` signals) in a history."""
    events = read_history_file(path).events
    updates = sum(event.HasField("workflow_execution_update_accepted_event_attributes") for event in events)
    signals = sum(event.workflow_execution_signaled_event_attributes.signal_name == "rep_action" for event in events)
    return updates, signals


def test_the_waiting_line_has_golden_histories_of_both_sides():
    """The journey whose close freed the slot signalled the one waiting, which took it."""
    def events(prefix: str) -> list:
        (path,) = [path for path in GOLDEN.glob("*.json") if path.name.startswith(prefix)]
        return list(read_history_file(path).events)

    assert any(event.HasField("signal_external_workflow_execution_initiated_event_attributes")
               for event in events("waiting_line_freed_slot"))
    assert any(event.workflow_execution_signaled_event_attributes.signal_name == "line_served"
               for event in events("waiting_line_served"))


def test_golden_histories_of_every_shape_are_kept():
    """Today's shape at the top (patched ``replay-stable-clock``, ``due-deadlines-first``,
    ``continue-as-new-by-count`` and ``waiting-line``, rep actions as signals); in
    ``before_waiting_line/`` the shape before ``waiting-line``; in ``suggested_continue_as_new/``
    the shape before ``continue-as-new-by-count`` (continue-as-new when the server suggested
    it); in ``updates/`` ``replay-stable-clock`` with rep actions as updates; in
    ``previous/`` journeys started before it; in ``unbounded_engagement/`` a future-dated
    event taken as sent, before ``bounded-engagement``. All replay with today's code."""
    current = sorted(GOLDEN.glob("*.json"))
    suggested = sorted((GOLDEN / "suggested_continue_as_new").glob("*.json"))
    assert any(path.name.startswith("continue_as_new_nurture.run2") for path in suggested)
    with_updates = sorted((GOLDEN / "updates").glob("*.json"))
    previous = sorted((GOLDEN / "previous").glob("*.json"))
    assert current and with_updates and previous
    unbounded = sorted((GOLDEN / "unbounded_engagement").glob("*.json"))
    assert unbounded and not any(BOUNDED_ENGAGEMENT in _patch_ids(path) for path in unbounded)
    before_line = sorted((GOLDEN / "before_waiting_line").glob("*.json"))
    for path in current:  # ``bounded-engagement`` only where an event needed bounds
        needed = path.name.startswith("future_dated_engagement")
        assert _patch_ids(path) == ({REPLAY_STABLE_CLOCK, DUE_DEADLINES_FIRST, CONTINUE_AS_NEW_BY_COUNT, WAITING_LINE}
                                    | ({BOUNDED_ENGAGEMENT} if needed else set()))
    for path in before_line:
        needed = path.name.startswith("future_dated_engagement")
        assert _patch_ids(path) == ({REPLAY_STABLE_CLOCK, DUE_DEADLINES_FIRST, CONTINUE_AS_NEW_BY_COUNT}
                                    | ({BOUNDED_ENGAGEMENT} if needed else set()))
    for journey_path in PATHS:
        assert any(path.name.startswith(journey_path) for path in before_line), f"no pre-line history for {journey_path}"
    for path in suggested:
        needed = path.name.startswith("future_dated_engagement")
        assert _patch_ids(path) == {REPLAY_STABLE_CLOCK, DUE_DEADLINES_FIRST} | ({BOUNDED_ENGAGEMENT} if needed else set())
    assert all(_patch_ids(path) == {REPLAY_STABLE_CLOCK} for path in with_updates)
    assert not any(_patch_ids(path) for path in previous)
    assert all(_rep_actions(path)[0] == 0 for path in current)
    assert any(_rep_actions(path)[1] > 0 for path in current)
    assert all(_rep_actions(path)[1] == 0 for path in with_updates + previous)
    assert any(_rep_actions(path)[0] > 0 for path in with_updates)
    for journey_path in PATHS:
        assert any(path.name.startswith(journey_path) for path in previous), f"no pre-patch history for {journey_path}"
        assert any(path.name.startswith(journey_path) for path in with_updates), f"no update-shaped history for {journey_path}"


async def test_a_future_dated_event_recorded_before_bounded_engagement_replays_as_it_was_taken():
    """The journey in ``unbounded_engagement/`` took a page view dated 9999 as sent, so a
    download after it counted for almost nothing and the lead stayed in nurture. Today's
    core bounds the event, and the same events would make the lead an MQL: without the
    ``bounded-engagement`` patch the old journey would change course on its next replay."""
    from temporalio.worker import UnsandboxedWorkflowRunner

    from leadflow.decide import decide, new_journey
    from leadflow.journey import EngagementReceived, LeadSubmitted, Stage
    from leadflow.lead import EngagementEvent, Lead
    from runtime.converter import journey_data_converter
    from runtime.settings import DEFAULT_POLICY, load_policy_file
    from workflows.lead_journey import LeadJourneyWorkflow
    from workflows.replay import journey_replayer, replay_histories

    [path] = sorted((GOLDEN / "unbounded_engagement").glob("future_dated_engagement__*.json"))
    history = read_history_file(path)
    (kept,) = await replay_histories([(history, path.name)], journey_replayer(LeadJourneyWorkflow, UnsandboxedWorkflowRunner()))
    assert not kept.nondeterministic and not kept.problem, kept.line()

    converter, policy = journey_data_converter(), load_policy_file(DEFAULT_POLICY)
    arrivals = []
    for event in history.events:
        signal = event.workflow_execution_signaled_event_attributes
        if signal.signal_name in ("submit", "engage"):
            kind = Lead if signal.signal_name == "submit" else EngagementEvent
            [payload] = await converter.decode(signal.input.payloads, [kind])
            arrivals.append((event.event_time.ToDatetime(timezone.utc), payload))
    assert any(isinstance(payload, EngagementEvent) and payload.at.year == 9999 for _, payload in arrivals)
    stages = {}
    for as_sent in (True, False):
        state = new_journey("L", "j", policy.version)
        for at, payload in arrivals:
            event = LeadSubmitted(lead=payload) if isinstance(payload, Lead) else EngagementReceived(event=payload, as_sent=as_sent)
            state, _ = decide(state, event, at, policy)
        stages[as_sent] = state.stage
    assert stages == {True: Stage.NURTURING, False: Stage.MQL}
