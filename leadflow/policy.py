"""The policy: one YAML file that drives the live workers and the simulator alike.

``parse_policy`` validates a mapping (already loaded from YAML by a shell) and raises
``PolicyError`` whose message names every bad field by its path and says what was
expected. The core itself never reads files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadflow.business_calendar import BusinessCalendar
from leadflow.lead import CustomFieldsOverflow, EngagementKind, LeadSource


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SizeBand(_Strict):
    min_employees: int = Field(ge=0)
    points: float


class FitRules(_Strict):
    """Explicit fit: who the person is, against the ideal customer profile (ICP)."""

    seniority: dict[str, float] = Field(
        default_factory=lambda: {"chief": 30.0, "vp": 25.0, "head": 20.0, "director": 20.0, "manager": 10.0},
        description="title keyword -> points; the best matching keyword counts",
    )
    company_size: list[SizeBand] = Field(default_factory=list, description="the largest band reached counts")
    icp_industries: list[str] = Field(default_factory=list)
    industry_points: float = 20
    icp_countries: list[str] = Field(default_factory=list)
    country_points: float = 10

    @field_validator("icp_industries")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [item.lower() for item in value]

    @field_validator("icp_countries")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [item.upper() for item in value]

    @field_validator("seniority")
    @classmethod
    def _lower_keys(cls, value: dict[str, float]) -> dict[str, float]:
        return {key.lower(): points for key, points in value.items()}


class EngagementRules(_Strict):
    """Implicit interest: what the person does, decaying with a half-life."""

    weights: dict[EngagementKind, float] = Field(
        default_factory=lambda: {
            EngagementKind.PAGE_VIEW: 1.0,
            EngagementKind.EMAIL_CLICK: 3.0,
            EngagementKind.CONTENT_DOWNLOAD: 8.0,
            EngagementKind.PRICING_PAGE: 10.0,
            EngagementKind.WEBINAR: 15.0,
            EngagementKind.DEMO_REQUEST: 50.0,
            EngagementKind.CONTACT_REQUEST: 50.0,
        }
    )
    half_life_days: float = Field(default=14, gt=0)
    max_event_weight: float = Field(
        default=100, gt=0, le=1000,
        description="the most one event's own weight may count (the API refuses more; the core caps it)",
    )
    source_points: dict[LeadSource, Annotated[float, Field(ge=0, le=1000)]] = Field(
        default_factory=dict, description="engagement credited by the submission itself, by source (0 to 1000, as an event weight)"
    )


class Qualification(_Strict):
    """When a nurtured lead becomes a marketing-qualified lead (MQL)."""

    fit_threshold: float = Field(default=40, ge=0)
    engagement_threshold: float = Field(default=30, ge=0)
    fast_track_kinds: list[EngagementKind] = Field(
        default_factory=lambda: [EngagementKind.DEMO_REQUEST, EngagementKind.CONTACT_REQUEST]
    )
    fast_track_sources: list[LeadSource] = Field(
        default_factory=lambda: [LeadSource.DEMO_REQUEST, LeadSource.CONTACT_REQUEST]
    )
    fast_track_tier: str = "hot"


class Tier(_Strict):
    """A priority tier and its SLA clocks, in business hours."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    min_score: float = Field(ge=0, description="fit + engagement needed for this tier")
    accept_within_hours: float = Field(gt=0)
    first_contact_within_hours: float = Field(gt=0)


class CadenceUnit(StrEnum):
    BUSINESS_DAY = "business_day"
    BUSINESS_HOUR = "business_hour"


class Cadence(_Strict):
    """Follow-up attempts: attempt k is due by ``schedule[k]`` units after the owner's first attempt."""

    schedule: list[float] = Field(default_factory=lambda: [0.0, 1.0, 3.0, 5.0, 8.0, 12.0], min_length=1)
    unit: CadenceUnit = CadenceUnit.BUSINESS_DAY
    disposition_within_hours: float = Field(
        default=40, gt=0, description="business hours after a connect to qualify, disqualify or recycle"
    )

    @field_validator("schedule")
    @classmethod
    def _non_decreasing(cls, value: list[float]) -> list[float]:
        if any(item < 0 for item in value):
            raise ValueError("schedule entries must be >= 0")
        if any(later < earlier for earlier, later in zip(value, value[1:])):
            raise ValueError(f"schedule must not decrease, got {value}")
        return value

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)


class Escalation(_Strict):
    """What happens on the nth SLA breach of the same owner."""

    notify_on_breach: int = Field(default=1, ge=1, description="nth breach notifies rep and manager")
    reassign_on_breach: int = Field(default=2, ge=1, description="nth breach reassigns to another rep")
    max_reassignments: int = Field(default=2, ge=0, description="then the lead goes to the team queue")


class RoutingMethod(StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"


class Segment(_Strict):
    name: str
    max_employees: int | None = Field(default=None, ge=0, description="None means no upper bound")


class Absence(_Strict):
    """Out of office from ``start`` to ``end`` inclusive, in the rep's own time zone."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Absence:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) must not be before start ({self.start})")
        return self


class Rep(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    team: str
    territories: list[str] = Field(default_factory=list, description="empty = every territory")
    segments: list[str] = Field(default_factory=list, description="empty = every segment")
    weight: float = Field(default=1, gt=0)
    capacity: int | None = Field(default=None, ge=1, description="open leads at most; default from routing")
    hours: BusinessCalendar = Field(default_factory=BusinessCalendar)
    away: bool = False
    out_of_office: list[Absence] = Field(default_factory=list)


class Team(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    manager: str = Field(description="id of the manager who gets escalations")


class Routing(_Strict):
    method: RoutingMethod = RoutingMethod.ROUND_ROBIN
    default_capacity: int = Field(default=25, ge=1)
    territories: dict[str, list[str]] = Field(
        default_factory=dict, description="territory -> ISO country codes"
    )
    segments: list[Segment] = Field(
        default_factory=lambda: [
            Segment(name="smb", max_employees=199),
            Segment(name="mid_market", max_employees=1999),
            Segment(name="enterprise"),
        ]
    )
    retry_minutes: float = Field(
        default=30,
        gt=0,
        description="a safety net only: a lead waiting in line (leadflow.waiting_line) is given a rep's slot the "
        "instant one frees; a live journey also asks the line again every retry_minutes, in case the signal "
        "that should have told it was lost (journeys started before the waiting line ask routing again instead)",
    )
    prefer_on_shift: bool = True

    @field_validator("territories")
    @classmethod
    def _upper_countries(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {name: [code.upper() for code in codes] for name, codes in value.items()}


class ReasonCodes(_Strict):
    disqualify: list[str] = Field(
        default_factory=lambda: ["no_budget", "no_authority", "no_need", "competitor", "student", "bad_data", "spam"],
        min_length=1,
    )
    recycle: list[str] = Field(
        default_factory=lambda: ["timing", "not_ready", "unresponsive", "no_disposition", "stalled"], min_length=1
    )
    reject: list[str] = Field(
        default_factory=lambda: ["not_icp", "no_intent", "bad_data", "duplicate", "wrong_territory"], min_length=1,
        description="why sales hands an MQL back to marketing (the SAL gate)",
    )


class SalGate(_Strict):
    """Sales accepts or rejects each MQL handed to it (sales-accepted lead, SAL)."""

    auto_accept_after_hours: float | None = Field(
        default=None, gt=0, le=10_000,
        description="accept an assigned lead on its owner's behalf after this many business hours without a "
        "decision (None: only the rep accepts)",
    )


class Commitments(_Strict):
    """Marketing's side of the marketing-sales SLA: MQL volume and quality it commits to.

    Sales' side is the rest of the policy (tiers' response windows, the cadence and its
    minimum attempts). The closed-loop report (``leadflow report``) holds both to account.
    """

    mql_per_week: int | None = Field(default=None, ge=1, description="MQLs marketing delivers per week, in total")
    mql_per_week_by_source: dict[LeadSource, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="MQLs per week committed by lead source")
    mql_per_week_by_segment: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="MQLs per week committed by segment (names from routing.segments)")
    min_acceptance_rate: float | None = Field(
        default=None, ge=0, le=1, description="least share of MQLs handed to sales that sales accepts (0..1)")

    @model_validator(mode="after")
    def _parts_fit_the_total(self) -> Commitments:
        for name, parts in (("mql_per_week_by_source", self.mql_per_week_by_source),
                            ("mql_per_week_by_segment", self.mql_per_week_by_segment)):
            if self.mql_per_week is not None and sum(parts.values()) > self.mql_per_week:
                raise ValueError(f"{name} adds up to {sum(parts.values())}, more than mql_per_week ({self.mql_per_week})")
        return self


class Intake(_Strict):
    """How later submissions of the same person merge into the journey."""

    custom_fields_overflow: CustomFieldsOverflow = Field(
        default=CustomFieldsOverflow.KEEP_LATEST,
        description="when the merged custom fields would exceed the 50-field cap: keep_latest (the newest "
        "submission's fields stay, the oldest others go), keep_first (fields already held stay), or refuse "
        "(the API answers 422 before anything is written)",
    )


class Rollout(_Strict):
    interrupt_running_deadlines: bool = Field(
        default=False,
        description="open journeys adopt this policy at once, even with an SLA clock running "
        "(running deadlines keep their due times); by default they wait until no SLA clock runs",
    )


class Policy(_Strict):
    """Everything the rules need, versioned."""

    version: str = Field(min_length=1, max_length=64)
    name: str = "default"
    calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    fit: FitRules = Field(default_factory=FitRules)
    engagement: EngagementRules = Field(default_factory=EngagementRules)
    qualification: Qualification = Field(default_factory=Qualification)
    tiers: list[Tier] = Field(min_length=1)
    cadence: Cadence = Field(default_factory=Cadence)
    escalation: Escalation = Field(default_factory=Escalation)
    routing: Routing = Field(default_factory=Routing)
    teams: list[Team] = Field(min_length=1)
    reps: list[Rep] = Field(min_length=1)
    reason_codes: ReasonCodes = Field(default_factory=ReasonCodes)
    commitments: Commitments = Field(default_factory=Commitments)
    sal_gate: SalGate = Field(default_factory=SalGate)
    nurture_days: float = Field(default=180, gt=0, le=36_500, description="a nurture with no MQL ends after this many days")
    sql_stall_days: float = Field(default=90, gt=0, le=36_500, description="an SQL not converted by then is recycled")
    rollout: Rollout = Field(default_factory=Rollout)
    intake: Intake = Field(default_factory=Intake)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        tier_names = [tier.name for tier in self.tiers]
        if len(set(tier_names)) != len(tier_names):
            raise ValueError(f"tier names must be unique, got {tier_names}")
        if self.qualification.fast_track_tier not in tier_names:
            raise ValueError(
                f"qualification.fast_track_tier {self.qualification.fast_track_tier!r} is not one of the tiers {tier_names}"
            )
        team_ids = {team.id for team in self.teams}
        rep_ids = [rep.id for rep in self.reps]
        if len(set(rep_ids)) != len(rep_ids):
            raise ValueError("rep ids must be unique")
        segment_names = {segment.name for segment in self.routing.segments}
        for index, rep in enumerate(self.reps):
            if rep.team not in team_ids:
                raise ValueError(f"reps[{index}] ({rep.id}): team {rep.team!r} is not one of {sorted(team_ids)}")
            unknown_territories = set(rep.territories) - set(self.routing.territories)
            if unknown_territories:
                raise ValueError(
                    f"reps[{index}] ({rep.id}): unknown territories {sorted(unknown_territories)}; "
                    f"routing.territories defines {sorted(self.routing.territories)}"
                )
            unknown_segments = set(rep.segments) - segment_names
            if unknown_segments:
                raise ValueError(
                    f"reps[{index}] ({rep.id}): unknown segments {sorted(unknown_segments)}; "
                    f"routing.segments defines {sorted(segment_names)}"
                )
        unknown_committed = set(self.commitments.mql_per_week_by_segment) - segment_names
        if unknown_committed:
            raise ValueError(
                f"commitments.mql_per_week_by_segment: unknown segments {sorted(unknown_committed)}; "
                f"routing.segments defines {sorted(segment_names)}"
            )
        if self.escalation.reassign_on_breach < self.escalation.notify_on_breach:
            raise ValueError("escalation.reassign_on_breach must not be lower than notify_on_breach")
        return self

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def rep(self, rep_id: str) -> Rep | None:
        position = roster_positions(self).get(rep_id)
        return self.reps[position] if position is not None else None

    def team(self, team_id: str) -> Team | None:
        return _index(self).teams.get(team_id)

    def manager_of(self, rep_id: str | None) -> str | None:
        rep = self.rep(rep_id) if rep_id else None
        team = self.team(rep.team) if rep else None
        return team.manager if team else None

    @property
    def managers(self) -> frozenset[str]:
        """Every team's manager."""
        return _index(self).managers


class PolicyError(ValueError):
    """A policy that does not validate; ``str()`` lists each problem with its field path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"invalid policy {source}:\n" + "\n".join(f"  - {problem}" for problem in problems))


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: dotted field path, what was wrong, and the offending value."""
    lines = []
    for item in error.errors():
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(".")
        path = path or "(top level)"
        message = item["msg"]
        if item["type"] not in ("missing", "value_error") and "input" in item:
            shown = repr(item["input"])
            message += f" (got {shown[:60]})"
        lines.append(f"{path}: {message}")
    return lines


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate a policy mapping, raising ``PolicyError`` that names every bad field."""
    if not isinstance(data, dict):
        raise PolicyError(source, [f"(top level): expected a mapping of policy fields, got {type(data).__name__}"])
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(source, describe_validation_error(error)) from None


@dataclass(frozen=True, slots=True)
class _PolicyIndex:
    positions: dict[str, int]  # each rep id's index in ``reps`` (the first, should an id repeat)
    teams: dict[str, Team]  # by id (the first, should an id repeat)
    managers: frozenset[str]


# Looked up by id, built once per policy object: a team of thousands is looked up on every
# rep action, breach and routing step. Policies are frozen, and the entry keeps its policy
# alive, so an entry can never describe another object.
_INDEXES: dict[int, tuple[Policy, _PolicyIndex]] = {}
_INDEXES_KEPT = 64


def _index(policy: Policy) -> _PolicyIndex:
    entry = _INDEXES.get(id(policy))
    if entry is None or entry[0] is not policy:
        if len(_INDEXES) >= _INDEXES_KEPT:
            _INDEXES.clear()
        positions: dict[str, int] = {}
        for index, rep in enumerate(policy.reps):
            positions.setdefault(rep.id, index)
        teams: dict[str, Team] = {}
        for team in policy.teams:
            teams.setdefault(team.id, team)
        entry = _INDEXES[id(policy)] = (policy, _PolicyIndex(positions, teams, frozenset(team.manager for team in policy.teams)))
    return entry[1]


def roster_positions(policy: Policy) -> dict[str, int]:
    """Each rep id's index in ``policy.reps`` (the first, should an id repeat)."""
    return _index(policy).positions
