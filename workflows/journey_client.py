"""Client-side operations on lead journeys: connect, submit, engage, act, show, list, and
the namespace's search attributes (check, register).

Used by the CLI, the demo and (later) the HTTP API. Errors come back as ``JourneyError``
with one clear line.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

from leadflow.actions import RepAction
from leadflow.lead import EngagementEvent, Lead, workflow_id_for
from runtime.converter import journey_data_converter
from runtime.id_key import lead_id_from_reference, lead_id_of
from runtime.settings import Settings, current_settings
from workflows import search_attributes as sa
from workflows.journey_io import ANSWERS_MEMO, EVENTS_PER_RUN, JourneyInput, JourneyOutcome, LeadView, RepActionSignal
from workflows.lead_journey import LeadJourneyWorkflow

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
ACTION_ANSWER_WAIT = timedelta(seconds=30)  # how long ``act`` waits for the journey's answer
# Seconds to the first look for a rep action's answer, and at most between looks.
_FIRST_LOOK, _LONGEST_LOOK = 0.05, 1.0
T = TypeVar("T")


class JourneyError(Exception):
    """A journey operation that failed for a reason the caller can act on."""


class UnknownLead(JourneyError):
    """No journey (or no running journey) for that lead."""


class ActionRejected(JourneyError):
    """The journey refused a rep action (wrong stage, not the owner, missing reason...)."""


class JourneyBusy(JourneyError):
    """The journey did not answer in time (its worker busy or down); the action may still apply."""


class TemporalUnavailable(JourneyError):
    """Temporal did not answer: down or refusing (``maybe_applied`` False: the request had no
    effect), or too slow (``maybe_applied`` True: it may still have been applied)."""

    def __init__(self, message: str, *, maybe_applied: bool):
        super().__init__(message)
        self.maybe_applied = maybe_applied


class JourneyNotReady(JourneyError):
    """The journey exists but cannot answer yet (its first workflow task has not run); ask again shortly."""


_UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
                RPCStatusCode.CANCELLED)


async def within(awaitable: Awaitable[T], limit: timedelta | None) -> T:
    """``awaitable``, or ``TemporalUnavailable`` if Temporal has not answered within ``limit``."""
    if limit is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, limit.total_seconds())
    except TimeoutError:
        raise TemporalUnavailable(f"Temporal did not answer within {limit.total_seconds():g} s", maybe_applied=True) from None


def _unavailable(error: RPCError) -> TemporalUnavailable | None:
    if error.status in _UNAVAILABLE:
        # UNAVAILABLE and RESOURCE_EXHAUSTED: refused before it was processed; a deadline or a
        # cancellation: it may have been.
        maybe = error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
        return TemporalUnavailable(f"Temporal did not answer ({error.status.name.lower()}): {error.message}",
                                   maybe_applied=maybe)
    return None


class SearchAttributesMissing(JourneyError):
    """The namespace lacks search attributes the journeys write: ``leadflow setup`` adds them."""

    def __init__(self, namespace: str, names: Iterable[str]):
        self.namespace, self.names = namespace, tuple(names)
        plural = "s" if len(self.names) > 1 else ""
        super().__init__(
            f"namespace {namespace!r} has no search attribute{plural} {', '.join(self.names)}: "
            "run `leadflow setup` (once per namespace)"
        )


class SearchAttributeConflict(JourneyError):
    """A search attribute of ours exists on the namespace with another type."""


class OperatorApiUnavailable(JourneyError):
    """The server does not let this client list or add search attributes (e.g. Temporal Cloud)."""


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
    settings = settings or current_settings()
    config = {**connect_config(settings), **overrides}
    try:
        return await Client.connect(**config, data_converter=journey_data_converter(settings))
    except RuntimeError as error:
        raise JourneyError(f"cannot connect to Temporal at {config.get('target_host')}: {error}") from None


async def submit_lead(
    client: Client, lead: Lead, task_queue: str, *, visibility: bool = True, policy_version: str | None = None,
    events_per_run: int = EVENTS_PER_RUN,
) -> Submitted:
    """Start the lead's journey, or merge into the running one (signal-with-start).

    ``events_per_run``: the journey continues as new after handling this many events.
    """
    lead_id = lead_id_of(lead)
    workflow_id = workflow_id_for(lead_id)
    try:
        handle = await client.start_workflow(
            LeadJourneyWorkflow.run,
            JourneyInput(lead_id=lead_id, policy_version=policy_version, visibility=visibility,
                         events_per_run=events_per_run),
            id=workflow_id,
            task_queue=task_queue,
            start_signal="submit",
            start_signal_args=[lead],
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.LEAD_STAGE, "NEW")]) if visibility else None,
        )
    except RPCError as error:
        raise _unavailable(error) or _missing_attribute(error, client.namespace) or JourneyError(
            f"Temporal refused to start the journey of lead {lead_id!r}: {error.message}"
        ) from None
    return Submitted(lead_id=lead_id, workflow_id=workflow_id, run_id=handle.result_run_id)


def journey_handle(client: Client, reference: str) -> WorkflowHandle[LeadJourneyWorkflow, JourneyOutcome]:
    """Handle of a lead's journey from a lead id, workflow id or email."""
    return client.get_workflow_handle_for(LeadJourneyWorkflow.run, workflow_id_for(lead_id_from_reference(reference)))


def _explain(error: RPCError, reference: str) -> JourneyError:
    if (unavailable := _unavailable(error)) is not None:
        return unavailable
    if error.status == RPCStatusCode.NOT_FOUND:
        return UnknownLead(f"unknown lead {reference!r}: no journey with that id, or it has ended")
    return JourneyError(f"Temporal refused the request for lead {reference!r}: {error.message}")


async def engage(client: Client, reference: str, event: EngagementEvent) -> None:
    """Send an engagement event to a running journey."""
    try:
        await journey_handle(client, reference).signal(LeadJourneyWorkflow.engage, event)
    except RPCError as error:
        raise _explain(error, reference) from None


async def act(
    client: Client,
    reference: str,
    action: RepAction,
    *,
    request_id: str | None = None,
    wait: timedelta = ACTION_ANSWER_WAIT,
    send_within: timedelta | None = None,
) -> LeadView:
    """Apply a rep action and return the lead as it stands after it.

    The action goes as a ``rep_action`` signal (``LeadJourneyWorkflow.rep_action`` says why
    not an update); the journey's answer is waited for in its memo, then the lead is read
    with one query. A refused action is recorded as a signal and changes nothing.
    ``ActionRejected`` says why the journey refused it; ``JourneyBusy`` that no answer came
    within ``wait`` (the action may still apply: sending it again with the same
    ``request_id`` applies it once).
    """
    handle = journey_handle(client, reference)
    request_id = request_id or uuid.uuid4().hex
    try:
        await within(handle.signal(LeadJourneyWorkflow.rep_action, RepActionSignal(request_id=request_id, action=action)),
                     send_within)
    except RPCError as error:
        raise _explain(error, reference) from None
    try:
        answered, problem = await wait_for_answer(handle, request_id, wait=wait)
    except RPCError as error:
        raise _explain(error, reference) from None
    if not answered:
        raise JourneyBusy(
            f"lead {reference!r}: {action.type} got no answer in time (is a worker running?); it may still apply: "
            "check the lead before trying again"
        )
    if problem is not None:
        raise ActionRejected(f"{action.type} rejected: {problem}")
    return await show(client, reference)


async def wait_for_answer(handle: WorkflowHandle, request_id: str, *, wait: timedelta,
                          memo_key: str = ANSWERS_MEMO) -> tuple[bool, str | None]:
    """(answered, problem) of a signalled rep action, read from the workflow's memo.

    The server describes a workflow from its own state, without the worker: waiting costs
    the worker nothing, however busy it is. Looks after 50 ms, then twice as long each time,
    up to a second apart.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait.total_seconds()
    pause = _FIRST_LOOK
    while True:
        await asyncio.sleep(max(min(pause, give_up - loop.time()), 0))
        try:
            described = await handle.describe(rpc_timeout=timedelta(seconds=max(give_up - loop.time(), 1)))
            answers = await described.memo_value(memo_key, {})
        except RPCError as error:
            if error.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE):
                raise
            answers = {}
        if request_id in answers:
            return True, answers[request_id]
        if loop.time() >= give_up:
            return False, None
        pause = min(pause * 2, _LONGEST_LOOK)


async def show(client: Client, reference: str) -> LeadView:
    """The journey's current view (works on closed journeys too)."""
    try:
        return await journey_handle(client, reference).query(LeadJourneyWorkflow.view)
    except WorkflowQueryFailedError as error:
        raise JourneyNotReady(f"lead {reference!r} cannot answer yet: {error.message}") from None
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
        raise (_unavailable(error) or _missing_attribute(error, client.namespace)
               or JourneyError(f"visibility query failed: {error.message}")) from None
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
        raise _missing_attribute(error, client.namespace) or JourneyError(
            f"could not offer policy {version} to open journeys: {error.message}"
        ) from None
    return offered


# What the server answers when a start or a query names an attribute the namespace lacks
# (SQL and Elasticsearch visibility, start and list).
_UNKNOWN_ATTRIBUTE = re.compile(
    r"no mapping defined for search attribute (\w+)|search attribute (\w+) is not defined|invalid search attribute: (\w+)"
)


def _missing_attribute(error: RPCError, namespace: str) -> SearchAttributesMissing | None:
    """``SearchAttributesMissing`` if ``error`` is the server rejecting one of our attributes."""
    if error.status != RPCStatusCode.INVALID_ARGUMENT:
        return None
    match = _UNKNOWN_ATTRIBUTE.search(error.message)
    name = next((group for group in match.groups() if group), None) if match else None
    return SearchAttributesMissing(namespace, [name]) if name in sa.TYPES else None


class SearchAttributeSetup(BaseModel):
    """What ``register_search_attributes`` did on a namespace."""

    namespace: str
    added: list[str]
    existing: list[str]


_OPERATOR_REFUSALS = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED)


def _cloud_hint(namespace: str) -> str:
    flags = " ".join(f"--sa {name}={kind}" for name, kind in sa.TYPES.items())
    return f"add them in the Cloud UI or with `tcld namespace search-attributes add -n {namespace} {flags}`"


def _operator_error(error: RPCError, namespace: str, doing: str) -> JourneyError:
    if error.status in _OPERATOR_REFUSALS:
        return OperatorApiUnavailable(
            f"namespace {namespace!r} does not let this client {doing} search attributes "
            f"({error.status.name}, as on Temporal Cloud): {_cloud_hint(namespace)}"
        )
    return JourneyError(f"cannot {doing} the search attributes of namespace {namespace!r}: {error.message}")


async def _registered(client: Client) -> dict[str, int]:
    """Custom search attributes of the client's namespace: name -> indexed value type."""
    request = ListSearchAttributesRequest(namespace=client.namespace)
    try:
        response = await client.operator_service.list_search_attributes(request)
    except RPCError as error:
        raise _operator_error(error, client.namespace, "list") from None
    return dict(response.custom_attributes)


def _compare(namespace: str, registered: dict[str, int]) -> tuple[list[str], list[str]]:
    """(missing, existing) names of our attributes; ``SearchAttributeConflict`` on a wrong type."""
    wrong = [key.name for key in sa.ALL if key.name in registered and registered[key.name] != key.indexed_value_type]
    if wrong:
        found = "; ".join(f"{name} is {sa.type_name(registered[name])}, not {sa.TYPES[name]}" for name in wrong)
        names = " ".join(f"--name {name}" for name in wrong)
        raise SearchAttributeConflict(
            f"namespace {namespace!r} has search attributes of the wrong type ({found}): remove them "
            f"(`temporal operator search-attribute remove -n {namespace} {names}`) or use another namespace"
        )
    missing = [key.name for key in sa.ALL if key.name not in registered]
    return missing, [key.name for key in sa.ALL if key.name in registered]


async def check_search_attributes(client: Client) -> None:
    """Raise ``SearchAttributesMissing`` (or ``...Conflict``) unless the namespace has all of ours.

    ``OperatorApiUnavailable`` if the server will not say (Temporal Cloud with a namespace API key).
    """
    missing, _ = _compare(client.namespace, await _registered(client))
    if missing:
        raise SearchAttributesMissing(client.namespace, missing)


async def register_search_attributes(client: Client) -> SearchAttributeSetup:
    """Add our search attributes the namespace lacks; a second run adds nothing."""
    missing, existing = _compare(client.namespace, await _registered(client))
    if missing:
        request = AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: IndexedValueType.ValueType(sa.BY_NAME[name].indexed_value_type.value) for name in missing},
        )
        try:
            await client.operator_service.add_search_attributes(request)
        except RPCError as error:
            if error.status != RPCStatusCode.ALREADY_EXISTS:  # a concurrent setup: checked below
                raise _operator_error(error, client.namespace, "add") from None
        still_missing, _ = _compare(client.namespace, await _registered(client))
        if still_missing:
            raise JourneyError(
                f"namespace {client.namespace!r} accepted but does not list {', '.join(still_missing)} yet: "
                "run `leadflow setup` again in a minute"
            )
    return SearchAttributeSetup(namespace=client.namespace, added=missing, existing=existing)
