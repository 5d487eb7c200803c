"""Notifications: the log by default, a Slack-compatible webhook by URL, each sent once."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from activities.contracts import Notification, NotificationBatch
from activities.journey_activities import JourneyActivities
from activities.ledger import Ledger
from activities.notifications import Notifier
from leadflow.journey import NotificationKind


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.received, _Hook.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook
    server.shutdown()


def breach(key: str = "J1:4:0") -> Notification:
    return Notification(
        key=key, kind=NotificationKind.SLA_BREACH, recipients=["mgr-na", "rep-ana"],
        detail={"lead_id": "L0123456789abcdef0123", "tier": "hot", "clock": "first_contact"},
    )


def test_webhook_gets_slack_compatible_json_with_ids_only(webhook):
    url, hook = webhook
    Notifier(url).send(breach())
    [payload] = hook.received
    assert payload["text"] == "SLA breach (first_contact) on hot lead L0123456789abcdef0123 (for mgr-na, rep-ana)"
    assert payload["kind"] == "sla_breach" and payload["recipients"] == ["mgr-na", "rep-ana"]
    assert "@" not in json.dumps(payload)


def test_a_failing_webhook_raises_so_the_activity_retries(webhook):
    url, hook = webhook
    hook.status = 503
    with pytest.raises(httpx.HTTPStatusError):
        Notifier(url).send(breach())


def test_without_a_webhook_notifications_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="leadflow.notifications"):
        Notifier(None).send(breach())
    assert "notify mgr-na, rep-ana: SLA breach (first_contact) on hot lead L0123456789abcdef0123" in caplog.text


def test_a_retried_batch_sends_each_notification_once(webhook, tmp_path):
    url, hook = webhook
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    activities = JourneyActivities(ledger, policies=None, notifier=Notifier(url))
    batch = NotificationBatch(notifications=[breach("J1:4:0"), breach("J1:4:1")])
    assert activities.send_notifications(batch) == 2
    assert activities.send_notifications(batch) == 0  # the retry of an activity that already sent
    assert len(hook.received) == 2
    ledger.dispose()
