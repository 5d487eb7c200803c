"""The deployment's lead-id key (``LEADFLOW_ID_KEY``) and the shell's email -> lead id.

A lead id is an HMAC of the normalised email under this key (``leadflow.lead.lead_id_for``),
so a list of emails cannot be matched to ids without it. Every process that turns an email
into an id (API, CLI, demo, journey client) reads the key here, so all of them agree.

The key comes from the process's settings (``runtime.settings``).
``LEADFLOW_ENV=production`` makes the key mandatory: a process without it stops with one
line instead of deriving ids no other process would derive. Otherwise (development, tests,
``leadflow dev`` and ``leadflow demo``) a fixed development key is used; the long-running
processes (worker, API, ``leadflow dev``) say so in one warning line on stderr when they
start, one-shot commands stay quiet. The key itself is never logged.
"""

from __future__ import annotations

import sys

from leadflow.lead import Lead, lead_id_for
from leadflow.lead import lead_id_from_reference as _from_reference
from runtime.settings import Environment, Settings, SettingsError, current_settings, env_var

ID_KEY_VAR = env_var("id_key")
ENV_VAR = env_var("env")
MIN_KEY_BYTES = 32
DEVELOPMENT_KEY = b"leadflow development id key - lead ids are NOT private"
DEVELOPMENT_WARNING = f"{ID_KEY_VAR} not set: using the development key; lead ids are not private"

_warned = False


class IdKeyError(SettingsError):
    """``LEADFLOW_ID_KEY`` set to something that cannot work, or missing in production."""


def id_key(settings: Settings | None = None) -> bytes:
    """The configured key; the development key when unset outside production."""
    settings = settings or current_settings()
    if settings.id_key is not None:
        key = settings.id_key.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise IdKeyError(
                f"{ID_KEY_VAR} is {len(key)} bytes; it needs at least {MIN_KEY_BYTES} (e.g. `openssl rand -hex 32`)"
            )
        return key
    if settings.env is Environment.PRODUCTION:
        raise IdKeyError(
            f"{ID_KEY_VAR} is required when {ENV_VAR}=production: set it to a secret of at least "
            f"{MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`), the same in every process"
        )
    return DEVELOPMENT_KEY


def require_id_key(settings: Settings | None = None) -> None:
    """Check at start-up (API, worker, dev) that ids can be derived; ``IdKeyError`` says why not.

    Warns once per process, on stderr, when the development key is in use.
    """
    global _warned
    if id_key(settings) == DEVELOPMENT_KEY and not _warned:
        _warned = True
        print(f"warning: {DEVELOPMENT_WARNING}", file=sys.stderr, flush=True)


def lead_id_of(lead: Lead) -> str:
    """The lead id of a submitted lead under the deployment's key."""
    return lead_id_for(lead.email, id_key())


def lead_id_from_reference(reference: str) -> str:
    """A lead id, workflow id or email (hashed under the deployment's key) as a lead id."""
    return _from_reference(reference, id_key())
