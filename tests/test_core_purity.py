"""The rules core (the modules directly in ``leadflow/``) stays pure.

No I/O, clock, randomness, Temporal, SimPy, SQL or HTTP; nothing from the shells. Checked
two ways: statically, on every import statement and clock/randomness call in the source,
and dynamically, by importing the whole core in a fresh interpreter and looking at what
got loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "leadflow"
CORE_MODULES = sorted(path for path in CORE.glob("*.py"))

FORBIDDEN_IMPORTS = {
    "temporalio", "simpy", "faker", "prometheus_client", "sqlalchemy", "psycopg", "httpx", "requests",
    "urllib", "http", "socket", "subprocess", "os", "random", "time", "yaml", "asyncio", "threading",
    "workflows", "activities", "simulation", "worker", "api", "cli", "runtime", "bench", "numpy", "secrets",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "print", "input"}


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN_IMPORTS)


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_core_module_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert sorted(module for module in _imports(tree) if _is_forbidden(module)) == []
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert sorted(calls & FORBIDDEN_CALLS) == [], f"{path.name} reads the clock, a file or the console"


def test_importing_the_core_loads_no_shell_or_io_library() -> None:
    modules = [f"leadflow.{path.stem}" for path in CORE_MODULES if path.stem != "__init__"]
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    shells = {"temporalio", "simpy", "faker", "prometheus_client", "sqlalchemy", "httpx", "psycopg", "yaml",
              "workflows", "activities", "simulation", "worker", "api", "cli", "runtime", "bench"}
    assert sorted(name for name in loaded if name.split(".")[0] in shells or name in shells) == []


ROOT = CORE.parent


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("simulation", {"workflows", "activities", "worker"}), ("workflows", {"simulation"}), ("activities", {"simulation"})],
)
def test_the_two_shells_share_only_the_core(package: str, forbidden: set[str]) -> None:
    offending = {
        f"{path.name}: {module}"
        for path in (ROOT / package).glob("*.py")
        for module in _imports(ast.parse(path.read_text(encoding="utf-8")))
        if module.split(".")[0] in forbidden
    }
    assert offending == set()
