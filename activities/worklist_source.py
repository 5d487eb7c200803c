"""A rep's worklist from the ledger, in the core's order (``leadflow.worklist``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from activities.ledger import Ledger
from leadflow.journey import Stage
from leadflow.policy import Policy
from leadflow.worklist import Task, is_workable, work_item, worklist


class WorklistEntry(BaseModel):
    """One task: ids, stage and times only (nothing personal)."""

    lead_id: str
    journey_id: str
    task: Task
    stage: Stage
    tier: str | None
    due_at: datetime | None = Field(description="the deadline the task answers to (an SLA clock first)")
    overdue: bool
    workable: bool = Field(description="false: a cadence step not open yet (see workable_from)")
    workable_from: datetime | None
    mql_at: datetime | None
    attempts: int = Field(description="attempts by the current owner")


class Worklist(BaseModel):
    """A rep's open leads in the order to work them: workable tasks by earliest deadline,
    then hotter tier, then earlier MQL; then the cadence steps still to open."""

    rep_id: str
    as_of: datetime
    entries: list[WorklistEntry]


class UnknownRep(LookupError):
    pass


def rep_worklist(ledger: Ledger, rep_id: str, policy: Policy, now: datetime) -> Worklist:
    """``rep_id``'s worklist; each journey read under the policy it runs (``policy`` if unknown).

    Raises ``UnknownRep`` for a rep the policy does not name and who owns no open lead.
    """
    states = ledger.open_journeys(owner_id=rep_id)
    if not states and policy.rep(rep_id) is None:
        raise UnknownRep(f"no rep {rep_id!r} in policy {policy.version} and no open lead owned by it; "
                         "use a rep id from the policy's reps")
    policies: dict[str, Policy] = {policy.version: policy}
    items = []
    for state in states:
        if state.policy_version not in policies:
            policies[state.policy_version] = ledger.policy(state.policy_version) or policy
        item = work_item(state, policies[state.policy_version])
        if item is not None:
            items.append(item)
    entries = [
        WorklistEntry(lead_id=item.lead_id, journey_id=item.journey_id, task=item.task, stage=item.stage, tier=item.tier,
                      due_at=item.due_at, overdue=item.due_at is not None and item.due_at < now,
                      workable=is_workable(item, now), workable_from=item.workable_from, mql_at=item.mql_at,
                      attempts=item.attempts)
        for item in worklist(items, now)
    ]
    return Worklist(rep_id=rep_id, as_of=now, entries=entries)
