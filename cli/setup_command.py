"""``leadflow setup``: register the journeys' search attributes on any Temporal namespace."""

from __future__ import annotations

import asyncio

import typer

from cli.errors import friendly_errors
from runtime.settings import current_settings


@friendly_errors
def setup_command(as_json: bool = typer.Option(False, "--json", help="print one JSON document")) -> None:
    """Register LeadStage, LeadTier, OwnerId and SlaDueAt on the namespace in TEMPORAL_* (safe to repeat).

    Once per namespace, before the first worker or lead. On Temporal Cloud use the Cloud UI or tcld instead.
    """
    from workflows import search_attributes as sa
    from workflows.journey_client import connect, register_search_attributes

    async def run():
        return await register_search_attributes(await connect(current_settings()))

    done = asyncio.run(run())
    if as_json:
        typer.echo(done.model_dump_json())
        return

    def described(names: list[str]) -> str:
        return ", ".join(f"{name} ({sa.TYPES[name]})" for name in names)

    if done.added:
        typer.echo(f"namespace {done.namespace!r}: added {described(done.added)}")
    if done.existing:
        typer.echo(f"namespace {done.namespace!r}: already registered {described(done.existing)}")
