"""The README's curl examples, run as written against a live worker and API."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest

from runtime.settings import REPO_ROOT
from tests.api_stack import start_stack

pytestmark = pytest.mark.devserver


def readme_api_examples() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"<!-- api-examples:[^>]*-->\n```bash\n(.*?)\n```", text, re.DOTALL)
    assert found, "the README lost its API examples block"
    return found.group(1)


def test_readme_curl_examples_work(dev_server, tmp_path):
    intake, rep = "intake-token-change-me-0001", "rep-token-change-me-00001"
    stack = start_stack(dev_server, tmp_path, f"readme-{uuid.uuid4().hex[:8]}",
                        {"LEADFLOW_API_TOKENS": f"{intake}:intake,{rep}:rep|read"})
    try:
        env = {**stack.env, "API": stack.url, "INTAKE": intake, "REP": rep}
        script = "set -euo pipefail\n" + readme_api_examples()
        done = subprocess.run(["bash", "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"stage":"ACCEPTED"' in done.stdout.replace(" ", "")
        assert "422" in done.stdout
    finally:
        stack.stop()
