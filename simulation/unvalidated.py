"""Pydantic models the simulator builds from values it has just drawn or computed.

``Model.model_construct`` skips validation but still resolves defaults and records which
fields were set, at several microseconds a model: more than the rule it feeds, for the
leads, rep actions and routing requests a replication builds by the hundred thousand.
``unvalidated`` builds the same model from every field given, sharing one record of the
fields set per class.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set_attribute = object.__setattr__
_FIELDS: dict[type[BaseModel], set[str]] = {}


def unvalidated(model: type[M], fields: dict[str, Any]) -> M:
    """``model`` with exactly ``fields`` (every field, each already valid), unvalidated."""
    names = _FIELDS.get(model)
    if names is None:
        names = _FIELDS[model] = set(model.model_fields)
    if fields.keys() != names:
        raise ValueError(f"{model.__name__} needs exactly the fields {sorted(names)}, got {sorted(fields)}")
    instance = model.__new__(model)
    _set_attribute(instance, "__dict__", fields)
    _set_attribute(instance, "__pydantic_fields_set__", names)
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance
