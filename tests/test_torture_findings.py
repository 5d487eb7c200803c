"""What the torture test found and is not fixed yet, reproduced from its recorded history.

``tests/torture_findings/signal_after_task_scheduled__*.json`` is a journey from a torture
run (2026-12-04): an SLA timer fired (event 55), a workflow task was scheduled (56), a rep
action signal arrived (57) before the task started (58). Live, the worker handled the fired
deadline first (its ledger has the breach and the escalation) and the rep action after;
replayed, the SDK applies the signal and the timer in one activation, signal first, so
the journey takes the rep action first and issues other commands (README, "Why a journey
replays the same on a busy worker", point 5). The test passes while the bug is there:
when a fix makes this history replay, it fails, and the finding moves to the golden
histories.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import UnsandboxedWorkflowRunner

from workflows.lead_journey import LeadJourneyWorkflow
from workflows.replay import journey_replayer, read_history_file, replay_histories

FINDINGS = Path(__file__).resolve().parent / "torture_findings"


async def test_signal_arriving_after_the_task_was_scheduled_still_replays_differently():
    history = read_history_file(next(FINDINGS.glob("signal_after_task_scheduled__*.json")))
    # Up to the task the worker completed live (events 58-63); later tasks failed.
    recorded = WorkflowHistory(history.workflow_id, history.events[:64])
    (outcome,) = await replay_histories([(recorded, "finding")], journey_replayer(LeadJourneyWorkflow, UnsandboxedWorkflowRunner()))
    assert outcome.nondeterministic, outcome.line()
    assert "No command scheduled for event HistoryEvent(id: 61, TimerStarted)" in outcome.line()
