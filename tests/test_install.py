"""A regular (non-editable) install carries everything a shipped command reads at run time.

The wheel is built offline from a copy of the sources (so no ``build/`` folder appears in
the checkout), unpacked, and used from an empty folder: the bundled policies and scenarios
must be inside it and resolve by name, as ``leadflow simulate baseline`` does for a user who
ran ``pip install .``. Also: scenario and policy arguments by name or by path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from runtime.settings import (
    DEFAULT_POLICY,
    DEMO_POLICY,
    REPO_ROOT,
    SCENARIOS_DIR,
    SettingsError,
    bundled_names,
    load_policy_file,
    resolve_policy_path,
    resolve_scenario_path,
)
from simulation.scenario import load_scenario

# What a wheel is built from: the packages pyproject.toml lists, and the files beside them.
SOURCES = ["pyproject.toml", "README.md", "worker.py"] + sorted(
    {package.split(".")[0] for package in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]}
)
BUNDLED = sorted(path.name for path in (REPO_ROOT / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built the way ``pip install .`` builds it (but offline)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=ignore)
        else:
            shutil.copy2(origin, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(root / "dist"), str(source)],
        capture_output=True, text=True, timeout=120,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = (root / "dist").glob("leadflow-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked into a site folder of its own (what pip does for a pure-Python wheel)."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run_installed(site: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run Python from an empty folder with only the unpacked wheel (plus installed dependencies)."""
    empty = site.parent / "empty"
    empty.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LEADFLOW_POLICY", None)
    return subprocess.run([sys.executable, *args], cwd=empty, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_ships_the_bundled_policies_and_scenarios(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "scenarios/__init__.py" in names
    assert sorted(name.split("/", 1)[1] for name in names if name.startswith("scenarios/") and name.endswith(".yaml")) == BUNDLED
    assert "api/openapi.json" in names  # read by `leadflow api`
    assert "worker.py" in names  # `bench live` starts it from the install folder
    assert not any(name.startswith("tests/") for name in names)


def test_an_installed_wheel_finds_them_by_name_from_anywhere(installed):
    probe = (
        "import json, leadflow, scenarios\n"
        "from runtime.settings import DEFAULT_POLICY, DEMO_POLICY, REPO_ROOT, resolve_scenario_path, load_policy_file\n"
        "print(json.dumps({'package': leadflow.__file__, 'default': str(DEFAULT_POLICY), 'demo': str(DEMO_POLICY),\n"
        "  'root': str(REPO_ROOT), 'baseline': str(resolve_scenario_path('baseline')),\n"
        "  'demo_version': load_policy_file(DEMO_POLICY).version, 'by_name': load_policy_file('demo-policy').version}))\n"
    )
    done = run_installed(installed, "-c", probe)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["package"].startswith(str(installed)), "the probe must use the unpacked wheel, not the checkout"
    assert found["default"] == str(installed / "scenarios" / "policy.yaml")
    assert found["demo"] == str(installed / "scenarios" / "demo-policy.yaml")
    assert found["baseline"] == str(installed / "scenarios" / "baseline.yaml")
    assert found["root"] == str(installed)  # worker.py sits here: `bench live` runs it with this cwd
    assert found["demo_version"] == found["by_name"] == "demo-1"


def test_an_installed_wheel_simulates_from_an_empty_folder(installed):
    # A user's own short scenario on top of the bundled one (`extends` and its `policy: policy.yaml`
    # resolve to the installed files, since neither sits next to it); the full `simulate baseline`
    # takes longer than a unit test should.
    empty = installed.parent / "empty"
    empty.mkdir(exist_ok=True)
    (empty / "short.yaml").write_text("extends: baseline.yaml\nname: short\nhorizon_days: 8\nwarmup_days: 1\n")
    done = run_installed(installed, "-m", "cli.main", "simulate", "short.yaml", "--replications", "2", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["scenario"] == "short" and summary["replications"] == 2 and summary["leads_simulated"] > 0

    unknown = run_installed(installed, "-m", "cli.main", "simulate", "no-such-scenario")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().count("\n") == 0, unknown.stderr
    assert "no-such-scenario" in unknown.stderr and "baseline, example-history, faster-hot-sla, mmc-erlang, q4-surge" in unknown.stderr


def test_scenarios_resolve_by_name_or_path(tmp_path, monkeypatch):
    baseline = SCENARIOS_DIR / "baseline.yaml"
    assert bundled_names("scenario") == ["baseline", "example-history", "faster-hot-sla", "mmc-erlang", "q4-surge"]
    assert bundled_names("policy") == ["demo-policy", "policy"]
    monkeypatch.chdir(tmp_path)  # nothing named like a scenario here
    for given in ("baseline", "baseline.yaml", "scenarios/baseline.yaml", str(baseline)):
        assert resolve_scenario_path(given) == baseline, given
    mine = tmp_path / "baseline"  # a file of the user's own wins over a bundled name
    mine.write_text("name: mine\n")
    assert resolve_scenario_path("baseline") == Path("baseline")
    with pytest.raises(SettingsError, match=r"'nosuch': no such file .*\(bundled: baseline, example-history, faster-hot-sla, mmc-erlang, q4-surge\)"):
        resolve_scenario_path("nosuch")
    with pytest.raises(SettingsError, match="no such file"):
        resolve_scenario_path(tmp_path / "missing.yaml")  # an absolute path is never taken for a name
    with pytest.raises(SettingsError, match="is a folder"):
        resolve_scenario_path(tmp_path)


def test_policies_resolve_by_name_or_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_policy_path("demo-policy") == DEMO_POLICY
    assert resolve_policy_path("policy.yaml") == DEFAULT_POLICY
    assert load_policy_file("demo-policy").version == "demo-1"
    with pytest.raises(SettingsError, match=r"bundled: demo-policy, policy"):
        resolve_policy_path("baseline")  # a scenario is not a policy


def test_a_scenario_copied_out_of_the_package_still_finds_its_bundled_policy_and_parent(tmp_path):
    # baseline says `policy: policy.yaml`, q4-surge says `extends: baseline.yaml`: relative to
    # the scenario first, then the bundled files.
    shutil.copy(SCENARIOS_DIR / "q4-surge.yaml", tmp_path / "surge.yaml")
    shutil.copy(SCENARIOS_DIR / "baseline.yaml", tmp_path / "base.yaml")
    loaded = load_scenario(tmp_path / "surge.yaml")
    assert loaded.scenario.name == "q4-surge" and loaded.policy.version == "2026.11-1"
    assert load_scenario(tmp_path / "base.yaml").policy.version == "2026.11-1"
    # A file next to the scenario wins over the bundled one.
    (tmp_path / "policy.yaml").write_text(DEFAULT_POLICY.read_text().replace('version: "2026.11-1"', 'version: "local-1"'))
    assert load_scenario(tmp_path / "base.yaml").policy.version == "local-1"
