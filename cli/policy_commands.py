"""``leadflow policy diff|rollout``: review a policy change, then ship it to new and open journeys."""

from __future__ import annotations

import asyncio
from enum import StrEnum

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cli.errors import CliError, friendly_errors
from leadflow.policy_diff import diff_policies
from runtime.settings import current_settings, load_policy_file, resolve_policy_path

policy_app = typer.Typer(help="Review and roll out policy versions.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


class RolloutScope(StrEnum):
    NEW = "new"
    ALL_OPEN = "all-open"


@policy_app.command("diff")
@friendly_errors
def diff_command(before: str = typer.Argument(..., help="the policy in use (a file or a bundled name)"),
                 after: str = typer.Argument(..., help="the candidate (a file or a bundled name)")) -> None:
    """What changes from BEFORE to AFTER: + added, - removed, ~ changed (reps and tiers by id/name)."""
    changes = diff_policies(load_policy_file(resolve_policy_path(before)), load_policy_file(resolve_policy_path(after)))
    for change in changes:
        out.print(change.line(), markup=False)
    out.print(f"{len(changes)} change(s)" if changes else "no changes")


@policy_app.command("rollout")
@friendly_errors
def rollout_command(
    file: str = typer.Argument(..., help="the policy file to roll out (or a bundled policy name)"),
    to: RolloutScope = typer.Option(
        RolloutScope.NEW, "--to",
        help="new: journeys that start from now; all-open: those too, and every open journey at its next safe point"),
    query: str = typer.Option(None, "--query", help="with --to all-open: only open journeys this visibility query also matches"),
) -> None:
    """Make FILE the policy new journeys start with; with --to all-open, offer it to open journeys too.

    Workers read the rollout from the ledger (LEADFLOW_DATABASE_URL) within seconds. An open
    journey switches when no SLA or disposition deadline is running (or at once if the
    policy sets rollout.interrupt_running_deadlines); its decision log records the switch.
    """
    from activities.ledger import Ledger

    policy = load_policy_file(resolve_policy_path(file))
    settings = current_settings()
    ledger = Ledger(settings.ledger_url)
    try:
        ledger.create_schema()
        # Compared as rules, not text: a field added with a default since it was registered
        # changes the text of the same rules.
        registered = ledger.policy(policy.version)
        if registered is not None and registered != policy:
            raise CliError(f"policy version {policy.version!r} is already registered with different rules: "
                           "give the changed policy a new version")
        ledger.register_policy(policy)
        ledger.roll_out(policy.version, str(to))
    finally:
        ledger.dispose()
    out.print(f"policy {policy.version} rolled out: new journeys start with it")
    if to is RolloutScope.ALL_OPEN:
        from workflows.journey_client import OPEN_JOURNEYS, connect, offer_policy

        async def offer() -> int:
            client = await connect(settings)
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as progress:
                task = progress.add_task("offering to open journeys", total=None)
                scope = OPEN_JOURNEYS + (f" AND ({query})" if query else "")
                return await offer_policy(client, policy.version, scope, on_signal=lambda: progress.advance(task))

        offered = asyncio.run(offer())
        out.print(f"offered to {offered} open journey(s); each adopts it at its next safe point")
