"""What a rep (or rep tooling) can do to a lead."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class AttemptOutcome(StrEnum):
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    EMAIL_SENT = "email_sent"
    CONNECTED = "connected"


def _type_is_required(schema: dict[str, Any]) -> None:
    # ``type`` has a default for Python callers, but a request must name its action.
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=_type_is_required)

    by: str = Field(min_length=1, max_length=100, description="id of the rep or manager acting")


class Accept(_Action):
    """The owner takes the lead (or a team member claims it from the team queue)."""

    type: Literal["accept"] = "accept"


MAX_CALL_MINUTES = 1440.0


class LogAttempt(_Action):
    """A contact attempt and how it went."""

    type: Literal["attempt"] = "attempt"
    outcome: AttemptOutcome
    minutes: float | None = Field(default=None, ge=0, le=MAX_CALL_MINUTES, allow_inf_nan=False,
                                  description="how long the call took (from the dialer); calibration fits call lengths from it")


class Qualify(_Action):
    """Sales-qualify the lead (BANT)."""

    type: Literal["qualify"] = "qualify"
    budget: bool = False
    authority: bool = False
    need: str | None = Field(default=None, max_length=500)
    timeline_days: StrictInt | None = Field(default=None, ge=0, le=3650)


class Disqualify(_Action):
    """Close the lead as not a fit. A reason code from the policy is required."""

    type: Literal["disqualify"] = "disqualify"
    reason: str | None = Field(default=None, max_length=100)


class Recycle(_Action):
    """Send the lead back to nurturing. A reason code from the policy is required."""

    type: Literal["recycle"] = "recycle"
    reason: str | None = Field(default=None, max_length=100)


class Reject(_Action):
    """Hand an assigned MQL back to marketing as not sales-ready (the SAL gate: sales accepts
    or rejects what marketing delivered). A reason code from the policy is required."""

    type: Literal["reject"] = "reject"
    reason: str | None = Field(default=None, max_length=100)


class Convert(_Action):
    """The SQL became an opportunity."""

    type: Literal["convert"] = "convert"
    opportunity_id: str | None = Field(default=None, max_length=100)


RepAction = Annotated[
    Accept | Reject | LogAttempt | Qualify | Disqualify | Recycle | Convert, Field(discriminator="type")
]


class ActionRequest(BaseModel):
    """Envelope for one rep action (a single typed object for the Temporal update)."""

    action: RepAction


class InvalidAction(ValueError):
    """An action that the journey cannot take in its current state; the message says why."""
