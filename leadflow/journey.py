"""Journey vocabulary: stages, SLA clocks, the journey state, its events and its commands.

Events go into ``decide``; commands come out. Both are plain data, so the Temporal shell
can put them in workflow history and the simulator can put them on its event queue.

They are slotted dataclasses, not pydantic models: ``decide`` builds and changes them on
every transition, and a dataclass costs a fraction of a model to make, copy and set.
Pydantic still validates them at the edges: the Temporal data converter, the ledger and
the API read and write them through ``TypeAdapter``, with the same JSON as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

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


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionEntry:
    """One line of the decision log (and one row of the ledger)."""

    seq: int
    at: datetime
    kind: DecisionKind
    stage: Stage
    owner_id: str | None = None
    tier: str | None = None
    detail: Detail = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StageChange:
    stage: Stage
    at: datetime


@dataclass(slots=True, kw_only=True)
class JourneyState:
    """Everything ``decide`` needs to know about one lead's journey."""

    lead_id: str
    journey_id: str
    policy_version: str
    lead: Lead | None = None
    stage: Stage = Stage.NEW
    stage_history: list[StageChange] = field(default_factory=list)
    source: LeadSource | None = None
    territory: str | None = None
    segment: str | None = None
    fit_score: float = 0.0
    engagement_score: float = 0.0
    engagement_as_of: datetime | None = None
    engagement_event_ids: list[str] = field(default_factory=list)  # the latest EVENT_IDS_KEPT, to count a retry once
    hand_raised: bool = False
    tier: str | None = None
    owner_id: str | None = None
    owner_team: str | None = None
    queued_team: str | None = None
    previous_owners: list[str] = field(default_factory=list)
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
    deadlines: dict[Clock, datetime] = field(default_factory=dict)
    submissions: int = 0
    recycles: int = 0
    last_reason: str | None = None
    outcome: Outcome | None = None
    seq: int = 0
    log: list[DecisionEntry] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def without_personal_data(self) -> JourneyState:
        """The same journey without the lead's details, its decision log or event ids: what the
        ledger keeps of an open journey for worklists and for simulations started from today."""
        return replace(self, lead=None, log=[], engagement_event_ids=[])

    @property
    def sla_due_at(self) -> datetime | None:
        """The earliest running SLA deadline."""
        due = [at for clock, at in self.deadlines.items() if clock in SLA_CLOCKS]
        return min(due) if due else None


def _shallow_copier(cls: type[Any]) -> Any:
    """A shallow copy of a slotted dataclass, field by field: what ``dataclasses`` itself
    does to build ``__init__``, and about ten times faster than ``copy.copy``, which goes
    through the pickling protocol for slotted objects."""
    names = [item.name for item in fields(cls)]
    body = "".join(f"    copied.{name} = original.{name}\n" for name in names)
    source = f"def copy(original):\n    copied = new(cls)\n{body}    return copied\n"
    namespace: dict[str, Any] = {}
    exec(source, {"new": object.__new__, "cls": cls}, namespace)  # noqa: S102 - code built from field names only
    return namespace["copy"]


copy_state: Callable[[JourneyState], JourneyState] = _shallow_copier(JourneyState)
"""A shallow copy of a journey state (its lists and dicts are shared, not copied)."""


# --- events: what happened -------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class LeadSubmitted:
    type: Literal["submitted"] = "submitted"
    lead: Lead


@dataclass(slots=True, kw_only=True)
class EngagementReceived:
    type: Literal["engagement"] = "engagement"
    event: EngagementEvent
    # Only for replaying journeys recorded before engagement was bounded (the workflow's
    # ``bounded-engagement`` patch): take the event's time and weight as sent.
    as_sent: bool = False


@dataclass(slots=True, kw_only=True)
class RepActed:
    type: Literal["action"] = "action"
    action: RepAction


@dataclass(slots=True, kw_only=True)
class DeadlineReached:
    type: Literal["deadline"] = "deadline"
    clock: Clock
    due_at: datetime


@dataclass(slots=True, kw_only=True)
class RepAssigned:
    type: Literal["assigned"] = "assigned"
    step: int
    rep_id: str
    team: str
    on_shift: bool = True
    from_line: bool = False  # a slot freed for the lead while it waited in line


@dataclass(slots=True, kw_only=True)
class NoRepAvailable:
    type: Literal["no_rep"] = "no_rep"
    step: int
    why: str


@dataclass(slots=True, kw_only=True)
class PolicyAdopted:
    """A running journey switches to another policy version (``leadflow policy rollout --to all-open``)."""

    type: Literal["policy_adopted"] = "policy_adopted"
    version: str


JourneyEvent = Annotated[
    LeadSubmitted | EngagementReceived | RepActed | DeadlineReached | RepAssigned | NoRepAvailable | PolicyAdopted,
    Field(discriminator="type"),
]


# --- commands: what the shell must do ---------------------------------------------------


@dataclass(slots=True, kw_only=True)
class StartDeadline:
    """Arm (or re-arm, replacing the old one) the timer of ``clock``."""

    type: Literal["start_deadline"] = "start_deadline"
    clock: Clock
    due_at: datetime


@dataclass(slots=True, kw_only=True)
class CancelDeadline:
    type: Literal["cancel_deadline"] = "cancel_deadline"
    clock: Clock


@dataclass(slots=True, kw_only=True)
class AssignLead:
    """Route the lead; answer with ``RepAssigned`` or ``NoRepAvailable`` for the same step."""

    type: Literal["assign"] = "assign"
    step: int
    tier: str
    territory: str | None = None
    segment: str | None = None
    exclude: list[str] = field(default_factory=list)
    release_rep_id: str | None = None  # the previous owner, released in the same step


@dataclass(slots=True, kw_only=True)
class JoinWaitingLine:
    """Nobody can take the lead now: put it in the waiting line, to be answered with
    ``RepAssigned`` for ``step`` when a slot it may take frees."""

    type: Literal["join_line"] = "join_line"
    step: int
    priority: int  # 0 = the hottest tier
    mql_at: datetime
    territory: str | None = None
    segment: str | None = None


@dataclass(slots=True, kw_only=True)
class LeaveWaitingLine:
    """The lead no longer waits for a rep (escalated, closed, recycled): take it out of line."""

    type: Literal["leave_line"] = "leave_line"


@dataclass(slots=True, kw_only=True)
class ClaimLead:
    """A team member took the lead from the team queue: record the assignment."""

    type: Literal["claim"] = "claim"
    step: int
    rep_id: str


@dataclass(slots=True, kw_only=True)
class ReleaseLead:
    """The rep no longer owns the lead (frees capacity)."""

    type: Literal["release"] = "release"
    rep_id: str


@dataclass(slots=True, kw_only=True)
class Notify:
    type: Literal["notify"] = "notify"
    kind: NotificationKind
    recipients: list[str]
    detail: Detail = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Record:
    type: Literal["record"] = "record"
    entry: DecisionEntry


@dataclass(slots=True, kw_only=True)
class Finish:
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
