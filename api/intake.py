"""Intake rules the API applies before anything is written: the custom-fields cap.

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

import time

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.ledger import Ledger
from api.errors import ApiError, Problem
from leadflow.journey import LeadSubmitted
from leadflow.lead import MAX_CUSTOM_FIELDS, CustomFieldsOverflow, Lead, workflow_id_for
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
