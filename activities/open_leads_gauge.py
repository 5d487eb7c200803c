"""The worker's gauges that are not journey events: open leads and the waiting line (from the
ledger), and the policy in use.

Every worker sets the same values from the shared ledger, so dashboards take ``max`` over
workers. A stage/team pair that empties is set to 0 rather than left at its last value.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from activities.ledger import Ledger
from activities.policy_store import PolicyStore
from leadflow.kpis import NO_TEAM, OPEN_LEADS, POLICY_INFO, WAITING_LINE, WAITING_LINE_OLDEST

log = logging.getLogger("leadflow.metrics")


class OpenLeadsGauge:
    def __init__(self, meter, ledger: Ledger, policies: PolicyStore):
        self._ledger = ledger
        self._policies = policies
        self._open = meter.create_gauge(OPEN_LEADS.name, OPEN_LEADS.help)
        self._policy = meter.create_gauge(POLICY_INFO.name, POLICY_INFO.help)
        self._waiting = meter.create_gauge(WAITING_LINE.name, WAITING_LINE.help)
        self._oldest = meter.create_gauge(WAITING_LINE_OLDEST.name, WAITING_LINE_OLDEST.help)
        self._reported: set[tuple[str, str]] = set()
        self._policy_reported: str | None = None

    def refresh(self) -> dict[tuple[str, str], int]:
        """Read the ledger and set the gauges; returns the counts by (stage, team)."""
        policy = self._policies.current
        teams = {rep.id: rep.team for rep in policy.reps}
        counts: dict[tuple[str, str], int] = {}
        for stage, owner, count in self._ledger.open_leads_by_stage_and_owner():
            key = (stage, teams.get(owner or "", NO_TEAM))
            counts[key] = counts.get(key, 0) + count
        for stage, team in self._reported - counts.keys():
            self._open.set(0, {"stage": stage, "team": team})
        for (stage, team), count in counts.items():
            self._open.set(count, {"stage": stage, "team": team})
        self._reported |= counts.keys()
        waiting, since = self._ledger.line_summary()
        self._waiting.set(waiting)
        self._oldest.set(int((datetime.now(timezone.utc) - since).total_seconds()) if since is not None else 0)
        if self._policy_reported != policy.version:
            if self._policy_reported is not None:
                self._policy.set(0, {"version": self._policy_reported})
            self._policy.set(1, {"version": policy.version})
            self._policy_reported = policy.version
        return counts

    async def run(self, every_seconds: float = 15.0) -> None:
        """Refresh until cancelled; a ledger that cannot be read is logged and retried."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as error:  # the gauge must never take the worker down
                log.warning("open-leads gauge not refreshed: %s", type(error).__name__)
            await asyncio.sleep(every_seconds)
