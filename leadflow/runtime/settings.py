"""Runtime settings from the environment, and reading policy files.

This is the edge of the core package: it reads environment variables and files so the
rules themselves (``leadflow.policy`` and friends) never have to.

Temporal connection settings follow Temporal's standard client environment configuration
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``,
``TEMPORAL_PROFILE`` and the TOML config file), which the Temporal shell reads itself
(``workflows.journey_client.connect_config``); only the profile name is kept here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from leadflow.policy import Policy, PolicyError, parse_policy

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS_DIR = REPO_ROOT / "scenarios"
DEFAULT_POLICY = SCENARIOS_DIR / "policy.yaml"
DEMO_POLICY = SCENARIOS_DIR / "demo-policy.yaml"
DEFAULT_TASK_QUEUE = "leadflow"
VERSIONING_BEHAVIORS = ("auto_upgrade", "pinned")


class SettingsError(ValueError):
    """An environment setting that cannot work, named."""


def _data_dir() -> Path:
    return Path(os.environ.get("LEADFLOW_DATA_DIR", ".leadflow")).expanduser()


@dataclass(frozen=True)
class Settings:
    """Everything a worker, the CLI or a test needs to know about its surroundings."""

    task_queue: str = DEFAULT_TASK_QUEUE
    policy_path: Path = DEFAULT_POLICY
    data_dir: Path = field(default_factory=_data_dir)
    database_url: str | None = None
    notify_webhook_url: str | None = None
    temporal_profile: str | None = None
    deployment_name: str | None = None
    build_id: str | None = None
    versioning_behavior: str = "auto_upgrade"

    def __post_init__(self) -> None:
        if bool(self.deployment_name) != bool(self.build_id):
            raise SettingsError("worker versioning needs both LEADFLOW_DEPLOYMENT_NAME and LEADFLOW_BUILD_ID (or neither)")
        if self.versioning_behavior not in VERSIONING_BEHAVIORS:
            raise SettingsError(
                f"LEADFLOW_VERSIONING_BEHAVIOR must be one of {list(VERSIONING_BEHAVIORS)}, got {self.versioning_behavior!r}"
            )

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "task_queue": os.environ.get("LEADFLOW_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            "policy_path": Path(os.environ.get("LEADFLOW_POLICY", str(DEFAULT_POLICY))),
            "data_dir": _data_dir(),
            "database_url": os.environ.get("LEADFLOW_DATABASE_URL") or None,
            "notify_webhook_url": os.environ.get("LEADFLOW_NOTIFY_WEBHOOK_URL") or None,
            "temporal_profile": os.environ.get("TEMPORAL_PROFILE") or None,
            "deployment_name": os.environ.get("LEADFLOW_DEPLOYMENT_NAME") or None,
            "build_id": os.environ.get("LEADFLOW_BUILD_ID") or None,
            "versioning_behavior": (os.environ.get("LEADFLOW_VERSIONING_BEHAVIOR") or "auto_upgrade").lower(),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def ledger_url(self) -> str:
        """SQLAlchemy URL of the ledger: ``LEADFLOW_DATABASE_URL`` or a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"


def read_yaml_file(path: str | Path) -> Any:
    """Parse a YAML file; ``PolicyError`` says why it cannot be read (with line and column)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(str(path), ["file not found"]) from None
    except OSError as error:
        raise PolicyError(str(path), [f"cannot read the file: {error.strerror}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise PolicyError(str(path), [f"{where}not valid YAML ({problem})"]) from None


def load_policy_file(path: str | Path) -> Policy:
    """Read and validate a policy YAML file; ``PolicyError`` names what is wrong and where."""
    return parse_policy(read_yaml_file(path), str(path))
