"""Closed-form M/M/c (Erlang C) results: the analytic anchor the simulator is checked against.

Rates are per unit of time (any unit, used consistently); waits come out in the same unit.
"""

from __future__ import annotations

import math

__all__ = ["erlang_c", "mean_wait", "service_level", "utilisation"]


def _check_inputs(servers: int, arrival_rate: float, service_rate: float) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"servers must be a whole number >= 1, got {servers!r}")
    for name, rate in (("arrival_rate", arrival_rate), ("service_rate", service_rate)):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ValueError(f"{name} must be a number, got {rate!r}")
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {rate!r}")


def utilisation(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Server utilisation rho = lambda / (c * mu); may be >= 1 for an overloaded queue."""
    _check_inputs(servers, arrival_rate, service_rate)
    return arrival_rate / (servers * service_rate)


def _check_stable(servers: int, arrival_rate: float, service_rate: float) -> float:
    rho = utilisation(servers, arrival_rate, service_rate)
    if rho >= 1:
        raise ValueError(
            f"M/M/c queue is unstable: utilisation lambda/(c*mu) = {arrival_rate}/({servers}*{service_rate})"
            f" = {rho:.4g} >= 1, so the queue grows without bound and waits have no steady state"
        )
    return rho


def erlang_c(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Probability that an arriving customer has to wait (Erlang C) in a stable M/M/c queue.

    Computed from the Erlang B recursion B(k) = a*B(k-1) / (k + a*B(k-1)), a = lambda/mu,
    which never forms a^c or c! and so stays accurate for hundreds or thousands of servers.
    Raises ValueError for invalid inputs or utilisation >= 1.
    """
    rho = _check_stable(servers, arrival_rate, service_rate)
    offered = arrival_rate / service_rate
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    return blocking / (1.0 - rho * (1.0 - blocking))


def mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in queue before service, Wq = C / (c*mu - lambda). Raises like ``erlang_c``."""
    return erlang_c(servers, arrival_rate, service_rate) / (servers * service_rate - arrival_rate)


def service_level(servers: int, arrival_rate: float, service_rate: float, within: float) -> float:
    """P(W <= t): the share of customers served within ``within`` of arriving, under
    first-come-first-served, 1 - C * exp(-(c*mu - lambda) * t). Raises like ``erlang_c``."""
    if within < 0:
        raise ValueError(f"within must be >= 0, got {within!r}")
    waited = erlang_c(servers, arrival_rate, service_rate)
    return 1.0 - waited * math.exp(-(servers * service_rate - arrival_rate) * within)
