"""Estimators for calibration: each returns the value, its sample size and a 95% interval.

* a rate of events (Poisson): count over exposure, exact (Garwood) interval;
* a share (binomial): the sample proportion, Wilson score interval;
* a positive duration (lognormal): maximum likelihood on the logs; the mean's interval by
  Cox's method; goodness of fit by the Kolmogorov-Smirnov statistic against the fitted law
  (its p-value is optimistic, the parameters being estimated from the same data);
* a waiting time (exponential): total time at risk over events (the MLE, right-censored
  times included), exact chi-square interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

Z95 = 1.959963984540054


@dataclass
class Fitted:
    """One fitted value: what it is, from how many observations, and how sure."""

    name: str
    value: float
    n: int
    ci95: tuple[float, float] | None
    method: str
    unit: str = ""
    goodness_of_fit: dict[str, float | str] | None = None
    warning: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "value": _round(self.value), "n": self.n,
                                  "ci95": [_round(self.ci95[0]), _round(self.ci95[1])] if self.ci95 else None,
                                  "method": self.method}
        if self.unit:
            out["unit"] = self.unit
        if self.extra:
            out.update({key: _round(value) for key, value in self.extra.items()})
        if self.goodness_of_fit:
            out["goodness_of_fit"] = {key: _round(value) if isinstance(value, float) else value
                                      for key, value in self.goodness_of_fit.items()}
        if self.warning:
            out["warning"] = self.warning
        return out


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def poisson_rate(count: int, exposure: float) -> tuple[float, tuple[float, float]]:
    """Events per unit of exposure, with the exact (Garwood) 95% interval."""
    low = stats.chi2.ppf(0.025, 2 * count) / 2 if count > 0 else 0.0
    high = stats.chi2.ppf(0.975, 2 * count + 2) / 2
    return count / exposure, (low / exposure, high / exposure)


def wilson(successes: int, trials: int) -> tuple[float, tuple[float, float]]:
    """A share with the Wilson score 95% interval."""
    if trials == 0:
        return math.nan, (0.0, 1.0)
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2)) / (1 + Z95**2 / trials)
    return p, (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class LognormalFit:
    mean: float
    sigma: float
    n: int
    ci95: tuple[float, float]
    ks_statistic: float
    ks_p_value: float


def fit_lognormal(values: list[float]) -> LognormalFit:
    """Lognormal by maximum likelihood on the logs (needs at least 2 positive values)."""
    data = np.asarray([value for value in values if value > 0], dtype=float)
    logs = np.log(data)
    n = len(logs)
    mu = float(logs.mean())
    variance = float(logs.var(ddof=1)) if n > 1 else 0.0
    sigma = math.sqrt(variance) if variance > 0 else 1e-6
    mean = math.exp(mu + variance / 2)
    half = Z95 * math.sqrt(variance / n + variance**2 / (2 * (n - 1))) if n > 1 else math.inf
    centre = mu + variance / 2
    ks = stats.kstest(data, "lognorm", args=(sigma, 0, math.exp(mu)))
    return LognormalFit(mean=mean, sigma=sigma, n=n, ci95=(math.exp(centre - half), math.exp(centre + half)),
                        ks_statistic=float(ks.statistic), ks_p_value=float(ks.pvalue))


def fit_exponential(values: list[float], censored: list[float] = ()) -> tuple[float, tuple[float, float]]:  # type: ignore[assignment]
    """Mean of an exponential (MLE) with the exact chi-square 95% interval (time-censored:
    ``censored`` are the times still running when the history ends; they add exposure, not events)."""
    n = len(values)
    total = float(sum(values)) + float(sum(censored))
    mean = total / n
    return mean, (2 * total / stats.chi2.ppf(0.975, 2 * n), 2 * total / stats.chi2.ppf(0.025, 2 * n))


def poisson_upper_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected)."""
    return float(stats.poisson.sf(observed - 1, expected))
