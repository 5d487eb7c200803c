"""Scenario files: a policy plus the population, behaviour, horizon and statistics to simulate.

A scenario names the policy the workers load (a path, relative to the scenario file, or an
inline mapping), optionally changes parts of it (``policy_changes``: tiers, reps and teams
matched by name or id; ``remove_reps``), and describes who arrives and how people behave.
Bad files fail with the field path and what was expected, like policy files.
"""

from __future__ import annotations

import copy
import math
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadflow.lead import EngagementKind, LeadSource
from leadflow.policy import Absence as PolicyAbsence
from leadflow.policy import Policy, PolicyError, Rep, describe_validation_error, parse_policy
from runtime.settings import bundled_file, read_yaml_file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    """A positive random duration: ``exponential`` or ``lognormal`` (by mean), or ``fixed``."""

    kind: Literal["exponential", "lognormal", "fixed"] = "exponential"
    mean: float = Field(gt=0)
    sigma: float = Field(default=0.75, gt=0, description="lognormal: sd of the underlying normal")


class Campaign(_Strict):
    """A burst of extra arrivals: the arrival rate is multiplied on these days."""

    name: str = "campaign"
    start_day: float = Field(ge=0, description="days after the start of the horizon")
    days: float = Field(gt=0)
    multiplier: float = Field(gt=0)


class Beta(_Strict):
    a: float = Field(gt=0)
    b: float = Field(gt=0)


def _normalised(weights: dict[Any, float], field: str) -> dict[Any, float]:
    if not weights:
        raise ValueError(f"{field} needs at least one entry")
    if any(weight < 0 for weight in weights.values()):
        raise ValueError(f"{field} weights must be >= 0")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"{field} weights must not all be zero")
    return {key: weight / total for key, weight in weights.items()}


class NurturesAtStart(StrEnum):
    """What is in the nurture pool when a run starts (without ``--from-ledger``)."""

    STEADY = "steady"
    NONE = "none"


class Population(_Strict):
    """Who arrives, and when (a non-homogeneous Poisson process)."""

    leads_per_week: float = Field(gt=0, description="mean arrivals per week before campaigns")
    weekday_profile: list[float] = Field(
        default_factory=lambda: [1.2, 1.15, 1.1, 1.05, 0.9, 0.35, 0.25], min_length=7, max_length=7
    )
    hour_profile: list[float] = Field(
        default_factory=lambda: [0.2] * 7 + [0.6, 1.2, 1.6, 1.7, 1.6, 1.3, 1.5, 1.6, 1.5, 1.2, 0.8, 0.5, 0.4, 0.35, 0.3, 0.25, 0.2],
        min_length=24,
        max_length=24,
        description="relative arrivals by hour of day in the policy calendar's time zone",
    )
    campaigns: list[Campaign] = Field(default_factory=list)
    source_mix: dict[LeadSource, float] = Field(
        default_factory=lambda: {
            LeadSource.WEBINAR: 0.2, LeadSource.EBOOK: 0.2, LeadSource.PAID_SEARCH: 0.2, LeadSource.ORGANIC: 0.2,
            LeadSource.TRADE_SHOW: 0.1, LeadSource.DEMO_REQUEST: 0.1,
        }
    )
    titles: dict[str, float] = Field(
        default_factory=lambda: {"VP Sales": 0.1, "Head of Operations": 0.1, "Director of IT": 0.15, "CEO": 0.05,
                                 "Marketing Manager": 0.25, "Analyst": 0.25, "Student": 0.1}
    )
    company_sizes: dict[int, float] = Field(default_factory=lambda: {10: 0.25, 120: 0.3, 450: 0.25, 1500: 0.15, 8000: 0.05})
    industries: dict[str, float] = Field(
        default_factory=lambda: {"software": 0.3, "fintech": 0.15, "healthcare": 0.15, "retail": 0.2, "education": 0.2}
    )
    countries: dict[str, float] = Field(default_factory=lambda: {"US": 0.55, "CA": 0.1, "GB": 0.15, "DE": 0.1, "FR": 0.1})
    intent: Beta = Field(default_factory=lambda: Beta(a=1.5, b=4.0), description="purchase intent in [0, 1]")

    @field_validator("source_mix", "titles", "company_sizes", "industries", "countries")
    @classmethod
    def _weights(cls, value: dict[Any, float], info: Any) -> dict[Any, float]:
        return _normalised(value, info.field_name)

    @field_validator("weekday_profile", "hour_profile")
    @classmethod
    def _profile(cls, value: list[float], info: Any) -> list[float]:
        if any(weight < 0 for weight in value) or sum(value) <= 0:
            raise ValueError(f"{info.field_name} needs non-negative weights, not all zero")
        return value


class SpeedToLead(_Strict):
    """Contact probability multiplier by wall hours since the lead became an MQL.

    Points are interpolated log-linearly and held flat after the last one. The default
    follows the published pattern: a lead tried within an hour is about 7x likelier to be
    reached than an hour later, and about 60x likelier than after a day.
    """

    points: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 1.0), (1.0, 1.0), (2.0, 1 / 7), (24.0, 1 / 60)], min_length=1
    )

    @field_validator("points")
    @classmethod
    def _increasing(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        hours = [point[0] for point in value]
        if hours != sorted(hours) or len(set(hours)) != len(hours):
            raise ValueError("points need strictly increasing hours")
        if any(multiplier <= 0 for _, multiplier in value):
            raise ValueError("multipliers must be > 0")
        return value


class Likelihood(_Strict):
    """A probability from fit and intent: base + fit_weight * fit/100 + intent_weight * intent, clipped."""

    base: float = Field(ge=0, le=1)
    fit_weight: float = 0.0
    intent_weight: float = 0.0


class TeamBehaviour(_Strict):
    """A team's own reaction latency and call lengths (``leadflow calibrate`` fits them per team)."""

    reaction_minutes: Distribution | None = None
    attempt_minutes: Distribution | None = None


class Behaviour(_Strict):
    """How leads engage and how reps work."""

    engagement_per_week: float = Field(default=4.0, ge=0, description="engagement events a week at intent 1")
    engagement_mix: dict[EngagementKind, float] = Field(
        default_factory=lambda: {
            EngagementKind.PAGE_VIEW: 0.55, EngagementKind.EMAIL_CLICK: 0.15, EngagementKind.CONTENT_DOWNLOAD: 0.12,
            EngagementKind.PRICING_PAGE: 0.1, EngagementKind.WEBINAR: 0.05, EngagementKind.DEMO_REQUEST: 0.03,
        }
    )
    reaction_minutes: Distribution = Field(
        default_factory=lambda: Distribution(kind="lognormal", mean=10, sigma=0.8),
        description="the rep's working minutes from getting a lead until it is on their worklist; "
                    "time to first touch adds the wait behind the work already there",
    )
    attempt_minutes: Distribution = Field(default_factory=lambda: Distribution(kind="lognormal", mean=12, sigma=0.4))
    contact_probability: float = Field(default=0.45, gt=0, le=1, description="chance an attempt connects at once")
    speed_to_lead: SpeedToLead = Field(default_factory=SpeedToLead)
    qualify: Likelihood = Field(default_factory=lambda: Likelihood(base=0.15, fit_weight=0.4, intent_weight=0.4))
    convert: Likelihood = Field(default_factory=lambda: Likelihood(base=0.2, intent_weight=0.5))
    decide_within_hours: Distribution = Field(
        default_factory=lambda: Distribution(kind="exponential", mean=4),
        description="business hours from a connected call to qualify or disqualify",
    )
    close_within_days: Distribution = Field(default_factory=lambda: Distribution(kind="exponential", mean=20))
    disqualify_reasons: dict[str, float] = Field(default_factory=lambda: {"no_budget": 0.4, "no_need": 0.4, "competitor": 0.2})
    reject_probability: float = Field(
        default=0.0, ge=0, le=1, description="chance the owner rejects an assigned MQL back to marketing (the SAL gate)")
    reject_reasons: dict[str, float] = Field(default_factory=lambda: {"not_icp": 0.5, "no_intent": 0.5})
    teams: dict[str, TeamBehaviour] = Field(default_factory=dict, description="per-team overrides, by team id")
    qualify_rates: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="tier -> lead source (or '*') -> chance a reached lead qualifies; replaces `qualify` where given")
    convert_rates: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="tier -> lead source (or '*') -> chance an SQL converts; replaces `convert` where given")

    @field_validator("qualify_rates", "convert_rates")
    @classmethod
    def _rates(cls, value: dict[str, dict[str, float]], info: Any) -> dict[str, dict[str, float]]:
        for tier, by_source in value.items():
            for source, rate in by_source.items():
                if not 0 <= rate <= 1:
                    raise ValueError(f"{info.field_name}.{tier}.{source} is {rate}; a rate is between 0 and 1")
        return value

    def rate(self, table: dict[str, dict[str, float]], tier: str | None, source: str) -> float | None:
        """The table's rate for this tier and source (or the tier's '*'), if it has one."""
        by_source = table.get(tier or "")
        if by_source is None:
            return None
        return by_source.get(source, by_source.get("*"))

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        if isinstance(value, dict) and "rep_response_minutes" in value:
            raise ValueError(
                "rep_response_minutes is now reaction_minutes: reps work a worklist, so response time comes "
                "from their load plus this latency; rename the key and set it to the delay of an idle rep"
            )
        return value

    @field_validator("engagement_mix", "disqualify_reasons", "reject_reasons")
    @classmethod
    def _weights(cls, value: dict[Any, float], info: Any) -> dict[Any, float]:
        return _normalised(value, info.field_name)


class Absence(_Strict):
    rep: str
    start_day: float = Field(ge=0)
    days: float = Field(gt=0)


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    policy: str | dict[str, Any] = Field(description="a policy file (relative to the scenario) or an inline policy")
    policy_changes: dict[str, Any] = Field(default_factory=dict)
    remove_reps: list[str] = Field(default_factory=list)
    absences: list[Absence] = Field(default_factory=list)
    population: Population
    behaviour: Behaviour = Field(default_factory=Behaviour)
    start: date = Field(default=date(2026, 1, 5), description="first day of the horizon (a Monday is usual)")
    horizon_days: float = Field(default=28, gt=0)
    warmup_days: float = Field(default=7, ge=0, description="simulated, not counted: the measured period starts after it")
    replications: int = Field(default=10, ge=2, le=10_000)
    seed: int = Field(default=1, ge=0)
    nurtures_at_start: NurturesAtStart = Field(
        default=NurturesAtStart.STEADY,
        description="steady: start with the nurtures a steady inflow would have running (leads of the "
                    "nurture_days before the start still to qualify); none: start with no leads at all",
    )

    @model_validator(mode="after")
    def _warmup_inside_horizon(self) -> Scenario:
        if self.warmup_days >= self.horizon_days:
            raise ValueError(f"warmup_days ({self.warmup_days}) must be shorter than horizon_days ({self.horizon_days})")
        return self


class ScenarioError(PolicyError):
    """A scenario file that cannot be used; names each problem with its field path."""


class LoadedScenario(BaseModel):
    """A validated scenario with its policy resolved, changed and validated."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    scenario: Scenario
    policy: Policy
    source: str
    # Open journeys to start from (``simulate --from-ledger``): the run starts at their
    # instant, with no warm-up, for the scenario's measured length.
    start_state: Any = None
    # The team that worked the leads before the start (``nurtures_at_start: steady``); None:
    # the policy's own. A capacity search sets today's team: the headcount it tries changes
    # from the start on, the past stays as it was (and is computed once per replication).
    team_before_start: tuple[Rep, ...] | None = None


def load_scenario(path: str | Path, **overrides: Any) -> LoadedScenario:
    """Read, validate and resolve a scenario file (``overrides`` replace top-level fields)."""
    path = Path(path)
    data = _read_with_parents(path, seen=())
    data = {**data, **{key: value for key, value in overrides.items() if value is not None}}
    return resolve_scenario(data, str(path), base_dir=path.parent)


def _read_with_parents(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A scenario mapping, merged onto the scenario it ``extends`` (paths made absolute)."""
    try:
        data = read_yaml_file(path)
    except PolicyError as error:  # a missing or unreadable scenario file is a scenario problem
        raise ScenarioError(error.source, error.problems) from None
    if not isinstance(data, dict):
        raise ScenarioError(str(path), ["(top level): expected a mapping of scenario fields"])
    if isinstance(data.get("policy"), str):
        data["policy"] = str(_beside(path, data["policy"], "policy"))
    parent = data.pop("extends", None)
    if parent is None:
        return data
    parent_path = _beside(path, str(parent), "scenario")
    if parent_path in seen:
        raise ScenarioError(str(path), [f"extends: {parent} extends itself"])
    merged = _read_with_parents(parent_path, seen + (path.resolve(),))
    problems: list[str] = []
    _merge(merged, data, "extends", problems)
    return merged


def _beside(scenario: Path, reference: str, kind: str) -> Path:
    """A file a scenario names (``policy:``, ``extends:``): relative to the scenario file, else a bundled one.

    So a scenario copied out of the package keeps working with ``policy: policy.yaml`` or
    ``extends: baseline.yaml`` when no such file sits next to it.
    """
    beside = (scenario.parent / reference).resolve()
    if beside.exists() or Path(reference).is_absolute():
        return beside
    bundled = bundled_file(reference, kind)
    return bundled.resolve() if bundled else beside


def resolve_scenario(data: dict[str, Any], source: str, base_dir: Path = Path(".")) -> LoadedScenario:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(source, describe_validation_error(error)) from None
    if isinstance(scenario.policy, str):
        policy_path = (base_dir / scenario.policy).resolve()
        try:
            policy_data = read_yaml_file(policy_path)
        except PolicyError as error:
            raise ScenarioError(source, [f"policy: {problem} ({error.source})" for problem in error.problems]) from None
    else:
        policy_data = scenario.policy
    changed = apply_policy_changes(policy_data, scenario.policy_changes, scenario.remove_reps, source)
    try:
        policy = parse_policy(changed, f"{source} (policy)")
    except PolicyError as error:
        raise ScenarioError(source, [f"policy: {problem}" for problem in error.problems]) from None
    problems = []
    known = {rep.id for rep in policy.reps}
    unknown = sorted({absence.rep for absence in scenario.absences} - known)
    if unknown:
        problems.append(f"absences: unknown rep(s) {', '.join(unknown)}")
    reasons = sorted(set(scenario.behaviour.disqualify_reasons) - set(policy.reason_codes.disqualify))
    if reasons:
        problems.append(
            f"behaviour.disqualify_reasons: {', '.join(map(repr, reasons))} not in the policy's reason codes "
            f"({', '.join(policy.reason_codes.disqualify)})"
        )
    rejects = sorted(set(scenario.behaviour.reject_reasons) - set(policy.reason_codes.reject))
    if rejects and scenario.behaviour.reject_probability > 0:
        problems.append(
            f"behaviour.reject_reasons: {', '.join(map(repr, rejects))} not in the policy's reject codes "
            f"({', '.join(policy.reason_codes.reject)})"
        )
    if problems:
        raise ScenarioError(source, problems)
    return LoadedScenario(scenario=scenario, policy=_with_absences(policy, scenario), source=source)


def _with_absences(policy: Policy, scenario: Scenario) -> Policy:
    """Scenario absences become the reps' out-of-office days, which routing already honours."""
    if not scenario.absences:
        return policy
    reps = []
    for rep in policy.reps:
        days = []
        for absence in scenario.absences:
            if absence.rep == rep.id:
                first = int(absence.start_day)
                last = max(first, math.ceil(absence.start_day + absence.days) - 1)
                days.append(
                    PolicyAbsence(start=scenario.start + timedelta(days=first), end=scenario.start + timedelta(days=last))
                )
        reps.append(rep.model_copy(update={"out_of_office": [*rep.out_of_office, *days]}) if days else rep)
    return policy.model_copy(update={"reps": reps})


_KEYED_LISTS = {"tiers": "name", "reps": "id", "teams": "id"}


def apply_policy_changes(policy: Any, changes: dict[str, Any], remove_reps: list[str], source: str) -> Any:
    """Deep-merge ``changes`` into a policy mapping; tiers/reps/teams are matched by name or id."""
    if not isinstance(policy, dict):
        raise ScenarioError(source, ["policy: expected a mapping of policy fields"])
    merged = copy.deepcopy(policy)
    problems: list[str] = []
    _merge(merged, changes, "policy_changes", problems)
    if remove_reps:
        ids = {rep.get("id") for rep in merged.get("reps", [])}
        missing = sorted(set(remove_reps) - ids)
        if missing:
            problems.append(f"remove_reps: unknown rep(s) {', '.join(missing)}")
        merged["reps"] = [rep for rep in merged.get("reps", []) if rep.get("id") not in remove_reps]
    if problems:
        raise ScenarioError(source, problems)
    return merged


def _merge(target: dict[str, Any], changes: dict[str, Any], path: str, problems: list[str]) -> None:
    for key, value in changes.items():
        where = f"{path}.{key}"
        if key in _KEYED_LISTS and isinstance(value, dict) and isinstance(target.get(key), list):
            field = _KEYED_LISTS[key]
            by_key = {item.get(field): item for item in target[key] if isinstance(item, dict)}
            for name, patch in value.items():
                if name not in by_key:
                    problems.append(f"{where}.{name}: no {key[:-1]} with {field} {name!r} in the policy")
                elif not isinstance(patch, dict):
                    problems.append(f"{where}.{name}: expected a mapping of fields to change")
                else:
                    _merge(by_key[name], patch, f"{where}.{name}", problems)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, where, problems)
        else:
            target[key] = copy.deepcopy(value)
