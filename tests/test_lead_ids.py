"""Lead ids are keyed hashes (HMAC-SHA256) of the normalised email under ``LEADFLOW_ID_KEY``.

A list of emails cannot be matched to ids without the key; every process that derives ids
(CLI, API, journey client) reads the same key; production refuses to run without one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from leadflow.lead import lead_id_for, lead_id_from_reference, normalise_email
from runtime import id_key
from runtime.id_key import DEVELOPMENT_KEY, DEVELOPMENT_WARNING, IdKeyError
from runtime.settings import REPO_ROOT, Settings, SettingsError, current_settings

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
API_LEAD_ID = re.compile(r"^L[0-9a-f]{20}$")  # api.app.LEAD_ID


def _leadflow(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, input=stdin)


def _env(**values: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("LEADFLOW_ID_KEY", "LEADFLOW_ENV")}
    env.update({key: value for key, value in values.items() if value is not None})
    return env


def test_an_id_is_a_keyed_hash_of_the_normalised_email():
    email = "Jane.Doe+webinar@GMail.com"
    lead_id = lead_id_for(email, KEY)
    assert API_LEAD_ID.match(lead_id)
    unsalted = "L" + hashlib.sha256(normalise_email(email).encode()).hexdigest()[:20]
    assert lead_id != unsalted and lead_id != lead_id_for(email, OTHER_KEY)
    assert lead_id == lead_id_for("janedoe@gmail.com", KEY) == lead_id_from_reference(" janedoe@googlemail.com ", KEY)
    assert lead_id_from_reference(f"lead-{lead_id}", KEY) == lead_id_from_reference(lead_id, KEY) == lead_id


def test_the_shell_reads_the_key_warns_once_in_development_and_refuses_bad_keys(monkeypatch, capsys):
    def reread(name: str, value: str | None) -> None:  # a new process's settings
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
        current_settings.cache_clear()

    reread("LEADFLOW_ENV", None)
    reread("LEADFLOW_ID_KEY", None)
    monkeypatch.setattr(id_key, "_warned", False)
    assert id_key.id_key() == DEVELOPMENT_KEY
    assert capsys.readouterr().err == ""  # one-shot commands stay quiet
    id_key.require_id_key()
    id_key.require_id_key()
    assert capsys.readouterr().err == f"warning: {DEVELOPMENT_WARNING}\n"  # start-up warns, once
    reread("LEADFLOW_ID_KEY", KEY.decode())
    assert id_key.lead_id_from_reference("jane@acme.io") == lead_id_for("jane@acme.io", KEY)
    reread("LEADFLOW_ID_KEY", "short")
    with pytest.raises(IdKeyError, match=r"^LEADFLOW_ID_KEY is 5 bytes; it needs at least 32"):
        id_key.id_key()
    reread("LEADFLOW_ID_KEY", None)
    reread("LEADFLOW_ENV", "production")
    with pytest.raises(IdKeyError, match=r"^LEADFLOW_ID_KEY is required when LEADFLOW_ENV=production"):
        id_key.id_key()
    monkeypatch.setenv("LEADFLOW_ENV", "prod")
    with pytest.raises(SettingsError, match=r"^LEADFLOW_ENV: Input should be 'development' or 'production', got 'prod'"):
        Settings.from_env()


@pytest.mark.parametrize("values, message", [
    ({"LEADFLOW_ENV": "production"}, "error: LEADFLOW_ID_KEY is required when LEADFLOW_ENV=production"),
    ({"LEADFLOW_ENV": "production", "LEADFLOW_ID_KEY": "x" * 31}, "error: LEADFLOW_ID_KEY is 31 bytes; it needs at least 32"),
])
def test_the_api_in_production_will_not_start_without_a_usable_key(values, message):
    started = _leadflow("api", "--port", "9", env=_env(**values, LEADFLOW_API_TOKENS="t" * 24 + ":read"))
    assert started.returncode == 1
    assert started.stderr.startswith(message) and len(started.stderr.strip().splitlines()) == 1, started.stderr
    assert "x" * 31 not in started.stderr  # the key is never printed


@pytest.mark.devserver
async def test_the_cli_derives_ids_with_the_configured_key(dev_server, dev_client):
    from workflows.journey_client import journey_handle

    email = f"Key.Test+{uuid.uuid4().hex[:8]}@Corp.io"
    queue = f"ids-{uuid.uuid4().hex[:8]}"  # no worker: signal-with-start alone records the journey
    base = {"TEMPORAL_ADDRESS": dev_server.address, "TEMPORAL_NAMESPACE": "default", "LEADFLOW_TASK_QUEUE": queue}
    keyed = _env(**base, LEADFLOW_ID_KEY=KEY.decode(), LEADFLOW_ENV="production")
    submitted = await asyncio.to_thread(_leadflow, "lead", "submit", "-", "--json", env=keyed, stdin=json.dumps({"email": email}))
    assert submitted.returncode == 0, submitted.stderr
    lead_id = json.loads(submitted.stdout)["lead_id"]
    assert lead_id == lead_id_for(email, KEY) and submitted.stderr == ""
    development = await asyncio.to_thread(_leadflow, "lead", "submit", "-", "--json", env=_env(**base), stdin=json.dumps({"email": email}))
    assert json.loads(development.stdout)["lead_id"] == lead_id_for(email, DEVELOPMENT_KEY) != lead_id
    assert development.stderr == ""
    for other in (lead_id, lead_id_for(email, DEVELOPMENT_KEY)):
        handle = journey_handle(dev_client, other)
        assert (await handle.describe()).id == f"lead-{other}"
        await handle.terminate("test finished")
