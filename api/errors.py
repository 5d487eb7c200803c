"""One JSON shape for every error the API returns.

    {"error": {"status": 422, "code": "invalid_request", "message": "...", "problems": [{"at": "body.email", "message": "..."}]}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from workflows.journey_client import JourneyBusy, JourneyNotReady, SearchAttributesMissing, TemporalUnavailable

log = logging.getLogger("leadflow.api")
RETRY_AFTER_UNAVAILABLE = "5"


class Problem(BaseModel):
    at: str
    message: str


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    problems: list[Problem] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


# The error responses every route may give, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "malformed JSON", 401: "no or invalid bearer token", 403: "token lacks the scope", 408: "body too slow",
        413: "body too large", 415: "not application/json", 422: "invalid request",
        503: "Temporal unavailable (with Retry-After)",
    }.items()
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, problems: list[Problem] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers


def error_response(status: int, code: str, message: str, problems: list[Problem] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(status=status, code=code, message=message, problems=problems or []))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          408: "request_timeout", 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
          503: "unavailable"}


def _where(location: tuple[Any, ...]) -> str:
    """``body.email``; a custom field's own name is shown as ``<key>`` (names may be personal data)."""
    parts = ["<key>" if index and location[index - 1] == "custom" and isinstance(part, str) else str(part)
             for index, part in enumerate(location)]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Route every error (ours, FastAPI's, Starlette's, unexpected) through the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.problems, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            if item.get("type") == "json_invalid":
                reason = item.get("ctx", {}).get("error", item.get("msg"))
                return error_response(400, "malformed_json", f"the body is not valid JSON: {reason}")
            problems.append(Problem(at=_where(tuple(item.get("loc", ()))), message=str(item.get("msg", "invalid"))))
        summary = "; ".join(f"{problem.at}: {problem.message}" for problem in problems[:5])
        return error_response(422, "invalid_request", f"the request is not valid: {summary}", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        if error.status_code == 405:  # Starlette lists one route's methods; a path may have several routes
            allowed = sorted({method for route in app.routes if route.matches(request.scope)[0] is not Match.NONE
                              for method in getattr(route, "methods", None) or ()} - {"HEAD"})
            headers = {"Allow": ", ".join(allowed)}
            return error_response(405, "method_not_allowed", f"{request.method} is not allowed here; use {', '.join(allowed)}",
                                  headers=headers)
        return error_response(error.status_code, _CODES.get(error.status_code, "error"), str(error.detail), headers=headers)

    @app.exception_handler(SearchAttributesMissing)
    async def _not_set_up(_request: Request, error: SearchAttributesMissing) -> JSONResponse:
        return error_response(503, "namespace_not_set_up", str(error))

    @app.exception_handler(JourneyBusy)
    async def _busy(_request: Request, error: JourneyBusy) -> JSONResponse:
        return error_response(503, "journey_busy", str(error), headers={"Retry-After": "5"})

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_down(request: Request, error: TemporalUnavailable) -> JSONResponse:
        log.warning("%s %s: 503, %s", request.method, request.url.path, error)
        return error_response(503, "temporal_unavailable",
                              f"{error}; retry after a few seconds",
                              headers={"Retry-After": RETRY_AFTER_UNAVAILABLE})

    @app.exception_handler(RPCError)
    async def _temporal_refused(request: Request, error: RPCError) -> JSONResponse:
        log.warning("%s %s: Temporal answered %s: %s", request.method, request.url.path, error.status.name, error.message)
        return error_response(503, "temporal_unavailable", f"Temporal could not serve the request ({error.status.name.lower()})",
                              headers={"Retry-After": RETRY_AFTER_UNAVAILABLE})

    @app.exception_handler(JourneyNotReady)
    async def _not_ready(_request: Request, error: JourneyNotReady) -> JSONResponse:
        return error_response(409, "journey_not_ready", f"{error}; ask again in a second", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:  # pragma: no cover - a bug
        return error_response(500, "internal", f"unexpected {type(error).__name__}; the server log has the details")
