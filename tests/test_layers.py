"""The layering is a contract (``[tool.importlinter]`` in ``pyproject.toml``), kept by every run.

From the bottom: the rules core (``leadflow``), runtime helpers (``runtime``), effects
(``activities``), the two shells (``workflows`` and ``simulation``, which never import each
other), the API and the benchmarks, and the CLI on top. ``worker.py`` is started only by
the CLI. The core imports no shell and no I/O library. There is no exception list.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from runtime.settings import REPO_ROOT


def _lint(cwd) -> subprocess.CompletedProcess[str]:
    script = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_every_layer_contract_is_kept():
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_contract_catches_the_core_importing_a_shell(tmp_path):
    """The same contract on a copy of the tree where one core module imports the Temporal shell."""
    import shutil

    for name in ("leadflow", "runtime", "activities", "workflows", "simulation", "bench", "api", "cli"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(REPO_ROOT / "worker.py", tmp_path / "worker.py")
    (tmp_path / "leadflow" / "sneaky.py").write_text(textwrap.dedent("""
        from workflows.search_attributes import LEAD_STAGE
    """))
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "leadflow.sneaky -> workflows.search_attributes" in result.stdout
