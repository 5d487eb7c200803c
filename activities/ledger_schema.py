"""Tables of the ledger: append-only journey events, the current-lead projection, routing state."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy import (
    DateTime as _DateTime,
)


class DateTime(TypeDecorator):
    """An instant, stored in UTC on every backend (SQLite keeps no offset of its own)."""

    impl = _DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; give a time zone")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

policies = Table(
    "policies",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("registered_at", DateTime(), nullable=False),
)

# Append-only: the latest row names the policy new journeys start with.
policy_rollouts = Table(
    "policy_rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),
    Column("scope", String(20), nullable=False),
    Column("rolled_out_at", DateTime(), nullable=False),
)

journey_events = Table(
    "journey_events",
    metadata,
    Column("event_key", String(200), primary_key=True),
    Column("journey_id", String(100), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("workflow_id", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("owner_id", String(64)),
    Column("tier", String(40)),
    Column("at", DateTime(), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Index("ix_journey_events_lead", "lead_id", "seq"),
)

# The SLAs each journey step settled (``leadflow.kpis.sla_settled``), as the workers' metric
# counts them: the closed-loop report reads attainment from here.
sla_settlements = Table(
    "sla_settlements",
    metadata,
    Column("journey_id", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("clock", String(20), primary_key=True),
    Column("lead_id", String(64), nullable=False),
    Column("tier", String(40), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("at", DateTime(), nullable=False),
    Index("ix_sla_settlements_at", "at"),
)

leads = Table(
    "leads",
    metadata,
    Column("lead_id", String(64), primary_key=True),
    Column("journey_id", String(100), nullable=False),
    Column("workflow_id", String(200), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("tier", String(40)),
    Column("owner_id", String(64)),
    Column("fit_score", Float, nullable=False),
    Column("source", String(40)),
    Column("policy_version", String(64), nullable=False),
    Column("sla_due_at", DateTime()),
    Column("outcome", String(40)),
    Column("seq", Integer, nullable=False),
    Column("updated_at", DateTime(), nullable=False),
    # An open journey's state without personal data (``JourneyState.without_personal_data``),
    # for reps' worklists and simulations started from the ledger; null once it has ended.
    Column("journey_state", JSON),
    Index("ix_leads_stage", "stage"),
)

assignments = Table(
    "assignments",
    metadata,
    Column("journey_id", String(100), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("lead_id", String(64), nullable=False),
    Column("rep_id", String(64), nullable=False),
    Column("team", String(64)),
    Column("pool", String(100), nullable=False),
    Column("on_shift", Integer, nullable=False, default=1),
    Column("assigned_at", DateTime(), nullable=False),
    Column("released_at", DateTime()),
    Index("ix_assignments_open", "rep_id", "released_at"),
)

# Leads nobody could take, in the order slots go to them (``leadflow.waiting_line``): read
# and changed only under the routing lock, one row per journey.
waiting_line = Table(
    "waiting_line",
    metadata,
    Column("journey_id", String(100), primary_key=True),
    Column("step", Integer, nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("workflow_id", String(200), nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("mql_at", DateTime(), nullable=False),
    Column("territory", String(64)),
    Column("segment", String(64)),
    Column("pool", String(100), nullable=False),
    Column("joined_at", DateTime(), nullable=False),
    Index("ix_waiting_line_order", "priority", "mql_at", "lead_id"),
)

routing_pointers = Table(
    "routing_pointers",
    metadata,
    Column("pool", String(100), primary_key=True),
    Column("last_rep_id", String(64), nullable=False),
)

routing_lock = Table(
    "routing_lock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("assignments", Integer, nullable=False),
)

# POST /v1/leads by (client, Idempotency-Key): reserved before the journey is submitted
# (status and response empty while in progress), completed with the response once it is,
# so concurrent requests with one key have exactly one effect and get the one answer.
idempotency_reservations = Table(
    "idempotency_reservations",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("status", Integer),
    Column("response", Text),
    Column("reserved_at", DateTime(), nullable=False),
    Column("holder", String(32), nullable=False),  # which request holds it: only that one completes or releases it
)

notifications_sent = Table(
    "notifications_sent",
    metadata,
    Column("notification_key", String(200), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("sent_at", DateTime(), nullable=False),
)
