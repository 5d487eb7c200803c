"""Policy versions: diffing two files, when an open journey may switch, and the rollout pointer."""

from __future__ import annotations

import dataclasses

from activities.ledger import Ledger
from activities.policy_store import ROLLOUT_CHECK_SECONDS, PolicyStore
from leadflow.actions import Accept, AttemptOutcome, LogAttempt, Qualify
from leadflow.decide import decide, may_adopt
from leadflow.journey import DecisionKind, Outcome, PolicyAdopted, Stage
from leadflow.policy import Policy
from leadflow.policy_diff import diff_policies
from tests.test_decide import T0, Journey, assigned_hot, records, warm_lead


def changed(policy: Policy, **update) -> Policy:
    return Policy.model_validate({**policy.model_dump(), **update})


# -- diff ----------------------------------------------------------------------------------------


def test_diff_names_each_change_by_path_and_matches_reps_by_id(policy):
    after = policy.model_dump()
    after["version"] = "2026.12-1"
    after["tiers"][0]["first_contact_within_hours"] = 0.25
    after["reps"] = list(reversed(after["reps"]))[1:]  # reordered (no change) and one rep fewer
    removed = policy.reps[-1].id
    lines = [change.line() for change in diff_policies(policy, Policy.model_validate(after))]
    assert lines[0].startswith(f"- reps.{removed}: ")
    assert "~ tiers.hot.first_contact_within_hours: 1.0 -> 0.25" in lines
    assert "~ version: '2026.11-1' -> '2026.12-1'" in lines
    assert len(lines) == 3


def test_diff_of_a_policy_with_itself_is_empty_and_additions_show(policy):
    assert diff_policies(policy, policy) == []
    after = policy.model_dump()
    after["teams"].append({"id": "apac-sales", "manager": "mgr-apac"})
    (change,) = diff_policies(policy, Policy.model_validate(after))
    assert change.kind == "added" and change.path == "teams.apac-sales"
    assert change.line() == "+ teams.apac-sales: {id='apac-sales', manager='mgr-apac'}"


# -- adopting a policy in an open journey --------------------------------------------------------


def test_nurturing_journey_adopts_at_once_and_logs_the_switch(policy):
    journey = Journey(policy)
    journey.submit(warm_lead())
    assert journey.state.stage is Stage.NURTURING
    newer = changed(policy, version="2026.12-1")
    assert may_adopt(journey.state, newer)
    state, commands = decide(journey.state, PolicyAdopted(version=newer.version), T0, newer)
    assert state.policy_version == "2026.12-1"
    assert records(commands) == [DecisionKind.POLICY_ADOPTED]
    assert state.log[-1].detail == {"previous_version": policy.version, "version": "2026.12-1"}
    again, nothing = decide(state, PolicyAdopted(version=newer.version), T0, newer)
    assert nothing == [] and again.policy_version == "2026.12-1"


def test_journey_waits_while_an_sla_clock_runs_unless_the_policy_interrupts(policy):
    journey = assigned_hot(policy)  # acceptance SLA running
    newer = changed(policy, version="2026.12-1")
    assert not may_adopt(journey.state, newer)
    assert may_adopt(journey.state, changed(policy, version="2026.12-2", rollout={"interrupt_running_deadlines": True}))
    journey.act(Accept(by="rep-ana"), T0)
    journey.act(LogAttempt(by="rep-ana", outcome=AttemptOutcome.CONNECTED), T0)
    assert not may_adopt(journey.state, newer)  # disposition deadline running
    journey.act(Qualify(by="rep-ana", budget=True), T0)
    assert journey.state.stage is Stage.SQL
    assert may_adopt(journey.state, newer)


def test_closed_journeys_never_adopt(policy):
    journey = Journey(policy)
    journey.submit(warm_lead())
    closed = dataclasses.replace(journey.state, outcome=Outcome.CONVERTED)
    assert not may_adopt(closed, changed(policy, version="x", rollout={"interrupt_running_deadlines": True}))


# -- the rollout pointer ---------------------------------------------------------------------------


def test_workers_pick_up_a_rollout_from_the_ledger(policy, sqlite_url):
    ledger = Ledger(sqlite_url)
    ledger.create_schema()
    now = [0.0]
    store = PolicyStore(policy, ledger, clock=lambda: now[0])
    assert store.current.version == policy.version
    newer = changed(policy, version="2026.12-1")
    ledger.register_policy(newer)
    ledger.roll_out(newer.version, "new")
    assert store.current.version == policy.version  # not re-read yet
    now[0] += ROLLOUT_CHECK_SECONDS
    assert store.current.version == "2026.12-1"
    assert store.get(None).version == "2026.12-1"
    assert store.get(policy.version).version == policy.version  # journeys started before keep theirs
    assert ledger.rolled_out_version() == "2026.12-1"
    ledger.dispose()
