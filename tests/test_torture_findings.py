"""What the torture test found and is not fixed yet, reproduced from its recorded history.

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
from workflows.lead_journey import DUE_DEADLINES_FIRST, LeadJourneyWorkflow
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
