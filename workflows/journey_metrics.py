"""Business metrics of lead journeys, emitted from workflow code.

They go through ``workflow.metric_meter()``, which the SDK silences while a workflow
replays, so a journey counts each decision once however often its history is replayed.
Every label comes from an enum or from the policy (stage, tier, source, clock, level,
team, policy version), never from a lead's own fields: the label sets stay bounded and
no personal data reaches Prometheus.

What each metric means is defined once, in ``leadflow.kpis``. The open-leads gauge and the
policy-version info are not journey events; the worker sets them from the ledger and the
policy store (``activities.open_leads_gauge``).
"""

from __future__ import annotations

from leadflow.decision_details import BreachDetail, EscalatedDetail
from leadflow.journey import DecisionEntry, DecisionKind, JourneyState, Stage, StageChange
from leadflow.kpis import (
    ATTEMPTS_PER_JOURNEY,
    ESCALATIONS,
    FIRST_CONTACTS,
    FUNNEL,
    JOURNEYS_CLOSED,
    NO_SOURCE,
    NO_TIER,
    REASSIGNMENTS,
    SLA_BREACHES,
    SLA_SETTLED,
    STAGE_CONVERSIONS,
    STAGE_ENTRIES,
    TTFC_BUSINESS,
    TTFC_WALL,
    Kind,
    MetricSpec,
    SlaSettled,
    first_contact_time,
    funnel_step,
)


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
        """Count funnel steps, breaches, escalations, reassignments and first contacts among ``entries``."""
        for entry in entries:
            tier = entry.tier or NO_TIER
            step = funnel_step(entry)
            if step is not None:
                self._count(FUNNEL, step=str(step), tier=tier)
            if entry.kind is DecisionKind.BREACH:
                self._count(SLA_BREACHES, tier=tier, clock=str(BreachDetail.of(entry).clock))
            elif entry.kind is DecisionKind.ESCALATED:
                self._count(ESCALATIONS, level=str(int(EscalatedDetail.of(entry).level)))
            elif entry.kind is DecisionKind.REASSIGNED:
                self._count(REASSIGNMENTS, tier=tier)
            elif (sample := first_contact_time(entry)) is not None:
                self._count(FIRST_CONTACTS, tier=sample.tier, within_sla=str(sample.met).lower())
                self._observe(TTFC_BUSINESS, sample.business_seconds, tier=sample.tier)
                self._observe(TTFC_WALL, sample.wall_seconds, tier=sample.tier)

    def sla_settled(self, settlements: list[SlaSettled]) -> None:
        """Count every SLA a transition settled (``leadflow.kpis.sla_settled``), by clock."""
        for settled in settlements:
            self._count(SLA_SETTLED, clock=str(settled.clock), tier=settled.tier, outcome=str(settled.outcome))

    def closed(self, state: JourneyState) -> None:
        """The journey ended: its final stage and how many attempts it took."""
        self._count(JOURNEYS_CLOSED, stage=str(state.stage))
        self._observe(ATTEMPTS_PER_JOURNEY, state.attempts, stage=str(state.stage))
