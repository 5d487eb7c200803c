"""The HTTP API: ``leadflow api --host --port``.

Thin: every route validates its input strictly, then calls the same journey client the CLI
uses (signal-with-start, signals, queries, visibility). Nothing is
written before a request is fully validated, so a refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from activities.ledger import Ledger
from activities.report_source import ledger_report
from activities.worklist_source import UnknownRep, Worklist, rep_worklist
from api import codec_routes, errors
from api.auth import Scope, Tokens, require
from api.errors import ERRORS, ApiError, ErrorResponse
from api.idempotency import body_digest, reserve, stale_after
from api.intake import IntakeRules, refuse_non_finite_custom, refuse_overflow, refuse_unbounded_event
from api.limits import BodyLimit, require_json
from leadflow.actions import Disqualify, Recycle, Reject, RepAction
from leadflow.journey import Stage
from leadflow.lead import CustomFieldsOverflow, EngagementEvent, Lead
from leadflow.report import Dimension, SlaReport, report_period
from runtime.id_key import lead_id_of, require_id_key
from runtime.settings import Settings, current_settings, load_policy_file
from workflows import journey_client
from workflows.journey_client import ActionRejected, JourneySummary, Submitted, TemporalUnavailable, UnknownLead
from workflows.journey_io import LeadView

ISO_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
REP_ID = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="rep id, as in the policy's reps")
LEAD_ID = Path(pattern=r"^(lead-)?L[0-9a-f]{20}$", description="lead id (or workflow id) as returned by POST /v1/leads")


T = TypeVar("T")


class Accepted(BaseModel):
    accepted: bool = True
    lead_id: str


class Health(BaseModel):
    status: str


def create_app(settings: Settings | None = None, client=None, tokens: Tokens | None = None,
               cors_origins: list[str] | None = None) -> FastAPI:
    """The API; ``client`` and ``tokens`` default to Temporal's environment and LEADFLOW_API_TOKENS.

    Fails at once (``SettingsError``, ``PolicyError``) without a usable lead-id key or policy file.
    """
    settings = settings or current_settings()
    require_id_key(settings)
    temporal_limit = timedelta(seconds=settings.api_temporal_timeout_seconds)
    reservations_stale = stale_after(settings.api_temporal_timeout_seconds)

    async def temporal(awaitable: Awaitable[T]) -> T:
        """Temporal's answer, or 503 once it has taken longer than LEADFLOW_API_TEMPORAL_TIMEOUT_SECONDS."""
        return await journey_client.within(awaitable, temporal_limit)

    intake_rules = IntakeRules(load_policy_file(settings.policy_path))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Lazy: the API starts (and /readyz says 503) while Temporal is down.
        app.state.client = client or await journey_client.connect(settings, lazy=True)
        app.state.ledger = Ledger(settings.ledger_url)
        app.state.ledger.create_schema()
        yield
        app.state.ledger.dispose()

    app = FastAPI(
        title="leadflow", version="1", lifespan=lifespan,
        description="Lead intake, engagement and rep actions for leadflow journeys. Bearer tokens with scopes: "
        "intake, rep, read, codec.",
    )
    app.state.tokens = tokens if tokens is not None else Tokens.configured(settings)
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)

    @app.get("/healthz", response_model=Health, tags=["health"])
    @app.head("/healthz", include_in_schema=False)
    async def healthz() -> Health:
        """The API process is up."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": ErrorResponse}}, tags=["health"])
    async def readyz(request: Request) -> Health:
        """Temporal is reachable."""
        try:
            await request.app.state.client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=timedelta(seconds=3))
        except Exception as error:
            raise ApiError(503, "unavailable", f"Temporal is not reachable: {type(error).__name__}") from None
        return Health(status="ready")

    @app.post("/v1/leads", status_code=201, response_model=Submitted, dependencies=[Depends(require(Scope.INTAKE)), Depends(require_json)],
              responses={**ERRORS,
                         409: {"model": ErrorResponse, "description": "Idempotency-Key reused with another body, or still in progress"},
                         503: {"model": ErrorResponse, "description": "Temporal unavailable (Retry-After)"}},
              tags=["leads"])
    async def create_lead(
        request: Request,
        lead: Lead,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                                      pattern=r"^[\x21-\x7e]+$")] = None,
    ) -> JSONResponse:
        """Create a lead's journey, or merge into the running one (same normalised email = same lead).

        Under the policy's ``intake.custom_fields_overflow: refuse``, a submission that would take the
        journey over 50 custom fields is refused (422) before anything is written.
        """
        ledger: Ledger = request.app.state.ledger
        refuse_non_finite_custom(lead)
        body = lead.model_dump(mode="json")
        held = (await reserve(ledger, request.state.client, idempotency_key, body_digest(body), reservations_stale)
                if idempotency_key else None)
        if isinstance(held, JSONResponse):
            return held
        try:
            if intake_rules.overflow(ledger) is CustomFieldsOverflow.REFUSE:
                await temporal(refuse_overflow(request.app.state.client, lead, lead_id_of(lead)))
            try:
                submitted = await temporal(journey_client.submit_lead(request.app.state.client, lead, settings.task_queue))
            except TemporalUnavailable as unavailable:
                if held is not None and unavailable.maybe_applied:
                    held.completed = True  # keep it: the submission may have landed (taken over once stale)
                raise
            answer = submitted.model_dump(mode="json")
            if held is not None:
                held.complete(201, answer)
        finally:
            if held is not None:
                held.release()  # only if not completed: the submission had no effect and a retry acts afresh
        return JSONResponse(answer, status_code=201)

    @app.post("/v1/leads/{lead_id}/events", status_code=202, response_model=Accepted,
              dependencies=[Depends(require(Scope.INTAKE)), Depends(require_json)],
              responses={**ERRORS, 404: {"model": ErrorResponse, "description": "no open journey for this lead"}}, tags=["leads"])
    async def post_event(request: Request, event: EngagementEvent, lead_id: Annotated[str, LEAD_ID]) -> Accepted:
        """An engagement event (page view, download, webinar, demo request...).

        Refused (422) if dated more than LEADFLOW_API_EVENT_SKEW_SECONDS ahead of the server's
        clock or before the lead existed, or weighing more than the policy allows. With an
        ``event_id``, a retried event counts once.
        """
        bare_id = lead_id.removeprefix("lead-")
        now = datetime.now(timezone.utc)
        skew = timedelta(seconds=settings.api_event_skew_seconds)
        ledger: Ledger = request.app.state.ledger
        # The ledger knows when the lead was created once its journey has written (a new
        # journey writes within seconds; an unknown lead gets its 404 from Temporal).
        created = ledger.lead_created_at(bare_id)
        refuse_unbounded_event(event, now=now, lead_since=None if created is None else created - skew, skew=skew,
                               policy=intake_rules.policy(ledger))
        try:
            await temporal(journey_client.engage(request.app.state.client, lead_id, event))
        except UnknownLead as error:
            raise ApiError(404, "unknown_lead", str(error)) from None
        return Accepted(lead_id=lead_id.removeprefix("lead-"))

    @app.post("/v1/leads/{lead_id}/actions", response_model=LeadView, dependencies=[Depends(require(Scope.REP)), Depends(require_json)],
              responses={**ERRORS, 404: {"model": ErrorResponse, "description": "no open journey for this lead"},
                         409: {"model": ErrorResponse, "description": "the action is not valid for the lead now"}},
              tags=["leads"])
    async def post_action(
        request: Request,
        action: RepAction,
        lead_id: Annotated[str, LEAD_ID],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                                      pattern=r"^[\x21-\x7e]+$")] = None,
    ) -> LeadView:
        """A rep action (accept, reject, attempt, qualify, disqualify, recycle, convert), answered once the journey has taken or refused it.

        With an ``Idempotency-Key`` (scoped to the token and the lead), a retry of the action
        (after a timeout or a 503) applies once and gets the lead as it stands.
        """
        if isinstance(action, (Disqualify, Recycle, Reject)) and not action.reason:
            raise ApiError(422, "invalid_request", f"{action.type} needs a reason code",
                           [errors.Problem(at="body.reason", message="required for " + action.type)])
        request_id = None
        if idempotency_key:
            scoped = f"{request.state.client}:{lead_id.removeprefix('lead-')}:{idempotency_key}"
            request_id = hashlib.sha256(scoped.encode()).hexdigest()[:32]
        try:
            return await journey_client.act(request.app.state.client, lead_id, action, request_id=request_id,
                                            send_within=temporal_limit)
        except UnknownLead as error:
            raise ApiError(404, "unknown_lead", str(error)) from None
        except ActionRejected as error:
            raise ApiError(409, "action_rejected", str(error)) from None

    @app.get("/v1/leads/{lead_id}", response_model=LeadView, dependencies=[Depends(require(Scope.READ))],
             responses={**ERRORS, 404: {"model": ErrorResponse, "description": "no journey for this lead"}}, tags=["leads"])
    async def get_lead(request: Request, lead_id: Annotated[str, LEAD_ID]) -> LeadView:
        """The lead's stage, owner, tier, score, deadlines, attempts and decision log."""
        try:
            return await temporal(journey_client.show(request.app.state.client, lead_id))
        except UnknownLead as error:
            raise ApiError(404, "unknown_lead", str(error)) from None

    @app.get("/v1/leads", response_model=list[JourneySummary], dependencies=[Depends(require(Scope.READ))],
             responses=ERRORS, tags=["leads"])
    async def search_leads(
        request: Request,
        stage: Stage | None = None,
        owner: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[JourneySummary]:
        """Journeys by stage and owner (a visibility query)."""
        return await temporal(journey_client.list_leads(request.app.state.client, stage=stage.value if stage else None,
                                                        owner=owner, limit=limit))

    @app.get("/v1/reports/sla", response_model=SlaReport, dependencies=[Depends(require(Scope.READ))],
             responses={**ERRORS, 422: {"model": ErrorResponse, "description": "a bad period"}}, tags=["reports"])
    async def sla_report_route(
        request: Request,
        since: Annotated[str | None, Query(pattern=ISO_DAY, description="first day, YYYY-MM-DD (UTC); default: four weeks "
                                           "before until")] = None,
        until: Annotated[str | None, Query(pattern=ISO_DAY, description="last day, included, YYYY-MM-DD (UTC); "
                                           "default: today")] = None,
        by: Dimension = Dimension.SOURCE,
    ) -> SlaReport:
        """The closed-loop marketing-sales SLA report from the ledger (the JSON of ``leadflow report --json``)."""
        now = datetime.now(timezone.utc)
        try:
            first = date.fromisoformat(since) if since else None
            last = date.fromisoformat(until) if until else None
            start, end = report_period(first, last, now.date())
        except ValueError as error:  # PeriodError, or a day that does not exist (2026-02-30)
            raise ApiError(422, "invalid_request", str(error)) from None
        ledger = request.app.state.ledger
        policy = await asyncio.to_thread(intake_rules.policy, ledger)  # the rolled-out policy, else the API's file
        return await asyncio.to_thread(ledger_report, ledger, policy, start, end, by, now)

    @app.get("/v1/reps/{rep_id}/worklist", response_model=Worklist, dependencies=[Depends(require(Scope.READ))],
             responses={**ERRORS, 404: {"model": ErrorResponse, "description": "no such rep"}}, tags=["reps"])
    async def worklist_route(request: Request, rep_id: Annotated[str, REP_ID]) -> Worklist:
        """The rep's open leads in the order to work them (``leadflow.worklist``): earliest
        deadline first, then hotter tier, then earlier MQL; cadence steps not yet open last."""
        ledger = request.app.state.ledger
        policy = await asyncio.to_thread(intake_rules.policy, ledger)
        try:
            return await asyncio.to_thread(rep_worklist, ledger, rep_id, policy, datetime.now(timezone.utc))
        except UnknownRep as error:
            raise ApiError(404, "unknown_rep", str(error)) from None

    codec_routes.install(app, settings, cors_origins if cors_origins is not None else settings.cors_origins)
    return app
