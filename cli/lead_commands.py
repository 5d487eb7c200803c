"""``leadflow lead submit|show|act`` and ``leadflow leads list``."""

from __future__ import annotations

import asyncio
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table

from cli.errors import CliError, friendly_errors
from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify, Recycle, Reject
from leadflow.lead import Lead, problems_without_values
from runtime.settings import current_settings

lead_app = typer.Typer(help="Submit, inspect and act on one lead.", no_args_is_help=True)
leads_app = typer.Typer(help="Search lead journeys.", no_args_is_help=True)
out = Console(highlight=False)


class ActionName(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ATTEMPT = "attempt"
    QUALIFY = "qualify"
    DISQUALIFY = "disqualify"
    RECYCLE = "recycle"
    CONVERT = "convert"


def _read_leads(source: str) -> list[Lead]:
    if source == "-":
        text = sys.stdin.read()
        name = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise CliError(f"no such file: {source}")
        text, name = path.read_text(encoding="utf-8"), source
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{name} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    items = data if isinstance(data, list) else [data]
    try:
        return TypeAdapter(list[Lead]).validate_python(items)
    except ValidationError as error:  # name the fields and rules, never the values (personal data)
        raise CliError(f"invalid lead in {name}: " + "; ".join(problems_without_values(error))) from None


async def _client():
    from workflows.journey_client import connect

    return await connect(current_settings())


@lead_app.command("submit")
@friendly_errors
def submit(
    source: str = typer.Argument(..., help="JSON file with one lead or a list of leads, or - for stdin"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Start a journey per lead (a lead already in a journey is merged into it)."""
    from workflows.journey_client import submit_lead

    leads = _read_leads(source)

    async def run() -> list[dict[str, Any]]:
        client = await _client()
        task_queue = current_settings().task_queue
        return [(await submit_lead(client, lead, task_queue)).model_dump() for lead in leads]

    results = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(results if len(results) != 1 else results[0]))
    else:
        for result in results:
            typer.echo(f"{result['lead_id']}\t{result['workflow_id']}")


@lead_app.command("show")
@friendly_errors
def show(
    lead: str = typer.Argument(..., help="lead id, workflow id or email"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Stage, owner, tier, score, deadlines, attempts and the decision log."""
    from workflows.journey_client import show as show_view

    async def run():
        return await show_view(await _client(), lead)

    view = asyncio.run(run())
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
        return
    table = Table(title=f"{view.lead_id} ({view.workflow_id})", show_header=False)
    for label, value in [
        ("stage", view.stage),
        ("tier", view.tier),
        ("owner", view.owner_id or (f"team queue {view.queued_team}" if view.queued_team else None)
         or ("waiting in line for a rep's free slot" if view.in_line else None)),
        ("score", f"{view.score} (fit {view.fit_score})"),
        ("attempts", view.attempts),
        ("breaches", view.breaches),
        ("reassignments", view.reassignments),
        ("first contact in SLA", view.first_contact_met),
        ("policy", view.policy_version),
        ("outcome", view.outcome),
    ]:
        table.add_row(label, "-" if value is None else str(value))
    for clock, due in sorted(view.deadlines.items(), key=lambda item: item[1]):
        table.add_row(f"due: {clock}", due.isoformat(timespec="seconds"))
    out.print(table)
    log = Table("seq", "at", "decision", "stage", "owner", "detail", title="decision log")
    for entry in view.log:
        detail = ", ".join(f"{key}={value}" for key, value in entry.detail.items())
        log.add_row(str(entry.seq), entry.at.isoformat(timespec="seconds"), entry.kind, entry.stage, entry.owner_id or "", detail)
    out.print(log)


@lead_app.command("act")
@friendly_errors
def act(
    lead: str = typer.Argument(..., help="lead id, workflow id or email"),
    action: ActionName = typer.Argument(..., help="what the rep does"),
    by: str = typer.Option(None, "--by", help="acting rep or manager id (default: the current owner)"),
    outcome: AttemptOutcome = typer.Option(None, "--outcome", help="attempt outcome"),
    reason: str = typer.Option(None, "--reason", help="reason code (reject, disqualify, recycle)"),
    budget: bool = typer.Option(False, "--budget", help="qualify: budget confirmed"),
    authority: bool = typer.Option(False, "--authority", help="qualify: talking to the decision maker"),
    need: str = typer.Option(None, "--need", help="qualify: the need in a few words"),
    timeline_days: int = typer.Option(None, "--timeline-days", min=0, help="qualify: days until purchase"),
    opportunity: str = typer.Option(None, "--opportunity", help="convert: opportunity id"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Accept or reject (back to marketing), log an attempt, qualify, disqualify, recycle or convert."""
    from workflows.journey_client import act as act_on
    from workflows.journey_client import show as show_view

    if action is ActionName.ATTEMPT and outcome is None:
        raise CliError("attempt needs --outcome (no_answer, voicemail, email_sent or connected)")

    async def run():
        client = await _client()
        actor = by
        if actor is None:
            actor = (await show_view(client, lead)).owner_id
            if actor is None:
                raise CliError("the lead has no owner: say who acts with --by")
        request = {
            ActionName.ACCEPT: lambda: Accept(by=actor),
            ActionName.REJECT: lambda: Reject(by=actor, reason=reason),
            ActionName.ATTEMPT: lambda: LogAttempt(by=actor, outcome=outcome),
            ActionName.QUALIFY: lambda: Qualify(
                by=actor, budget=budget, authority=authority, need=need, timeline_days=timeline_days
            ),
            ActionName.DISQUALIFY: lambda: Disqualify(by=actor, reason=reason),
            ActionName.RECYCLE: lambda: Recycle(by=actor, reason=reason),
            ActionName.CONVERT: lambda: Convert(by=actor, opportunity_id=opportunity),
        }[action]()
        return await act_on(client, lead, request)

    view = asyncio.run(run())
    if as_json:
        typer.echo(view.model_dump_json())
    else:
        typer.echo(f"{view.lead_id}: {view.stage} (owner {view.owner_id or '-'})")


@leads_app.command("list")
@friendly_errors
def list_leads(
    stage: str = typer.Option(None, "--stage", help="e.g. MQL, ASSIGNED, WORKING"),
    owner: str = typer.Option(None, "--owner", help="rep id"),
    query: str = typer.Option(None, "--query", help="extra visibility query clause"),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Journeys by stage and owner (a visibility query on LeadStage/OwnerId)."""
    from workflows.journey_client import list_leads as search

    async def run():
        return await search(await _client(), stage=stage, owner=owner, query=query, limit=limit)

    found = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps([item.model_dump(mode="json") for item in found]))
        return
    table = Table("lead", "status", "stage", "tier", "owner", "SLA due")
    for item in found:
        due = item.sla_due_at.isoformat(timespec="seconds") if item.sla_due_at else ""
        table.add_row(item.lead_id, item.status, item.stage or "", item.tier or "", item.owner_id or "", due)
    out.print(table)
    out.print(f"{len(found)} journey(s)")
