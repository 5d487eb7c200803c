"""What a simulation run produces: estimates with confidence intervals, and plot data.

These models are the contract between the runner, the CLI (tables and ``--json``) and the
HTML report. Metric names are stable; see ``METRIC_DESCRIPTIONS``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

METRIC_DESCRIPTIONS: dict[str, str] = {
    "sla_attainment": "share of MQLs due by the horizon that were first contacted inside their SLA",
    "sla_attainment_hot": "SLA attainment of hot leads",
    "sla_attainment_warm": "SLA attainment of warm leads",
    "sla_attainment_cold": "SLA attainment of cold leads",
    "ttfc_p50": "median time from MQL to first contact, MQLs still waiting at the horizon counted (business hours; "
    "life table pooled over replications, jackknife interval)",
    "ttfc_p90": "90th percentile time to first contact (business hours; absent when too many still wait to say)",
    "ttfc_p99": "99th percentile time to first contact (business hours; absent when too many still wait to say)",
    "ttfc_mean": "mean time to first contact up to the longest seen (restricted mean of the life table, business hours)",
    "ttfc_wall_p50": "median time to first contact (wall-clock hours)",
    "ttfc_wall_p90": "90th percentile time to first contact (wall-clock hours)",
    "ttfc_wall_p99": "99th percentile time to first contact (wall-clock hours)",
    "ttfc_wall_mean": "mean time to first contact up to the longest seen (restricted mean, wall-clock hours)",
    "uncontacted_at_horizon": "share of counted MQLs still waiting for a first contact when the horizon ends",
    "converted": "conversions in the measured period",
    "leads": "leads that arrived after the warm-up",
    "breaches": "SLA breaches in the measured period",
    "escalations": "escalations (notify, reassign, team queue)",
    "reassignments": "reassignments to another rep",
    "queue_depth_max": "most MQLs waiting for a first touch at once",
    "queue_depth_mean": "time-average of MQLs waiting for a first touch",
    "rep_utilisation": "share of rep working time spent on attempts",
    "mql": "MQL decisions in the measured period, whenever the lead arrived",
    "sql": "SQL decisions in the measured period",
    "sla_attainment_acceptance": "acceptance windows met (leads accepted before the acceptance SLA ran out)",
    "sla_attainment_follow_up": "follow-up windows met (the next attempt made before the follow-up SLA ran out)",
    "mql_to_sql": "SQLs per MQL",
    "acceptance_rate": "hand-offs to a rep that the rep accepted",
    "attempts_per_lead": "contact attempts per MQL",
    "recycled": "leads recycled to nurturing in the measured period",
    "first_contact_within_5m": "service level: MQLs first contacted within 5 minutes (wall clock; waiting MQLs count as not yet)",
    "first_contact_within_15m": "service level: MQLs first contacted within 15 minutes (wall clock; waiting MQLs count as not yet)",
    "first_contact_within_30m": "service level: MQLs first contacted within 30 minutes (wall clock; waiting MQLs count as not yet)",
    "first_contact_within_60m": "service level: MQLs first contacted within 1 hour (wall clock; waiting MQLs count as not yet)",
    "first_contact_within_240m": "service level: MQLs first contacted within 4 hours (wall clock; waiting MQLs count as not yet)",
}


SHARE_METRICS = frozenset(
    {"sla_attainment", "sla_attainment_hot", "sla_attainment_warm", "sla_attainment_cold", "rep_utilisation", "mql_to_sql",
     "acceptance_rate", "sla_attainment_acceptance", "sla_attainment_follow_up", "first_contact_within_5m",
     "first_contact_within_15m", "first_contact_within_30m", "first_contact_within_60m", "first_contact_within_240m",
     "uncontacted_at_horizon"}
)


_COUNTED_IN_PERIOD = frozenset({"breaches", "escalations", "reassignments", "mql", "sql", "recycled", "converted", "leads"})


def metric_unit(name: str) -> str:
    """What a metric's figures are in, for tables (shares print as percentages)."""
    if name.startswith("ttfc_wall_"):
        return "hours, wall clock"
    if name.startswith("ttfc_"):
        return "business hours"
    if name in _COUNTED_IN_PERIOD:
        return "count, measured period"
    if name.startswith("queue_depth"):
        return "MQLs"
    if name == "attempts_per_lead":
        return "attempts per MQL"
    if name == "mql_to_sql":
        return "SQLs per MQL"
    if name == "acceptance_rate":
        return "of hand-offs to a rep"
    return ""


class Estimate(BaseModel):
    """Mean over replications with a 95% confidence interval (Student t)."""

    mean: float
    ci95: tuple[float, float]


class Timeline(BaseModel):
    """Time series averaged over replications, in equal buckets from the start of the horizon."""

    hours: list[float] = Field(description="bucket start, hours since the start of the horizon")
    queue_depth: list[float] = Field(description="mean MQLs waiting for a first touch in the bucket")
    utilisation: list[float] = Field(description="share of rep working time busy in the bucket")
    warmup_hours: float = Field(default=0.0, description="the warm-up cut: hours simulated before the measured period")


class SteadyState(BaseModel):
    """Whether the measured period looks like a steady state: the MQLs waiting for a first
    touch neither grow nor shrink over it, and the MQL inflow neither rises nor falls (its
    second half of whole weeks against its first); Student t intervals over replications."""

    queue_growth_per_day: Estimate = Field(description="change of the queue depth after the warm-up, MQLs per day")
    mql_inflow_change: Estimate = Field(
        default_factory=lambda: Estimate(mean=0.0, ci95=(0.0, 0.0)),
        description="MQLs of the measured period's second half against its first, as a share of the first",
    )
    steady: bool = Field(description="for the queue and for the MQL inflow: the interval holds zero, or the drift is small")
    note: str


class SimulationResult(BaseModel):
    scenario: str
    replications: int
    leads_simulated: int
    wall_seconds: float
    seed: int
    metrics: dict[str, Estimate]
    distributions: dict[str, list[float]] = Field(
        default_factory=dict, description="pooled samples for plots, e.g. ttfc_business_hours, ttfc_wall_hours"
    )
    timeline: Timeline | None = None
    steady_state: SteadyState | None = None

    def json_summary(self) -> dict[str, object]:
        """The documented ``--json`` shape (plot data left out)."""
        return {
            "scenario": self.scenario,
            "replications": self.replications,
            "leads_simulated": self.leads_simulated,
            "wall_seconds": round(self.wall_seconds, 3),
            "seed": self.seed,
            "metrics": {name: estimate.model_dump(mode="json") for name, estimate in self.metrics.items()},
            "steady_state": self.steady_state.model_dump(mode="json") if self.steady_state else None,
        }


class Difference(BaseModel):
    """B minus A for one metric, paired by replication (common random numbers)."""

    a: float
    b: float
    difference: Estimate
    p_value: float = Field(default=1.0, description="paired t test of no difference, this metric alone")
    significant: bool = Field(
        description="a difference at the 5% family-wise level over every metric compared (Holm's step-down)"
    )


class ComparisonResult(BaseModel):
    a: SimulationResult
    b: SimulationResult
    differences: dict[str, Difference]
    precision: str | None = Field(default=None, description="the stopping rule when replications ran to a precision")


class CapacityPoint(BaseModel):
    headcount: int
    metric: Estimate
    meets_target: bool


class CapacityResult(BaseModel):
    scenario: str
    metric: str
    target: float
    higher_is_better: bool
    curve: list[CapacityPoint]
    smallest_meeting_target: int | None
