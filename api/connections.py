"""Bounded time for each part of an HTTP connection, so idle and slow clients cannot hold one.

* headers: a request's headers must be complete within ``HEADER_SECONDS`` of the connection
  opening or of the previous response (a client trickling bytes is cut off; uvicorn alone
  restarts its idle timer on every byte);
* body: the whole request body must arrive within ``BODY_SECONDS`` (``BodyLimit`` answers
  408 otherwise);
* idle: a kept-alive connection with no new request is closed after ``IDLE_SECONDS``.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
BODY_SECONDS = 10.0
IDLE_SECONDS = 5.0


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(HEADER_SECONDS, self._headers_overdue)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        in_request = self.cycle is not None and not self.cycle.response_complete
        if not in_request and not self.transport.is_closing():
            self.transport.close()
