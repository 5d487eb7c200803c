"""Policies a worker can serve: the one new journeys start with, plus every version in the ledger.

New journeys start with the latest policy rolled out through the ledger
(``leadflow policy rollout``), or, before any rollout, with the policy file the worker was
started with. Every worker sharing the ledger sees a rollout within ``ROLLOUT_CHECK_SECONDS``.
"""

from __future__ import annotations

import threading
import time

from activities.ledger import Ledger
from leadflow.policy import Policy

ROLLOUT_CHECK_SECONDS = 5.0


class PolicyStore:
    """Current policy for new journeys; older versions for journeys that started under them."""

    _current: Policy

    def __init__(self, current: Policy, ledger: Ledger, clock=time.monotonic):
        self._ledger = ledger
        self._lock = threading.Lock()
        self._versions: dict[str, Policy] = {}
        self._clock = clock
        self._checked_at = float("-inf")
        self.set_current(current)

    @property
    def current(self) -> Policy:
        """The rolled-out policy (checked at most every few seconds), else the worker's own."""
        now = self._clock()
        if now - self._checked_at >= ROLLOUT_CHECK_SECONDS:
            self._checked_at = now
            version = self._ledger.rolled_out_version()
            if version is not None and version != self._current.version:
                self._current = self.get(version)
        return self._current

    def set_current(self, policy: Policy) -> None:
        self._ledger.register_policy(policy)
        with self._lock:
            self._versions[policy.version] = policy
            self._current = policy

    def get(self, version: str | None) -> Policy:
        """The policy of ``version`` (the current one when None); KeyError if unknown."""
        if version is None:
            return self.current
        with self._lock:
            cached = self._versions.get(version)
        if cached is not None:
            return cached
        stored = self._ledger.policy(version)
        if stored is None:
            raise KeyError(f"policy version {version!r} is not known to this worker or its ledger")
        with self._lock:
            self._versions[version] = stored
        return stored
