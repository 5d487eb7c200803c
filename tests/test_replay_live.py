"""Replay against real histories on the dev server: the Temporal CLI's export, by id, by query."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from leadflow.journey import Stage
from runtime.settings import REPO_ROOT
from tests.journey_helpers import wait_for
from tests.test_dev_server import settings_for, unique
from worker import running_worker
from workflows.dev_server import temporal_cli_path
from workflows.journey_client import journey_handle

pytestmark = pytest.mark.devserver


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def _leadflow(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, input=stdin)


async def test_history_exported_by_the_temporal_cli_replays(dev_server, dev_client, demo_policy, tmp_path):
    queue = unique("replay")
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "TEMPORAL_NAMESPACE": "default", "LEADFLOW_TASK_QUEUE": queue}
    async with running_worker(dev_client, settings_for(queue, tmp_path), policy=demo_policy):
        # A journey driven entirely through `leadflow lead ...`.
        lead = {"email": f"{queue}@corp.io", "title": "VP Sales", "company_size": 500, "country": "US", "source": "demo_request"}
        submitted = await asyncio.to_thread(_leadflow, "lead", "submit", "-", "--json", env=env, stdin=json.dumps(lead))
        assert submitted.returncode == 0, submitted.stderr
        ids = json.loads(submitted.stdout)
        await wait_for(dev_client, ids["lead_id"], lambda v: v.stage is Stage.ASSIGNED)
        for action in (["accept"], ["attempt", "--outcome", "connected"], ["qualify", "--budget"]):
            acted = await asyncio.to_thread(_leadflow, "lead", "act", ids["lead_id"], *action, env=env)
            assert acted.returncode == 0, acted.stderr

        # Exported by the Temporal CLI...
        exported = await asyncio.to_thread(
            _run, [str(temporal_cli_path()), "workflow", "show", "--workflow-id", ids["workflow_id"], "--output", "json",
                   "--address", dev_server.address, "--namespace", "default"], env)
        assert exported.returncode == 0, exported.stderr
        history_file = tmp_path / "from-temporal-cli.json"
        history_file.write_text(exported.stdout)
        # ...replays with leadflow replay.
        replayed = await asyncio.to_thread(_leadflow, "replay", "--history", str(history_file), env=env)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert replayed.stdout.strip().splitlines()[-1] == "1 replayed: 1 ok, 0 failed"
        assert ids["workflow_id"] in replayed.stdout

        # Straight from the server, by workflow id and by visibility query.
        by_id = await asyncio.to_thread(_leadflow, "replay", "--workflow-id", ids["workflow_id"], env=env)
        assert by_id.returncode == 0 and "1 ok, 0 failed" in by_id.stdout, by_id.stdout + by_id.stderr
        query = f"TaskQueue = '{queue}'"
        runs = len([execution async for execution in dev_client.list_workflows(query)])  # 60-event runs: 1 or 2
        by_query = await asyncio.to_thread(_leadflow, "replay", "--query", query, env=env)
        assert by_query.returncode == 0 and f"{runs} replayed: {runs} ok, 0 failed" in by_query.stdout, \
            by_query.stdout + by_query.stderr

        # leadflow history export writes the same format, which replays too.
        out = tmp_path / "exported"
        export = await asyncio.to_thread(_leadflow, "history", "export", "--query", query, "--out", str(out), env=env)
        assert export.returncode == 0 and f"{runs} histories written" in export.stdout, export.stderr
        written = list(out.glob("*.json"))
        assert len(written) == runs and all(path.name.startswith(ids["workflow_id"] + "__") for path in written)
        first_events = {json.loads(path.read_text())["events"][0]["eventType"] for path in written}
        assert json.loads(exported.stdout)["events"][0]["eventType"] in first_events
        again = await asyncio.to_thread(_leadflow, "replay", "--history", str(out), env=env)
        assert again.returncode == 0, again.stdout + again.stderr

        bad_query = await asyncio.to_thread(_leadflow, "replay", "--query", "NoSuchAttribute = 'x'", env=env)
        assert bad_query.returncode == 1 and "refused" in bad_query.stderr and "Traceback" not in bad_query.stderr
        await journey_handle(dev_client, ids["lead_id"]).terminate("test finished")


