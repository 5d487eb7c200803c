"""Typed details of the decisions the shells read: written by ``decide``, read by the
metrics, the simulator's statistics, notifications and the CLI, through these classes only.

A decision's detail is stored as a flat mapping (the ledger's ``detail`` column, the
journey's log carried across continue-as-new), so its keys must not change under running
journeys. These classes are the one place that names them: ``decide`` records a detail
with ``to_detail()`` and readers get it back with ``of(entry)``. Renaming a field renames
both sides, and a reader that asks for a field that no longer exists is a type error,
not a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Self

from leadflow.actions import AttemptOutcome
from leadflow.journey import Clock, DecisionEntry, DecisionKind, Detail, EscalationLevel


class WrongDecision(ValueError):
    """A detail asked of a decision of another kind."""


@dataclass(frozen=True)
class TypedDetail:
    kind: ClassVar[DecisionKind]

    def to_detail(self) -> Detail:
        """The flat mapping ``decide`` records (enums by value, as the ledger stores them)."""
        # A detail's ``__dict__`` holds exactly its fields, in their order (``kind`` is a ClassVar).
        return {name: value.value if isinstance(value, Enum) else value for name, value in self.__dict__.items()}

    @classmethod
    def of(cls, entry: DecisionEntry) -> Self:
        """The typed detail of ``entry``; ``WrongDecision`` if it is another kind of decision."""
        if entry.kind is not cls.kind:
            raise WrongDecision(f"a {entry.kind} decision has no {cls.__name__}")
        return cls._read(entry.detail)

    @classmethod
    def _read(cls, detail: Detail) -> Self:
        raise NotImplementedError


@dataclass(frozen=True)
class BreachDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.BREACH
    clock: Clock
    owner_breach: int  # the owner's breaches so far (0: nobody owned the lead)

    @classmethod
    def _read(cls, detail: Detail) -> BreachDetail:
        return cls(clock=Clock(str(detail["clock"])), owner_breach=int(detail.get("owner_breach") or 0))


@dataclass(frozen=True)
class EscalatedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.ESCALATED
    level: EscalationLevel
    action: str
    clock: Clock | None = None
    team: str | None = None

    def to_detail(self) -> Detail:
        # As recorded since the first journeys: a clock only when one ran out, a team only
        # for the team queue (None when the owner had no team).
        detail: Detail = {"level": int(self.level), "action": self.action}
        if self.clock is not None:
            detail["clock"] = self.clock.value
        if self.level is EscalationLevel.TEAM_QUEUE:
            detail["team"] = self.team
        return detail

    @classmethod
    def _read(cls, detail: Detail) -> EscalatedDetail:
        clock = detail.get("clock")
        team = detail.get("team")
        return cls(level=EscalationLevel(int(detail["level"] or 0)), action=str(detail.get("action") or ""),
                   clock=Clock(str(clock)) if clock else None, team=str(team) if team else None)


@dataclass(frozen=True)
class AttemptDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.ATTEMPT
    by: str
    outcome: AttemptOutcome
    attempt: int  # the owner's attempts so far, this one included
    minutes: float | None = None  # the call's length, when the rep's dialer gave it

    def to_detail(self) -> Detail:
        detail = super().to_detail()
        if self.minutes is None:  # as attempts were logged before call lengths were known
            del detail["minutes"]
        return detail

    @classmethod
    def _read(cls, detail: Detail) -> AttemptDetail:
        minutes = detail.get("minutes")
        return cls(by=str(detail.get("by") or ""), outcome=AttemptOutcome(str(detail["outcome"])),
                   attempt=int(detail.get("attempt") or 0),
                   minutes=float(minutes) if isinstance(minutes, (int, float)) else None)


@dataclass(frozen=True)
class FirstContactDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.FIRST_CONTACT
    wall_seconds: float  # from MQL to this first attempt
    business_seconds: float
    met: bool  # by the first-contact due time

    @classmethod
    def _read(cls, detail: Detail) -> FirstContactDetail:
        return cls(wall_seconds=float(detail.get("wall_seconds") or 0.0),
                   business_seconds=float(detail.get("business_seconds") or 0.0), met=bool(detail.get("met")))


@dataclass(frozen=True)
class ReassignedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.REASSIGNED
    previous_owner: str | None
    reassignment: int

    @classmethod
    def _read(cls, detail: Detail) -> ReassignedDetail:
        previous = detail.get("previous_owner")
        return cls(previous_owner=str(previous) if previous else None, reassignment=int(detail.get("reassignment") or 0))


@dataclass(frozen=True)
class CreatedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.CREATED
    source: str
    fit: float
    territory: str | None
    segment: str | None
    policy_version: str
    # Firmographics, known only for histories read from a CRM (calibration); a live journey
    # records none (they stay in the encrypted lead, not in the ledger).
    country: str | None = None
    company_size: int | None = None
    title: str | None = None
    industry: str | None = None

    def to_detail(self) -> Detail:
        detail = super().to_detail()
        for name in ("country", "company_size", "title", "industry"):
            if detail[name] is None:
                del detail[name]
        return detail

    @classmethod
    def _read(cls, detail: Detail) -> CreatedDetail:
        territory, segment = detail.get("territory"), detail.get("segment")
        size = detail.get("company_size")
        return cls(source=str(detail.get("source") or ""), fit=float(detail.get("fit") or 0.0),
                   territory=str(territory) if territory else None, segment=str(segment) if segment else None,
                   policy_version=str(detail.get("policy_version") or ""),
                   country=_text(detail.get("country")), company_size=int(size) if isinstance(size, (int, float)) else None,
                   title=_text(detail.get("title")), industry=_text(detail.get("industry")))


def _text(value: object) -> str | None:
    return str(value) if value else None


@dataclass(frozen=True)
class RecycledDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.RECYCLED
    reason: str
    by: str | None  # None: the journey recycled the lead itself (unresponsive, no disposition, stalled)

    @classmethod
    def _read(cls, detail: Detail) -> RecycledDetail:
        by = detail.get("by")
        return cls(reason=str(detail.get("reason") or ""), by=str(by) if by else None)


@dataclass(frozen=True)
class DisqualifiedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.DISQUALIFIED
    by: str | None
    reason: str | None

    @classmethod
    def _read(cls, detail: Detail) -> DisqualifiedDetail:
        by, reason = detail.get("by"), detail.get("reason")
        return cls(by=str(by) if by else None, reason=str(reason) if reason else None)


@dataclass(frozen=True)
class AcceptedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.ACCEPTED
    by: str
    auto: bool = False  # accepted by the SAL gate's auto-accept, not by the rep

    def to_detail(self) -> Detail:
        # As recorded before the SAL gate: ``auto`` only when it is true.
        return {"by": self.by, "auto": True} if self.auto else {"by": self.by}

    @classmethod
    def _read(cls, detail: Detail) -> AcceptedDetail:
        return cls(by=str(detail.get("by") or ""), auto=bool(detail.get("auto")))


@dataclass(frozen=True)
class RejectedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.REJECTED
    by: str
    reason: str

    @classmethod
    def _read(cls, detail: Detail) -> RejectedDetail:
        return cls(by=str(detail.get("by") or ""), reason=str(detail.get("reason") or ""))


@dataclass(frozen=True)
class ConvertedDetail(TypedDetail):
    kind: ClassVar[DecisionKind] = DecisionKind.CONVERTED
    by: str | None

    @classmethod
    def _read(cls, detail: Detail) -> ConvertedDetail:
        by = detail.get("by")
        return cls(by=str(by) if by else None)
