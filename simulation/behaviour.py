"""Sampling what people do: durations, contact chances and outcomes.

Every draw takes the uniform it needs from the caller, so a lead's behaviour can come from
its own random stream (common random numbers across compared scenarios).
"""

from __future__ import annotations

import bisect
import math
from statistics import NormalDist

from simulation.scenario import Distribution, Likelihood, SpeedToLead

_STANDARD_NORMAL = NormalDist()


def sample(distribution: Distribution, uniform: float) -> float:
    """Inverse-CDF draw of a duration (in the distribution's own unit)."""
    uniform = min(max(uniform, 1e-12), 1 - 1e-12)
    if distribution.kind == "fixed":
        return distribution.mean
    if distribution.kind == "exponential":
        return -distribution.mean * math.log(1 - uniform)
    sigma = distribution.sigma
    mu = math.log(distribution.mean) - sigma * sigma / 2  # so that the mean is `mean`
    return math.exp(mu + sigma * _STANDARD_NORMAL.inv_cdf(uniform))


class ContactCurve:
    """Chance that an attempt connects, by wall hours since the lead became an MQL."""

    def __init__(self, base: float, curve: SpeedToLead):
        self.base = base
        self.hours = [hours for hours, _ in curve.points]
        self.logs = [math.log(multiplier) for _, multiplier in curve.points]

    def probability(self, hours_since_mql: float) -> float:
        hours, logs = self.hours, self.logs
        if hours_since_mql <= hours[0]:
            multiplier = math.exp(logs[0])
        elif hours_since_mql >= hours[-1]:
            multiplier = math.exp(logs[-1])
        else:
            right = bisect.bisect_right(hours, hours_since_mql)
            left = right - 1
            share = (hours_since_mql - hours[left]) / (hours[right] - hours[left])
            multiplier = math.exp(logs[left] + share * (logs[right] - logs[left]))
        return min(1.0, self.base * multiplier)


def likelihood(rule: Likelihood, fit: float, intent: float) -> float:
    return min(1.0, max(0.0, rule.base + rule.fit_weight * fit / 100 + rule.intent_weight * intent))


def pick(weights: dict, uniform: float):
    """The key whose cumulative (normalised) weight first exceeds ``uniform``."""
    total = 0.0
    last = None
    for key, weight in weights.items():
        total += weight
        last = key
        if uniform < total:
            return key
    return last
