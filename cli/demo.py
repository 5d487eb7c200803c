"""``leadflow demo``: the embedded stack driving synthetic leads to outcomes.

Starts a Temporal dev server (SQLite in a temporary folder) and a worker with the demo
policy (the default rules with time compressed to seconds), submits Faker leads with
engagement, and plays scripted reps: fast ones, slow ones that breach, and one who never
answers, so breaches, escalations and reassignments happen on real durable timers.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.errors import friendly_errors
from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify, RepAction
from leadflow.decision_details import AttemptDetail
from leadflow.journey import DecisionKind, Stage
from leadflow.lead import EngagementEvent, EngagementKind, Lead, LeadSource

if TYPE_CHECKING:
    from workflows.journey_io import LeadView
from runtime.id_key import lead_id_of
from runtime.settings import DEMO_POLICY, Settings, load_policy_file

console = Console(highlight=False)
progress_console = Console(stderr=True)  # keeps stdout clean for --json

REP_DELAY_SECONDS = {"fast": 0.5, "slow": 7.0}
REP_STYLE = {"rep-ana": "fast", "rep-ben": "fast", "rep-cara": "slow", "rep-elif": "fast", "rep-farid": "absent", "rep-hana": "slow"}
DONE_STAGES = {Stage.CONVERTED, Stage.DISQUALIFIED}


@dataclass
class ScriptedLead:
    lead: Lead
    engagement: list[EngagementKind]
    answers_on_attempt: int | None  # None: never picks up
    converts: bool
    outcome: str | None = None
    actions: list[str] = field(default_factory=list)


def synthetic_leads(count: int, seed: int) -> list[ScriptedLead]:
    """Faker people with a source mix, engagement and scripted behaviour (no real data)."""
    from faker import Faker

    fake = Faker()
    Faker.seed(seed)
    rng = random.Random(seed)
    titles = ["VP Sales", "Head of Operations", "Director of IT", "Marketing Manager", "CEO", "Analyst", "CTO"]
    industries = ["software", "fintech", "saas", "healthcare", "manufacturing", "retail", "education"]
    countries = ["US", "US", "CA", "GB", "DE", "FR"]
    people = []
    for index in range(count):
        hand_raiser = index % 3 == 0
        source = rng.choice([LeadSource.DEMO_REQUEST, LeadSource.CONTACT_REQUEST]) if hand_raiser else rng.choice(
            [LeadSource.WEBINAR, LeadSource.EBOOK, LeadSource.PAID_SEARCH, LeadSource.ORGANIC, LeadSource.TRADE_SHOW]
        )
        lead = Lead(
            email=f"demo{index}.{fake.user_name()}@{fake.domain_name()}",
            first_name=fake.first_name(),
            last_name=fake.last_name(),
            phone=fake.phone_number()[:50],
            company=fake.company(),
            title=rng.choice(titles),
            company_size=rng.choice([20, 120, 450, 1500, 5000]),
            industry=rng.choice(industries),
            country=rng.choice(countries),
            source=source,
        )
        engagement = [] if hand_raiser else [EngagementKind.PRICING_PAGE, EngagementKind.WEBINAR, EngagementKind.CONTENT_DOWNLOAD]
        answers = rng.choice([1, 1, 2, 3, None])
        people.append(ScriptedLead(lead=lead, engagement=engagement, answers_on_attempt=answers, converts=rng.random() < 0.6))
    return people


async def _drive(client, person: ScriptedLead, task_queue: str, deadline: float) -> None:
    """Submit one lead, then act as its reps would until it reaches an outcome."""
    from workflows.journey_client import JourneyError, act, engage, show, submit_lead

    submitted = await submit_lead(client, person.lead, task_queue)
    lead_id = submitted.lead_id
    for kind in person.engagement:
        await engage(client, lead_id, EngagementEvent(kind=kind, at=datetime.now(timezone.utc)))
    seen_owner, owner_since, attempts = None, 0.0, 0
    while time.monotonic() < deadline:
        await asyncio.sleep(0.4)
        try:
            view = await show(client, lead_id)
        except JourneyError:
            continue
        if view.stage in DONE_STAGES or (view.stage is Stage.NURTURING and view.log and view.log[-1].kind == "recycled"):
            person.outcome = "recycled" if view.stage is Stage.NURTURING else view.stage.lower()
            return
        if view.stage is Stage.NURTURING:
            continue
        owner = view.owner_id
        if owner != seen_owner:
            seen_owner, owner_since, attempts = owner, time.monotonic(), 0
        style = REP_STYLE.get(owner or "", "absent")
        if owner is None or style == "absent" or time.monotonic() - owner_since < REP_DELAY_SECONDS[style]:
            continue
        action, attempts = next_rep_action(view, person, owner, attempts)
        if isinstance(action, LogAttempt):
            owner_since = time.monotonic() - REP_DELAY_SECONDS[style] + 2.0  # next attempt per cadence
        try:
            if action is not None:
                await act(client, lead_id, action)
        except JourneyError:
            continue  # the journey moved on (e.g. reassigned) between our look and our action
    person.outcome = "unfinished"


def next_rep_action(view, person: ScriptedLead, owner: str, attempts: int) -> tuple[RepAction | None, int]:
    """What the owner does next to this lead by its script, and the attempts logged so far."""
    if view.stage is Stage.ASSIGNED:
        return Accept(by=owner), attempts
    if view.stage in (Stage.ACCEPTED, Stage.WORKING) and not _connected(view):
        attempts += 1
        connected = person.answers_on_attempt is not None and attempts >= person.answers_on_attempt
        return LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED if connected else AttemptOutcome.NO_ANSWER), attempts
    if view.stage is Stage.WORKING and person.converts:
        return Qualify(by=owner, budget=True, authority=True, need="pipeline visibility"), attempts
    if view.stage is Stage.WORKING:
        return Disqualify(by=owner, reason="no_budget"), attempts
    if view.stage is Stage.SQL:
        return Convert(by=owner), attempts
    return None, attempts


def _connected(view: LeadView) -> bool:
    return any(entry.kind is DecisionKind.ATTEMPT and AttemptDetail.of(entry).outcome is AttemptOutcome.CONNECTED
               for entry in view.log)


async def run_demo(count: int, seed: int, time_limit: float, data_dir: Path) -> dict[str, Any]:
    from worker import running_worker
    from workflows.dev_server import DevServer, free_port
    from workflows.journey_client import connect, show

    policy = load_policy_file(DEMO_POLICY)
    server = DevServer(data_dir, port=free_port(), ui_port=None, log_path=data_dir / "temporal.log")
    server.start()
    try:
        settings = Settings(task_queue="leadflow-demo", data_dir=data_dir, policy_path=DEMO_POLICY)
        client = await connect(settings, target_host=server.address)
        people = synthetic_leads(count, seed)
        async with running_worker(client, settings, policy=policy) as parts:
            # The demo's policy is the one its ledger's journeys follow: `leadflow report` on
            # this ledger holds them to its commitments and cadence.
            parts.ledger.register_policy(policy)
            parts.ledger.roll_out(policy.version, "new")
            deadline = time.monotonic() + time_limit
            with Progress(
                TextColumn("[bold]driving journeys"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=progress_console
            ) as progress:
                task = progress.add_task("journeys", total=len(people))

                async def drive_one(person: ScriptedLead) -> None:
                    await _drive(client, person, settings.task_queue, deadline)
                    progress.advance(task)

                await asyncio.gather(*(drive_one(person) for person in people))
            views = [await show(client, lead_id_of(person.lead)) for person in people]
            ledger_events = [parts.ledger.events(lead_id_of(person.lead)) for person in people]
    finally:
        server.stop()
    return _summarise(people, views, ledger_events)


def _summarise(people, views, ledger_events) -> dict[str, Any]:
    outcomes = Counter(person.outcome for person in people)
    stages = Counter(str(view.stage) for view in views)
    by_tier: dict[str, Counter] = {}
    ttfc: list[float] = []
    escalations = reassignments = 0
    for events in ledger_events:
        tier = next((event["tier"] for event in events if event["kind"] == "mql"), None) or "none"
        for event in events:
            if event["kind"] == "first_contact":
                by_tier.setdefault(tier, Counter())["met" if event["detail"].get("met") else "breached"] += 1
                ttfc.append(float(event["detail"]["wall_seconds"]))
            elif event["kind"] == "escalated":
                escalations += 1
            elif event["kind"] == "reassigned":
                reassignments += 1
        if not any(event["kind"] == "first_contact" for event in events) and any(event["kind"] == "mql" for event in events):
            by_tier.setdefault(tier, Counter())["never contacted"] += 1
    return {
        "leads": len(people),
        "outcomes": dict(outcomes),
        "stages": dict(stages),
        "sla_by_tier": {tier: dict(counts) for tier, counts in sorted(by_tier.items())},
        "escalations": escalations,
        "reassignments": reassignments,
        "median_ttfc_seconds": round(statistics.median(ttfc), 1) if ttfc else None,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    stages = Table("outcome", "leads", title="Where the journeys ended")
    for outcome, count in sorted(summary["outcomes"].items()):
        stages.add_row(str(outcome), str(count))
    console.print(stages)
    sla = Table("tier", "first contact in SLA", "breached", "never contacted", title="First-contact SLA by tier")
    for tier, counts in summary["sla_by_tier"].items():
        sla.add_row(tier, str(counts.get("met", 0)), str(counts.get("breached", 0)), str(counts.get("never contacted", 0)))
    console.print(sla)
    console.print(
        f"escalations: {summary['escalations']}   reassignments: {summary['reassignments']}   "
        f"median time to first contact: {summary['median_ttfc_seconds']} s (demo policy: SLA windows of seconds)"
    )


@friendly_errors
def demo_command(
    leads: int = typer.Option(12, "--leads", "-n", min=1, max=500, help="how many synthetic leads"),
    seed: int = typer.Option(7, "--seed", help="random seed for the synthetic population"),
    time_limit: float = typer.Option(100.0, "--time-limit", help="seconds before giving up on unfinished journeys"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log what the worker does (to stderr)"),
    data_dir: Path = typer.Option(
        None, "--data-dir",
        help="keep the demo's ledger and Temporal files here (then: LEADFLOW_DATA_DIR=DIR leadflow report); "
        "default: a temporary folder, removed afterwards"),
) -> None:
    """Run the embedded stack with N synthetic leads and scripted reps; print what happened."""
    import json
    import logging

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        summary = asyncio.run(run_demo(leads, seed, time_limit, data_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="leadflow-demo-") as folder:
            summary = asyncio.run(run_demo(leads, seed, time_limit, Path(folder)))
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_summary(summary)
    unfinished = summary["outcomes"].get("unfinished", 0)
    if unfinished:
        raise typer.Exit(1)
