"""What changes between two policies, as a reviewer reads it.

Lists of named things (reps, teams, tiers, segments) are compared by their id or name, not
by position, so moving a rep in the roster is no change and removing one is one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leadflow.policy import Policy

_KEYS = ("id", "name")


@dataclass(frozen=True)
class PolicyChange:
    path: str
    kind: str  # "added", "removed" or "changed"
    before: Any = None
    after: Any = None

    def line(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {_show(self.after)}"
        if self.kind == "removed":
            return f"- {self.path}: {_show(self.before)}"
        return f"~ {self.path}: {_show(self.before)} -> {_show(self.after)}"


def diff_policies(before: Policy, after: Policy) -> list[PolicyChange]:
    """Every difference between two policies, by dotted path, in a stable order."""
    changes: list[PolicyChange] = []
    _diff("", before.model_dump(mode="json"), after.model_dump(mode="json"), changes)
    return changes


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of objects that all carry a unique id or name, as a dict by that key."""
    for key in _KEYS:
        if items and all(isinstance(item, dict) and key in item for item in items):
            keys = [str(item[key]) for item in items]
            if len(set(keys)) == len(keys):
                return dict(zip(keys, items))
    return None


def _diff(path: str, before: Any, after: Any, changes: list[PolicyChange]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in before:
                changes.append(PolicyChange(child, "added", after=after[key]))
            elif key not in after:
                changes.append(PolicyChange(child, "removed", before=before[key]))
            else:
                _diff(child, before[key], after[key], changes)
        return
    if isinstance(before, list) and isinstance(after, list):
        old, new = _keyed(before), _keyed(after)
        if old is not None and new is not None:
            _diff(path, old, new, changes)
            return
    changes.append(PolicyChange(path, "changed", before=before, after=after))


def _show(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{key}={_show(item)}" for key, item in value.items() if item not in (None, [], {}))
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)
