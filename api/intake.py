"""Intake rules the API applies before anything is written: the custom-fields cap, finite
numbers, and engagement events bounded in time and weight.

With ``intake.custom_fields_overflow: refuse`` a submission whose custom fields, merged into
those the person's open journey already holds, would exceed the cap is answered 422 and
never signalled. The API learns what the journey holds from the journey's own history: the
carried-over lead of its current run plus every ``submit`` signal since, folded with the
same core merge the workflow uses. The policy is the one new journeys start with (the
latest rollout in the ledger, else ``LEADFLOW_POLICY``), re-read every few seconds.

Two concurrent submissions can both pass the check; the workflow then keeps the fields it
already holds (``refuse`` merges as ``keep_first``), so a journey never jams either way.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.ledger import Ledger
from api.errors import ApiError, Problem
from leadflow.journey import LeadSubmitted
from leadflow.lead import MAX_CUSTOM_FIELDS, CustomFieldsOverflow, EngagementEvent, Lead, workflow_id_for
from leadflow.policy import Policy
from workflows.journey_io import JourneyInput

POLICY_CHECK_SECONDS = 5.0
SUBMIT_SIGNAL = "submit"


class IntakeRules:
    """The current policy's intake section, for the API."""

    def __init__(self, file_policy: Policy, clock=time.monotonic):
        self._file_policy = file_policy
        self._clock = clock
        self._checked_at = float("-inf")
        self._current = file_policy

    def policy(self, ledger: Ledger) -> Policy:
        """The rolled-out policy (checked at most every few seconds), else the API's policy file."""
        now = self._clock()
        if now - self._checked_at >= POLICY_CHECK_SECONDS:
            self._checked_at = now
            version = ledger.rolled_out_version()
            if version is None:
                self._current = self._file_policy
            elif version != self._current.version:
                self._current = ledger.policy(version) or self._current
        return self._current

    def overflow(self, ledger: Ledger) -> CustomFieldsOverflow:
        return self.policy(ledger).intake.custom_fields_overflow


async def held_custom_fields(
    client: Client, lead_id: str, overflow: CustomFieldsOverflow = CustomFieldsOverflow.REFUSE
) -> dict[str, object] | None:
    """Custom fields the lead's running journey holds (or will, once queued submissions are
    handled), merged as ``overflow`` merges; None when no journey is running."""
    handle = client.get_workflow_handle(workflow_id_for(lead_id))
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    converter = client.data_converter
    held: Lead | None = None

    def fold(lead: Lead) -> None:
        nonlocal held
        held = held.merged_with(lead, overflow) if held else lead

    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            [start] = await converter.decode(event.workflow_execution_started_event_attributes.input.payloads, [JourneyInput])
            if start.carried is not None:
                held = start.carried.state.lead
                for pending in start.carried.pending:
                    if isinstance(pending, LeadSubmitted):
                        fold(pending.lead)
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            signal = event.workflow_execution_signaled_event_attributes
            if signal.signal_name == SUBMIT_SIGNAL:
                [lead] = await converter.decode(signal.input.payloads, [Lead])
                fold(lead)
    return dict(held.custom) if held else {}


async def refuse_overflow(client: Client, lead: Lead, lead_id: str) -> None:
    """``ApiError`` 422 if ``lead`` would push its journey over the custom-fields cap.

    The message counts fields and never names them (names can be personal data).
    """
    if not lead.custom:
        return
    held = await held_custom_fields(client, lead_id)
    if held is None:
        return
    added = lead.custom.keys() - held.keys()
    if len(held) + len(added) > MAX_CUSTOM_FIELDS:
        message = (
            f"the lead's journey already holds {len(held)} custom fields and this submission adds {len(added)} more: "
            f"together over the cap of {MAX_CUSTOM_FIELDS} (policy intake.custom_fields_overflow is refuse); "
            "nothing was written"
        )
        raise ApiError(422, "custom_fields_overflow", message,
                       [Problem(at="body.custom", message=f"at most {MAX_CUSTOM_FIELDS} custom fields per lead")])


def refuse_non_finite_custom(lead: Lead) -> None:
    """422 for NaN or an infinity in a custom field (JSON has no such numbers; some encoders send them)."""
    bad = [value for value in lead.custom.values() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise ApiError(422, "invalid_request", "custom fields must be finite numbers (no NaN or Infinity)",
                       [Problem(at="body.custom.<key>", message="NaN and infinities are not numbers a CRM can store")])


def refuse_unbounded_event(event: EngagementEvent, *, now: datetime, lead_since: datetime | None,
                           skew: timedelta, policy: Policy) -> None:
    """422 for an event dated after ``now + skew`` or before the lead existed (``lead_since``),
    or weighing more than the policy's ``engagement.max_event_weight``."""
    if event.at > now + skew:
        raise ApiError(422, "event_in_the_future",
                       f"the event is dated {event.at.isoformat()}, more than {skew.total_seconds():g} s after the "
                       "server's clock; send the time it happened (LEADFLOW_API_EVENT_SKEW_SECONDS sets the leeway)",
                       [Problem(at="body.at", message="in the future")])
    if lead_since is not None and event.at < lead_since:
        raise ApiError(422, "event_before_lead",
                       f"the event is dated {event.at.isoformat()}, before the lead existed "
                       f"({lead_since.isoformat()}); send events of this lead's life only",
                       [Problem(at="body.at", message="before the lead existed")])
    cap = policy.engagement.max_event_weight
    if event.weight is not None and event.weight > cap:
        raise ApiError(422, "weight_over_cap",
                       f"the event's weight {event.weight:g} is over the policy's engagement.max_event_weight ({cap:g})",
                       [Problem(at="body.weight", message=f"at most {cap:g}")])
