"""The lead as it arrives from marketing, and the engagement it generates."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StrictInt, field_validator


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
    custom: dict[Annotated[str, Field(max_length=100)], str | int | float | bool | None] = Field(default_factory=dict, max_length=50)

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

    @property
    def lead_id(self) -> str:
        return lead_id_for(self.email)

    def merged_with(self, newer: Lead) -> Lead:
        """This lead with blanks filled from a later submission of the same person."""
        data: dict[str, Any] = self.model_dump()
        for name, value in newer.model_dump().items():
            if name == "custom":
                data["custom"] = {**self.custom, **newer.custom}
            elif data.get(name) in (None, "") and value not in (None, ""):
                data[name] = value
        return Lead.model_validate(data)


class EngagementEvent(BaseModel):
    """One engagement signal (a page view, a download, a demo request...)."""

    model_config = ConfigDict(extra="forbid")

    kind: EngagementKind
    at: AwareDatetime
    weight: float | None = Field(default=None, ge=0, le=1000, description="overrides the policy weight")

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


def lead_id_for(email: str) -> str:
    """Stable, non-reversible id of a person (no PII in workflow ids, logs or URLs)."""
    digest = hashlib.sha256(normalise_email(email).encode()).hexdigest()
    return f"L{digest[:20]}"


def workflow_id_for(lead_id: str) -> str:
    """Temporal workflow id of a lead's journey."""
    return f"lead-{lead_id}"


def lead_id_from_reference(reference: str) -> str:
    """Accept a lead id, a workflow id or an email and return the lead id."""
    reference = reference.strip()
    if "@" in reference:
        return lead_id_for(reference)
    if reference.startswith("lead-"):
        return reference[len("lead-"):]
    return reference


def as_utc(moment: datetime) -> datetime:
    """The same instant, expressed in UTC (all state is kept in UTC)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; give a time zone")
    return moment.astimezone(timezone.utc)
