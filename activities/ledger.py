"""The ledger: journey events, the current-lead projection and routing state, in SQL.

SQLite file by default, PostgreSQL by URL. Every write is idempotent on its key, so an
activity retried after a crash writes once. Assignment reads the routing state, asks the
core's ``choose_rep`` and writes the result inside one serialised transaction, so several
workers on one ledger never overload a rep or skip the round-robin order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine, and_, bindparam, create_engine, delete, event, func, inspect, make_url, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from activities.contracts import (
    AssignmentRequest,
    AssignmentResult,
    JoinLineRequest,
    LeadProjection,
    LedgerBatch,
    LineServed,
    SlotReturn,
    StepRecorded,
)
from activities.ledger_schema import (
    assignments,
    idempotency_reservations,
    journey_events,
    leads,
    metadata,
    notifications_sent,
    policies,
    policy_rollouts,
    routing_lock,
    routing_pointers,
    sla_settlements,
    waiting_line,
)
from leadflow.journey import JourneyState, RepAssigned
from leadflow.policy import Policy, Rep, parse_policy
from leadflow.routing import RouteRequest, RoutingSnapshot, choose_rep, on_shift, pool_key
from leadflow.waiting_line import may_serve

# Statements the hot paths run, built once: each call then only binds its values.
# SQLite: every transaction already began IMMEDIATE (one writer at a time).
# PostgreSQL: this row lock serialises routing decisions across workers.
_JOURNEY_STATE: TypeAdapter[JourneyState] = TypeAdapter(JourneyState)
_TAKE_ROUTING_LOCK = update(routing_lock).where(routing_lock.c.id == 1).values(assignments=routing_lock.c.assignments + 1)
_ASSIGNMENT_OF_STEP = select(assignments.c.rep_id, assignments.c.team, assignments.c.on_shift).where(
    and_(assignments.c.journey_id == bindparam("journey_id"), assignments.c.step == bindparam("step"))
)
_OPEN_LEADS_BY_REP = (
    select(assignments.c.rep_id, func.count()).where(assignments.c.released_at.is_(None)).group_by(assignments.c.rep_id)
)
_ASSIGNMENTS_BY_REP = select(assignments.c.rep_id, func.count()).group_by(assignments.c.rep_id)
_LAST_ASSIGNED_IN_POOL = select(routing_pointers.c.last_rep_id).where(routing_pointers.c.pool == bindparam("pool"))
_RECORD_ASSIGNMENT = assignments.insert()
_RELEASE = (
    update(assignments)
    .where(
        and_(
            assignments.c.journey_id == bindparam("of_journey"),
            assignments.c.rep_id == bindparam("of_rep"),
            assignments.c.released_at.is_(None),
        )
    )
    .values(released_at=bindparam("at"))
)


_OPEN_LEADS_OF_REP = select(func.count()).where(
    and_(assignments.c.rep_id == bindparam("rep_id"), assignments.c.released_at.is_(None))
)
_UNRELEASED_OF_JOURNEY = select(assignments.c.rep_id).where(
    and_(assignments.c.journey_id == bindparam("journey_id"), assignments.c.released_at.is_(None))
)
_LEAVE_LINE = delete(waiting_line).where(waiting_line.c.journey_id == bindparam("of_journey"))


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class ReservationState(StrEnum):
    RESERVED = "reserved"  # the caller holds the key and acts
    IN_PROGRESS = "in_progress"  # another request holds it and has not finished
    DONE = "done"  # finished: the stored response is the answer
    CONFLICT = "conflict"  # the key was used with a different body


@dataclass(frozen=True)
class Reservation:
    state: ReservationState
    status: int | None = None
    response: str | None = None
    holder: str | None = None  # RESERVED: the token that completes or releases it


class Ledger:
    """Access to the ledger database. Thread-safe; one per worker process."""

    def __init__(self, url: str):
        self.url = normalise_database_url(url)
        self.engine: Engine = _make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._statements: dict[tuple, Any] = {}

    def create_schema(self) -> None:
        """Create missing tables (idempotent)."""
        metadata.create_all(self.engine)
        self._add_missing_columns()
        with self.transaction() as conn:
            self._insert_ignore(conn, routing_lock, [{"id": 1, "assignments": 0}], ["id"])

    def _add_missing_columns(self) -> None:
        """Columns added to a table after a ledger was created (all nullable): ALTER them in."""
        with self.engine.connect() as conn:
            existing = inspect(conn)
            missing = [
                (table.name, column)
                for table in metadata.sorted_tables
                for have in [{column["name"] for column in existing.get_columns(table.name)}]
                for column in table.columns
                if column.name not in have
            ]
        if not missing:
            return
        with self.transaction() as conn:
            for table_name, column in missing:
                if column.name in {found["name"] for found in inspect(conn).get_columns(table_name)}:
                    continue  # another process added it meanwhile
                kind = column.type.compile(dialect=self.engine.dialect)
                guard = " IF NOT EXISTS" if self.dialect == "postgresql" else ""  # SQLite: the write lock serialises
                conn.execute(text(f"ALTER TABLE {table_name} ADD COLUMN{guard} {column.name} {kind}"))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _statement(self, key: tuple, build: Callable[[Any], Any]) -> Any:
        """A statement built once per ledger, so each write only binds its values (no re-compiling)."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build(postgresql if self.dialect == "postgresql" else sqlite)
        return statement

    def _insert_ignore(self, conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> int:
        statement = self._statement(
            ("insert_ignore", table.name, *keys),
            lambda dialect: dialect.insert(table).on_conflict_do_nothing(index_elements=keys).execution_options(preserve_rowcount=True),
        )
        return sum(max(conn.execute(statement, row).rowcount, 0) for row in rows)

    # -- policies ----------------------------------------------------------------------

    def register_policy(self, policy: Policy) -> None:
        """Keep every policy version a journey may refer to (first registration wins)."""
        with self.transaction() as conn:
            self._insert_ignore(
                conn,
                policies,
                [
                    {
                        "version": policy.version,
                        "name": policy.name,
                        "body": policy.model_dump_json(),
                        "registered_at": datetime.now(timezone.utc),
                    }
                ],
                ["version"],
            )

    def roll_out(self, version: str, scope: str) -> None:
        """Make ``version`` (registered already) the policy new journeys start with."""
        with self.transaction() as conn:
            conn.execute(policy_rollouts.insert().values(version=version, scope=scope, rolled_out_at=datetime.now(timezone.utc)))

    def rolled_out_version(self) -> str | None:
        """The version of the latest rollout, if there has been one."""
        with self.engine.connect() as conn:
            return conn.execute(select(policy_rollouts.c.version).order_by(policy_rollouts.c.id.desc()).limit(1)).scalar()

    def policy(self, version: str) -> Policy | None:
        with self.engine.connect() as conn:
            body = conn.execute(select(policies.c.body).where(policies.c.version == version)).scalar()
        return parse_policy(json.loads(body), f"ledger policy {version}") if body else None

    # -- journey events and projection ------------------------------------------------

    def apply(self, batch: LedgerBatch, policy: Policy | None = None) -> StepRecorded:
        """Write one journey step: how many new events were stored, and the leads in line
        that the slots it released went to (served with ``policy``'s roster; none without)."""
        rows = [
            {
                "event_key": f"{batch.journey_id}:{entry.seq}",
                "journey_id": batch.journey_id,
                "lead_id": batch.lead_id,
                "workflow_id": batch.workflow_id,
                "seq": entry.seq,
                "kind": str(entry.kind),
                "stage": str(entry.stage),
                "owner_id": entry.owner_id,
                "tier": entry.tier,
                "at": entry.at,
                "detail": entry.detail,
                "policy_version": batch.policy_version,
            }
            for entry in batch.entries
        ]
        projection = batch.projection.model_dump(mode="python")
        projection["journey_state"] = batch.projection.model_dump(mode="json", include={"journey_state"})["journey_state"]
        projection["stage"] = str(projection["stage"])
        served: list[LineServed] = []
        with self.transaction() as conn:
            freed = bool(batch.releases or batch.left_line)
            if freed:  # a slot may free: the line is served under the routing lock
                conn.execute(_TAKE_ROUTING_LOCK)
            written = self._insert_ignore(conn, journey_events, rows, ["event_key"])
            if batch.settled:
                last_seq = max(entry.seq for entry in batch.entries) if batch.entries else batch.projection.seq
                self._insert_ignore(conn, sla_settlements, [
                    {"journey_id": batch.journey_id, "seq": last_seq, "clock": str(item.clock), "lead_id": batch.lead_id,
                     "tier": item.tier, "outcome": str(item.outcome), "at": batch.at}
                    for item in batch.settled
                ], ["journey_id", "seq", "clock"])
            for claim in batch.claims:
                self._insert_ignore(
                    conn,
                    assignments,
                    [
                        {
                            "journey_id": batch.journey_id,
                            "step": claim.step,
                            "lead_id": batch.lead_id,
                            "rep_id": claim.rep_id,
                            "team": None,
                            "pool": "claim",
                            "on_shift": 1,
                            "assigned_at": batch.at,
                        }
                    ],
                    ["journey_id", "step"],
                )
            released = [rep_id for rep_id in batch.releases if self._release(conn, batch.journey_id, rep_id, batch.at)]
            if batch.left_line:
                released += self._leave_line(conn, batch.journey_id, batch.projection.owner_id, batch.at)
            self._upsert_projection(conn, projection)
            if policy is not None:
                for rep_id in released:
                    served += self._serve_line(conn, policy, rep_id, batch.at)
        return StepRecorded(written=written, served=served)

    def _upsert_projection(self, conn: Connection, row: dict[str, Any]) -> None:
        def build(dialect: Any) -> Any:
            insert = dialect.insert(leads)
            changes = {name: insert.excluded[name] for name in LeadProjection.model_fields if name != "lead_id"}
            # Within a journey, a retried older step never overwrites a newer one; across the
            # journeys of one person, the most recently updated journey wins.
            same_journey = leads.c.journey_id == insert.excluded.journey_id
            newer = (same_journey & (leads.c.seq < insert.excluded.seq)) | (
                ~same_journey & (leads.c.updated_at < insert.excluded.updated_at)
            )
            return insert.on_conflict_do_update(index_elements=["lead_id"], set_=changes, where=newer)

        conn.execute(self._statement(("upsert_projection",), build), row)

    @staticmethod
    def _release(conn: Connection, journey_id: str, rep_id: str, at: datetime) -> bool:
        """Free the rep's slot held by the journey; whether one was held (a retry frees none)."""
        return conn.execute(_RELEASE.execution_options(preserve_rowcount=True),
                            {"of_journey": journey_id, "of_rep": rep_id, "at": at}).rowcount > 0

    def _leave_line(self, conn: Connection, journey_id: str, owner_id: str | None, at: datetime) -> list[str]:
        """Take the journey out of line and give back a slot served to it that it never took
        (served just before it escalated or closed): the reps whose slot freed."""
        conn.execute(_LEAVE_LINE, {"of_journey": journey_id})
        served_unused = [row.rep_id for row in conn.execute(_UNRELEASED_OF_JOURNEY, {"journey_id": journey_id})
                         if row.rep_id != owner_id]
        return [rep_id for rep_id in served_unused if self._release(conn, journey_id, rep_id, at)]

    # -- routing -----------------------------------------------------------------------

    def assign(self, request: AssignmentRequest, policy: Policy) -> AssignmentResult:
        """Choose and record the rep for one routing step (once, however often retried)."""
        with self.transaction() as conn:
            conn.execute(_TAKE_ROUTING_LOCK)
            done = conn.execute(_ASSIGNMENT_OF_STEP, {"journey_id": request.journey_id, "step": request.step}).first()
            if done is not None:
                return AssignmentResult(step=request.step, rep_id=done.rep_id, team=done.team, on_shift=bool(done.on_shift))
            previous = request.release_rep_id
            freed = previous is not None and self._release(conn, request.journey_id, previous, request.at)
            conn.execute(_LEAVE_LINE, {"of_journey": request.journey_id})  # a new routing step supersedes any place in line
            result = self._route(conn, request, policy)
            if freed and previous is not None:
                result.served = self._serve_line(conn, policy, previous, request.at)
            return result

    def _route(self, conn: Connection, request: AssignmentRequest, policy: Policy) -> AssignmentResult:
        """Ask the core for a rep and record the answer (the routing lock is held)."""
        pool = pool_key(request.territory, request.segment)
        snapshot = RoutingSnapshot(
            open_leads=dict(conn.execute(_OPEN_LEADS_BY_REP).all()),
            assigned_total=dict(conn.execute(_ASSIGNMENTS_BY_REP).all()),
            last_assigned=conn.execute(_LAST_ASSIGNED_IN_POOL, {"pool": pool}).scalar(),
        )
        decision = choose_rep(
            policy,
            RouteRequest(territory=request.territory, segment=request.segment, exclude=request.exclude, at=request.at),
            snapshot,
        )
        if decision.rep_id is None:
            return AssignmentResult(step=request.step, why_none=decision.why_none)
        conn.execute(
            _RECORD_ASSIGNMENT,
            {
                "journey_id": request.journey_id,
                "step": request.step,
                "lead_id": request.lead_id,
                "rep_id": decision.rep_id,
                "team": decision.team,
                "pool": pool,
                "on_shift": int(decision.on_shift),
                "assigned_at": request.at,
            },
        )
        self._set_pointer(conn, pool, decision.rep_id)
        return AssignmentResult(
            step=request.step, rep_id=decision.rep_id, team=decision.team, on_shift=decision.on_shift
        )

    # -- the waiting line (``leadflow.waiting_line``) ----------------------------------------

    def join_line(self, request: JoinLineRequest, policy: Policy) -> AssignmentResult:
        """Put the journey in line, unless a slot it may take freed since routing said nobody
        (or was served to it already, for a retried or repeated join): then that slot.

        Once per step, however often retried. The journey's safety net calls it again while
        it waits, so a served slot whose signal was lost still reaches it.
        """
        entry = request.entry
        with self.transaction() as conn:
            conn.execute(_TAKE_ROUTING_LOCK)
            done = conn.execute(_ASSIGNMENT_OF_STEP, {"journey_id": request.journey_id, "step": entry.step}).first()
            if done is not None:
                conn.execute(_LEAVE_LINE, {"of_journey": request.journey_id})
                return AssignmentResult(step=entry.step, rep_id=done.rep_id, team=done.team, on_shift=bool(done.on_shift))
            routed = self._route(conn, AssignmentRequest(
                journey_id=request.journey_id, lead_id=request.lead_id, step=entry.step, policy_version=request.policy_version,
                tier="", territory=entry.territory, segment=entry.segment, at=request.at), policy)
            if routed.rep_id is not None:
                conn.execute(_LEAVE_LINE, {"of_journey": request.journey_id})
                return routed
            row = {"journey_id": request.journey_id, "step": entry.step, "lead_id": request.lead_id,
                   "workflow_id": request.workflow_id, "policy_version": request.policy_version,
                   "priority": entry.priority, "mql_at": entry.mql_at, "territory": entry.territory,
                   "segment": entry.segment, "pool": pool_key(entry.territory, entry.segment), "joined_at": request.at}
            if not self._insert_ignore(conn, waiting_line, [row], ["journey_id"]):
                held = conn.execute(select(waiting_line.c.step).where(waiting_line.c.journey_id == request.journey_id)).scalar()
                if held != entry.step:  # a place kept from an earlier step: this step's replaces it
                    conn.execute(_LEAVE_LINE, {"of_journey": request.journey_id})
                    self._insert_ignore(conn, waiting_line, [row], ["journey_id"])
            return routed

    def return_slot(self, returned: SlotReturn, policy: Policy) -> list[LineServed]:
        """Free a slot served to a journey that could not be told, and serve the line from it."""
        with self.transaction() as conn:
            conn.execute(_TAKE_ROUTING_LOCK)
            conn.execute(_LEAVE_LINE, {"of_journey": returned.journey_id})
            freed = conn.execute(
                update(assignments)
                .where(and_(assignments.c.journey_id == returned.journey_id, assignments.c.step == returned.step,
                            assignments.c.rep_id == returned.rep_id, assignments.c.released_at.is_(None)))
                .values(released_at=returned.at)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            return self._serve_line(conn, policy, returned.rep_id, returned.at) if freed else []

    def _serve_line(self, conn: Connection, policy: Policy, rep_id: str, at: datetime) -> list[LineServed]:
        """Give the rep's free slots to the first leads in line the rep may take, in line
        order (the routing lock is held): who was served, to be told."""
        rep = policy.rep(rep_id)
        served: list[LineServed] = []
        while rep is not None and may_serve(rep, conn.execute(_OPEN_LEADS_OF_REP, {"rep_id": rep_id}).scalar() or 0,
                                            at, policy.routing):
            head = conn.execute(self._first_in_line_for(rep)).first()
            if head is None:
                break
            on_shift_now = on_shift(rep, at)
            conn.execute(_LEAVE_LINE, {"of_journey": head.journey_id})
            self._insert_ignore(conn, assignments, [{
                "journey_id": head.journey_id, "step": head.step, "lead_id": head.lead_id, "rep_id": rep.id,
                "team": rep.team, "pool": head.pool, "on_shift": int(on_shift_now), "assigned_at": at,
            }], ["journey_id", "step"])
            self._set_pointer(conn, head.pool, rep.id)
            served.append(LineServed(
                workflow_id=head.workflow_id, journey_id=head.journey_id,
                assigned=RepAssigned(step=head.step, rep_id=rep.id, team=rep.team, on_shift=on_shift_now, from_line=True),
            ))
        return served

    @staticmethod
    def _first_in_line_for(rep: Rep) -> Any:
        """The first waiting lead ``rep`` may take (``leadflow.waiting_line.may_take``, in SQL)."""
        query = select(waiting_line)
        if rep.territories:
            query = query.where(or_(waiting_line.c.territory.is_(None), waiting_line.c.territory.in_(rep.territories)))
        if rep.segments:
            query = query.where(or_(waiting_line.c.segment.is_(None), waiting_line.c.segment.in_(rep.segments)))
        return query.order_by(waiting_line.c.priority, waiting_line.c.mql_at, waiting_line.c.lead_id).limit(1)

    def line_summary(self) -> tuple[int, datetime | None]:
        """How many leads wait in line, and since when the longest-waiting one has."""
        with self.engine.connect() as conn:
            count, since = conn.execute(select(func.count(), func.min(waiting_line.c.joined_at))).one()
        return int(count), since

    def waiting(self) -> list[dict[str, Any]]:
        """The waiting line, first served first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(waiting_line).order_by(waiting_line.c.priority, waiting_line.c.mql_at,
                                                              waiting_line.c.lead_id)).mappings()
            return [dict(row) for row in rows]

    def _set_pointer(self, conn: Connection, pool: str, rep_id: str) -> None:
        def build(dialect: Any) -> Any:
            insert = dialect.insert(routing_pointers)
            return insert.on_conflict_do_update(index_elements=["pool"], set_={"last_rep_id": insert.excluded.last_rep_id})

        conn.execute(self._statement(("set_pointer",), build), {"pool": pool, "last_rep_id": rep_id})

    # -- notifications ------------------------------------------------------------------

    def notification_sent(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(
                select(notifications_sent.c.notification_key).where(notifications_sent.c.notification_key == key)
            ).first() is not None

    def mark_notification_sent(self, key: str, kind: str) -> None:
        with self.transaction() as conn:
            self._insert_ignore(
                conn,
                notifications_sent,
                [{"notification_key": key, "kind": kind, "sent_at": datetime.now(timezone.utc)}],
                ["notification_key"],
            )

    # -- idempotent requests ---------------------------------------------------------------

    def reserve_request(self, client: str, key: str, body_sha256: str, now: datetime,
                        stale_after: timedelta) -> Reservation:
        """Reserve ``key`` for ``client`` before acting on the request, atomically.

        ``RESERVED``: the caller acts, then ``complete_request`` (or ``release_request`` if it
        could not). Another request with the key gets ``DONE`` and the stored response once
        it is complete, ``IN_PROGRESS`` while it is not, ``CONFLICT`` if its body differs.
        A reservation older than ``stale_after`` and never completed (its API process died)
        is taken over.
        """
        holder = uuid.uuid4().hex
        row = {"client": client, "key": key, "body_sha256": body_sha256, "status": None, "response": None,
               "reserved_at": now, "holder": holder}
        table = idempotency_reservations
        with self.transaction() as conn:
            if self._insert_ignore(conn, table, [row], ["client", "key"]):
                return Reservation(ReservationState.RESERVED, holder=holder)
            held = conn.execute(
                select(table).where(and_(table.c.client == client, table.c.key == key))
            ).mappings().first()
            if held is None:  # released between the insert and the read: try again
                return Reservation(ReservationState.IN_PROGRESS)
            if held["body_sha256"] != body_sha256:
                return Reservation(ReservationState.CONFLICT)
            if held["status"] is not None:
                return Reservation(ReservationState.DONE, held["status"], held["response"])
            if held["reserved_at"] < now - stale_after:
                taken = conn.execute(
                    update(table)
                    .where(and_(table.c.client == client, table.c.key == key, table.c.status.is_(None),
                                table.c.reserved_at == held["reserved_at"]))
                    .values(reserved_at=now, holder=holder)
                    .execution_options(preserve_rowcount=True)
                ).rowcount
                if taken == 1:
                    return Reservation(ReservationState.RESERVED, holder=holder)
            return Reservation(ReservationState.IN_PROGRESS)

    def complete_request(self, client: str, key: str, holder: str, status: int, response: str) -> None:
        """Store the response of a reserved request: repeats of it get this answer. Only the
        request holding the reservation (``holder``) can: one whose reservation was taken
        over stores nothing."""
        table = idempotency_reservations
        with self.transaction() as conn:
            conn.execute(update(table).where(and_(table.c.client == client, table.c.key == key, table.c.holder == holder))
                         .values(status=status, response=response))

    def release_request(self, client: str, key: str, holder: str) -> None:
        """Give up a reservation whose request had no effect, so a retry acts afresh (only
        its holder can, and only before it is completed)."""
        table = idempotency_reservations
        with self.transaction() as conn:
            conn.execute(delete(table).where(and_(table.c.client == client, table.c.key == key,
                                                  table.c.holder == holder, table.c.status.is_(None))))

    # -- reads ---------------------------------------------------------------------------

    def events(self, lead_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(journey_events).where(journey_events.c.lead_id == lead_id).order_by(journey_events.c.at, journey_events.c.seq)
            ).mappings()
            return [dict(row) for row in rows]

    def lead_created_at(self, lead_id: str) -> datetime | None:
        """When the lead's first journey was created, if the ledger has heard of it yet."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.min(journey_events.c.at)).where(
                    and_(journey_events.c.lead_id == lead_id, journey_events.c.kind == "created"))
            ).scalar()

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(leads).where(leads.c.lead_id == lead_id)).mappings().first()
        return dict(row) if row is not None else None

    def assignments_of(self, lead_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(assignments).where(assignments.c.lead_id == lead_id).order_by(assignments.c.assigned_at, assignments.c.step)
            ).mappings()
            return [dict(row) for row in rows]

    def open_leads_by_stage_and_owner(self) -> list[tuple[str, str | None, int]]:
        """(stage, owner id, count) of every journey that has not ended."""
        query = (
            select(leads.c.stage, leads.c.owner_id, func.count())
            .where(leads.c.outcome.is_(None))
            .group_by(leads.c.stage, leads.c.owner_id)
        )
        with self.engine.connect() as conn:
            return [(stage, owner, int(count)) for stage, owner, count in conn.execute(query)]

    def open_journeys(self, owner_id: str | None = None) -> list[JourneyState]:
        """Open journeys as the ledger last saw them (without personal data), optionally one rep's."""
        query = select(leads.c.journey_state).where(leads.c.outcome.is_(None), leads.c.journey_state.is_not(None))
        if owner_id is not None:
            query = query.where(leads.c.owner_id == owner_id)
        with self.engine.connect() as conn:
            return [_JOURNEY_STATE.validate_python(row) for (row,) in conn.execute(query)]

    def open_leads_by_rep(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(_OPEN_LEADS_BY_REP).all())


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below take over
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
