"""One KPI, one meaning: the live workers' metric and the simulator's statistic count the
first-contact SLA by the same rule (``leadflow.kpis``), and give the same numbers for the
same decisions.

A scripted day runs on the simulator (the SimPy shell's own ``LeadJourney.feed``); every
transition it makes is also handed to the live shell's ``JourneyMetrics``, as the workflow
hands it its own. Both must count what the rule says, lead by lead.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import simulation.model as sim_model
from leadflow.actions import AttemptOutcome, Disqualify, LogAttempt
from leadflow.kpis import (
    ContactSla,
    FunnelRatio,
    FunnelStep,
    attainment,
    first_contact_settled,
    funnel_ratio,
    funnel_ratio_promql,
    sla_attainment_promql,
    sla_settled,
)
from simulation.scripted import ScriptedModel
from simulation.statistics import ReplicationStats
from tests.journey_helpers import hot_lead
from workflows.journey_metrics import JourneyMetrics

NEW_YORK = ZoneInfo("America/New_York")
START = datetime(2026, 11, 17, 9, 0, tzinfo=NEW_YORK)  # a Tuesday


class _Instrument:
    def __init__(self, meter: RecordingMeter, name: str):
        self.meter, self.name = meter, name

    def add(self, value: int, labels: dict[str, str]) -> None:
        self.meter.counts[(self.name, tuple(sorted(labels.items())))] += value

    def record(self, value: float, labels: dict[str, str]) -> None:
        self.meter.samples.setdefault(self.name, []).append(value)


class RecordingMeter:
    """Stands in for ``workflow.metric_meter()``: remembers what was counted and observed."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.samples: dict[str, list[float]] = {}

    def create_counter(self, name: str, _help: str) -> _Instrument:
        return _Instrument(self, name)

    create_histogram_float = create_counter


class Observed(ScriptedModel):
    """The scripted simulator with the statistics of a real replication."""

    def __init__(self, policy, start):
        super().__init__(policy, start)
        self.stats = ReplicationStats(warmup_hours=0, horizon_hours=48)

    def sla_settled(self, journey, settled) -> None:
        self.stats.sla_settled(settled, self.env.now)

    def observe(self, journey, entry) -> None:  # as ``JourneyModel`` folds each decision in
        due = journey.state.first_contact_due
        self.stats.decided(journey.person.index, entry, journey.state, self.env.now,
                           self.hours(due) if due else None)
        super().observe(journey, entry)


def test_the_live_metric_and_the_simulator_count_the_same_first_contact_sla(policy, monkeypatch):
    transitions = []
    real_decide = sim_model.decide

    def watched(state, event, now, rules):
        after, commands = real_decide(state, event, now, rules)
        transitions.append((state, after))
        return after, commands

    monkeypatch.setattr(sim_model, "decide", watched)
    model = Observed(policy, START)
    at = START.astimezone(timezone.utc)
    # Hot leads: first contact due one business hour after MQL.
    for key in ("in-time", "late", "dropped-early", "never"):
        model.submit(key, hot_lead(f"{key}@kpi.io"), at)
    owner = lambda state: state.owner_id  # noqa: E731
    model.act("in-time", at + timedelta(minutes=20), lambda s: LogAttempt(by=owner(s), outcome=AttemptOutcome.CONNECTED))
    model.act("late", at + timedelta(hours=3), lambda s: LogAttempt(by=owner(s), outcome=AttemptOutcome.CONNECTED))
    model.act("dropped-early", at + timedelta(minutes=10), lambda s: Disqualify(by=owner(s), reason="no_budget"))
    late_arrival = at + timedelta(hours=7, minutes=50)  # 16:50 local: its hour runs into tomorrow
    model.submit("late-in-day", hot_lead("late-in-day@kpi.io"), late_arrival)
    model.run_until(late_arrival + timedelta(minutes=30))
    assert not model.refused, model.refused

    meter = RecordingMeter()
    live = JourneyMetrics(meter)
    for before, after in transitions:
        entries = [entry for entry in after.log if entry.seq > before.seq]  # what the workflow hands it
        live.decisions(entries)
        live.sla_settled(sla_settled(before, after, entries))
    settled = {tuple(sorted(labels)): value for (name, labels), value in meter.counts.items() if name == "leadflow_sla_settled"}
    live_counts = {tuple(item for item in labels if item[0] != "clock"): value for labels, value in settled.items()
                   if ("clock", "first_contact") in labels}

    # What the rule says: met 1 (in time); missed 2 (late, and "never", whose due time passed
    # uncontacted: it went on to escalations and the team queue, and is counted once);
    # "dropped-early" left before its due time and "late-in-day" is still inside its
    # window: neither is counted.
    expected = {(("outcome", "met"), ("tier", "hot")): 1, (("outcome", "missed"), ("tier", "hot")): 2}
    assert live_counts == expected
    stats = model.stats
    assert (stats.sla_met, stats.sla_missed) == ({"hot": 1}, {"hot": 2})
    assert stats.metrics()["sla_attainment"] == attainment(1, 2) == pytest.approx(1 / 3)
    # Every clock, window by window: the same on both sides.
    simulated_settled = {(("clock", str(clock)), ("outcome", str(outcome)), ("tier", tier)): count
                         for (clock, tier, outcome), count in stats.settled.items()}
    assert settled == simulated_settled
    # Acceptance: "in-time" and "late" were accepted by their first attempt inside the window;
    # "never" let the acceptance window run out more than once.
    assert settled[(("clock", "acceptance"), ("outcome", "met"), ("tier", "hot"))] >= 2
    assert settled[(("clock", "acceptance"), ("outcome", "missed"), ("tier", "hot"))] >= 1
    for clock in ("acceptance", "follow_up"):
        met = settled.get((("clock", clock), ("outcome", "met"), ("tier", "hot")), 0)
        missed = settled.get((("clock", clock), ("outcome", "missed"), ("tier", "hot")), 0)
        assert stats.metrics().get(f"sla_attainment_{clock}") == pytest.approx(attainment(met, missed))

    # The funnel and its ratios: the same counts on both sides, and the numbers the rule gives.
    live_funnel = Counter()
    for (name, labels), value in meter.counts.items():
        if name == "leadflow_funnel_steps":
            live_funnel[FunnelStep(dict(labels)["step"])] += value
    assert dict(live_funnel) == {step: count for step, count in stats.funnel.items() if count}
    # 5 MQLs, each handed to a rep once; 2 attempts, each accepting the lead; no SQL yet.
    assert (live_funnel[FunnelStep.MQL], live_funnel[FunnelStep.ATTEMPT], live_funnel[FunnelStep.SQL]) == (5, 2, 0)
    simulated = stats.metrics()
    for ratio in FunnelRatio:
        assert simulated[str(ratio)] == pytest.approx(funnel_ratio(ratio, live_funnel) or 0.0), ratio
    assert simulated["attempts_per_lead"] == pytest.approx(2 / 5)
    # Time to first contact: the same samples (the simulator keeps hours), one per first contact.
    assert sorted(meter.samples["leadflow_time_to_first_contact_business_seconds"]) == pytest.approx(
        sorted(hours * 3600 for hours in stats.ttfc_business))
    assert sorted(meter.samples["leadflow_time_to_first_contact_wall_seconds"]) == pytest.approx(
        sorted(hours * 3600 for hours in stats.ttfc_wall))
    assert len(stats.ttfc_business) == 2 and min(stats.ttfc_wall) == pytest.approx(20 / 60)


def test_a_lead_is_settled_once_per_mql_episode(policy):
    from leadflow.decide import decide, new_journey
    from leadflow.journey import Clock, DeadlineReached, LeadSubmitted, RepActed, RepAssigned

    now = START.astimezone(timezone.utc)
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=hot_lead("once@kpi.io")), now, policy)
    state, _ = decide(state, RepAssigned(rep_id=policy.reps[0].id, team=policy.reps[0].team, step=1, on_shift=True), now, policy)
    due = state.first_contact_due
    assert due is not None
    before = state
    state, _ = decide(state, DeadlineReached(clock=Clock.FIRST_CONTACT, due_at=state.deadlines[Clock.FIRST_CONTACT]), due, policy)
    assert first_contact_settled(before, state) is ContactSla.MISSED
    before = state
    contact = LogAttempt(by=state.owner_id, outcome=AttemptOutcome.CONNECTED)
    state, _ = decide(state, RepActed(action=contact), due + timedelta(hours=1), policy)
    assert first_contact_settled(before, state) is None  # a contact after a miss is not counted again


def test_the_dashboard_and_the_alert_use_the_core_definition():
    import yaml

    from runtime.settings import REPO_ROOT

    rules = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "alert-rules.yml").read_text())
    [alert] = [rule for group in rules["groups"] for rule in group["rules"] if rule["alert"] == "LeadflowSLAAttainmentLow"]
    assert sla_attainment_promql("4h") in alert["expr"]
    dashboard = (REPO_ROOT / "deploy" / "grafana" / "dashboards" / "leadflow.json").read_text().replace('\\"', '"')
    assert sla_attainment_promql("1h", 'tier=~"$tier"') in dashboard
    for ratio in FunnelRatio:
        assert funnel_ratio_promql(ratio, "$__range", 'tier=~"$tier"') in dashboard



def test_a_lead_recycled_uncontacted_after_its_due_time_is_a_miss(policy):
    """The recycle clears the episode in the same decision that passes the due time."""
    from leadflow.actions import Recycle
    from leadflow.decide import decide, new_journey
    from leadflow.journey import LeadSubmitted, RepActed, RepAssigned

    now = START.astimezone(timezone.utc)
    rep = policy.reps[0]
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=hot_lead("recycled@kpi.io")), now, policy)
    state, _ = decide(state, RepAssigned(rep_id=rep.id, team=rep.team, step=1, on_shift=True), now, policy)
    due = state.first_contact_due
    assert due is not None
    before = state
    state, _ = decide(state, RepActed(action=Recycle(by=rep.id, reason="timing")), due + timedelta(minutes=5), policy)
    assert state.recycles == before.recycles + 1
    assert first_contact_settled(before, state) is ContactSla.MISSED
