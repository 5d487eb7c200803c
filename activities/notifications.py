"""Where notifications go: the log (default) or a Slack-compatible webhook."""

from __future__ import annotations

import logging

import httpx

from activities.contracts import Notification

log = logging.getLogger("leadflow.notifications")

_TEMPLATES = {
    "assigned": "New {tier} lead {lead_id} assigned to you",
    "sla_breach": "SLA breach ({clock}) on {tier} lead {lead_id}",
    "reassigned": "{tier} lead {lead_id} reassigned away from {previous_owner} after repeated SLA breaches",
    "escalated": "{tier} lead {lead_id} escalated to the {team} queue",
    "unrouted": "No rep available for {tier} lead {lead_id}: {why}",
}


def render(notification: Notification) -> str:
    """Human text of a notification. It carries ids only, never the lead's personal data."""
    fields: dict[str, object] = {"tier": "", "lead_id": "", "clock": "", "previous_owner": "", "team": "", "why": ""}
    fields.update({key: "" if value is None else value for key, value in notification.detail.items()})
    return _TEMPLATES.get(str(notification.kind), str(notification.kind)).format(**fields)


class Notifier:
    """Sends a notification; raises on failure so the activity retries."""

    def __init__(self, webhook_url: str | None = None, timeout_seconds: float = 10.0):
        self.webhook_url = webhook_url
        self.timeout_seconds = timeout_seconds

    def send(self, notification: Notification) -> None:
        text = render(notification)
        recipients = ", ".join(notification.recipients)
        if not self.webhook_url:
            log.info("notify %s: %s", recipients, text)
            return
        payload = {"text": f"{text} (for {recipients})", "kind": str(notification.kind), "recipients": notification.recipients}
        response = httpx.post(self.webhook_url, json=payload, timeout=self.timeout_seconds)
        response.raise_for_status()
