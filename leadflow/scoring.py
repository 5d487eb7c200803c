"""Lead scoring: explicit fit plus decaying engagement, and the tier a score earns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol, TypeVar

from leadflow.lead import EngagementEvent, EngagementKind, Lead
from leadflow.policy import EngagementRules, FitRules, Policy

_WORD = re.compile(r"[a-z]+")
_SECONDS_PER_DAY = 86_400.0


def fit_score(lead: Lead, rules: FitRules) -> float:
    """Points for seniority, company size, industry and country against the ICP."""
    score = 0.0
    if lead.title:
        words = _title_words(lead.title)
        matched = [points for keyword, points in rules.seniority.items() if keyword in words]
        score += max(matched, default=0.0)
    if lead.company_size is not None:
        reached = [band.points for band in rules.company_size if lead.company_size >= band.min_employees]
        score += reached[-1] if reached else 0.0
    if lead.industry and lead.industry in rules.icp_industries:
        score += rules.industry_points
    if lead.country and lead.country in rules.icp_countries:
        score += rules.country_points
    return round(score, 6)


@lru_cache(maxsize=4096)
def _title_words(title: str) -> frozenset[str]:
    """The lower-case words of a job title (titles repeat, so they are split once)."""
    return frozenset(_WORD.findall(title.lower()))


def decayed(score: float, as_of: datetime | None, at: datetime, half_life_days: float) -> float:
    """An engagement score measured at ``as_of``, decayed to ``at``."""
    if as_of is None or score == 0.0 or at <= as_of:
        return score
    elapsed_days = (at - as_of).total_seconds() / _SECONDS_PER_DAY
    return round(score * float(0.5 ** (elapsed_days / half_life_days)), 6)


class Engagement(Protocol):
    """What scoring reads of an engagement: an ``EngagementEvent``, or anything shaped like one
    (the simulator's drawn events, which need no validation)."""

    @property
    def kind(self) -> EngagementKind: ...
    @property
    def at(self) -> datetime: ...
    @property
    def weight(self) -> float | None: ...


E = TypeVar("E", bound=Engagement)


@dataclass(frozen=True, slots=True)
class SourceCredit:
    """The engagement a lead's source is worth on arrival (``EngagementRules.source_points``):
    scored like a page view of that weight, and made by the rules, so it needs no validation."""

    at: datetime
    weight: float
    kind: EngagementKind = EngagementKind.PAGE_VIEW


def engagement_weight(event: Engagement, rules: EngagementRules) -> float:
    return event.weight if event.weight is not None else rules.weights.get(event.kind, 0.0)


def needs_bounds(event: EngagementEvent, now: datetime, rules: EngagementRules) -> bool:
    """Whether ``event`` claims a time after ``now`` or a weight over the policy's cap."""
    return event.at > now or (event.weight is not None and event.weight > rules.max_event_weight)


def bounded(event: EngagementEvent, now: datetime, rules: EngagementRules) -> EngagementEvent:
    """``event`` with its time no later than ``now`` and its weight no more than the cap.

    An event from the future would otherwise move the decay reference past every later
    event, so none of them could raise the score again.
    """
    if not needs_bounds(event, now, rules):
        return event
    weight = None if event.weight is None else min(event.weight, rules.max_event_weight)
    return event.model_copy(update={"at": min(event.at, now), "weight": weight})


def add_engagement(
    score: float, as_of: datetime | None, event: Engagement, rules: EngagementRules
) -> tuple[float, datetime]:
    """Fold one engagement event into a decayed running score.

    The score is kept as (value, as-of instant), so state stays constant-size however many
    events arrive; an event older than ``as_of`` contributes its already-decayed weight.
    """
    weight = engagement_weight(event, rules)
    if as_of is None or event.at >= as_of:
        base = decayed(score, as_of, event.at, rules.half_life_days)
        return round(base + weight, 6), event.at
    return round(score + decayed(weight, event.at, as_of, rules.half_life_days), 6), as_of


def is_hand_raise(kind: EngagementKind, policy: Policy) -> bool:
    return kind in policy.qualification.fast_track_kinds


def qualifies(fit: float, engagement: float, hand_raised: bool, policy: Policy) -> tuple[str, str] | None:
    """``(tier, reason)`` when a nurturing lead with these scores becomes an MQL, else None."""
    rules = policy.qualification
    if hand_raised:
        return rules.fast_track_tier, "hand_raiser"
    if fit >= rules.fit_threshold and engagement >= rules.engagement_threshold:
        return tier_for(fit + engagement, policy), "score"
    return None


def qualifying_event(
    fit: float,
    score: float,
    as_of: datetime | None,
    hand_raised: bool,
    events: Iterable[E],
    policy: Policy,
) -> tuple[E, float] | None:
    """The first of ``events`` (in time order) at which a nurturing lead qualifies.

    Returns that event and the engagement score reached by then, so a shell can send one
    event carrying the accumulated weight instead of every page view, with the same result.
    ``events`` is read only up to that event, so it may be a lazy stream.
    """
    # ``qualifies`` unrolled: this loop reads every engagement event of a nurture.
    rules, qualification = policy.engagement, policy.qualification
    hand_raises, by_score = qualification.fast_track_kinds, fit >= qualification.fit_threshold
    threshold = qualification.engagement_threshold
    if not (hand_raised or by_score):
        # Below the fit threshold only a hand raise qualifies: look for one first, and fold
        # the score (the same folds, in the same order) only if it comes; most never do.
        read: list[E] = []
        for event in events:
            read.append(event)
            if event.kind in hand_raises:
                for earlier in read:
                    score, as_of = add_engagement(score, as_of, earlier, rules)
                return event, score
        return None
    for event in events:
        score, as_of = add_engagement(score, as_of, event, rules)
        if hand_raised or event.kind in hand_raises or (by_score and score >= threshold):
            return event, score
    return None


def tier_for(total_score: float, policy: Policy) -> str:
    """Highest tier whose minimum score is reached (the lowest tier if none is)."""
    ranked = sorted(policy.tiers, key=lambda tier: tier.min_score, reverse=True)
    for tier in ranked:
        if total_score >= tier.min_score:
            return tier.name
    return ranked[-1].name
