"""Typed inputs and outputs of the activities (shared with the workflow that calls them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from leadflow.journey import Clock, DecisionEntry, JoinWaitingLine, JourneyState, NotificationKind, RepAssigned, Stage
from leadflow.kpis import ContactSla


class LeadProjection(BaseModel):
    """The current-lead row of the ledger (no personal data)."""

    lead_id: str
    journey_id: str
    workflow_id: str
    stage: Stage
    tier: str | None = None
    owner_id: str | None = None
    fit_score: float = 0.0
    source: str | None = None
    policy_version: str
    sla_due_at: datetime | None = None
    outcome: str | None = None
    seq: int
    updated_at: datetime
    journey_state: JourneyState | None = Field(default=None, description="open journeys only, without personal data")


class Claim(BaseModel):
    step: int
    rep_id: str


class SettledSla(BaseModel):
    """An SLA the step settled (``leadflow.kpis.sla_settled``): what the report counts."""

    clock: Clock
    tier: str
    outcome: ContactSla


class LedgerBatch(BaseModel):
    """Everything one journey step writes to the ledger, applied in one transaction.

    Each entry is keyed by (journey_id, seq), releases and claims by their step, so a
    retried activity writes once.
    """

    journey_id: str
    lead_id: str
    workflow_id: str
    policy_version: str
    entries: list[DecisionEntry] = Field(default_factory=list)
    releases: list[str] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
    settled: list[SettledSla] = Field(default_factory=list, description="SLAs settled by this step, at its last seq")
    projection: LeadProjection
    at: datetime
    left_line: bool = Field(default=False, description="the journey stopped waiting in line: give back any slot served to it")


class LineServed(BaseModel):
    """A lead given a freed slot from the waiting line: the journey to tell, and what to tell it."""

    workflow_id: str
    journey_id: str
    assigned: RepAssigned


class StepRecorded(BaseModel):
    """What a journey step wrote, and the leads in line its released slots went to.

    ``record_journey_step`` returns a bare count when nobody was served, as it always did,
    so histories of steps that freed no slot keep their shape.
    """

    written: int
    served: list[LineServed] = Field(default_factory=list)


class JoinLineRequest(BaseModel):
    """Put a journey in the waiting line (or take a slot that freed since routing said no)."""

    journey_id: str
    lead_id: str
    workflow_id: str
    policy_version: str
    entry: JoinWaitingLine
    at: datetime


class SlotReturn(BaseModel):
    """A slot served to a journey that could not be told (its workflow is gone): free it."""

    journey_id: str
    step: int
    rep_id: str
    policy_version: str
    at: datetime


class AssignmentRequest(BaseModel):
    journey_id: str
    lead_id: str
    step: int
    policy_version: str
    tier: str
    territory: str | None = None
    segment: str | None = None
    exclude: list[str] = Field(default_factory=list)
    release_rep_id: str | None = None
    at: datetime


class AssignmentResult(BaseModel):
    step: int
    rep_id: str | None = None
    team: str | None = None
    on_shift: bool = False
    why_none: str | None = None
    served: list[LineServed] = Field(default_factory=list, description="leads in line given the released rep's slot")


class Notification(BaseModel):
    key: str = Field(description="idempotency key: journey id and decision step")
    kind: NotificationKind
    recipients: list[str]
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class NotificationBatch(BaseModel):
    notifications: list[Notification]


class PolicyRequest(BaseModel):
    version: str | None = Field(default=None, description="None: the worker's current policy")
