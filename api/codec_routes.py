"""The codec endpoint the Temporal Web UI calls to show decrypted payloads to authorised users.

Point the UI's "codec endpoint" at ``http://API/codec`` (with "pass access token" on); it
POSTs ``{"payloads": [...]}`` (payloads in protobuf JSON) to ``/codec/decode``. A bearer
token with the ``codec`` scope is required, and only the origins in
``LEADFLOW_CODEC_CORS_ORIGINS`` may call it from a browser.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as Connection
from temporalio.api.common.v1 import Payload, Payloads

from api.auth import Scope, require
from api.errors import ERRORS, ApiError, ErrorResponse
from api.limits import require_json
from runtime.codec import CodecKeyError, configured_codec
from runtime.settings import Settings

PREFIX = "/codec"
_BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"


class PayloadJson(BaseModel):
    """A Temporal payload in protobuf JSON: metadata values and data base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(pattern=_BASE64)]] = Field(default_factory=dict)
    data: Annotated[str, Field(pattern=_BASE64)] = ""


class CodecPayloads(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payloads: list[PayloadJson] = Field(max_length=1000, description="Temporal payloads in protobuf JSON")


def _payloads(body: CodecPayloads) -> list[Payload]:
    try:
        return list(json_format.ParseDict({"payloads": [item.model_dump() for item in body.payloads]}, Payloads()).payloads)
    except json_format.ParseError as error:
        raise ApiError(422, "invalid_request", f"not Temporal payloads: {error}") from None


def _as_json(payloads: list[Payload]) -> CodecPayloads:
    found = json_format.MessageToDict(Payloads(payloads=payloads)).get("payloads", [])
    return CodecPayloads(payloads=[PayloadJson(metadata=item.get("metadata", {}), data=item.get("data", "")) for item in found])


class CodecCors:
    """CORS for the codec routes only: the rest of the API is never called from a browser."""

    def __init__(self, app: ASGIApp, origins: list[str]):
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=origins, allow_methods=["POST", "OPTIONS"],
                                   allow_headers=["Authorization", "Content-Type", "X-Namespace"], allow_credentials=True)

    async def __call__(self, scope: Connection, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings, cors_origins: list[str] | None = None) -> None:
    """The codec routes, callable from ``cors_origins`` in a browser."""
    codec = configured_codec(settings)
    if cors_origins:
        app.add_middleware(CodecCors, origins=cors_origins)

    responses = {**ERRORS, 503: {"model": ErrorResponse, "description": "no encryption keys configured"}}

    def configured():
        if codec is None:
            raise ApiError(503, "unavailable", "payload encryption is off: no LEADFLOW_CODEC_KEYS configured")
        return codec

    @app.post(PREFIX + "/decode", response_model=CodecPayloads, dependencies=[Depends(require(Scope.CODEC)), Depends(require_json)],
              responses=responses, tags=["codec"])
    async def decode(request: Request, body: CodecPayloads) -> CodecPayloads:
        """Decrypt payloads for the Temporal Web UI."""
        try:
            return _as_json(await configured().decode(_payloads(body)))
        except CodecKeyError as error:
            raise ApiError(422, "invalid_request", str(error)) from None
        except Exception as error:  # tampered or truncated ciphertext
            raise ApiError(422, "invalid_request", f"cannot decrypt: {type(error).__name__}") from None

    @app.post(PREFIX + "/encode", response_model=CodecPayloads, dependencies=[Depends(require(Scope.CODEC)), Depends(require_json)],
              responses=responses, tags=["codec"])
    async def encode(request: Request, body: CodecPayloads) -> CodecPayloads:
        """Encrypt payloads (the Web UI uses it to send signals and queries)."""
        return _as_json(await configured().encode(_payloads(body)))
