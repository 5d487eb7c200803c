"""Runtime settings from the environment, and reading policy files.

This is the edge of the core package: it reads environment variables and files so the
rules themselves (``leadflow.policy`` and friends) never have to.

Temporal connection settings follow Temporal's standard client environment configuration
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``,
``TEMPORAL_PROFILE`` and the TOML config file), which the Temporal shell reads itself
(``workflows.journey_client.connect_config``); only the profile name is kept here.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from leadflow.policy import Policy, PolicyError, parse_policy

# The folder that holds the ``leadflow`` package: the checkout in an editable install,
# site-packages in a regular one (where ``worker.py`` and the packages sit side by side).
REPO_ROOT = Path(__file__).resolve().parent.parent


def _bundled_dir() -> Path:
    """The bundled policies and scenarios: the ``scenarios`` package's data, as a real folder.

    A regular install and an editable one both give a filesystem path. An editable install
    made before ``scenarios`` became a package cannot import it: then the checkout's folder.
    """
    try:
        folder = Path(str(importlib.resources.files("scenarios")))
    except (ModuleNotFoundError, TypeError):
        folder = None
    if folder is not None and (folder / "policy.yaml").is_file():
        return folder
    return REPO_ROOT / "scenarios"


SCENARIOS_DIR = _bundled_dir()
DEFAULT_POLICY = SCENARIOS_DIR / "policy.yaml"
DEMO_POLICY = SCENARIOS_DIR / "demo-policy.yaml"
DEFAULT_TASK_QUEUE = "leadflow"
VERSIONING_BEHAVIORS = ("auto_upgrade", "pinned")


class SettingsError(ValueError):
    """An environment setting that cannot work, named."""


def _data_dir() -> Path:
    """Where the dev server's and the ledger's SQLite files live: ``$LEADFLOW_DATA_DIR``, else ``.leadflow``."""
    return Path(os.environ.get("LEADFLOW_DATA_DIR") or ".leadflow").expanduser()


def default_data_dir() -> Path:
    """The data dir a command uses when no ``--data-dir`` is given (the one ``Settings`` reads)."""
    return _data_dir()


def _is_scenario_file(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ("population" in data or "extends" in data)


def bundled_names(kind: str) -> list[str]:
    """Names of the bundled ``scenario`` or ``policy`` files (file names without ``.yaml``)."""
    files = sorted(SCENARIOS_DIR.glob("*.yaml"))
    return [path.stem for path in files if _is_scenario_file(path) == (kind == "scenario")]


def bundled_file(value: str, kind: str) -> Path | None:
    """The bundled file ``value`` names: ``NAME``, ``NAME.yaml`` or ``scenarios/NAME.yaml``."""
    parts = Path(value).parts
    if len(parts) == 2 and parts[0] == "scenarios":
        parts = parts[1:]
    if len(parts) != 1:
        return None
    stem = parts[0][: -len(".yaml")] if parts[0].endswith(".yaml") else parts[0]
    if stem in bundled_names(kind):
        return SCENARIOS_DIR / f"{stem}.yaml"
    return None


def resolve_named_file(value: str | Path, kind: str, *, strict: bool = True) -> Path:
    """A ``scenario`` or ``policy`` given by path or by bundled name, as a file path.

    An existing file wins; otherwise a bundled name (``baseline``, ``baseline.yaml`` and
    ``scenarios/baseline.yaml`` all name the bundled baseline). With ``strict``, anything
    else is a ``SettingsError`` listing the bundled names; without, the path is returned
    as given so that reading it reports the missing file.
    """
    text = str(value)
    path = Path(text).expanduser()
    if path.is_file() or (path.is_dir() and not strict):
        return path
    if path.is_dir():
        raise SettingsError(f"{kind} {text!r} is a folder: give a {kind} YAML file or a bundled {kind} name")
    bundled = None if path.is_absolute() else bundled_file(text, kind)
    if bundled is not None:
        return bundled
    if not strict:
        return path
    raise SettingsError(
        f"{kind} {text!r}: no such file and no bundled {kind} of that name "
        f"(bundled: {', '.join(bundled_names(kind))}); give a bundled name or the path of a YAML file"
    )


def resolve_scenario_path(value: str | Path) -> Path:
    """A scenario argument (bundled name or path) as a file path; ``SettingsError`` if it is neither."""
    return resolve_named_file(value, "scenario")


def resolve_policy_path(value: str | Path, *, strict: bool = True) -> Path:
    """A policy argument (bundled name or path) as a file path; ``SettingsError`` if it is neither."""
    return resolve_named_file(value, "policy", strict=strict)


def _whole_number(name: str, default: int) -> int:
    text = os.environ.get(name) or ""
    if not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {text!r}") from None


def _number(name: str, default: float) -> float:
    text = os.environ.get(name) or ""
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{name} must be a finite number, got {text!r}")
    return value


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
    max_cached_workflows: int = 1000
    api_event_skew_seconds: float = 300.0
    api_temporal_timeout_seconds: float = 4.0

    def __post_init__(self) -> None:
        if self.api_event_skew_seconds < 0:
            raise SettingsError(f"LEADFLOW_API_EVENT_SKEW_SECONDS must be 0 or more, got {self.api_event_skew_seconds}")
        if not 0.1 <= self.api_temporal_timeout_seconds <= 60:
            raise SettingsError("LEADFLOW_API_TEMPORAL_TIMEOUT_SECONDS must be between 0.1 and 60, "
                                f"got {self.api_temporal_timeout_seconds}")
        if self.max_cached_workflows < 0:
            raise SettingsError(f"LEADFLOW_MAX_CACHED_WORKFLOWS must be 0 or more, got {self.max_cached_workflows}")
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
            "policy_path": resolve_policy_path(
                overrides.pop("policy_path", None) or os.environ.get("LEADFLOW_POLICY") or DEFAULT_POLICY, strict=False),
            "data_dir": _data_dir(),
            "database_url": os.environ.get("LEADFLOW_DATABASE_URL") or None,
            "notify_webhook_url": os.environ.get("LEADFLOW_NOTIFY_WEBHOOK_URL") or None,
            "temporal_profile": os.environ.get("TEMPORAL_PROFILE") or None,
            "deployment_name": os.environ.get("LEADFLOW_DEPLOYMENT_NAME") or None,
            "build_id": os.environ.get("LEADFLOW_BUILD_ID") or None,
            "versioning_behavior": (os.environ.get("LEADFLOW_VERSIONING_BEHAVIOR") or "auto_upgrade").lower(),
            "max_cached_workflows": _whole_number("LEADFLOW_MAX_CACHED_WORKFLOWS", 1000),
            "api_event_skew_seconds": _number("LEADFLOW_API_EVENT_SKEW_SECONDS", 300.0),
            "api_temporal_timeout_seconds": _number("LEADFLOW_API_TEMPORAL_TIMEOUT_SECONDS", 4.0),
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
    """Read and validate a policy YAML file (or a bundled policy by name); ``PolicyError`` names what is wrong and where."""
    path = resolve_policy_path(path, strict=False)
    return parse_policy(read_yaml_file(path), str(path))
