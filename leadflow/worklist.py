"""A rep's worklist: the task each owned lead needs next, and the order to work them in.

Both shells use it: the API returns a rep's worklist in this order
(``GET /v1/reps/{id}/worklist``) and the simulator's reps work their own leads in it. The
order is the one a rep should follow to keep their SLAs: the task whose deadline comes
first, then the hotter tier, then the earlier MQL, then the lead id (so ties agree).

A task may not be workable yet: the cadence's next attempt is due by the end of a business
day, and becomes workable the day before its deadline (``follow_up_workable_from``), so a
rep in another time zone can make it in their own hours. The list shows workable tasks
first, in priority order, then the coming ones by when they become workable.

Pure: plain functions over the journey state and the policy; no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from leadflow.business_calendar import add_business_hours
from leadflow.journey import Clock, JourneyState, Stage
from leadflow.policy import CadenceUnit, Policy
from leadflow.waiting_line import tier_priority

# A cadence step due "on business day n" is workable from a day before its deadline.
FOLLOW_UP_WINDOW = timedelta(hours=24)


class Task(StrEnum):
    """What the owner has to do next on a lead."""

    ACCEPT = "accept"  # ASSIGNED: accept (or reject) it, then make the first attempt
    FIRST_ATTEMPT = "first_attempt"  # ACCEPTED: no attempt yet
    FOLLOW_UP = "follow_up"  # WORKING, not reached: the cadence's next attempt
    DISPOSITION = "disposition"  # WORKING, reached: qualify or disqualify
    ADVANCE = "advance"  # SQL: convert or disqualify before it stalls


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One task on a rep's worklist; ids, stage and times only (nothing personal)."""

    lead_id: str
    journey_id: str
    task: Task
    stage: Stage
    tier: str | None
    tier_priority: int
    due_at: datetime | None  # the deadline the task answers to (an SLA clock first)
    workable_from: datetime | None  # None: workable now
    mql_at: datetime | None
    attempts: int


def work_item(state: JourneyState, policy: Policy) -> WorkItem | None:
    """The owner's next task on this journey, or None when no rep owns it."""
    if state.outcome is not None or state.owner_id is None:
        return None
    deadlines = state.deadlines
    workable_from: datetime | None = None
    if state.stage is Stage.ASSIGNED:
        task, due_at = Task.ACCEPT, state.sla_due_at
    elif state.stage is Stage.ACCEPTED:
        task, due_at = Task.FIRST_ATTEMPT, state.sla_due_at
    elif state.stage is Stage.WORKING and state.connected:
        task, due_at = Task.DISPOSITION, deadlines.get(Clock.DISPOSITION)
    elif state.stage is Stage.WORKING:
        task, due_at = Task.FOLLOW_UP, deadlines.get(Clock.FOLLOW_UP)
        if due_at is not None:
            workable_from = follow_up_workable_from(state, due_at, policy)
    elif state.stage is Stage.SQL:
        task, due_at = Task.ADVANCE, deadlines.get(Clock.SQL_STALL)
    else:
        return None
    return WorkItem(
        lead_id=state.lead_id,
        journey_id=state.journey_id,
        task=task,
        stage=state.stage,
        tier=state.tier,
        tier_priority=tier_priority(policy, state.tier),
        due_at=due_at,
        workable_from=workable_from,
        mql_at=state.mql_at,
        attempts=state.owner_attempts,
    )


def follow_up_workable_from(state: JourneyState, due_at: datetime, policy: Policy) -> datetime:
    """When the cadence's next attempt may be made: the day before it is due (business-day
    cadences), or when the previous step was due (business-hour cadences)."""
    cadence = policy.cadence
    if cadence.unit is CadenceUnit.BUSINESS_HOUR and state.owner_first_attempt_at is not None and state.owner_attempts:
        previous = cadence.schedule[min(state.owner_attempts, len(cadence.schedule)) - 1]
        return min(due_at, add_business_hours(policy.calendar, state.owner_first_attempt_at, previous))
    return due_at - FOLLOW_UP_WINDOW


def priority(item: WorkItem) -> tuple[bool, float, int, float, str]:
    """The order tasks are worked in: earliest deadline, hotter tier, earlier MQL, lead id."""
    due = item.due_at.timestamp() if item.due_at is not None else float("inf")
    mql = item.mql_at.timestamp() if item.mql_at is not None else float("inf")
    return item.due_at is None, due, item.tier_priority, mql, item.lead_id


def is_workable(item: WorkItem, now: datetime) -> bool:
    return item.workable_from is None or item.workable_from <= now


def worklist(items: list[WorkItem], now: datetime) -> list[WorkItem]:
    """A rep's tasks: workable ones by ``priority``, then coming ones by when they open."""
    workable = sorted((item for item in items if is_workable(item, now)), key=priority)
    coming = sorted(
        (item for item in items if not is_workable(item, now)),
        key=lambda item: (item.workable_from, priority(item)),
    )
    return workable + coming
