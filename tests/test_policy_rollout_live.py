"""``leadflow policy rollout --to all-open`` on the dev server: new leads and open journeys switch."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import yaml

from activities.policy_store import ROLLOUT_CHECK_SECONDS
from leadflow.actions import Accept, AttemptOutcome, LogAttempt, Qualify
from leadflow.journey import Stage
from runtime.settings import DEMO_POLICY, REPO_ROOT
from tests.journey_helpers import hot_lead, wait_for, warm_lead
from tests.test_dev_server import settings_for, unique
from worker import running_worker
from workflows.journey_client import act, journey_handle, submit_lead

pytestmark = pytest.mark.devserver


async def test_rollout_to_new_and_open_journeys(dev_server, dev_client, demo_policy, tmp_path):
    queue = unique("rollout")
    newer = yaml.safe_load(DEMO_POLICY.read_text())
    newer["version"] = f"{demo_policy.version}-next"
    (tmp_path / "next.yaml").write_text(yaml.safe_dump(newer))
    settings = settings_for(queue, tmp_path)
    async with running_worker(dev_client, settings, policy=demo_policy):
        nurturing = await submit_lead(dev_client, warm_lead(f"nurture-{queue}@corp.io"), queue)
        await wait_for(dev_client, nurturing.lead_id, lambda v: v.stage is Stage.NURTURING)
        busy = await submit_lead(dev_client, hot_lead(f"busy-{queue}@corp.io"), queue)
        owner = (await wait_for(dev_client, busy.lead_id, lambda v: v.stage is Stage.ASSIGNED)).owner_id

        env = {**os.environ, "TEMPORAL_ADDRESS": dev_server.address, "LEADFLOW_DATABASE_URL": settings.ledger_url}
        command = [sys.executable, "-m", "cli.main", "policy", "rollout", str(tmp_path / "next.yaml"),
                   "--to", "all-open", "--query", f"TaskQueue = '{queue}'"]
        done = await asyncio.to_thread(subprocess.run, command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "offered to 2 open journey(s)" in done.stdout

        # The nurturing journey switches at once, and says so in its decision log.
        view = await wait_for(dev_client, nurturing.lead_id, lambda v: v.policy_version == newer["version"])
        adopted = [entry for entry in view.log if entry.kind == "policy_adopted"]
        assert adopted and adopted[-1].detail == {"previous_version": demo_policy.version, "version": newer["version"]}
        # The assigned one keeps its rules while its SLA clocks run, and switches once they stop.
        await asyncio.sleep(1)
        assert (await wait_for(dev_client, busy.lead_id, lambda v: True)).policy_version == demo_policy.version
        await act(dev_client, busy.lead_id, Accept(by=owner))
        await act(dev_client, busy.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        view = await act(dev_client, busy.lead_id, Qualify(by=owner, budget=True))
        assert view.stage is Stage.SQL
        view = await wait_for(dev_client, busy.lead_id, lambda v: v.policy_version == newer["version"])
        assert [entry.kind for entry in view.log][-1] == "policy_adopted"

        # A journey that starts after the rollout starts on the new policy.
        await asyncio.sleep(ROLLOUT_CHECK_SECONDS)
        fresh = await submit_lead(dev_client, hot_lead(f"fresh-{queue}@corp.io"), queue)
        view = await wait_for(dev_client, fresh.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        assert view.policy_version == newer["version"]

        # Rolling out changed rules under a version already in use is refused.
        newer["sql_stall_days"] = 12345
        (tmp_path / "next.yaml").write_text(yaml.safe_dump(newer))
        refused = await asyncio.to_thread(subprocess.run, command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "new version" in refused.stderr
        for lead_id in (nurturing.lead_id, busy.lead_id, fresh.lead_id):
            await journey_handle(dev_client, lead_id).terminate("test finished")
