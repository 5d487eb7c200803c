"""A worker whose SDK core reports its workflow state broken exits for a restart
(``workflows.core_health``): the run it holds would otherwise never move again."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from runtime.settings import REPO_ROOT
from tests.test_dev_server import unique, worker_env
from workflows.core_health import EXIT_RESTART, CoreBroken
from workflows.telemetry import CORE_LOGGER

# Forwarded core records are named after the logger and the core's module (``LogForwardingConfig``).
WORKFLOW_STREAM = f"{CORE_LOGGER.name}-sdk_core::temporalio_sdk_core::worker::workflow::workflow_stream"
ACTIVITIES = f"{CORE_LOGGER.name}-sdk_core::temporalio_sdk_core::worker::activities"
BROKEN = "[sdk_core::temporalio_sdk_core::worker::workflow::workflow_stream] Extra buffered run should not have produced an activation {}"


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return CORE_LOGGER.makeRecord(name, level, "(sdk-core)", 0, message, (), None)


async def test_only_an_error_of_the_cores_workflow_machinery_counts_as_broken():
    watch = CoreBroken(asyncio.get_running_loop())
    for name, level in ((WORKFLOW_STREAM, logging.WARNING), (ACTIVITIES, logging.ERROR)):
        watch.handle(_record(name, level, "something"))  # a warning, or another part of the core: carry on
    await asyncio.sleep(0)
    assert not watch.broken.is_set() and watch.message is None
    watch.handle(_record(WORKFLOW_STREAM, logging.ERROR, BROKEN))
    await asyncio.wait_for(watch.broken.wait(), 1)
    assert watch.message == BROKEN


@pytest.mark.devserver
def test_a_worker_whose_core_breaks_exits_for_its_supervisor_to_restart_it(dev_server, tmp_path):
    """``python worker.py`` on a real server; once it is polling, the core's error is logged
    into it as the SDK forwards it: the worker drains and exits ``EXIT_RESTART``, saying why."""
    script = f"""
import logging, threading, sys
sys.argv = ["worker.py"]
import worker
from workflows.telemetry import CORE_LOGGER

class Started(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("worker started"):
            record = CORE_LOGGER.makeRecord({WORKFLOW_STREAM!r}, logging.ERROR, "(sdk-core)", 0, {BROKEN!r}, (), None)
            threading.Timer(1.0, CORE_LOGGER.handle, [record]).start()

logging.getLogger("leadflow.worker").addHandler(Started())
worker.main()
"""
    env = worker_env(dev_server, unique("core-broken"), tmp_path)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_RESTART, done.stderr[-3000:]
    assert f"exiting {EXIT_RESTART} for a restart" in done.stderr and "Extra buffered run" in done.stderr
    assert "Traceback" not in done.stderr
