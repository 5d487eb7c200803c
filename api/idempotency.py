"""``Idempotency-Key``: one effect and one answer per key, however many requests race.

The key (scoped to the client's token, with a digest of the body) is reserved in the ledger
before anything is submitted. The request that reserves it acts and stores its response;
a concurrent request with the same key waits for that response (up to ``WAIT_SECONDS``,
then 409 ``idempotency_in_progress`` with ``Retry-After``); one with another body gets 409
``idempotency_conflict``. A request that fails before it had an effect (Temporal refused
it) gives the key up, so a retry acts afresh. One whose effect is unknown (Temporal did not
answer in time: the submission may have landed) keeps it; so does one whose API process
died. Such a reservation is taken over once it is older than ``stale_after``, more than
any request can take (submitting a lead twice merges into the one journey, so a takeover
cannot create a second lead). Only the request holding a reservation completes or gives it
up: one that was taken over stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from fastapi.responses import JSONResponse

from activities.ledger import Ledger, ReservationState
from api.errors import ApiError

WAIT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=60)  # at least: ``stale_after`` also covers two Temporal calls at their limit
_LOOK_EVERY = 0.05


def body_digest(body: object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class Reserved:
    """A held key: ``complete`` stores the response; ``release`` gives up a key never completed."""

    ledger: Ledger
    client: str
    key: str
    holder: str
    completed: bool = field(default=False)

    def complete(self, status: int, body: object) -> None:
        self.ledger.complete_request(self.client, self.key, self.holder, status, json.dumps(body))
        self.completed = True

    def release(self) -> None:
        if not self.completed:
            self.ledger.release_request(self.client, self.key, self.holder)


def stale_after(temporal_timeout_seconds: float) -> timedelta:
    """How old an unfinished reservation must be to be taken over: longer than a request can take."""
    return max(STALE_AFTER, timedelta(seconds=3 * temporal_timeout_seconds + 10))


async def reserve(ledger: Ledger, client: str, key: str, digest: str, stale: timedelta = STALE_AFTER) -> Reserved | JSONResponse:
    """Hold ``key`` for this request, or the stored answer of the request that held it."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + WAIT_SECONDS
    while True:
        found = ledger.reserve_request(client, key, digest, datetime.now(timezone.utc), stale)
        if found.state is ReservationState.RESERVED:
            assert found.holder is not None
            return Reserved(ledger, client, key, found.holder)
        if found.state is ReservationState.CONFLICT:
            raise ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with a different body")
        if found.state is ReservationState.DONE:
            assert found.status is not None and found.response is not None
            return JSONResponse(json.loads(found.response), status_code=found.status,
                                headers={"Idempotent-Replayed": "true"})
        if loop.time() >= give_up:
            raise ApiError(409, "idempotency_in_progress",
                           "a request with this Idempotency-Key is still in progress; retry it shortly",
                           headers={"Retry-After": "1"})
        await asyncio.sleep(_LOOK_EVERY)
