"""Every shared measure, defined once: the live workers' metrics, the Grafana dashboard and
alert rules, and the simulator's statistics all follow these definitions.

**First-contact SLA attainment** = met / (met + missed), per tier. A lead's first-contact
SLA is *settled* once per MQL episode, when the journey first knows the answer:

* **met**: its first contact attempt came at or before its first-contact due time;
* **missed**: the due time (set when it became an MQL) passed with no attempt. The journey
  settles it at the first decision it takes at or after that time: the first-contact clock
  running out, or any other breach, escalation, reassignment, routing retry or close. A
  later contact does not count again.

**Acceptance and follow-up SLA attainment** are settled per window: each time the clock
is armed, the window is *met* if the rep's action (accepting the lead; a contact attempt)
comes while it runs, *missed* if it runs out (a breach; the clock is then re-armed and the
new window counts on its own). A window closed by anything else (reassignment, recycle,
close, or the SAL gate's auto-accept) is not counted. All three clocks are counted by one metric,
``leadflow_sla_settled_total{clock,tier,outcome}`` (``sla_settled``).

For the first contact, a lead that leaves before its due time without an attempt never came due and is not
counted. Neither is one still inside its window when the count is taken (a simulation's
horizon, a dashboard's range), nor one past its due time that has not decided anything
since: both are censored, never guessed (the ledger's report lists leads past due). A
recycled lead that qualifies again starts a new episode.

**Time to first contact** (TTFC), per tier: from the moment the lead became an MQL to its
first contact attempt in that episode, in business time (the policy's calendar of the
lead's territory) and in wall-clock time; one sample per first contact, read from the
``first_contact`` decision (``first_contact_time``). Leads never contacted have no sample.

**The funnel** counts decisions, one step each (``funnel_step``): ``mql`` (each MQL
episode, a recycled lead that comes back counts again), ``assigned`` (each hand-off to a
rep: routed, reassigned or claimed from the team queue), ``accepted`` (each acceptance by
the rep who holds it), ``attempt`` (each contact attempt), ``sql`` and ``converted``. From it:

* **MQL→SQL** = sql / mql;
* **acceptance rate** = accepted / assigned (the share of hand-offs the rep accepted);
* **attempts per lead** = attempt / mql (contact attempts per lead handed to sales).

Pure data and plain functions, like the rest of the core: no metrics library here, only
what each metric is called, what it counts and which labels it may carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from leadflow.decision_details import AcceptedDetail, BreachDetail, FirstContactDetail
from leadflow.journey import SLA_CLOCKS, Clock, DecisionEntry, DecisionKind, EscalationLevel, JourneyState, Stage
from leadflow.lead import LeadSource
from leadflow.policy import Policy

NO_TIER = "none"
NO_SOURCE = "unknown"
NO_TEAM = "unassigned"


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
SLA_SETTLED = MetricSpec(
    "leadflow_sla_settled_total",
    Kind.COUNTER,
    ("clock", "tier", "outcome"),
    "SLAs settled, by clock: met or missed (leadflow.kpis states the rule per clock). Attainment = met / (met + missed).",
)
FUNNEL = MetricSpec(
    "leadflow_funnel_steps_total",
    Kind.COUNTER,
    ("step", "tier"),
    "Funnel steps: MQLs, hand-offs to a rep, acceptances, contact attempts, SQLs, conversions (leadflow.kpis).",
)
OPEN_LEADS = MetricSpec("leadflow_open_leads", Kind.GAUGE, ("stage", "team"), "Open leads by stage and owner team (from the ledger).")
WAITING_LINE = MetricSpec("leadflow_waiting_line_leads", Kind.GAUGE, (), "Leads waiting in line for a rep's free slot (from the ledger).")
WAITING_LINE_OLDEST = MetricSpec(
    "leadflow_waiting_line_oldest_seconds", Kind.GAUGE, (), "How long the lead longest in the waiting line has waited (0: nobody waits)."
)
POLICY_INFO = MetricSpec("leadflow_policy_info", Kind.GAUGE, ("version",), "The policy version new journeys start with (value 1).")

BUSINESS_METRICS = (
    STAGE_ENTRIES,
    STAGE_CONVERSIONS,
    SLA_BREACHES,
    FIRST_CONTACTS,
    ESCALATIONS,
    REASSIGNMENTS,
    JOURNEYS_CLOSED,
    SLA_SETTLED,
    FUNNEL,
    TTFC_BUSINESS,
    TTFC_WALL,
    ATTEMPTS_PER_JOURNEY,
    OPEN_LEADS,
    WAITING_LINE,
    WAITING_LINE_OLDEST,
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
        "outcome": {str(outcome) for outcome in ContactSla},
        "step": {str(step) for step in FunnelStep},
        "level": {str(int(level)) for level in EscalationLevel if level is not EscalationLevel.NONE},
        "team": {team.id for team in policy.teams} | {NO_TEAM},
        "version": {policy.version},
    }


class ContactSla(StrEnum):
    """How a lead's first-contact SLA was settled."""

    MET = "met"
    MISSED = "missed"


def first_contact_settled(before: JourneyState, after: JourneyState) -> ContactSla | None:
    """The first-contact SLA outcome this transition settled, if it settled one (see the module doc)."""
    if before.first_contact_met is None and after.first_contact_met is not None:
        return ContactSla.MET if after.first_contact_met else ContactSla.MISSED
    # Recycled uncontacted after its due time: the recycle clears the episode in the same
    # transition, so the miss is read from the state before it.
    if (before.first_contact_met is None and before.first_contact_at is None and before.first_contact_due is not None
            and after.recycles > before.recycles and after.log and after.log[-1].at > before.first_contact_due):
        return ContactSla.MISSED
    return None


@dataclass(frozen=True)
class SlaSettled:
    """One SLA settled: which clock, under which tier (the lead's, before a recycle clears it), how."""

    clock: Clock
    tier: str
    outcome: ContactSla


def sla_settled(before: JourneyState, after: JourneyState, entries: list[DecisionEntry]) -> list[SlaSettled]:
    """Every SLA this transition settled, by clock (see the module doc); ``entries``: its decisions."""
    tier = after.tier or before.tier or NO_TIER
    settled: list[SlaSettled] = []
    first_contact = first_contact_settled(before, after)
    if first_contact is not None:
        settled.append(SlaSettled(Clock.FIRST_CONTACT, tier, first_contact))
    # A window running before the transition is settled met by its first acceptance or attempt.
    acceptance_running = Clock.ACCEPTANCE in before.deadlines
    follow_up_running = Clock.FOLLOW_UP in before.deadlines
    for entry in entries:
        kind = entry.kind
        if kind is DecisionKind.BREACH:
            clock = BreachDetail.of(entry).clock
            if clock in _WINDOWED_CLOCKS:
                settled.append(SlaSettled(clock, tier, ContactSla.MISSED))
        elif kind is DecisionKind.ACCEPTED and acceptance_running:
            acceptance_running = False
            if not AcceptedDetail.of(entry).auto:  # the policy's auto-accept is not the rep meeting the window
                settled.append(SlaSettled(Clock.ACCEPTANCE, tier, ContactSla.MET))
        elif kind is DecisionKind.ATTEMPT and follow_up_running:
            follow_up_running = False
            settled.append(SlaSettled(Clock.FOLLOW_UP, tier, ContactSla.MET))
    return settled


_WINDOWED_CLOCKS = frozenset({Clock.ACCEPTANCE, Clock.FOLLOW_UP})


def attainment(met: int, missed: int) -> float | None:
    """SLA attainment: met / (met + missed); None when nothing was settled."""
    settled = met + missed
    return met / settled if settled else None


def sla_attainment_promql(window: str, matchers: str = "", clock: Clock = Clock.FIRST_CONTACT) -> str:
    """SLA attainment of ``clock`` by tier over ``window``, in PromQL: the dashboard and the
    alert rules use this expression (a test holds them to it)."""
    inner = f',clock="{clock}"' + (f",{matchers}" if matchers else "")
    met = f'sum by (tier) (increase({SLA_SETTLED.name}{{outcome="met"{inner}}}[{window}]))'
    settled = f"sum by (tier) (increase({SLA_SETTLED.name}{{{inner.lstrip(',')}}}[{window}]))"
    return f"{met} / {settled}"


# -- time to first contact and the funnel ------------------------------------------------------


@dataclass(frozen=True)
class FirstContactTime:
    """One time-to-first-contact sample (see the module doc)."""

    tier: str
    business_seconds: float
    wall_seconds: float
    met: bool


def first_contact_time(entry: DecisionEntry) -> FirstContactTime | None:
    """The TTFC sample a ``first_contact`` decision carries; None for any other decision."""
    if entry.kind is not DecisionKind.FIRST_CONTACT:
        return None
    detail = FirstContactDetail.of(entry)
    return FirstContactTime(tier=entry.tier or NO_TIER, business_seconds=detail.business_seconds,
                            wall_seconds=detail.wall_seconds, met=detail.met)


class FunnelStep(StrEnum):
    """A step of the funnel, counted once per decision (see the module doc)."""

    MQL = "mql"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    ATTEMPT = "attempt"
    SQL = "sql"
    CONVERTED = "converted"


_FUNNEL_KINDS = {
    DecisionKind.MQL: FunnelStep.MQL,
    DecisionKind.ASSIGNED: FunnelStep.ASSIGNED,
    DecisionKind.ACCEPTED: FunnelStep.ACCEPTED,
    DecisionKind.ATTEMPT: FunnelStep.ATTEMPT,
    DecisionKind.QUALIFIED: FunnelStep.SQL,
    DecisionKind.CONVERTED: FunnelStep.CONVERTED,
}


def funnel_step(entry: DecisionEntry) -> FunnelStep | None:
    """The funnel step a decision counts as, if any."""
    return _FUNNEL_KINDS.get(entry.kind)


class FunnelRatio(StrEnum):
    MQL_TO_SQL = "mql_to_sql"
    ACCEPTANCE_RATE = "acceptance_rate"
    ATTEMPTS_PER_LEAD = "attempts_per_lead"


FUNNEL_RATIOS: dict[FunnelRatio, tuple[FunnelStep, FunnelStep]] = {
    FunnelRatio.MQL_TO_SQL: (FunnelStep.SQL, FunnelStep.MQL),
    FunnelRatio.ACCEPTANCE_RATE: (FunnelStep.ACCEPTED, FunnelStep.ASSIGNED),
    FunnelRatio.ATTEMPTS_PER_LEAD: (FunnelStep.ATTEMPT, FunnelStep.MQL),
}


def funnel_ratio(ratio: FunnelRatio, counts: Mapping[FunnelStep, int]) -> float | None:
    """``ratio`` from funnel step counts; None when its denominator is zero."""
    numerator, denominator = FUNNEL_RATIOS[ratio]
    whole = counts.get(denominator, 0)
    return counts.get(numerator, 0) / whole if whole else None


def funnel_ratio_promql(ratio: FunnelRatio, window: str, matchers: str = "") -> str:
    """``ratio`` over ``window`` in PromQL, from ``leadflow_funnel_steps_total`` (the dashboard uses this)."""
    numerator, denominator = FUNNEL_RATIOS[ratio]
    inner = f",{matchers}" if matchers else ""

    def total(step: FunnelStep) -> str:
        return f'sum(increase({FUNNEL.name}{{step="{step}"{inner}}}[{window}]))'

    return f"{total(numerator)} / {total(denominator)}"
