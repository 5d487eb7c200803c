"""Merging later submissions of one person never fails, and the policy says what wins.

Core only (``Lead.merged_with``, ``decide``); ``tests/test_jam.py`` runs the same pairs
through a real API and worker.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from leadflow.decide import decide, new_journey
from leadflow.journey import DecisionKind, JourneyState, LeadSubmitted
from leadflow.lead import MAX_CUSTOM_FIELDS, CustomFieldsOverflow, Lead, merged_custom, problems_without_values
from leadflow.policy import Policy, PolicyError, parse_policy
from runtime.settings import DEFAULT_POLICY, read_yaml_file

T0 = datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc)
A = {f"a{i}": f"jane.doe@private.example {i}" for i in range(50)}
B = {f"b{i}": "+1 202 555 0199" for i in range(50)}


def policy_with(overflow: CustomFieldsOverflow | None = None, **changes) -> Policy:
    data = read_yaml_file(DEFAULT_POLICY)
    if overflow is not None:
        data["intake"] = {"custom_fields_overflow": overflow.value}
    data.update(changes)
    return parse_policy(data)


def submit_all(policy: Policy, *customs: dict) -> JourneyState:
    state = new_journey("L1", "j1", policy.version)
    for minutes, custom in enumerate(customs):
        lead = Lead(email="jane.doe@private.example", first_name="Jane", custom=custom)
        state, _ = decide(state, LeadSubmitted(lead=lead), T0 + timedelta(minutes=minutes), policy)
    return state


def test_the_default_is_keep_latest_and_the_option_is_validated():
    assert policy_with().intake.custom_fields_overflow is CustomFieldsOverflow.KEEP_LATEST
    with pytest.raises(PolicyError, match=r"intake.custom_fields_overflow: Input should be 'keep_latest', 'keep_first' or 'refuse'"):
        policy_with(intake={"custom_fields_overflow": "keep_some"})


@pytest.mark.parametrize("overflow, kept", [
    (CustomFieldsOverflow.KEEP_LATEST, B),
    (CustomFieldsOverflow.KEEP_FIRST, A),
    (CustomFieldsOverflow.REFUSE, A),  # the API refuses; a submission that slipped past it keeps what was held
])
def test_a_pair_over_the_cap_merges_by_the_policy_and_says_how_many_went(overflow, kept):
    state = submit_all(policy_with(overflow), A, B)
    assert state.lead.custom == kept and state.submissions == 2
    merged = state.log[-1]
    assert merged.kind is DecisionKind.MERGED and merged.detail["custom_fields_dropped"] == 50
    assert not any("a0" in str(value) or "jane" in str(value) for entry in state.log for value in entry.detail.values())
    TypeAdapter(JourneyState).validate_json(TypeAdapter(JourneyState).dump_json(state))  # what a continue-as-new carries stays valid


def test_partial_overflow_keeps_the_newest_fields_or_the_held_ones():
    older = {f"a{i}": i for i in range(40)}
    newer = {f"b{i}": i for i in range(20)}
    latest = merged_custom(older, newer, CustomFieldsOverflow.KEEP_LATEST)
    assert list(latest) == [f"a{i}" for i in range(10, 40)] + list(newer)
    first = merged_custom(older, newer, CustomFieldsOverflow.KEEP_FIRST)
    assert list(first) == list(older) + [f"b{i}" for i in range(10)]


def test_under_the_cap_every_policy_merges_as_before():
    older, newer = {"utm": "spring", "plan": "pro"}, {"plan": "team", "seats": 12}
    for overflow in CustomFieldsOverflow:
        assert merged_custom(older, newer, overflow) == {"utm": "spring", "plan": "team", "seats": 12}
    state = submit_all(policy_with(), A, {"a0": "updated"})  # a shared key updates, nothing goes
    assert state.lead.custom["a0"] == "updated" and len(state.lead.custom) == 50
    assert "custom_fields_dropped" not in state.log[-1].detail


def test_blank_fields_are_filled_and_held_ones_kept():
    held = Lead(email="jane@acme.io", company="Acme", phone=None)
    merged = held.merged_with(Lead(email="JANE+x@acme.io", company="Other", phone="+1 202 555 0199", company_size=0))
    assert (merged.email, merged.company, merged.phone, merged.company_size) == ("jane@acme.io", "Acme", "+1 202 555 0199", 0)


def test_no_pair_of_valid_submissions_fails_to_merge():
    rng = random.Random(12)
    for _ in range(300):
        pools = [f"k{i}" for i in range(120)]
        older = {key: rng.choice([1, 2.5, True, None, "x" * rng.randint(0, 300)]) for key in rng.sample(pools, rng.randint(0, 50))}
        newer = {key: "v" for key in rng.sample(pools, rng.randint(0, 50))}
        for overflow in CustomFieldsOverflow:
            merged = Lead(email="a@b.io", custom=older).merged_with(Lead(email="a@b.io", custom=newer), overflow)
            assert len(merged.custom) == min(MAX_CUSTOM_FIELDS, len(older.keys() | newer.keys()))
            Lead.model_validate(merged.model_dump())  # still a valid lead
            if overflow is CustomFieldsOverflow.KEEP_LATEST:
                assert newer.items() <= merged.custom.items()
            else:
                assert older.keys() <= merged.custom.keys()


def test_policies_that_would_make_every_submission_raise_are_refused_at_load():
    with pytest.raises(PolicyError, match=r"engagement.source_points.webinar: Input should be less than or equal to 1000"):
        policy_with(engagement={"source_points": {"webinar": 5000}})
    with pytest.raises(PolicyError, match=r"nurture_days: Input should be less than or equal to 36500"):
        policy_with(nurture_days=1e9)
    policy = policy_with(engagement={"source_points": {"webinar": 1000}})
    state = new_journey("L1", "j1", policy.version)
    state, _ = decide(state, LeadSubmitted(lead=Lead(email="a@b.io", source="webinar")), T0, policy)
    assert state.engagement_score == 1000


def test_validation_problems_name_the_field_and_rule_never_the_value():
    with pytest.raises(ValidationError) as caught:
        Lead(email="jane.doe@private..example", phone="+1 202 555 0199" * 5,
             custom={"jane.doe@private.example": ["+1 202 555 0199"], "k" * 101: 1})
    text = "; ".join(problems_without_values(caught.value))
    assert "email: value is not a valid email address" in text and "phone: String should have at most 50 characters" in text
    assert "custom.<key>" in text
    for secret in ("jane.doe", "555 0199", "k" * 101):
        assert secret not in text
