"""Activities of the lead journey: policy lookup, ledger writes, routing, the waiting line,
notifications.

Ledger writes, routing and the waiting line are short, idempotent database work; the
workflow runs them as activities (local ones in journeys started before the
``replay-stable-clock`` patch). Notifications retry on their own schedule, so a slow or
failing webhook never holds a journey up.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    AssignmentRequest,
    AssignmentResult,
    JoinLineRequest,
    LedgerBatch,
    LineServed,
    NotificationBatch,
    PolicyRequest,
    SlotReturn,
    StepRecorded,
)
from activities.ledger import Ledger
from activities.notifications import Notifier
from activities.policy_store import PolicyStore
from leadflow.policy import Policy

log = logging.getLogger("leadflow.activities")


class JourneyActivities:
    """Bound to one worker's ledger, policy store and notifier."""

    def __init__(self, ledger: Ledger, policies: PolicyStore, notifier: Notifier):
        self.ledger = ledger
        self.policies = policies
        self.notifier = notifier

    def _policy(self, version: str | None) -> Policy:
        try:
            return self.policies.get(version)
        except KeyError as error:
            raise ApplicationError(str(error), type="UnknownPolicyVersion", non_retryable=True) from None

    @activity.defn(name="load_policy")
    def load_policy(self, request: PolicyRequest) -> Policy:
        return self._policy(request.version)

    @activity.defn(name="record_journey_step")
    def record_journey_step(self, batch: LedgerBatch) -> int | StepRecorded:
        """The step's new events as a count; with the leads in line its freed slots went to,
        when there are any (the journey tells them)."""
        frees_a_slot = bool(batch.releases or batch.left_line)
        recorded = self.ledger.apply(batch, self._policy(batch.policy_version) if frees_a_slot else None)
        _log_served(recorded.served)
        return recorded if recorded.served else recorded.written

    @activity.defn(name="assign_lead")
    def assign_lead(self, request: AssignmentRequest) -> AssignmentResult:
        result = self.ledger.assign(request, self._policy(request.policy_version))
        log.info(
            "routing lead=%s step=%d -> %s", request.lead_id, request.step, result.rep_id or f"nobody ({result.why_none})"
        )
        _log_served(result.served)
        return result

    @activity.defn(name="join_waiting_line")
    def join_waiting_line(self, request: JoinLineRequest) -> AssignmentResult:
        """Put the lead in the waiting line, or give it a slot that freed meanwhile."""
        result = self.ledger.join_line(request, self._policy(request.policy_version))
        log.info("waiting line lead=%s step=%d -> %s", request.lead_id, request.entry.step, result.rep_id or "waits")
        return result

    @activity.defn(name="return_line_slot")
    def return_line_slot(self, returned: SlotReturn) -> list[LineServed]:
        """Free a slot served to a journey that is gone, and serve the line from it."""
        served = self.ledger.return_slot(returned, self._policy(returned.policy_version))
        _log_served(served)
        return served

    @activity.defn(name="send_notifications")
    def send_notifications(self, batch: NotificationBatch) -> int:
        sent = 0
        for notification in batch.notifications:
            if self.ledger.notification_sent(notification.key):
                continue
            self.notifier.send(notification)
            self.ledger.mark_notification_sent(notification.key, str(notification.kind))
            sent += 1
        return sent

    @property
    def all(self) -> list:
        return [self.load_policy, self.record_journey_step, self.assign_lead, self.join_waiting_line,
                self.return_line_slot, self.send_notifications]


def _log_served(served: list[LineServed]) -> None:
    for item in served:
        log.info("waiting line journey=%s step=%d served by %s", item.journey_id, item.assigned.step, item.assigned.rep_id)
