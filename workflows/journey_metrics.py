"""Business metrics of lead journeys, emitted from workflow code.

They go through ``workflow.metric_meter()``, which the SDK silences while a workflow
replays, so a journey counts each decision once however often its history is replayed.
Every label comes from an enum or from the policy (stage, tier, source, clock, level,
team, policy version), never from a lead's own fields: the label sets stay bounded and
no personal data reaches Prometheus.

The open-leads gauge and the policy-version info are not journey events; the worker sets
them from the ledger and the policy store (``activities.open_leads_gauge``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from leadflow.journey import Clock, DecisionEntry, DecisionKind, JourneyState, Stage, StageChange
from leadflow.lead import LeadSource
from leadflow.policy import Policy

NO_TIER = "none"
NO_SOURCE = "unknown"
NO_TEAM = "unassigned"
SLA_CLOCKS = (Clock.ACCEPTANCE, Clock.FIRST_CONTACT, Clock.FOLLOW_UP)
ESCALATION_LEVELS = ("1", "2", "3")


class Kind(str, Enum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


@dataclass(frozen=True)
class MetricSpec:
    """One business metric: its name as Prometheus shows it, its type, labels and help."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()

    @property
    def sdk_name(self) -> str:
        """The name to give the SDK meter (its exporter appends ``_total`` to counters)."""
        return self.name.removesuffix("_total") if self.kind is Kind.COUNTER else self.name


_TTFC_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800)

STAGE_ENTRIES = MetricSpec(
    "leadflow_stage_entries_total", Kind.COUNTER, ("stage", "tier", "source"), "Leads entering a stage."
)
STAGE_CONVERSIONS = MetricSpec(
    "leadflow_stage_conversions_total", Kind.COUNTER, ("from_stage", "to_stage"), "Leads moving from one stage to another."
)
SLA_BREACHES = MetricSpec(
    "leadflow_sla_breaches_total", Kind.COUNTER, ("tier", "clock"), "SLA clocks that ran out (acceptance, first contact, follow-up)."
)
FIRST_CONTACTS = MetricSpec(
    "leadflow_first_contacts_total",
    Kind.COUNTER,
    ("tier", "within_sla"),
    "First contact attempts, by whether they came inside the first-contact SLA.",
)
ESCALATIONS = MetricSpec("leadflow_escalations_total", Kind.COUNTER, ("level",), "Escalations (1 notify, 2 reassign, 3 team queue).")
REASSIGNMENTS = MetricSpec("leadflow_reassignments_total", Kind.COUNTER, ("tier",), "Leads taken from their owner and given to another rep.")
JOURNEYS_CLOSED = MetricSpec("leadflow_journeys_closed_total", Kind.COUNTER, ("stage",), "Journeys that ended, by final stage.")
TTFC_BUSINESS = MetricSpec(
    "leadflow_time_to_first_contact_business_seconds",
    Kind.HISTOGRAM,
    ("tier",),
    "Business time from MQL to the first contact attempt.",
    _TTFC_BUCKETS,
)
TTFC_WALL = MetricSpec(
    "leadflow_time_to_first_contact_wall_seconds",
    Kind.HISTOGRAM,
    ("tier",),
    "Wall-clock time from MQL to the first contact attempt.",
    _TTFC_BUCKETS,
)
ATTEMPTS_PER_JOURNEY = MetricSpec(
    "leadflow_attempts_per_journey",
    Kind.HISTOGRAM,
    ("stage",),
    "Contact attempts a journey made, observed when it closes (by final stage).",
    (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
)
OPEN_LEADS = MetricSpec("leadflow_open_leads", Kind.GAUGE, ("stage", "team"), "Open leads by stage and owner team (from the ledger).")
POLICY_INFO = MetricSpec("leadflow_policy_info", Kind.GAUGE, ("version",), "The policy version new journeys start with (value 1).")

BUSINESS_METRICS = (
    STAGE_ENTRIES,
    STAGE_CONVERSIONS,
    SLA_BREACHES,
    FIRST_CONTACTS,
    ESCALATIONS,
    REASSIGNMENTS,
    JOURNEYS_CLOSED,
    TTFC_BUSINESS,
    TTFC_WALL,
    ATTEMPTS_PER_JOURNEY,
    OPEN_LEADS,
    POLICY_INFO,
)


def allowed_label_values(policy: Policy) -> dict[str, set[str]]:
    """Every value each business label can take under ``policy``: enums and policy names only."""
    stages = {str(stage) for stage in Stage}
    return {
        "stage": stages,
        "from_stage": stages,
        "to_stage": stages,
        "tier": {tier.name for tier in policy.tiers} | {NO_TIER},
        "source": {str(source) for source in LeadSource} | {NO_SOURCE},
        "clock": {str(clock) for clock in SLA_CLOCKS},
        "within_sla": {"true", "false"},
        "level": set(ESCALATION_LEVELS),
        "team": {team.id for team in policy.teams} | {NO_TEAM},
        "version": {policy.version},
    }


class JourneyMetrics:
    """Records one journey's decisions on a metric meter (the workflow's, in production)."""

    def __init__(self, meter) -> None:
        self._meter = meter
        self._instruments: dict[str, object] = {}

    def _instrument(self, spec: MetricSpec):
        instrument = self._instruments.get(spec.name)
        if instrument is None:
            if spec.kind is Kind.COUNTER:
                instrument = self._meter.create_counter(spec.sdk_name, spec.help)
            elif spec.kind is Kind.HISTOGRAM:
                instrument = self._meter.create_histogram_float(spec.sdk_name, spec.help)
            else:
                raise ValueError(f"{spec.name} is not recorded by journeys")
            self._instruments[spec.name] = instrument
        return instrument

    def _count(self, spec: MetricSpec, **labels: str) -> None:
        self._instrument(spec).add(1, labels)

    def _observe(self, spec: MetricSpec, value: float, **labels: str) -> None:
        self._instrument(spec).record(float(value), labels)

    def stage_changes(self, state: JourneyState, changes: list[StageChange], came_from: Stage) -> None:
        """Count entries into each new stage, and the move from the stage before it."""
        tier, source = state.tier or NO_TIER, str(state.source) if state.source else NO_SOURCE
        previous = came_from
        for change in changes:
            self._count(STAGE_ENTRIES, stage=str(change.stage), tier=tier, source=source)
            self._count(STAGE_CONVERSIONS, from_stage=str(previous), to_stage=str(change.stage))
            previous = change.stage

    def decisions(self, entries: list[DecisionEntry]) -> None:
        """Count breaches, escalations, reassignments and first contacts among ``entries``."""
        for entry in entries:
            tier = entry.tier or NO_TIER
            if entry.kind is DecisionKind.BREACH:
                self._count(SLA_BREACHES, tier=tier, clock=str(entry.detail.get("clock")))
            elif entry.kind is DecisionKind.ESCALATED:
                self._count(ESCALATIONS, level=str(entry.detail.get("level")))
            elif entry.kind is DecisionKind.REASSIGNED:
                self._count(REASSIGNMENTS, tier=tier)
            elif entry.kind is DecisionKind.FIRST_CONTACT:
                self._count(FIRST_CONTACTS, tier=tier, within_sla=str(bool(entry.detail.get("met"))).lower())
                self._observe(TTFC_BUSINESS, float(entry.detail.get("business_seconds") or 0.0), tier=tier)
                self._observe(TTFC_WALL, float(entry.detail.get("wall_seconds") or 0.0), tier=tier)

    def closed(self, state: JourneyState) -> None:
        """The journey ended: its final stage and how many attempts it took."""
        self._count(JOURNEYS_CLOSED, stage=str(state.stage))
        self._observe(ATTEMPTS_PER_JOURNEY, state.attempts, stage=str(state.stage))
