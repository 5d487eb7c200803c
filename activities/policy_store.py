"""Policies a worker can serve: the one it was started with, plus every version in the ledger."""

from __future__ import annotations

import threading

from activities.ledger import Ledger
from leadflow.policy import Policy


class PolicyStore:
    """Current policy for new journeys; older versions for journeys that started under them."""

    def __init__(self, current: Policy, ledger: Ledger):
        self._ledger = ledger
        self._lock = threading.Lock()
        self._versions: dict[str, Policy] = {}
        self.set_current(current)

    @property
    def current(self) -> Policy:
        return self._current

    def set_current(self, policy: Policy) -> None:
        self._ledger.register_policy(policy)
        with self._lock:
            self._versions[policy.version] = policy
            self._current = policy

    def get(self, version: str | None) -> Policy:
        """The policy of ``version`` (the current one when None); KeyError if unknown."""
        if version is None:
            return self._current
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
