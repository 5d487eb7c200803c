"""A worker that restarts itself when the SDK core reports its own bookkeeping broken.

Under eviction pressure (a small workflow cache, tasks timing out on a starved machine),
sdk-core 1.35 can log ``Extra buffered run should not have produced an activation`` at
ERROR from its workflow stream and then hold that run for good: the run's workflow tasks
time out again and again and the journey stops, until the worker process restarts (seen
in ``tests/test_torture.py``; the other runs go on). Nothing in the workflow can cure it;
a fresh process can. So the worker treats an ERROR from the core's workflow machinery as
fatal: it drains what it can and exits with ``EXIT_RESTART`` (``python worker.py`` and
``leadflow worker``; ``leadflow dev`` stops and says why), for its supervisor to start it
again (``restart: unless-stopped`` in ``docker-compose.yml``, systemd, Kubernetes); the
stuck run is picked up afresh by the next worker.
"""

from __future__ import annotations

import asyncio
import logging

EXIT_RESTART = 75  # EX_TEMPFAIL: try again
# The core's workflow machinery, as its forwarded log records name it.
_WORKFLOW_MACHINERY = "worker::workflow"


class CoreStateBroken(RuntimeError):
    """The SDK core said its workflow state is broken: this worker process must be replaced."""


class CoreBroken(logging.Handler):
    """Sets ``broken`` (an asyncio event, set from any thread) at the first ERROR the SDK
    core logs from its workflow machinery, and keeps the message."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(level=logging.ERROR)
        self.loop = loop
        self.broken = asyncio.Event()
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.message is None and record.levelno >= logging.ERROR and _WORKFLOW_MACHINERY in record.name:
            self.message = record.getMessage()
            self.loop.call_soon_threadsafe(self.broken.set)
