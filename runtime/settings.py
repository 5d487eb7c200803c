"""The process's settings (one pydantic-settings object), and reading policy files.

Every ``LEADFLOW_*`` variable is a field of ``Settings``: read once per process
(``current_settings``) and handed to the CLI, the worker, the API and the runtime; nothing
else reads the environment. The README's table of variables is generated from it
(``python -m runtime.settings``). This is the edge of the core: the rules themselves
(``leadflow.policy`` and friends) never read the environment or files.

Temporal connection settings follow Temporal's standard client environment configuration
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``,
``TEMPORAL_PROFILE`` and the TOML config file), which the Temporal shell reads itself
(``workflows.journey_client.connect_config``); only the profile name is kept here.
"""

from __future__ import annotations

import functools
import importlib.resources
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class SettingsError(ValueError):
    """An environment setting that cannot work, named."""


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


class Environment(StrEnum):
    """``LEADFLOW_ENV``: production requires every secret to be configured."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class VersioningBehavior(StrEnum):
    """``LEADFLOW_VERSIONING_BEHAVIOR``: how running journeys follow a new worker build."""

    AUTO_UPGRADE = "auto_upgrade"
    PINNED = "pinned"


# Variables whose values are secrets: an error names them, never shows their value.
SECRET_VARS = frozenset({"LEADFLOW_ID_KEY", "LEADFLOW_API_TOKENS", "LEADFLOW_CODEC_KEYS"})


class Settings(BaseSettings):
    """Every setting a worker, the API, the CLI or the runtime reads, from ``LEADFLOW_*``.

    Read once per process (``current_settings``) and handed on; the README's table of
    variables is checked against this class by a test. Temporal's own connection settings
    (``TEMPORAL_ADDRESS`` and friends) are read by the SDK's environment configuration.
    """

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", frozen=True, extra="forbid", populate_by_name=True,
                                      validate_default=True)

    task_queue: str = Field(DEFAULT_TASK_QUEUE, min_length=1, description="task queue of the workers and the CLI")
    policy_path: Path = Field(
        DEFAULT_POLICY, validation_alias=AliasChoices("LEADFLOW_POLICY"), json_schema_extra={"shown": "bundled `policy`"},
        description="policy the worker serves: a file path or a bundled name (`policy`, `demo-policy`)")
    data_dir: Path = Field(
        Path(".leadflow"),
        description="where the SQLite ledger and `leadflow dev`'s Temporal database live "
                    "(`dev`, `worker` and `policy rollout` all use it)")
    id_key: SecretStr | None = Field(
        None, json_schema_extra={"shown": "development key"},
        description="secret (32+ bytes, the same in every process) that lead ids are derived from; "
                          "see \"How a journey works\"")
    env: Environment = Field(
        Environment.DEVELOPMENT,
        description="`production` makes `LEADFLOW_ID_KEY` mandatory: the worker and the API refuse to start without it")
    database_url: str | None = Field(
        None, json_schema_extra={"shown": "SQLite in the data dir"},
        description="SQLAlchemy URL of the ledger, e.g. `postgresql+psycopg://user@host/db`")
    notify_webhook_url: str | None = Field(
        None, json_schema_extra={"shown": "unset: notifications are logged"}, description="Slack-compatible incoming webhook")
    metrics_address: str = Field(
        "0.0.0.0:9464", min_length=1, description="where the worker serves Prometheus `/metrics` (also `--metrics-address`)")
    metrics_refresh_seconds: float = Field(
        15.0, gt=0, allow_inf_nan=False,
        description="how often the worker re-reads open leads from the ledger for its gauge")
    max_cached_workflows: int = Field(
        1000, ge=0, description="journeys a worker keeps in memory between tasks; an evicted journey is replayed "
                                "from its history at its next task or query")
    deployment_name: str | None = Field(
        None, description="Worker Deployment name (e.g. `leadflow`); set together with the build id")
    build_id: str | None = Field(None, description="this build (e.g. the git SHA)")
    versioning_behavior: VersioningBehavior = Field(
        VersioningBehavior.AUTO_UPGRADE, description="`auto_upgrade` or `pinned`")
    api_tokens: SecretStr | None = Field(
        None, description="the API's bearer tokens, `token:scope|scope`, comma separated")
    api_tokens_file: Path | None = Field(None, description="a file of API tokens, one `token:scope|scope` per line")
    api_max_body_bytes: int = Field(64 * 1024, ge=1, description="largest request body the API reads, in bytes")
    api_event_skew_seconds: float = Field(
        300.0, ge=0, allow_inf_nan=False,
        description="how far in the future an event may be dated before the API refuses it")
    api_temporal_timeout_seconds: float = Field(
        4.0, ge=0.1, le=60, allow_inf_nan=False, description="how long the API waits for Temporal before it answers 503")
    codec_keys: SecretStr | None = Field(
        None, description="payload encryption keys, `id:base64key` comma separated; the first one encrypts")
    codec_keys_file: Path | None = Field(
        None, description="a file of payload encryption keys, one `id:base64key` per line")
    codec_cors_origins: str = Field(
        "", description="browser origins (comma separated) allowed to call the API's `/codec` endpoints, "
                        "e.g. the Temporal Web UI's")
    temporal_profile: str | None = Field(
        None, validation_alias=AliasChoices("TEMPORAL_PROFILE"),
        description="profile of Temporal's TOML client configuration")

    @field_validator("versioning_behavior", "env", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url", "notify_webhook_url", "deployment_name", "build_id", "temporal_profile",
                     "api_tokens", "api_tokens_file", "codec_keys", "codec_keys_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if bool(self.deployment_name) != bool(self.build_id):
            raise ValueError("worker versioning needs both LEADFLOW_DEPLOYMENT_NAME and LEADFLOW_BUILD_ID (or neither)")
        return self

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """The environment's settings now, with ``overrides`` (None values ignored).

        ``SettingsError`` names the variable that cannot work, in one line.
        """
        try:
            settings = cls(**{key: value for key, value in overrides.items() if value is not None})
        except ValidationError as error:
            raise SettingsError(_one_line(error)) from None
        return settings._with_policy_resolved()

    def replace(self, **overrides: Any) -> Settings:
        """These settings with ``overrides`` (None values ignored), validated again."""
        given = {key: value for key, value in overrides.items() if value is not None}
        if not given:
            return self
        try:
            settings = type(self).model_validate({**dict(self), **given})
        except ValidationError as error:
            raise SettingsError(_one_line(error)) from None
        return settings._with_policy_resolved()

    def _with_policy_resolved(self) -> Settings:
        policy = resolve_policy_path(self.policy_path, strict=False)
        data_dir = self.data_dir.expanduser()
        if (policy, data_dir) == (self.policy_path, self.data_dir):
            return self
        return self.model_copy(update={"policy_path": policy, "data_dir": data_dir})

    @property
    def ledger_url(self) -> str:
        """SQLAlchemy URL of the ledger: ``LEADFLOW_DATABASE_URL`` or a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ledger.db').resolve()}"

    @property
    def cors_origins(self) -> list[str]:
        """``LEADFLOW_CODEC_CORS_ORIGINS`` as a list."""
        return [origin.strip() for origin in self.codec_cors_origins.split(",") if origin.strip()]


def env_var(field_name: str) -> str:
    """The environment variable a ``Settings`` field is read from."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"LEADFLOW_{field_name.upper()}"


def settings_table() -> str:
    """The README's table of variables (Markdown), generated from ``Settings``."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = field.default
        if "shown" in extra:
            shown = str(extra["shown"])
        elif default is None or default == "":
            shown = "unset"
        else:
            value = default.value if isinstance(default, StrEnum) else default
            shown = f"`{value:g}`" if isinstance(value, float) else f"`{value}`"
        meaning = (field.description or "").replace("|", "\\|")  # a literal bar inside a Markdown table cell
        rows.append(f"| `{env_var(name)}` | {shown} | {meaning} |")
    return "\n".join(rows) + "\n"


def _one_line(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field_name = str(item["loc"][0]) if item["loc"] else ""
        where = env_var(field_name) if field_name in Settings.model_fields else None
        message = item["msg"].removeprefix("Value error, ")
        given = item.get("input")
        shown = f", got {given!r}" if where and where not in SECRET_VARS and isinstance(given, str | int | float) else ""
        problems.append(f"{where}: {message}{shown}" if where else message)
    return "; ".join(problems)


@functools.cache
def current_settings() -> Settings:
    """This process's settings, read from the environment once."""
    return Settings.from_env()


def default_data_dir() -> Path:
    """The data dir a command uses when no ``--data-dir`` is given."""
    return current_settings().data_dir


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


if __name__ == "__main__":  # prints the README's table of variables
    print(settings_table(), end="")
