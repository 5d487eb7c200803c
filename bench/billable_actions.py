"""Estimate the Temporal Cloud billable actions of a journey from its event history.

Follows Temporal Cloud's published action list: a workflow start (client start,
signal-with-start, continue-as-new), every timer started, every search-attribute upsert
command, every signal, every update (accepted or rejected), every query, every activity
attempt, and for local activities one action per workflow task that ran any. Memo upserts
(``WorkflowPropertiesModified``) are counted too, to be safe: the list is not explicit
about them.

Two things never reach the history and are passed in by the caller: queries (a client
counts its own with ``QueryCounter``), and updates rejected by a validator. The signal that rides on a signal-with-start is counted as a
signal as well as the start, which may over-count by one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Interceptor, OutboundInterceptor, QueryWorkflowInput, WorkflowHistory

_LOCAL_ACTIVITY_MARKER = "core_local_activity"


class QueryCounter(Interceptor):
    """A client interceptor that counts the queries the client sends, per workflow id.

    Queries are billable but never reach a history: ``leadflow bench live`` and the cost
    test count a rep's queries with it (``Client.connect(..., interceptors=[counter])``).
    """

    def __init__(self) -> None:
        self.by_workflow: Counter[str] = Counter()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _CountingOutbound(next, self.by_workflow)


class _CountingOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, counts: Counter[str]) -> None:
        super().__init__(next)
        self._counts = counts

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        self._counts[input.id] += 1
        return await super().query_workflow(input)


class ActionCount(BaseModel):
    """History events and billable actions of one workflow run, by category."""

    history_events: int
    starts: int
    activities: int
    local_activity_tasks: int
    timers: int
    signals: int
    updates: int
    queries: int
    search_attribute_upserts: int
    memo_upserts: int = 0

    @property
    def total(self) -> int:
        return (
            self.starts
            + self.activities
            + self.local_activity_tasks
            + self.timers
            + self.signals
            + self.updates
            + self.queries
            + self.search_attribute_upserts
            + self.memo_upserts
        )

    def as_report(self) -> dict[str, int]:
        return {**self.model_dump(), "billable_actions": self.total}


def count_actions(history: WorkflowHistory, *, queries: int = 0, rejected_updates: int = 0) -> ActionCount:
    """Count the history's events and estimate the billable actions they stand for."""
    events = list(history.events)
    kinds = Counter(event.event_type for event in events)
    activity_attempts = sum(
        event.activity_task_started_event_attributes.attempt
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    )
    # Local activities are recorded as markers in the workflow task that ran them.
    tasks_with_local_activities = 0
    marker_in_task = False
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            marker_in_task = False
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name == _LOCAL_ACTIVITY_MARKER and not marker_in_task:
                tasks_with_local_activities += 1
                marker_in_task = True
    return ActionCount(
        history_events=len(events),
        starts=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED],
        activities=activity_attempts,
        local_activity_tasks=tasks_with_local_activities,
        timers=kinds[EventType.EVENT_TYPE_TIMER_STARTED],
        signals=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        updates=kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED] + rejected_updates,
        queries=queries,
        search_attribute_upserts=kinds[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
        memo_upserts=kinds[EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED],
    )
