"""Helpers for journey tests: leads, waiting for a journey state, moving test-server time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment

from leadflow.lead import Lead
from leadflow.policy import Policy, parse_policy
from workflows.journey_client import JourneyError, show
from workflows.journey_io import LeadView

NEW_YORK = ZoneInfo("America/New_York")


def stretched(policy: Policy, factor: float, capacity: int | None = None) -> Policy:
    """``policy`` with every SLA window and cadence step ``factor`` times longer (and every
    rep's capacity ``capacity``, if given).

    The demo's windows (a few seconds) are sized for an idle machine; a test that is not
    about SLA timing stretches them, so a slow or starved machine does not breach, escalate
    and reassign leads the test means to stay put.
    """
    data = policy.model_dump(mode="json")
    for tier in data["tiers"]:
        tier["accept_within_hours"] *= factor
        tier["first_contact_within_hours"] *= factor
    data["cadence"]["schedule"] = [step * factor for step in data["cadence"]["schedule"]]
    data["cadence"]["disposition_within_hours"] *= factor
    data["version"] = f"{policy.version}-x{factor:g}"
    if capacity is not None:
        data["routing"]["default_capacity"] = capacity
        data["version"] += f"-cap{capacity}"
    return parse_policy(data)


def hot_lead(email: str, **extra) -> Lead:
    """A hand-raiser (demo request) from a US mid-market software company."""
    fields = dict(title="VP Sales", company_size=500, industry="software", country="US", source="demo_request", company="Acme")
    fields.update(extra)
    return Lead(email=email, **fields)


def warm_lead(email: str) -> Lead:
    """Good fit (75 points) from a webinar; needs engagement to become an MQL."""
    return Lead(email=email, title="VP Sales", company_size=500, industry="software", country="US", source="ebook")


async def wait_for(client, lead_id: str, check: Callable[[LeadView], bool], timeout: float = 15.0) -> LeadView:
    """Poll the journey's query (real seconds, no time skipping) until ``check`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: LeadView | None = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await show(client, lead_id)
            if check(last):
                return last
        except JourneyError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"lead {lead_id} never reached the expected state; last view: {last}")


async def skip_until(
    env: WorkflowEnvironment, client, lead_id: str, check: Callable[[LeadView], bool], step: timedelta, max_steps: int
) -> LeadView:
    """Advance test-server time in steps until the journey satisfies ``check``."""
    for _ in range(max_steps):
        view = await show(client, lead_id)
        if check(view):
            return view
        await env.sleep(step)
        await asyncio.sleep(0.05)
    view = await show(client, lead_id)
    assert check(view), f"lead {lead_id}: condition not reached after {max_steps} x {step}; view: {view}"
    return view


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    """Move test-server time forward to ``moment`` (which must be in its future)."""
    now = await env.get_current_time()
    assert moment > now, f"cannot go back in time from {now} to {moment}"
    await env.sleep(moment - now)


def next_local(now: datetime, weekday: int, at: time, zone: ZoneInfo = NEW_YORK, weeks_ahead: int = 0) -> datetime:
    """The next given weekday (0=Monday) at a local clock time, strictly after ``now``."""
    local = now.astimezone(zone)
    days = (weekday - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=days), at, tzinfo=zone)
    if candidate <= now:
        candidate += timedelta(days=7)
    return (candidate + timedelta(weeks=weeks_ahead)).astimezone(timezone.utc)


async def warm_up_until_reassigned(env: WorkflowEnvironment, client, lead_id: str) -> LeadView:
    """Engage a nurturing warm lead into an MQL, then let nobody accept it until it is reassigned."""
    from leadflow.lead import EngagementEvent, EngagementKind
    from workflows.journey_client import engage

    now = await env.get_current_time()
    for kind in (EngagementKind.PRICING_PAGE, EngagementKind.WEBINAR, EngagementKind.CONTENT_DOWNLOAD):
        await engage(client, lead_id, EngagementEvent(kind=kind, at=now))
    return await skip_until(env, client, lead_id, lambda v: v.reassignments == 1, timedelta(hours=1), 48)
