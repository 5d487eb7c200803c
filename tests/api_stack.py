"""A real worker process and a real ``leadflow api`` process on the session's dev server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runtime.settings import DEFAULT_POLICY, REPO_ROOT
from workflows.dev_server import free_port

INTAKE = "intake-token-0123456789"
REP = "rep-token-0123456789abc"
READER = "read-token-0123456789ab"
CODEC = "codec-token-0123456789a"
EVERYTHING = "all-scopes-token-0123456"
TOKENS = f"{INTAKE}:intake,{REP}:rep|read,{READER}:read,{CODEC}:codec,{EVERYTHING}:intake|rep|read|codec"


@dataclass
class ApiStack:
    url: str
    env: dict[str, str]
    ledger_url: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs if path.exists())

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def start_stack(dev_server, folder: Path, task_queue: str, extra_env: dict[str, str] | None = None) -> ApiStack:
    ledger_url = f"sqlite:///{folder / 'ledger.db'}"
    port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_server.address,
        "TEMPORAL_NAMESPACE": "default",
        "LEADFLOW_TASK_QUEUE": task_queue,
        "LEADFLOW_POLICY": str(DEFAULT_POLICY),  # hours-long SLAs: nothing moves on its own during a test
        "LEADFLOW_DATABASE_URL": ledger_url,
        "LEADFLOW_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        "LEADFLOW_API_TOKENS": TOKENS,
        **(extra_env or {}),
    }
    stack = ApiStack(url=f"http://127.0.0.1:{port}", env=env, ledger_url=ledger_url)
    for name, command in (("worker", [sys.executable, "worker.py"]),
                          ("api", [sys.executable, "-m", "cli.main", "api", "--port", str(port)])):
        log = folder / f"{name}.log"
        stack.logs.append(log)
        stack.processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.url}/readyz", timeout=2).status_code == 200:
                return stack
        except httpx.HTTPError:
            pass
        if any(process.poll() is not None for process in stack.processes):
            break
        time.sleep(0.2)
    stack.stop()
    raise AssertionError(f"the API did not become ready:\n{stack.log_text()}")
