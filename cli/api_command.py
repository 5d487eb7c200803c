"""``leadflow api``: serve the HTTP intake API."""

from __future__ import annotations

import logging

import typer

from cli.errors import CliError, friendly_errors


@friendly_errors
def api_command(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    cors_origin: list[str] = typer.Option(
        None, "--cors-origin",
        help="browser origin allowed to call the codec routes, e.g. the Temporal Web UI "
        "(repeatable; default: $LEADFLOW_CODEC_CORS_ORIGINS)"),
) -> None:
    """Serve the API (tokens from LEADFLOW_API_TOKENS, Temporal from TEMPORAL_ADDRESS, ...)."""
    import uvicorn

    from api.app import create_app
    from api.auth import TokenConfigError, Tokens
    from api.connections import IDLE_SECONDS, BoundedH11Protocol
    from runtime.codec import CodecKeyError
    from runtime.settings import current_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = current_settings()
    try:
        tokens = Tokens.configured(settings)
        app = create_app(settings, tokens=tokens, cors_origins=cors_origin or settings.cors_origins)
    except (TokenConfigError, CodecKeyError) as error:
        raise CliError(str(error)) from None
    if not tokens.scopes_by_digest:
        logging.getLogger("leadflow.api").warning("no LEADFLOW_API_TOKENS configured: every request will be refused (401)")
    # No access log: the API logs what matters itself (URLs carry lead ids, never emails).
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, http=BoundedH11Protocol,
                timeout_keep_alive=int(IDLE_SECONDS))
