"""The policy (``leadflow.policy``) and reading policy files (``runtime.settings.load_policy_file``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadflow.business_calendar import BusinessCalendar
from leadflow.policy import CadenceUnit, Policy, PolicyError, RoutingMethod, parse_policy
from runtime.settings import DEFAULT_POLICY, DEMO_POLICY, load_policy_file

MINIMAL = {
    "version": "t-1",
    "tiers": [{"name": "hot", "min_score": 0, "accept_within_hours": 1, "first_contact_within_hours": 2}],
    "teams": [{"id": "team-a", "manager": "mgr-a"}],
    "reps": [{"id": "rep-a", "team": "team-a"}],
}


def default_data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))


def problems_after(change: Callable[[dict[str, Any]], None]) -> list[str]:
    data = default_data()
    change(data)
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "test.yaml")
    assert "invalid policy test.yaml" in str(caught.value)
    return caught.value.problems


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped policies ---------------------------------------------------------------------


def test_default_policy_loads():
    policy = load_policy_file(DEFAULT_POLICY)
    assert isinstance(policy, Policy)
    assert policy.version == "2026.11-1"
    assert [tier.name for tier in policy.tiers] == ["hot", "warm", "cold"]
    assert policy.calendar.timezone == "America/New_York"
    assert policy.routing.method is RoutingMethod.ROUND_ROBIN
    assert policy.cadence.max_attempts == 6
    assert policy.manager_of("rep-elif") == "mgr-intl"
    assert policy.managers == {"mgr-na", "mgr-intl"}
    assert policy.rep("rep-nobody") is None
    assert policy.tier("warm").accept_within_hours == 4
    with pytest.raises(KeyError):
        policy.tier("lukewarm")


def test_demo_policy_loads():
    policy = load_policy_file(DEMO_POLICY)
    assert policy.version == "demo-1"
    assert policy.calendar.hours_per_day == 24
    assert policy.cadence.unit is CadenceUnit.BUSINESS_HOUR


def test_load_accepts_a_string_path():
    assert load_policy_file(str(DEFAULT_POLICY)).version == "2026.11-1"


def test_minimal_policy_gets_defaults(tmp_path):
    policy = load_policy_file(write(tmp_path, yaml.safe_dump(MINIMAL)))
    assert policy.calendar == BusinessCalendar()
    assert policy.routing.default_capacity == 25
    assert policy.qualification.fast_track_tier == "hot"
    assert policy.reps[0].hours.timezone == "UTC"


def test_normalises_case_of_countries_and_industries():
    data = copy.deepcopy(MINIMAL)
    data["fit"] = {"icp_countries": ["us"], "icp_industries": ["SaaS"], "seniority": {"VP": 25}}
    data["routing"] = {"territories": {"NA": ["us", "ca"]}}
    policy = parse_policy(data)
    assert policy.fit.icp_countries == ["US"]
    assert policy.fit.icp_industries == ["saas"]
    assert policy.fit.seniority == {"vp": 25}
    assert policy.routing.territories == {"NA": ["US", "CA"]}


def test_policy_is_frozen():
    policy = parse_policy(MINIMAL)
    with pytest.raises(Exception):
        policy.version = "other"  # type: ignore[misc]


# --- bad policies: each problem names the field path and what was expected ---------------------


def test_negative_sla_window_names_the_field():
    problems = problems_after(lambda data: data["tiers"][0].update(accept_within_hours=-1))
    assert len(problems) == 1
    assert problems[0].startswith("tiers[0].accept_within_hours")
    assert "greater than 0" in problems[0]
    assert "-1" in problems[0]


def test_every_bad_field_is_listed():
    def change(data):
        data["tiers"][1]["first_contact_within_hours"] = 0
        data["routing"]["default_capacity"] = 0
        data["reps"][3]["weight"] = "heavy"

    problems = problems_after(change)
    paths = [problem.split(":")[0] for problem in problems]
    assert paths == ["tiers[1].first_contact_within_hours", "routing.default_capacity", "reps[3].weight"]


def test_rep_with_unknown_team_names_the_rep():
    problems = problems_after(lambda data: data["reps"][2].update(team="nope-sales"))
    assert len(problems) == 1
    assert "reps[2] (rep-cara)" in problems[0]
    assert "team 'nope-sales' is not one of ['intl-sales', 'na-sales']" in problems[0]


def test_rep_with_unknown_territory_names_the_rep_and_the_known_ones():
    problems = problems_after(lambda data: data["reps"][0].update(territories=["LATAM"]))
    assert "reps[0] (rep-ana)" in problems[0]
    assert "unknown territories ['LATAM']" in problems[0]
    assert "['APAC', 'EMEA', 'NA']" in problems[0]


def test_rep_with_unknown_segment():
    problems = problems_after(lambda data: data["reps"][1].update(segments=["giant"]))
    assert "reps[1] (rep-ben)" in problems[0] and "unknown segments ['giant']" in problems[0]


def test_unknown_fast_track_tier():
    problems = problems_after(lambda data: data["qualification"].update(fast_track_tier="lukewarm"))
    assert "qualification.fast_track_tier 'lukewarm' is not one of the tiers ['hot', 'warm', 'cold']" in problems[0]


def test_unknown_key_is_named():
    problems = problems_after(lambda data: data.update(escalaton={"notify_on_breach": 1}))
    assert len(problems) == 1
    assert problems[0].startswith("escalaton: Extra inputs are not permitted")


def test_unknown_nested_key_is_named_with_its_path():
    problems = problems_after(lambda data: data["reps"][4].update(capacty=3))
    assert problems[0].startswith("reps[4].capacty: Extra inputs are not permitted")


def test_bad_enum_value_lists_the_choices():
    problems = problems_after(lambda data: data["routing"].update(method="random"))
    assert problems[0].startswith("routing.method:")
    assert "'round_robin', 'weighted' or 'least_loaded'" in problems[0]
    assert "(got 'random')" in problems[0]


def test_missing_required_field():
    problems = problems_after(lambda data: data.pop("version"))
    assert problems == ["version: Field required"]


def test_bad_calendar_in_policy():
    problems = problems_after(lambda data: data["calendar"].update(timezone="Mars/Olympus", opens="9am"))
    assert any(problem.startswith("calendar.timezone:") and "unknown time zone 'Mars/Olympus'" in problem for problem in problems)
    assert any(problem.startswith("calendar.opens:") and "HH:MM" in problem for problem in problems)


def test_bad_rep_hours_name_the_rep_index():
    problems = problems_after(lambda data: data["reps"][6]["hours"].update(timezone="Australia/Atlantis"))
    assert problems[0].startswith("reps[6].hours.timezone:")


def test_decreasing_cadence():
    problems = problems_after(lambda data: data["cadence"].update(schedule=[0, 3, 1]))
    assert problems[0].startswith("cadence.schedule:") and "must not decrease" in problems[0]


def test_duplicate_tier_names_and_rep_ids():
    problems = problems_after(lambda data: data["tiers"][1].update(name="hot"))
    assert "tier names must be unique" in problems[0]
    problems = problems_after(lambda data: data["reps"][1].update(id="rep-ana"))
    assert "rep ids must be unique" in problems[0]


def test_reassign_before_notify_is_rejected():
    problems = problems_after(lambda data: data["escalation"].update(notify_on_breach=3, reassign_on_breach=2))
    assert "reassign_on_breach must not be lower than notify_on_breach" in problems[0]


def test_non_mapping_is_rejected():
    with pytest.raises(PolicyError, match=r"\(top level\): expected a mapping of policy fields, got list"):
        parse_policy(["version", "1"])


# --- files ------------------------------------------------------------------------------------


def test_bad_file_names_the_field(tmp_path):
    data = default_data()
    data["tiers"][0]["accept_within_hours"] = -1
    path = write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    assert caught.value.source == str(path)
    assert caught.value.problems[0].startswith("tiers[0].accept_within_hours")
    assert str(path) in str(caught.value)


def test_invalid_yaml_gives_line_and_column(tmp_path):
    path = write(tmp_path, 'version: "1"\nname: demo\n  tiers: : nope\n')
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    [problem] = caught.value.problems
    assert problem.startswith("line 3, column ")
    assert "not valid YAML" in problem


def test_unclosed_flow_mapping_gives_line_and_column(tmp_path):
    path = write(tmp_path, "version: '1'\ntiers: [ {name: hot\n")
    with pytest.raises(PolicyError, match=r"line \d+, column \d+: not valid YAML"):
        load_policy_file(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    assert caught.value.problems == ["file not found"]
    assert str(path) in str(caught.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy_file(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(PolicyError, match="expected a mapping of policy fields, got NoneType"):
        load_policy_file(write(tmp_path, ""))


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["commitments"].update(mql_per_week_by_source={"webinar": 60}), "adds up to 60, more than mql_per_week (50)"),
    (lambda d: d["commitments"].update(mql_per_week_by_segment={"giant": 5}), "unknown segments ['giant']"),
    (lambda d: d["commitments"].update(min_acceptance_rate=1.5), "commitments.min_acceptance_rate"),
    (lambda d: d["commitments"].update(mql_per_week_by_source={"carrier_pigeon": 5}), "mql_per_week_by_source"),
    (lambda d: d["commitments"].update(mql_per_week=0), "commitments.mql_per_week"),
    (lambda d: d.update(sal_gate={"auto_accept_after_hours": 0}), "sal_gate.auto_accept_after_hours"),
    (lambda d: d["reason_codes"].update(reject=[]), "reason_codes.reject"),
])
def test_commitments_and_the_sal_gate_are_validated(change, problem):
    assert any(problem in line for line in problems_after(change)), problems_after(change)


def test_the_default_policy_carries_marketings_commitments():
    policy = load_policy_file(DEFAULT_POLICY)
    assert policy.commitments.mql_per_week == 50 and policy.commitments.min_acceptance_rate == 0.8
    assert policy.sal_gate.auto_accept_after_hours is None and "not_icp" in policy.reason_codes.reject
