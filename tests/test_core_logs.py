"""The SDK core's own log lines go through Python logging (stderr), never to stdout.

Left to itself the core prints them on stdout, which broke ``--json`` output under load
(``Failing legacy query request`` lines). A worker started against the time-skipping test
server makes the core warn about the server's version every time, so the test has a real
core log line to follow.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from runtime.settings import REPO_ROOT

SCRIPT = textwrap.dedent("""
    import asyncio, logging, os, sys
    from temporalio import activity
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker
    from workflows.dev_server import test_server_path
    from workflows.telemetry import use_logging_runtime

    @activity.defn
    async def idle() -> None:
        pass

    async def main() -> None:
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(test_server_path()))
        async with Worker(env.client, task_queue="core-logs", activities=[idle]):
            await asyncio.sleep(1.0)
        await env.shutdown()

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    if sys.argv[1] == "forwarded":
        use_logging_runtime()
    asyncio.run(main())
    print('{"done": true}', flush=True)
    sys.stderr.flush()
    os._exit(0)  # as the CLI does: the SDK's native threads can abort interpreter teardown
""")


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_core_logs_go_to_stderr_and_stdout_stays_one_json_document():
    forwarded = _run("forwarded")
    assert forwarded.returncode == 0, forwarded.stderr[-2000:]
    assert forwarded.stdout == '{"done": true}\n'
    assert "temporalio.core" in forwarded.stderr and "heartbeat details" in forwarded.stderr


def test_without_forwarding_the_core_writes_to_stdout():
    """What the test above guards against: the SDK's default."""
    default = _run("default")
    assert default.returncode == 0, default.stderr[-2000:]
    assert "heartbeat details" in default.stdout
