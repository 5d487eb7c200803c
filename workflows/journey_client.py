"""Client-side operations on lead journeys: connect, submit, engage, act, show, list.

Used by the CLI, the demo and (later) the HTTP API. Errors come back as ``JourneyError``
with one clear line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode
from pydantic import BaseModel

from leadflow.actions import ActionRequest, RepAction
from leadflow.lead import EngagementEvent, Lead, lead_id_from_reference, workflow_id_for
from leadflow.runtime.settings import Settings
from workflows import search_attributes as sa
from workflows.converter import journey_data_converter
from workflows.journey_io import JourneyInput, JourneyOutcome, LeadView
from workflows.lead_journey import LeadJourneyWorkflow

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"


class JourneyError(Exception):
    """A journey operation that failed for a reason the caller can act on."""


class UnknownLead(JourneyError):
    """No journey (or no running journey) for that lead."""


class ActionRejected(JourneyError):
    """The journey refused a rep action (wrong stage, not the owner, missing reason...)."""


class Submitted(BaseModel):
    lead_id: str
    workflow_id: str
    run_id: str | None


class JourneySummary(BaseModel):
    lead_id: str
    workflow_id: str
    status: str
    stage: str | None
    tier: str | None
    owner_id: str | None
    sla_due_at: datetime | None


def connect_config(settings: Settings) -> dict[str, Any]:
    """``Client.connect`` arguments from Temporal's standard environment configuration.

    TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE
    and the TOML config file; ``localhost:7233`` and ``default`` when nothing is set.
    """
    config = dict(ClientConfig.load_client_connect_config(profile=settings.temporal_profile))
    config.setdefault("target_host", DEFAULT_TEMPORAL_ADDRESS)
    config.setdefault("namespace", "default")
    return config


async def connect(settings: Settings | None = None, **overrides: Any) -> Client:
    """Connect with Temporal's standard environment configuration and the pydantic converter."""
    settings = settings or Settings.from_env()
    config = {**connect_config(settings), **overrides}
    try:
        return await Client.connect(**config, data_converter=journey_data_converter())
    except RuntimeError as error:
        raise JourneyError(f"cannot connect to Temporal at {config.get('target_host')}: {error}") from None


async def submit_lead(
    client: Client, lead: Lead, task_queue: str, *, visibility: bool = True, policy_version: str | None = None
) -> Submitted:
    """Start the lead's journey, or merge into the running one (signal-with-start)."""
    lead_id = lead.lead_id
    workflow_id = workflow_id_for(lead_id)
    handle = await client.start_workflow(
        LeadJourneyWorkflow.run,
        JourneyInput(lead_id=lead_id, policy_version=policy_version, visibility=visibility),
        id=workflow_id,
        task_queue=task_queue,
        start_signal="submit",
        start_signal_args=[lead],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.LEAD_STAGE, "NEW")]) if visibility else None,
    )
    return Submitted(lead_id=lead_id, workflow_id=workflow_id, run_id=handle.result_run_id)


def journey_handle(client: Client, reference: str) -> WorkflowHandle[LeadJourneyWorkflow, JourneyOutcome]:
    """Handle of a lead's journey from a lead id, workflow id or email."""
    return client.get_workflow_handle_for(LeadJourneyWorkflow.run, workflow_id_for(lead_id_from_reference(reference)))


def _explain(error: RPCError, reference: str) -> JourneyError:
    if error.status == RPCStatusCode.NOT_FOUND:
        return UnknownLead(f"unknown lead {reference!r}: no journey with that id, or it has ended")
    return JourneyError(f"Temporal refused the request for lead {reference!r}: {error.message}")


async def engage(client: Client, reference: str, event: EngagementEvent) -> None:
    """Send an engagement event to a running journey."""
    try:
        await journey_handle(client, reference).signal(LeadJourneyWorkflow.engage, event)
    except RPCError as error:
        raise _explain(error, reference) from None


async def act(client: Client, reference: str, action: RepAction) -> LeadView:
    """Apply a rep action; ``JourneyError`` says why an invalid one was rejected."""
    try:
        return await journey_handle(client, reference).execute_update(
            LeadJourneyWorkflow.act, ActionRequest(action=action)
        )
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        raise ActionRejected(f"{action.type} rejected: {getattr(cause, 'message', None) or cause}") from None
    except RPCError as error:
        raise _explain(error, reference) from None


async def show(client: Client, reference: str) -> LeadView:
    """The journey's current view (works on closed journeys too)."""
    try:
        return await journey_handle(client, reference).query(LeadJourneyWorkflow.view)
    except WorkflowQueryFailedError as error:
        raise JourneyError(f"lead {reference!r}: {error.message}") from None
    except RPCError as error:
        raise _explain(error, reference) from None


async def list_leads(
    client: Client, *, stage: str | None = None, owner: str | None = None, query: str | None = None, limit: int = 100
) -> list[JourneySummary]:
    """Journeys matching a visibility query built from stage/owner (or a raw query)."""
    clauses = ["WorkflowType = 'LeadJourney'"]
    if stage:
        clauses.append(f"LeadStage = '{_quote(stage.upper())}'")
    if owner:
        clauses.append(f"OwnerId = '{_quote(owner)}'")
    if query:
        clauses.append(f"({query})")
    found: list[JourneySummary] = []
    try:
        async for execution in client.list_workflows(" AND ".join(clauses), limit=limit):
            attributes = execution.typed_search_attributes
            workflow_id = execution.id
            found.append(
                JourneySummary(
                    lead_id=lead_id_from_reference(workflow_id),
                    workflow_id=workflow_id,
                    status=WorkflowExecutionStatus(execution.status).name if execution.status else "UNKNOWN",
                    stage=attributes.get(sa.LEAD_STAGE),
                    tier=attributes.get(sa.LEAD_TIER),
                    owner_id=attributes.get(sa.OWNER_ID),
                    sla_due_at=attributes.get(sa.SLA_DUE_AT),
                )
            )
    except RPCError as error:
        raise JourneyError(f"visibility query failed: {error.message}") from None
    return found


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


OPEN_JOURNEYS = "WorkflowType = 'LeadJourney' AND ExecutionStatus = 'Running'"


async def offer_policy(client: Client, version: str, query: str = OPEN_JOURNEYS, on_signal=None) -> int:
    """Ask every open journey the query matches to adopt ``version`` at its next safe point."""
    offered = 0
    try:
        async for execution in client.list_workflows(query):
            handle = client.get_workflow_handle_for(LeadJourneyWorkflow.run, execution.id)
            try:
                await handle.signal(LeadJourneyWorkflow.adopt_policy, version)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # closed meanwhile: nothing to adopt
                    raise
                continue
            offered += 1
            if on_signal:
                on_signal()
    except RPCError as error:
        raise JourneyError(f"could not offer policy {version} to open journeys: {error.message}") from None
    return offered
