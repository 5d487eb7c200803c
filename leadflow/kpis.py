"""Every shared measure, defined once: the live workers' metrics, the Grafana dashboard and
alert rules, and the simulator's statistics all follow these definitions.

Pure data and plain functions, like the rest of the core: no metrics library here, only
what each metric is called, what it counts and which labels it may carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from leadflow.journey import SLA_CLOCKS, Stage
from leadflow.lead import LeadSource
from leadflow.policy import Policy

NO_TIER = "none"
NO_SOURCE = "unknown"
NO_TEAM = "unassigned"
ESCALATION_LEVELS = ("1", "2", "3")


class Kind(StrEnum):
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
REASSIGNMENTS = MetricSpec(
    "leadflow_reassignments_total", Kind.COUNTER, ("tier",), "Leads taken from their owner and given to another rep."
)
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


