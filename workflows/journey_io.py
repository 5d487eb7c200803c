"""Inputs, outputs and the query view of ``LeadJourneyWorkflow``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from leadflow.actions import RepAction
from leadflow.journey import Clock, DecisionEntry, JourneyEvent, JourneyState, Stage
from leadflow.policy import Policy

# A rep action's request id is remembered for this many later actions (and across
# continue-as-new), so a client's retry of it applies once.
ANSWERS_KEPT = 64
# The latest answers are also in the journey's memo under this key ({request id: problem or
# None}), which the server hands out without asking the worker: clients wait on it.
ANSWERS_MEMO = "rep_answers"
ANSWERS_IN_MEMO = 8
# A run continues as new after handling this many events: at roughly ten history events per
# event, about 2,500 events, well under the server's default suggestion (4 Ki events) and its
# hard limit (51,200).
EVENTS_PER_RUN = 250


class Carried(BaseModel):
    """What a journey hands to its next run when it continues as new."""

    state: JourneyState
    policy: Policy
    indexed: dict[str, str | datetime | None] = Field(default_factory=dict)
    offered_policy: str | None = Field(default=None, description="a policy version offered but not adopted yet")
    pending: list[JourneyEvent] = Field(default_factory=list, description="signals received but not handled yet")
    answers: dict[str, str | None] = Field(
        default_factory=dict, description="the latest rep actions' answers by request id (None: applied)"
    )


class RepActionSignal(BaseModel):
    """A rep action sent as a signal; its answer appears in the journey's memo (``ANSWERS_MEMO``)."""

    request_id: str = Field(min_length=1, max_length=64, description="the client's id of this request; a repeat applies once")
    action: RepAction


class JourneyInput(BaseModel):
    """Start input. The lead itself arrives by the ``submit`` signal (signal-with-start)."""

    lead_id: str
    policy_version: str | None = Field(default=None, description="None: the worker's current policy")
    visibility: bool = Field(default=True, description="upsert LeadStage/LeadTier/OwnerId/SlaDueAt")
    events_per_run: int = Field(default=EVENTS_PER_RUN, ge=1,
                                description="continue as new after handling this many events (journeys started from now on)")
    carried: Carried | None = None


class JourneyOutcome(BaseModel):
    lead_id: str
    outcome: str
    stage: Stage
    tier: str | None
    attempts: int
    breaches: int
    reassignments: int
    recycles: int
    first_contact_met: bool | None
    policy_version: str


class LeadView(BaseModel):
    """What ``leadflow lead show`` and rep tools see of a journey."""

    lead_id: str
    workflow_id: str
    stage: Stage
    tier: str | None
    owner_id: str | None
    queued_team: str | None
    in_line: bool = Field(default=False, description="waiting in line for a rep's free slot")
    score: float
    fit_score: float
    deadlines: dict[Clock, datetime]
    attempts: int
    breaches: int
    reassignments: int
    escalation_level: int
    first_contact_met: bool | None
    policy_version: str
    outcome: str | None
    submissions: int
    company: str | None
    source: str | None
    log: list[DecisionEntry]

    @classmethod
    def of(cls, state: JourneyState, workflow_id: str, score: float) -> LeadView:
        return cls(
            lead_id=state.lead_id,
            workflow_id=workflow_id,
            stage=state.stage,
            tier=state.tier,
            owner_id=state.owner_id,
            queued_team=state.queued_team,
            in_line=state.in_line,
            score=score,
            fit_score=state.fit_score,
            deadlines=dict(state.deadlines),
            attempts=state.attempts,
            breaches=state.breaches,
            reassignments=state.reassignments,
            escalation_level=state.escalation_level,
            first_contact_met=state.first_contact_met,
            policy_version=state.policy_version,
            outcome=state.outcome,
            submissions=state.submissions,
            company=state.lead.company if state.lead else None,
            source=str(state.source) if state.source else None,
            log=list(state.log),
        )

