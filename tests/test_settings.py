"""One settings object: every ``LEADFLOW_*`` variable is a field of ``Settings``, documented
once in the README's generated table, read nowhere else, and a bad value is one line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from runtime.settings import REPO_ROOT, Settings, SettingsError, current_settings, env_var, settings_table

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
# Variables of the test suite itself (not of the product): documented where the tests are.
TEST_ONLY = re.compile(r"LEADFLOW_(TORTURE|TEST)(_\w*)?")
SHIPPED = ("leadflow", "runtime", "workflows", "activities", "simulation", "api", "cli", "bench")


def test_the_readme_table_is_the_one_generated_from_settings():
    assert settings_table() in README, "README's table of variables is stale: paste `python -m runtime.settings`"


def test_every_variable_the_readme_names_is_a_setting():
    named = {name for name in re.findall(r"LEADFLOW_[A-Z0-9_]*[A-Z0-9]", README) if not TEST_ONLY.fullmatch(name)}
    known = {env_var(name) for name in Settings.model_fields}
    assert named - known == set(), "the README names variables no setting reads"


def test_no_shipped_module_reads_the_environment_but_the_settings():
    readers = []
    for package in SHIPPED:
        for path in (REPO_ROOT / package).rglob("*.py"):
            if path.name == "settings.py" and package == "runtime":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"os\.environ\b(?!\s*(,|\}|\)))|os\.getenv|os\.environ\[", text):
                readers.append(str(path.relative_to(REPO_ROOT)))
    # The live bench hands the environment on to the child processes it starts, which is not reading it.
    assert [path for path in readers if path != "bench/live.py"] == []
    worker = (REPO_ROOT / "worker.py").read_text(encoding="utf-8")
    assert "os.environ" not in worker


@pytest.mark.parametrize("name, value, message", [
    ("LEADFLOW_MAX_CACHED_WORKFLOWS", "lots", "LEADFLOW_MAX_CACHED_WORKFLOWS: Input should be a valid integer"),
    ("LEADFLOW_API_TEMPORAL_TIMEOUT_SECONDS", "120", "LEADFLOW_API_TEMPORAL_TIMEOUT_SECONDS: Input should be less than or equal to 60"),
    ("LEADFLOW_METRICS_REFRESH_SECONDS", "nan", "LEADFLOW_METRICS_REFRESH_SECONDS: Input should be a finite number"),
    ("LEADFLOW_ENV", "prod", "LEADFLOW_ENV: Input should be 'development' or 'production', got 'prod'"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_a_secret_is_named_never_shown(monkeypatch):
    monkeypatch.setenv("LEADFLOW_CODEC_KEYS_FILE", "")
    monkeypatch.setenv("LEADFLOW_API_TOKENS", "")
    assert Settings.from_env().api_tokens is None and Settings.from_env().codec_keys_file is None  # empty is unset
    monkeypatch.setenv("LEADFLOW_ID_KEY", "s3cret-value-that-must-not-leak-000000")
    monkeypatch.setenv("LEADFLOW_MAX_CACHED_WORKFLOWS", "-1")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    assert "s3cret" not in str(raised.value)
    assert "s3cret" not in repr(Settings.from_env(max_cached_workflows=5))


def test_settings_are_read_once_per_process_and_overrides_are_validated(monkeypatch):
    monkeypatch.setenv("LEADFLOW_TASK_QUEUE", "first")
    assert current_settings().task_queue == "first"
    monkeypatch.setenv("LEADFLOW_TASK_QUEUE", "second")
    assert current_settings() is current_settings() and current_settings().task_queue == "first"
    changed = current_settings().replace(metrics_address="127.0.0.1:9999", task_queue=None)
    assert (changed.metrics_address, changed.task_queue) == ("127.0.0.1:9999", "first")
    with pytest.raises(SettingsError, match="LEADFLOW_MAX_CACHED_WORKFLOWS"):
        current_settings().replace(max_cached_workflows=-1)


def test_the_cli_reports_a_bad_setting_in_one_line():
    env = {"PATH": "/usr/bin:/bin", "LEADFLOW_MAX_CACHED_WORKFLOWS": "lots", "HOME": "/tmp"}
    result = subprocess.run([sys.executable, "-m", "cli.main", "lead", "show", "jane@acme.io", "--json"], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=env, timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: LEADFLOW_MAX_CACHED_WORKFLOWS: Input should be a valid integer, unable to parse string as an integer, got 'lots'"
    ]
