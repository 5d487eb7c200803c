"""What the torture test found, reproduced from its recorded histories, and how the fixes replay them.

``tests/torture_findings/signal_after_task_scheduled__*.json`` is a journey from a torture
run (2026-12-04): an SLA timer fired (event 55), a workflow task was scheduled (56), a rep
action signal arrived (57) before the task started (58). Live, the worker handled the fired
deadline first (its ledger has the breach and the escalation) and the rep action after;
replayed, the SDK applies the signal and the timer in one activation, signal first, so
the journey takes the rep action first and issues other commands (README, "Why a journey
replays the same on a busy worker", point 5). Journeys started before the
``due-deadlines-first`` patch keep that behaviour; with the patch the same events replay.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import UnsandboxedWorkflowRunner

import workflows.lead_journey as lead_journey
from workflows.lead_journey import CONTINUE_AS_NEW_BY_COUNT, DUE_DEADLINES_FIRST, LeadJourneyWorkflow
from workflows.replay import journey_replayer, read_history_file, replay_histories

FINDINGS = Path(__file__).resolve().parent / "torture_findings"


def _recorded() -> WorkflowHistory:
    history = read_history_file(next(FINDINGS.glob("signal_after_task_scheduled__*.json")))
    # Up to the task the worker completed live (events 58-63); later tasks failed.
    return WorkflowHistory(history.workflow_id, history.events[:64])


async def _replay(history: WorkflowHistory):
    (outcome,) = await replay_histories([(history, "finding")], journey_replayer(LeadJourneyWorkflow, UnsandboxedWorkflowRunner()))
    return outcome


async def test_without_the_patch_the_journey_takes_the_signal_first_and_cannot_replay():
    outcome = await _replay(_recorded())
    assert outcome.nondeterministic, outcome.line()
    assert "No command scheduled for event HistoryEvent(id: 61, TimerStarted)" in outcome.line()


async def test_taking_overdue_deadlines_first_replays_what_the_worker_did_live(monkeypatch: pytest.MonkeyPatch):
    """The same events, decided as a journey with ``due-deadlines-first`` decides them (the
    history predates the patch, so its marker is granted here rather than read)."""
    real = workflow.patched
    monkeypatch.setattr(lead_journey.workflow, "patched", lambda patch_id: patch_id == DUE_DEADLINES_FIRST or real(patch_id))
    outcome = await _replay(_recorded())
    assert not outcome.nondeterministic and not outcome.problem, outcome.line()


# -- the continue-as-new suggestion ------------------------------------------------------------
#
# ``continue_as_new_suggestion_differs__*.json`` (torture run of 2026-12-04, in a continued
# run of a lead whose rep never answers): a follow-up deadline fired (event 61) in a task
# whose start says "continue-as-new suggested"; while its ledger write ran, a manager's
# claim arrived (signal 66). Live, the worker handled the claim as soon as the write came
# back (events 75-78: search attributes, notification, the claim's record, its timer). On
# replay the deadline's arrival reads the suggestion as set, so the journey first waits for
# its notifications to continue as new, and issues only events 75-76 in that task:
# ``No command scheduled for event HistoryEvent(id: 77, ActivityTaskScheduled)``. So the
# suggestion a timer's arrival read live was not the one it reads on replay. Journeys
# started with ``continue-as-new-by-count`` no longer read it: they continue as new after
# handling ``events_per_run`` events, a count replay gives back the same way.

SUGGESTION_FINDING = next(FINDINGS.glob("continue_as_new_suggestion_differs__*.json"))


def _suggestion_recorded() -> WorkflowHistory:
    history = read_history_file(SUGGESTION_FINDING)
    # Up to the last task the worker completed live (events 73-78); the tasks after failed.
    return WorkflowHistory(history.workflow_id, history.events[:84])


async def test_a_continue_as_new_suggestion_read_differently_on_replay_breaks_the_journey():
    outcome = await _replay(_suggestion_recorded())
    assert outcome.nondeterministic, outcome.line()
    assert "No command scheduled for event HistoryEvent(id: 77, ActivityTaskScheduled)" in outcome.line()


async def test_continuing_as_new_by_count_replays_what_the_worker_did_live(monkeypatch: pytest.MonkeyPatch):
    """The same events, decided as a journey with ``continue-as-new-by-count`` decides them
    (the history predates the patch, so its marker is granted here rather than read)."""
    real = workflow.patched
    monkeypatch.setattr(lead_journey.workflow, "patched",
                        lambda patch_id: patch_id == CONTINUE_AS_NEW_BY_COUNT or real(patch_id))
    outcome = await _replay(_suggestion_recorded())
    assert not outcome.nondeterministic and not outcome.problem, outcome.line()


async def test_with_the_count_patch_the_server_suggestion_changes_nothing(monkeypatch: pytest.MonkeyPatch):
    """Today's continue-as-new golden histories replay whatever the suggestion reads."""
    golden = FINDINGS.parent / "histories"
    today = [(read_history_file(path), path.name) for path in sorted(golden.glob("continue_as_new_nurture.run*.json"))]
    assert len(today) >= 3
    replayer = journey_replayer(LeadJourneyWorkflow, UnsandboxedWorkflowRunner())
    for suggested in (True, False):
        monkeypatch.setattr(workflow.Info, "is_continue_as_new_suggested", lambda self, value=suggested: value)
        outcomes = await replay_histories(today, replayer)
        assert all(outcome.ok and not outcome.nothing_to_replay for outcome in outcomes), (suggested, outcomes)
