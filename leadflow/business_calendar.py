"""Business-time arithmetic: SLA clocks that pause at night, at weekends and on holidays.

All functions take and return aware datetimes; results are in UTC. Arithmetic is done on
UTC instants, never on local wall-clock values, so daylight-saving changes are handled.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from functools import cache, cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_MAX_DAYS_SEARCHED = 3660
_WINDOWS_KEPT = 65536  # days of business hours memoised per calendar (179 years)
_NEVER = datetime.min.replace(tzinfo=timezone.utc)
_ONE_MICROSECOND = timedelta(microseconds=1)
_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)


class BusinessCalendar(BaseModel):
    """Opening hours in a time zone, on some weekdays, except on holidays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    workdays: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    opens: str = "09:00"
    closes: str = "17:00"
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as 'Europe/London')") from None
        return value

    @field_validator("workdays")
    @classmethod
    def _known_days(cls, value: list[str]) -> list[str]:
        days = [day.strip().lower()[:3] for day in value]
        unknown = [day for day in days if day not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; expected some of {list(WEEKDAYS)}")
        return days

    @field_validator("opens", "closes")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"expected a 24-hour clock time HH:MM (00:00 to 24:00), got {value!r}")
        return value

    @model_validator(mode="after")
    def _opens_before_closes(self) -> BusinessCalendar:
        if _seconds_of_day(self.opens) >= _seconds_of_day(self.closes):
            raise ValueError(f"opens ({self.opens}) must be earlier than closes ({self.closes})")
        return self

    def __hash__(self) -> int:  # lists are not hashable; the calendar's content is what counts
        return hash(self.content)

    @property
    def content(self) -> tuple[object, ...]:
        """What the calendar says, hashable: two calendars with the same content count the same hours."""
        return self.timezone, tuple(self.workdays), self.opens, self.closes, tuple(self.holidays)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    @cached_property
    def always_open(self) -> bool:
        """Open around the clock every day with no holidays: business time is wall time."""
        return (set(self.workdays) == set(WEEKDAYS) and self.opens == "00:00" and self.closes == "24:00"
                and not self.holidays)

    @cached_property
    def windows(self) -> dict[date, tuple[datetime, datetime] | None]:
        """Business hours of each day asked about so far (the calendar is frozen, so they never change)."""
        return {}

    @cached_property
    def closings(self) -> dict[tuple[date, int], datetime]:
        """``end_of_business_day``'s answers so far, by the business day counted from and the
        days after it: a follow-up cadence asks the same few all day."""
        return {}

    @cached_property
    def last_day(self) -> list[tuple[datetime, datetime, date | None]]:
        """``[(begins, ends, day)]``: the UTC span of the local date asked about last, when the
        UTC offset is the same all that day (a day with a daylight-saving change is never kept).
        One tuple, replaced whole, so a reader in another thread never sees half of two days."""
        return [(_NEVER, _NEVER, None)]

    # A copy (``model_copy(update=...)`` included) may have other hours: it starts with no memo.
    def __copy__(self) -> BusinessCalendar:
        return _forget_memos(super().__copy__())

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> BusinessCalendar:
        return _forget_memos(super().__deepcopy__(memo))

    @property
    def hours_per_day(self) -> float:
        return (_seconds_of_day(self.closes) - _seconds_of_day(self.opens)) / 3600


def _forget_memos(calendar: BusinessCalendar) -> BusinessCalendar:
    calendar.__dict__.pop("always_open", None)
    calendar.__dict__.pop("windows", None)
    calendar.__dict__.pop("closings", None)
    calendar.__dict__.pop("last_day", None)
    return calendar


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _seconds_of_day(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _local_instant(calendar: BusinessCalendar, day: date, clock: str) -> datetime:
    """The UTC instant at which the local clock in the calendar's zone shows ``clock`` on ``day``."""
    # Aware + timedelta is wall-clock arithmetic; zoneinfo then picks the offset in force.
    wall = datetime.combine(day, time(0), tzinfo=calendar.zone) + timedelta(seconds=_seconds_of_day(clock))
    return wall.astimezone(timezone.utc)


def is_business_day(calendar: BusinessCalendar, day: date) -> bool:
    return WEEKDAYS[day.weekday()] in calendar.workdays and day not in calendar.holidays


def _business_window(calendar: BusinessCalendar, day: date) -> tuple[datetime, datetime] | None:
    """Opening and closing instants of ``day`` (None on a closed day), memoised on the calendar
    because every SLA clock asks."""
    windows = calendar.windows
    if day in windows:
        return windows[day]
    window = None
    if is_business_day(calendar, day):
        window = _local_instant(calendar, day, calendar.opens), _local_instant(calendar, day, calendar.closes)
    if len(windows) < _WINDOWS_KEPT:
        windows[day] = window
    return window


def _local_date(calendar: BusinessCalendar, instant: datetime) -> date:
    memo = calendar.last_day
    begins, ends, day = memo[0]
    if begins <= instant < ends and day is not None:
        return day
    zone = calendar.zone
    day = instant.astimezone(zone).date()
    local_begins = datetime.combine(day, time(0), tzinfo=zone)
    local_ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    if local_begins.utcoffset() == (local_ends - _ONE_MICROSECOND).utcoffset() == local_ends.utcoffset():
        memo[0] = local_begins.astimezone(timezone.utc), local_ends.astimezone(timezone.utc), day
    return day


def _require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is timezone.utc:
        return instant
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: give a time zone")
    return instant.astimezone(timezone.utc)


def is_open(calendar: BusinessCalendar, instant: datetime) -> bool:
    """Whether ``instant`` falls inside business hours."""
    instant = _require_aware(instant)
    window = _business_window(calendar, _local_date(calendar, instant))
    return window is not None and window[0] <= instant < window[1]


def add_business_time(calendar: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """The instant when ``amount`` of business time has elapsed after ``start``.

    A start outside business hours counts from the next opening; ``amount`` zero gives that
    opening (or ``start`` itself when open).
    """
    if amount < _ZERO:
        raise ValueError("business time to add must not be negative")
    cursor = _require_aware(start)
    if calendar.always_open:
        return cursor + amount
    remaining = amount
    day = _local_date(calendar, cursor)
    for _ in range(_MAX_DAYS_SEARCHED):
        window = _business_window(calendar, day)
        if window is not None:
            opens, closes = window
            begin = max(cursor, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += _ONE_DAY
    raise ValueError(f"no business hours found within {_MAX_DAYS_SEARCHED} days of {start.isoformat()}")


def add_business_hours(calendar: BusinessCalendar, start: datetime, hours: float) -> datetime:
    """``add_business_time`` with the amount in (possibly fractional) hours."""
    return add_business_time(calendar, start, timedelta(hours=hours))


def business_time_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Business time elapsed from ``start`` to ``end`` (zero when ``end`` is not later)."""
    start, end = _require_aware(start), _require_aware(end)
    total = timedelta(0)
    if end <= start:
        return total
    if calendar.always_open:
        return end - start
    day = _local_date(calendar, start)
    last = _local_date(calendar, end)
    while day <= last:
        window = _business_window(calendar, day)
        if window is not None:
            begin, finish = max(window[0], start), min(window[1], end)
            if finish > begin:
                total += finish - begin
        day += _ONE_DAY
    return total


def end_of_business_day(calendar: BusinessCalendar, instant: datetime, days_after: int) -> datetime:
    """Closing time of the ``days_after``-th business day after the one ``instant`` falls in.

    An instant outside business hours belongs to the next business day.
    """
    if days_after < 0:
        raise ValueError("days_after must not be negative")
    day = _local_date(calendar, add_business_time(calendar, instant, _ZERO))
    closings = calendar.closings
    closing = closings.get((day, days_after))
    if closing is not None:
        return closing
    counted, counted_from = 0, day
    for _ in range(_MAX_DAYS_SEARCHED):
        window = _business_window(calendar, day)  # None on a day that is not a business day
        if window is not None:
            if counted == days_after:
                if len(closings) < _WINDOWS_KEPT:
                    closings[counted_from, days_after] = window[1]
                return window[1]
            counted += 1
        day += _ONE_DAY
    raise ValueError(f"no business day found within {_MAX_DAYS_SEARCHED} days of {instant.isoformat()}")
