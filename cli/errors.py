"""One clear line on stderr and a non-zero exit for every error a user can cause."""

from __future__ import annotations

import functools
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
    from workflows.journey_client import JourneyError

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (CliError, JourneyError, SettingsError) as error:
            raise fail(str(error)) from None
        except PolicyError as error:
            what = "scenario" if type(error).__name__ == "ScenarioError" else "policy"
            raise fail(f"invalid {what} {error.source}: " + "; ".join(error.problems)) from None
        except ValidationError as error:
            raise fail("invalid input: " + "; ".join(describe_validation_error(error))) from None

    return wrapper  # type: ignore[return-value]
