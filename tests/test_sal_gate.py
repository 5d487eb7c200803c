"""The SAL gate: sales accepts or rejects (with a reason code) each MQL handed to it, and the
policy may accept on the owner's behalf after N business hours. Decisions of the core, taken
the same way by the workflow, the simulator and the report."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from leadflow.actions import Accept, AttemptOutcome, InvalidAction, LogAttempt, Reject
from leadflow.decide import check_action, decide, new_journey
from leadflow.decision_details import RejectedDetail
from leadflow.journey import (
    CancelDeadline,
    Clock,
    DeadlineReached,
    DecisionKind,
    LeadSubmitted,
    ReleaseLead,
    RepActed,
    RepAssigned,
    Stage,
    StartDeadline,
)
from tests.journey_helpers import hot_lead, next_local, skip_to
from tests.test_journey_workflow import TUESDAY, journey_worker, settings_for, submit_and_wait_assigned
from workflows.journey_client import JourneyError, act

NOW = datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in New York


def assigned(policy):
    state, _ = decide(new_journey("L", "j", policy.version), LeadSubmitted(lead=hot_lead("sal@corp.io")), NOW, policy)
    rep = policy.reps[0]
    return decide(state, RepAssigned(rep_id=rep.id, team=rep.team, step=state.assignment_step, on_shift=True), NOW, policy)


def test_a_rejected_mql_goes_back_to_marketing_with_its_reason(policy):
    state, _ = assigned(policy)
    owner = state.owner_id
    later = NOW + timedelta(minutes=10)
    after, commands = decide(state, RepActed(action=Reject(by=owner, reason="not_icp")), later, policy)
    assert after.stage is Stage.NURTURING and after.owner_id is None and after.last_reason == "not_icp"
    rejected = [entry for entry in after.log if entry.kind is DecisionKind.REJECTED]
    assert RejectedDetail.of(rejected[-1]) == RejectedDetail(by=owner, reason="not_icp")
    assert ReleaseLead(rep_id=owner) in commands
    assert {command.clock for command in commands if isinstance(command, CancelDeadline)} >= {Clock.ACCEPTANCE}
    assert Clock.NURTURE in after.deadlines and after.recycles == state.recycles + 1


@pytest.mark.parametrize("action, problem", [
    (lambda owner: Reject(by=owner), "reject needs a reason code, one of: not_icp"),
    (lambda owner: Reject(by=owner, reason="no_budget"), "unknown reject reason 'no_budget'"),
    (lambda owner: Reject(by="rep-zed", reason="not_icp"), "unknown rep"),
])
def test_a_reject_needs_a_known_reason_and_the_owner(policy, action, problem):
    state, _ = assigned(policy)
    with pytest.raises(InvalidAction, match=problem):
        check_action(state, action(state.owner_id), policy)


def test_only_an_assigned_lead_can_be_rejected(policy):
    state, _ = assigned(policy)
    owner = state.owner_id
    accepted, _ = decide(state, RepActed(action=Accept(by=owner)), NOW + timedelta(minutes=5), policy)
    with pytest.raises(InvalidAction, match="cannot reject a lead in stage ACCEPTED"):
        check_action(accepted, Reject(by=owner, reason="not_icp"), policy)


def test_the_policy_can_accept_on_the_owners_behalf(policy):
    gated = policy.model_copy(update={"sal_gate": policy.sal_gate.model_copy(update={"auto_accept_after_hours": 0.1})})
    state, commands = assigned(gated)
    due = state.deadlines[Clock.AUTO_ACCEPT]
    assert StartDeadline(clock=Clock.AUTO_ACCEPT, due_at=due) in commands
    assert due == NOW + timedelta(minutes=6) < state.deadlines[Clock.ACCEPTANCE]  # business time, inside the day
    state, commands = decide(state, DeadlineReached(clock=Clock.AUTO_ACCEPT, due_at=due), due, gated)
    accepted = [entry for entry in state.log if entry.kind is DecisionKind.ACCEPTED][-1]
    assert state.stage is Stage.ACCEPTED and accepted.detail == {"by": state.owner_id, "auto": True}
    assert Clock.ACCEPTANCE not in state.deadlines and CancelDeadline(clock=Clock.ACCEPTANCE) in commands
    # A rep who accepts first disarms it.
    fresh, _ = assigned(gated)
    taken, commands = decide(fresh, RepActed(action=Accept(by=fresh.owner_id)), NOW + timedelta(minutes=5), gated)
    assert Clock.AUTO_ACCEPT not in taken.deadlines and CancelDeadline(clock=Clock.AUTO_ACCEPT) in commands
    # Without the setting nothing is armed: journeys on today's policies are unchanged.
    plain, _ = assigned(policy)
    assert Clock.AUTO_ACCEPT not in plain.deadlines


async def test_a_rep_rejects_an_mql_on_a_live_journey(time_env, task_queue, sqlite_url, policy):
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), TUESDAY, time(10, 0)))
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy) as parts:
        submitted, view = await submit_and_wait_assigned(client, hot_lead("reject.me@corp.io"), task_queue)
        owner = view.owner_id
        with pytest.raises(JourneyError, match="reject needs a reason code"):
            await act(client, submitted.lead_id, Reject(by=owner))
        view = await act(client, submitted.lead_id, Reject(by=owner, reason="no_intent"))
        assert view.stage is Stage.NURTURING and view.owner_id is None
        kinds = [event["kind"] for event in parts.ledger.events(submitted.lead_id)]
        assert kinds[-1] == "rejected" and parts.ledger.open_leads_by_rep().get(owner, 0) == 0
        with pytest.raises(JourneyError, match="cannot log an attempt|cannot attempt"):
            await act(client, submitted.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))


def test_the_simulator_rejects_with_the_scenarios_reasons(policy):
    from runtime.settings import SCENARIOS_DIR
    from simulation.model import JourneyModel
    from simulation.runner import replication_seeds
    from simulation.scenario import load_scenario

    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=10, warmup_days=1)
    model = JourneyModel(loaded, replication_seeds(5, 0), keep_traces=True)
    model.behaviour = loaded.scenario.behaviour.model_copy(update={"reject_probability": 0.3})  # the reps' side
    model.run()
    entries = [entry for trace in (model.traces or {}).values() for entry in trace]
    rejected = [RejectedDetail.of(entry).reason for entry in entries if entry.kind is DecisionKind.REJECTED]
    assert rejected and set(rejected) <= {"not_icp", "no_intent"}
    accepted = sum(entry.kind is DecisionKind.ACCEPTED for entry in entries)
    assert 0.15 < len(rejected) / (len(rejected) + accepted) < 0.45


def test_an_auto_accept_is_not_the_rep_meeting_the_acceptance_window(policy):
    from leadflow.kpis import sla_settled

    gated = policy.model_copy(update={"sal_gate": policy.sal_gate.model_copy(update={"auto_accept_after_hours": 0.1})})
    state, _ = assigned(gated)
    due = state.deadlines[Clock.AUTO_ACCEPT]
    after, _ = decide(state, DeadlineReached(clock=Clock.AUTO_ACCEPT, due_at=due), due, gated)
    entries = [entry for entry in after.log if entry.seq > state.seq]
    assert [item.clock for item in sla_settled(state, after, entries)] == []  # closed by the policy: not counted
    by_rep, _ = decide(state, RepActed(action=Accept(by=state.owner_id)), due, gated)
    entries = [entry for entry in by_rep.log if entry.seq > state.seq]
    assert [(item.clock, str(item.outcome)) for item in sla_settled(state, by_rep, entries)] == [(Clock.ACCEPTANCE, "met")]


def test_the_simulated_rep_works_a_lead_the_policy_accepted(policy):
    from runtime.settings import SCENARIOS_DIR
    from simulation.model import JourneyModel
    from simulation.runner import replication_seeds
    from simulation.scenario import load_scenario

    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=10, warmup_days=1)
    gated = loaded.policy.model_copy(update={"sal_gate": loaded.policy.sal_gate.model_copy(update={"auto_accept_after_hours": 0.05})})
    model = JourneyModel(loaded, replication_seeds(5, 0), keep_traces=True)
    model.policy = gated
    # Every rep rejects what is still theirs to decide, so only leads the policy accepted first get worked.
    model.behaviour = loaded.scenario.behaviour.model_copy(update={"reject_probability": 1.0})
    model.run()
    worked = auto = 0
    for entries in (model.traces or {}).values():
        for index, entry in enumerate(entries):
            if entry.kind is DecisionKind.ACCEPTED and entry.detail.get("auto"):
                auto += 1
                later = entries[index + 1:]
                worked += any(e.kind is DecisionKind.ATTEMPT and e.owner_id == entry.owner_id for e in later)
    assert auto > 20 and worked / auto > 0.6, (worked, auto)
