"""The lead as it arrives from marketing, and the engagement it generates."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StrictInt, ValidationError, field_validator

MAX_CUSTOM_FIELDS = 50


class CustomFieldsOverflow(StrEnum):
    """Which custom fields a merge keeps when both submissions together hold more than the cap."""

    KEEP_LATEST = "keep_latest"  # the newest submission's fields all stay; the oldest others go first
    KEEP_FIRST = "keep_first"  # fields already held stay; new ones are added while there is room
    REFUSE = "refuse"  # the API answers 422 to a submission that would overflow; a merge that slips through keeps first


class LeadSource(StrEnum):
    """Where a lead came from. A closed set, so it is safe as a metric label."""

    WEBINAR = "webinar"
    EBOOK = "ebook"
    PAID_SEARCH = "paid_search"
    ORGANIC = "organic"
    TRADE_SHOW = "trade_show"
    DEMO_REQUEST = "demo_request"
    CONTACT_REQUEST = "contact_request"
    REFERRAL = "referral"
    PARTNER = "partner"
    OTHER = "other"


class EngagementKind(StrEnum):
    """Implicit-interest signals that feed the engagement score."""

    PAGE_VIEW = "page_view"
    PRICING_PAGE = "pricing_page"
    EMAIL_CLICK = "email_click"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR = "webinar"
    DEMO_REQUEST = "demo_request"
    CONTACT_REQUEST = "contact_request"


class Lead(BaseModel):
    """A person submitted by a form, a list upload or a CRM sync.

    ``email``, ``first_name``, ``last_name`` and ``phone`` are personal data: they never go
    into logs or metric labels.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    company: str | None = Field(default=None, max_length=300)
    title: str | None = Field(default=None, max_length=300)
    company_size: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    industry: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    source: LeadSource = LeadSource.OTHER
    created_at: AwareDatetime | None = None
    custom: dict[Annotated[str, Field(max_length=100)], str | int | float | bool | None] = Field(
        default_factory=dict, max_length=MAX_CUSTOM_FIELDS
    )

    @field_validator("created_at", mode="before")
    @classmethod
    def _timestamp_not_number(cls, value: Any) -> Any:
        return _iso_timestamp(value, "created_at")

    @field_validator("country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @field_validator("industry")
    @classmethod
    def _lower_industry(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    def merged_with(self, newer: Lead, overflow: CustomFieldsOverflow = CustomFieldsOverflow.KEEP_LATEST) -> Lead:
        """This lead with blanks filled from a later submission of the same person.

        Never raises: each field comes from a valid lead, and the custom fields are capped
        by ``overflow`` (on a shared key the newer value wins, as always).
        """
        update: dict[str, Any] = {
            name: getattr(newer, name)
            for name in type(self).model_fields
            if name != "custom" and getattr(self, name) in (None, "") and getattr(newer, name) not in (None, "")
        }
        update["custom"] = merged_custom(self.custom, newer.custom, overflow)
        return self.model_copy(update=update)


def merged_custom(
    older: dict[str, Any], newer: dict[str, Any], overflow: CustomFieldsOverflow, cap: int = MAX_CUSTOM_FIELDS
) -> dict[str, Any]:
    """Custom fields of two submissions (the newer value wins on a shared key), at most ``cap``.

    Over the cap, ``KEEP_LATEST`` keeps every newer field and drops older ones in the order
    they were first written; ``KEEP_FIRST`` and ``REFUSE`` keep the older ones and add newer
    ones while there is room. Under the cap every policy gives ``{**older, **newer}``.
    """
    merged = {**older, **newer}
    if len(merged) <= cap:
        return merged
    if overflow is CustomFieldsOverflow.KEEP_LATEST:
        only_older = [key for key in older if key not in newer]
        room = max(cap - len(newer), 0)
        keep = set(newer) | set(only_older[len(only_older) - room:] if room else ())
    else:
        only_newer = [key for key in newer if key not in older]
        keep = set(older) | set(only_newer[: max(cap - len(older), 0)])
    return {key: value for key, value in merged.items() if key in keep}


class EngagementEvent(BaseModel):
    """One engagement signal (a page view, a download, a demo request...)."""

    model_config = ConfigDict(extra="forbid")

    kind: EngagementKind
    at: AwareDatetime
    weight: float | None = Field(default=None, ge=0, le=1000,
                                 description="overrides the policy weight, up to its engagement.max_event_weight")
    event_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                                 description="the sender's id of this event: a retry with the same id counts once")

    @field_validator("at", mode="before")
    @classmethod
    def _timestamp_not_number(cls, value: Any) -> Any:
        return _iso_timestamp(value, "at")


def _iso_timestamp(value: Any, name: str) -> Any:
    """Timestamps arrive as ISO 8601 text (or datetimes from Python callers), never as bare numbers."""
    if isinstance(value, (bool, int, float)):
        raise ValueError(f"{name} must be an ISO 8601 timestamp with a time zone, e.g. 2026-11-24T10:00:00Z")
    return value


def normalise_email(email: str) -> str:
    """Canonical form of an email address so one person maps to one journey.

    Lower-cases, strips sub-address tags (``jo+news@x.com`` -> ``jo@x.com``) and, for Gmail,
    the dots Gmail ignores.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    if not local or not domain:
        raise ValueError(f"not an email address: {email!r}")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def lead_id_for(email: str, key: bytes) -> str:
    """Pseudonymous id of a person: HMAC-SHA256 of the normalised email under the deployment's key.

    Stable for one key; without the key a list of emails cannot be matched to ids.
    """
    digest = hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()
    return f"L{digest[:20]}"


def workflow_id_for(lead_id: str) -> str:
    """Temporal workflow id of a lead's journey."""
    return f"lead-{lead_id}"


def lead_id_from_reference(reference: str, key: bytes) -> str:
    """Accept a lead id, a workflow id or an email and return the lead id (``key`` hashes emails)."""
    reference = reference.strip()
    if "@" in reference:
        return lead_id_for(reference, key)
    if reference.startswith("lead-"):
        return reference[len("lead-"):]
    return reference


def problems_without_values(error: ValidationError) -> list[str]:
    """One ``field.path: rule`` line per problem, never the offending value (it may be personal data)."""
    return [f"{field_path(item['loc'])}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False, include_context=False)]


def field_path(location: tuple[int | str, ...] | list[int | str]) -> str:
    """``custom.<key>.[key]``-style dotted path; a custom field's own name is masked (it may be personal)."""
    parts = [
        "<key>" if index and location[index - 1] == "custom" and isinstance(part, str) else part
        for index, part in enumerate(location)
    ]
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".") or "(top level)"


def as_utc(moment: datetime) -> datetime:
    """The same instant, expressed in UTC (all state is kept in UTC)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; give a time zone")
    return moment.astimezone(timezone.utc)
