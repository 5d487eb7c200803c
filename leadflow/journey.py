"""Journey vocabulary: stages, SLA clocks, the journey state, its events and its commands.

Events go into ``decide``; commands come out. Both are plain data, so the Temporal shell
can put them in workflow history and the simulator can put them on its event queue.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadflow.actions import RepAction
from leadflow.lead import EngagementEvent, Lead, LeadSource

LOG_LIMIT = 50
EVENT_IDS_KEPT = 200  # engagement event ids a journey remembers to deduplicate retries
"""Decision-log entries kept in the state (the ledger keeps them all)."""


class Stage(StrEnum):
    NEW = "NEW"
    NURTURING = "NURTURING"
    MQL = "MQL"
    ASSIGNED = "ASSIGNED"
    ACCEPTED = "ACCEPTED"
    WORKING = "WORKING"
    SQL = "SQL"
    CONVERTED = "CONVERTED"
    DISQUALIFIED = "DISQUALIFIED"
    RECYCLED = "RECYCLED"
    UNRESPONSIVE = "UNRESPONSIVE"


# Stages in which a rep owns the lead.
OWNED_STAGES = (Stage.ASSIGNED, Stage.ACCEPTED, Stage.WORKING, Stage.SQL)


TERMINAL_STAGES = frozenset({Stage.CONVERTED, Stage.DISQUALIFIED})


class Clock(StrEnum):
    """Named deadlines. The first three are SLA clocks whose miss is a breach."""

    ACCEPTANCE = "acceptance"
    FIRST_CONTACT = "first_contact"
    FOLLOW_UP = "follow_up"
    DISPOSITION = "disposition"
    NURTURE = "nurture"
    ROUTING_RETRY = "routing_retry"
    SQL_STALL = "sql_stall"
    AUTO_ACCEPT = "auto_accept"


SLA_CLOCKS = frozenset({Clock.ACCEPTANCE, Clock.FIRST_CONTACT, Clock.FOLLOW_UP})


class EscalationLevel(IntEnum):
    """How far a missed SLA has been escalated (policy ``escalation``)."""

    NONE = 0
    NOTIFY = 1  # the owner and the managers are told
    REASSIGN = 2  # the lead goes to another rep
    TEAM_QUEUE = 3  # nobody else can take it: the team's queue, for a manager


class Outcome(StrEnum):
    """How a journey ended."""

    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"
    NURTURE_EXPIRED = "nurture_expired"


class DecisionKind(StrEnum):
    CREATED = "created"
    MERGED = "merged"
    MQL = "mql"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ATTEMPT = "attempt"
    FIRST_CONTACT = "first_contact"
    BREACH = "breach"
    ESCALATED = "escalated"
    REASSIGNED = "reassigned"
    UNRESPONSIVE = "unresponsive"
    RECYCLED = "recycled"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"
    NURTURE_EXPIRED = "nurture_expired"
    POLICY_ADOPTED = "policy_adopted"


class NotificationKind(StrEnum):
    ASSIGNED = "assigned"
    SLA_BREACH = "sla_breach"
    REASSIGNED = "reassigned"
    ESCALATED = "escalated"
    UNROUTED = "unrouted"


Detail = dict[str, str | int | float | bool | None]


class DecisionEntry(BaseModel):
    """One line of the decision log (and one row of the ledger)."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime
    kind: DecisionKind
    stage: Stage
    owner_id: str | None = None
    tier: str | None = None
    detail: Detail = Field(default_factory=dict)


class StageChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage
    at: datetime


class JourneyState(BaseModel):
    """Everything ``decide`` needs to know about one lead's journey."""

    lead_id: str
    journey_id: str
    policy_version: str
    lead: Lead | None = None
    stage: Stage = Stage.NEW
    stage_history: list[StageChange] = Field(default_factory=list)
    source: LeadSource | None = None
    territory: str | None = None
    segment: str | None = None
    fit_score: float = 0.0
    engagement_score: float = 0.0
    engagement_as_of: datetime | None = None
    engagement_event_ids: list[str] = Field(default_factory=list)  # the latest EVENT_IDS_KEPT, to count a retry once
    hand_raised: bool = False
    tier: str | None = None
    owner_id: str | None = None
    owner_team: str | None = None
    queued_team: str | None = None
    previous_owners: list[str] = Field(default_factory=list)
    assignment_step: int = 0
    routing_retries: int = 0
    # Routing's "nobody free" puts the lead in the waiting line (``leadflow.waiting_line``)
    # instead of asking again on a timer; False for journeys started before the line existed.
    waits_in_line: bool = False
    in_line: bool = False
    reassignments: int = 0
    owner_breaches: int = 0
    breaches: int = 0
    escalation_level: EscalationLevel = EscalationLevel.NONE
    attempts: int = 0
    owner_attempts: int = 0
    owner_first_attempt_at: datetime | None = None
    connected: bool = False
    created_at: datetime | None = None
    mql_at: datetime | None = None
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    first_contact_at: datetime | None = None
    first_contact_due: datetime | None = None
    first_contact_met: bool | None = None
    sql_at: datetime | None = None
    closed_at: datetime | None = None
    deadlines: dict[Clock, datetime] = Field(default_factory=dict)
    submissions: int = 0
    recycles: int = 0
    last_reason: str | None = None
    outcome: Outcome | None = None
    seq: int = 0
    log: list[DecisionEntry] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def sla_due_at(self) -> datetime | None:
        """The earliest running SLA deadline."""
        due = [at for clock, at in self.deadlines.items() if clock in SLA_CLOCKS]
        return min(due) if due else None


# --- events: what happened -------------------------------------------------------------


class LeadSubmitted(BaseModel):
    type: Literal["submitted"] = "submitted"
    lead: Lead


class EngagementReceived(BaseModel):
    type: Literal["engagement"] = "engagement"
    event: EngagementEvent
    # Only for replaying journeys recorded before engagement was bounded (the workflow's
    # ``bounded-engagement`` patch): take the event's time and weight as sent.
    as_sent: bool = False


class RepActed(BaseModel):
    type: Literal["action"] = "action"
    action: RepAction


class DeadlineReached(BaseModel):
    type: Literal["deadline"] = "deadline"
    clock: Clock
    due_at: datetime


class RepAssigned(BaseModel):
    type: Literal["assigned"] = "assigned"
    step: int
    rep_id: str
    team: str
    on_shift: bool = True
    from_line: bool = Field(default=False, description="a slot freed for the lead while it waited in line")


class NoRepAvailable(BaseModel):
    type: Literal["no_rep"] = "no_rep"
    step: int
    why: str


class PolicyAdopted(BaseModel):
    """A running journey switches to another policy version (``leadflow policy rollout --to all-open``)."""

    type: Literal["policy_adopted"] = "policy_adopted"
    version: str


JourneyEvent = Annotated[
    LeadSubmitted | EngagementReceived | RepActed | DeadlineReached | RepAssigned | NoRepAvailable | PolicyAdopted,
    Field(discriminator="type"),
]


# --- commands: what the shell must do ---------------------------------------------------


class StartDeadline(BaseModel):
    """Arm (or re-arm, replacing the old one) the timer of ``clock``."""

    type: Literal["start_deadline"] = "start_deadline"
    clock: Clock
    due_at: datetime


class CancelDeadline(BaseModel):
    type: Literal["cancel_deadline"] = "cancel_deadline"
    clock: Clock


class AssignLead(BaseModel):
    """Route the lead; answer with ``RepAssigned`` or ``NoRepAvailable`` for the same step."""

    type: Literal["assign"] = "assign"
    step: int
    tier: str
    territory: str | None = None
    segment: str | None = None
    exclude: list[str] = Field(default_factory=list)
    release_rep_id: str | None = Field(default=None, description="previous owner to release in the same step")


class JoinWaitingLine(BaseModel):
    """Nobody can take the lead now: put it in the waiting line, to be answered with
    ``RepAssigned`` for ``step`` when a slot it may take frees."""

    type: Literal["join_line"] = "join_line"
    step: int
    priority: int = Field(description="0 = the hottest tier")
    mql_at: datetime
    territory: str | None = None
    segment: str | None = None


class LeaveWaitingLine(BaseModel):
    """The lead no longer waits for a rep (escalated, closed, recycled): take it out of line."""

    type: Literal["leave_line"] = "leave_line"


class ClaimLead(BaseModel):
    """A team member took the lead from the team queue: record the assignment."""

    type: Literal["claim"] = "claim"
    step: int
    rep_id: str


class ReleaseLead(BaseModel):
    """The rep no longer owns the lead (frees capacity)."""

    type: Literal["release"] = "release"
    rep_id: str


class Notify(BaseModel):
    type: Literal["notify"] = "notify"
    kind: NotificationKind
    recipients: list[str]
    detail: Detail = Field(default_factory=dict)


class Record(BaseModel):
    type: Literal["record"] = "record"
    entry: DecisionEntry


class Finish(BaseModel):
    type: Literal["finish"] = "finish"
    outcome: Outcome


Command = Annotated[
    StartDeadline
    | CancelDeadline
    | AssignLead
    | JoinWaitingLine
    | LeaveWaitingLine
    | ClaimLead
    | ReleaseLead
    | Notify
    | Record
    | Finish,
    Field(discriminator="type"),
]
