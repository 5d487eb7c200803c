"""One clear line on stderr and a non-zero exit for every error a user can cause."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from leadflow.policy import PolicyError, describe_validation_error
from runtime.settings import SettingsError

err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """An error to report as one line."""


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def friendly_errors(function: F) -> F:
    """Turn known failures into one line and exit code 1 instead of a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (CliError, SettingsError) as error:
            raise fail(str(error)) from None
        except PolicyError as error:
            what = "scenario" if type(error).__name__ == "ScenarioError" else "policy"
            raise fail(f"invalid {what} {error.source}: " + "; ".join(error.problems)) from None
        except ValidationError as error:
            raise fail("invalid input: " + "; ".join(describe_validation_error(error))) from None
        except Exception as error:
            if _is_journey_error(error):
                raise fail(str(error)) from None
            raise

    return wrapper  # type: ignore[return-value]


def _is_journey_error(error: Exception) -> bool:
    """A failure the Temporal client reports in words (unknown lead, server down, ...).

    Only a command that talked to Temporal can raise one, and it has loaded the client; the
    client is not imported here for the other commands, which it would slow by half a second.
    """
    client = sys.modules.get("workflows.journey_client")
    return client is not None and isinstance(error, client.JourneyError)
