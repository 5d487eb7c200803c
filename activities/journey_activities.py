"""Activities of the lead journey: policy lookup, ledger writes, routing, notifications.

Ledger writes and routing are local activities (short, idempotent database work next to
the worker: cheap in history and in billable actions); notifications are ordinary
activities so a slow or failing webhook retries on its own schedule.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    AssignmentRequest,
    AssignmentResult,
    LedgerBatch,
    NotificationBatch,
    PolicyRequest,
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

    @activity.defn(name="load_policy")
    def load_policy(self, request: PolicyRequest) -> Policy:
        try:
            return self.policies.get(request.version)
        except KeyError as error:
            raise ApplicationError(str(error), type="UnknownPolicyVersion", non_retryable=True) from None

    @activity.defn(name="record_journey_step")
    def record_journey_step(self, batch: LedgerBatch) -> int:
        return self.ledger.apply(batch)

    @activity.defn(name="assign_lead")
    def assign_lead(self, request: AssignmentRequest) -> AssignmentResult:
        try:
            policy = self.policies.get(request.policy_version)
        except KeyError as error:
            raise ApplicationError(str(error), type="UnknownPolicyVersion", non_retryable=True) from None
        result = self.ledger.assign(request, policy)
        log.info(
            "routing lead=%s step=%d -> %s", request.lead_id, request.step, result.rep_id or f"nobody ({result.why_none})"
        )
        return result

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
        return [self.load_policy, self.record_journey_step, self.assign_lead, self.send_notifications]
