"""Worker Deployment Versioning from configuration, on the dev server."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from temporalio.common import VersioningBehavior

from leadflow.journey import Stage
from runtime.settings import Settings, SettingsError
from tests.journey_helpers import hot_lead, wait_for
from tests.test_dev_server import unique
from worker import deployment_config, running_worker
from workflows.dev_server import temporal_cli_path
from workflows.journey_client import journey_handle, submit_lead


def test_versioning_settings_from_the_environment(monkeypatch):
    assert deployment_config(Settings()) is None
    monkeypatch.setenv("LEADFLOW_DEPLOYMENT_NAME", "leadflow")
    monkeypatch.setenv("LEADFLOW_BUILD_ID", "2026.11.24-abc123")
    config = deployment_config(Settings.from_env())
    assert config.use_worker_versioning and config.version.build_id == "2026.11.24-abc123"
    assert config.default_versioning_behavior is VersioningBehavior.AUTO_UPGRADE
    monkeypatch.setenv("LEADFLOW_VERSIONING_BEHAVIOR", "PINNED")
    assert deployment_config(Settings.from_env()).default_versioning_behavior is VersioningBehavior.PINNED
    monkeypatch.setenv("LEADFLOW_VERSIONING_BEHAVIOR", "sometimes")
    with pytest.raises(SettingsError, match="auto_upgrade"):
        Settings.from_env()
    monkeypatch.delenv("LEADFLOW_VERSIONING_BEHAVIOR")
    monkeypatch.delenv("LEADFLOW_DEPLOYMENT_NAME")
    with pytest.raises(SettingsError, match="both"):
        Settings.from_env()


@pytest.mark.devserver
async def test_versioned_worker_runs_journeys_once_its_version_is_current(dev_server, dev_client, demo_policy, tmp_path):
    queue, deployment = unique("versioned"), unique("leadflow")
    settings = Settings(task_queue=queue, database_url=f"sqlite:///{tmp_path / 'ledger.db'}", deployment_name=deployment,
                        build_id="build-1", versioning_behavior="pinned")
    async with running_worker(dev_client, settings, policy=demo_policy):
        command = [str(temporal_cli_path()), "worker", "deployment", "set-current-version", "--deployment-name", deployment,
                   "--build-id", "build-1", "--address", dev_server.address, "--yes"]
        for _ in range(50):  # the version exists once the worker has polled
            done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=30)
            if done.returncode == 0:
                break
            await asyncio.sleep(0.2)
        assert done.returncode == 0, done.stderr
        submitted = await submit_lead(dev_client, hot_lead(f"{queue}@corp.io"), queue)
        await wait_for(dev_client, submitted.lead_id, lambda v: v.stage is Stage.ASSIGNED, timeout=30)
        described = await journey_handle(dev_client, submitted.lead_id).describe()
        info = described.raw_description.workflow_execution_info.versioning_info
        assert info.deployment_version.build_id == "build-1"
        assert info.deployment_version.deployment_name == deployment
        assert info.behavior == VersioningBehavior.PINNED.value
        await journey_handle(dev_client, submitted.lead_id).terminate("test finished")
