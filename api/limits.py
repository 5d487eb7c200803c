"""Refuse oversized or stalled request bodies before any route reads them, and bodies that are not JSON."""

from __future__ import annotations

import asyncio

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.connections import BODY_SECONDS
from api.errors import ApiError, error_response


class BodyLimit:
    """413 past ``LEADFLOW_API_MAX_BODY_BYTES`` (64 KiB), declared or streamed; 408 when the
    whole body has not arrived within ``BODY_SECONDS``. The body is read here, whole, before
    any route sees it."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await error_response(413, "too_large", f"the body is larger than {self.limit} bytes")(scope, receive, send)
            return
        body, more = b"", True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BODY_SECONDS  # for the whole body: a trickle cannot hold the connection
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                await error_response(408, "request_timeout", f"the body took longer than {BODY_SECONDS:g} s; send it whole",
                                     headers={"Connection": "close"})(scope, receive, send)
                return
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await error_response(413, "too_large", f"the body is larger than {self.limit} bytes")(scope, receive, send)
                return
            more = message.get("more_body", False)
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if handed:
                return await receive()
            handed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def require_json(request: Request) -> None:
    """A FastAPI dependency of every route with a body: 415 unless it is sent as JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", f"send the body as application/json (got {media_type or 'none'})")
