"""Bearer tokens with scopes.

``LEADFLOW_API_TOKENS`` holds ``token:scope|scope`` entries separated by commas, or
``LEADFLOW_API_TOKENS_FILE`` names a file with one entry per line. Scopes: ``intake``
(create leads, post engagement), ``rep`` (rep actions), ``read`` (lead state and search),
``codec`` (the Web UI's codec endpoint). With no tokens configured every request is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from api.errors import ApiError
from runtime.settings import Settings


class Scope(StrEnum):
    INTAKE = "intake"
    REP = "rep"
    READ = "read"
    CODEC = "codec"


class TokenConfigError(ValueError):
    """Tokens that cannot be used, named."""


@dataclass(frozen=True)
class Tokens:
    """SHA-256 digests of the tokens and their scopes (the tokens themselves are not kept)."""

    scopes_by_digest: dict[bytes, frozenset[Scope]]

    @classmethod
    def parse(cls, text: str, source: str) -> Tokens:
        found: dict[bytes, frozenset[Scope]] = {}
        for entry in (item.strip() for item in text.replace("\n", ",").split(",")):
            if not entry or entry.startswith("#"):
                continue
            token, sep, scopes = entry.rpartition(":")
            if not sep or len(token) < 16:
                raise TokenConfigError(f"{source}: each entry is token:scope|scope with a token of at least 16 characters")
            try:
                granted = frozenset(Scope(scope.strip()) for scope in scopes.split("|") if scope.strip())
            except ValueError:
                raise TokenConfigError(f"{source}: unknown scope in {scopes!r}; scopes are {[s.value for s in Scope]}") from None
            found[_digest(token)] = granted
        return cls(found)

    @classmethod
    def configured(cls, settings: Settings) -> Tokens:
        """The tokens in ``LEADFLOW_API_TOKENS`` or the file ``LEADFLOW_API_TOKENS_FILE`` names."""
        if settings.api_tokens is not None:
            return cls.parse(settings.api_tokens.get_secret_value(), "LEADFLOW_API_TOKENS")
        path = settings.api_tokens_file
        if path is not None:
            try:
                return cls.parse(path.read_text(encoding="utf-8"), str(path))
            except OSError as error:
                raise TokenConfigError(f"LEADFLOW_API_TOKENS_FILE {path}: {error.strerror}") from None
        return cls({})

    def scopes_of(self, token: str) -> frozenset[Scope] | None:
        digest = _digest(token)
        for known, scopes in self.scopes_by_digest.items():
            if hmac.compare_digest(known, digest):
                return scopes
        return None


def client_of(token: str) -> str:
    """Who sent a request, for scoping what it stores (idempotency keys): a digest, never the token."""
    return _digest(token).hex()[:32]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="leadflow"'}


def require(scope: Scope):
    """A FastAPI dependency: a valid bearer token with ``scope`` (401 without one, 403 without the scope)."""

    def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)", headers=_CHALLENGE)
        scopes = request.app.state.tokens.scopes_of(token.strip())
        if scopes is None:
            raise ApiError(401, "unauthorized", "the bearer token is not valid", headers=_CHALLENGE)
        if scope not in scopes:
            raise ApiError(403, "forbidden", f"this token lacks the {scope.value!r} scope")
        request.state.client = client_of(token.strip())

    return check
