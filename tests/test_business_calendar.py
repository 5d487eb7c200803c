"""Business-time arithmetic (``leadflow.business_calendar``): examples, DST, properties, validation."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadflow.business_calendar import (
    WEEKDAYS,
    BusinessCalendar,
    add_business_hours,
    add_business_time,
    business_time_between,
    end_of_business_day,
    is_business_day,
    is_open,
)

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)

OFFICE_NY = BusinessCalendar(timezone="America/New_York", workdays=["mon", "tue", "wed", "thu", "fri"], opens="09:00", closes="17:00")
OFFICE_LONDON = BusinessCalendar(timezone="Europe/London", opens="09:00", closes="17:00")
ALWAYS = BusinessCalendar(timezone="UTC", workdays=list(WEEKDAYS), opens="00:00", closes="24:00")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def assert_utc(moment: datetime) -> None:
    assert moment.utcoffset() == timedelta(0), f"{moment!r} is not in UTC"


# --- the SLA example from the brief ----------------------------------------------------------


def test_friday_evening_lead_with_one_hour_sla_is_due_monday_ten():
    arrival = ny(2026, 11, 20, 17, 30)  # Friday, after closing
    due = add_business_hours(OFFICE_NY, arrival, 1)
    assert due == ny(2026, 11, 23, 10, 0)  # Monday
    assert due.astimezone(NEW_YORK).hour == 10
    assert_utc(due)
    assert business_time_between(OFFICE_NY, arrival, due) == HOUR


def test_monday_holiday_moves_the_deadline_to_tuesday():
    calendar = OFFICE_NY.model_copy(update={"holidays": [date(2026, 11, 23)]})
    arrival = ny(2026, 11, 20, 17, 30)
    assert add_business_hours(calendar, arrival, 1) == ny(2026, 11, 24, 10, 0)
    assert not is_business_day(calendar, date(2026, 11, 23))
    assert not is_open(calendar, ny(2026, 11, 23, 12, 0))


def test_holidays_are_parsed_from_iso_strings():
    calendar = BusinessCalendar.model_validate({"timezone": "America/New_York", "holidays": ["2026-11-23"]})
    assert calendar.holidays == [date(2026, 11, 23)]
    assert add_business_hours(calendar, ny(2026, 11, 20, 17, 30), 1) == ny(2026, 11, 24, 10, 0)


# --- more examples ---------------------------------------------------------------------------


def test_inside_hours_same_day():
    start = ny(2026, 11, 18, 10, 15)  # Wednesday
    assert add_business_hours(OFFICE_NY, start, 2.5) == ny(2026, 11, 18, 12, 45)
    assert add_business_time(OFFICE_NY, start, timedelta(0)) == start


def test_ending_exactly_at_closing_time_stays_on_that_day():
    start = ny(2026, 11, 18, 9, 0)
    due = add_business_hours(OFFICE_NY, start, 8)
    assert due == ny(2026, 11, 18, 17, 0)
    assert not is_open(OFFICE_NY, due)
    assert is_open(OFFICE_NY, due - TICK)


def test_spanning_a_night():
    start = ny(2026, 11, 18, 16, 0)  # Wednesday, one hour before closing
    assert add_business_hours(OFFICE_NY, start, 3) == ny(2026, 11, 19, 11, 0)
    assert business_time_between(OFFICE_NY, start, ny(2026, 11, 19, 11, 0)) == timedelta(hours=3)
    # a whole night contributes nothing
    assert business_time_between(OFFICE_NY, ny(2026, 11, 18, 17, 0), ny(2026, 11, 19, 9, 0)) == timedelta(0)


def test_spanning_a_weekend_and_a_whole_week():
    start = ny(2026, 11, 13, 12, 0)  # Friday noon
    assert add_business_hours(OFFICE_NY, start, 40) == ny(2026, 11, 20, 12, 0)


def test_before_opening_counts_from_opening():
    assert add_business_hours(OFFICE_NY, ny(2026, 11, 18, 6, 0), 1) == ny(2026, 11, 18, 10, 0)
    assert add_business_time(OFFICE_NY, ny(2026, 11, 18, 6, 0), timedelta(0)) == ny(2026, 11, 18, 9, 0)
    # at closing time, zero business time means the next opening
    assert add_business_time(OFFICE_NY, ny(2026, 11, 18, 17, 0), timedelta(0)) == ny(2026, 11, 19, 9, 0)


def test_fractional_hours_and_half_hour_time_zone():
    kolkata = BusinessCalendar(timezone="Asia/Kolkata", opens="10:00", closes="18:30")
    start = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # 09:30 in Kolkata, before opening
    due = add_business_hours(kolkata, start, 0.25)
    assert due.astimezone(ZoneInfo("Asia/Kolkata")) == datetime(2026, 11, 18, 10, 15, tzinfo=ZoneInfo("Asia/Kolkata"))


def test_weekday_names_are_normalised():
    calendar = BusinessCalendar(workdays=["Monday", " TUE", "wednesday"])
    assert calendar.workdays == ["mon", "tue", "wed"]
    assert add_business_hours(calendar, datetime(2026, 11, 18, 16, 0, tzinfo=UTC), 2) == datetime(
        2026, 11, 23, 10, 0, tzinfo=UTC
    )


def test_business_time_between_is_zero_when_end_is_not_later():
    start = ny(2026, 11, 18, 12, 0)
    assert business_time_between(OFFICE_NY, start, start) == timedelta(0)
    assert business_time_between(OFFICE_NY, start, start - HOUR) == timedelta(0)


def test_hours_per_day():
    assert OFFICE_NY.hours_per_day == 8
    assert ALWAYS.hours_per_day == 24


# --- daylight saving -------------------------------------------------------------------------


def test_new_york_spring_forward_weekend_keeps_local_wall_time():
    # DST starts Sunday 2026-03-08; Friday is EST (UTC-5), Monday is EDT (UTC-4).
    due = add_business_hours(OFFICE_NY, ny(2026, 3, 6, 16, 30), 1)
    assert due.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 9, 9, 30)
    assert due == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert business_time_between(OFFICE_NY, ny(2026, 3, 6, 9, 0), ny(2026, 3, 9, 17, 0)) == timedelta(hours=16)


def test_new_york_fall_back_weekend_keeps_local_wall_time():
    # DST ends Sunday 2026-11-01.
    due = add_business_hours(OFFICE_NY, ny(2026, 10, 30, 16, 0), 2)
    assert due.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 11, 2, 10, 0)
    assert due == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def test_london_spring_forward_weekend_keeps_local_wall_time():
    # BST starts Sunday 2026-03-29: Friday is UTC+0, Monday is UTC+1.
    due = add_business_hours(OFFICE_LONDON, london(2026, 3, 27, 16, 0), 2)
    assert due.astimezone(LONDON).replace(tzinfo=None) == datetime(2026, 3, 30, 10, 0)
    assert due == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)
    assert end_of_business_day(OFFICE_LONDON, london(2026, 3, 27, 16, 0), 1) == datetime(2026, 3, 30, 16, 0, tzinfo=UTC)


def test_round_the_clock_calendar_on_dst_days_counts_real_hours():
    london_always = BusinessCalendar(timezone="Europe/London", workdays=list(WEEKDAYS), opens="00:00", closes="24:00")
    # 2026-03-29 has 23 hours in London, 2026-10-25 has 25.
    assert business_time_between(london_always, london(2026, 3, 29), london(2026, 3, 30)) == timedelta(hours=23)
    assert business_time_between(london_always, london(2026, 10, 25), london(2026, 10, 26)) == timedelta(hours=25)
    start = london(2026, 3, 28, 12, 0)
    due = add_business_time(london_always, start, timedelta(hours=24))
    assert due - start == timedelta(hours=24)
    assert due.astimezone(LONDON).replace(tzinfo=None) == datetime(2026, 3, 29, 13, 0)


# --- round the clock -------------------------------------------------------------------------


def test_round_the_clock_business_time_is_wall_time():
    start = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    for amount in (timedelta(0), timedelta(seconds=1), HOUR, timedelta(days=3, minutes=7)):
        assert add_business_time(ALWAYS, start, amount) == start + amount
    assert is_open(ALWAYS, datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    assert is_open(ALWAYS, datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC))
    assert end_of_business_day(ALWAYS, start, 0) == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    assert end_of_business_day(ALWAYS, start, 2) == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def test_a_copy_with_other_hours_is_not_answered_from_the_originals_memo():
    """Days and the round-the-clock shortcut are memoised per calendar; a copy starts afresh."""
    start = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    assert add_business_hours(ALWAYS, start, 24) == start + timedelta(hours=24)
    with_holiday = ALWAYS.model_copy(update={"holidays": [date(2027, 1, 1)]})
    assert not with_holiday.always_open and ALWAYS.always_open
    assert add_business_hours(with_holiday, start, 24) == start + timedelta(hours=48)
    office = OFFICE_NY.model_copy()
    assert is_open(office, ny(2026, 11, 23, 10, 0))
    friday = ny(2026, 11, 20, 10, 0)
    assert end_of_business_day(office, friday, 1) == ny(2026, 11, 23, 17, 0)
    closed = office.model_copy(update={"holidays": [date(2026, 11, 23)]}, deep=True)
    assert not is_open(closed, ny(2026, 11, 23, 10, 0)) and is_open(office, ny(2026, 11, 23, 10, 0))
    assert end_of_business_day(closed, friday, 1) == ny(2026, 11, 24, 17, 0)


# --- is_open and end_of_business_day ---------------------------------------------------------


def test_is_open_boundaries():
    assert not is_open(OFFICE_NY, ny(2026, 11, 18, 8, 59, 59))
    assert is_open(OFFICE_NY, ny(2026, 11, 18, 9, 0))
    assert is_open(OFFICE_NY, ny(2026, 11, 18, 16, 59, 59))
    assert not is_open(OFFICE_NY, ny(2026, 11, 18, 17, 0))
    assert not is_open(OFFICE_NY, ny(2026, 11, 21, 12, 0))  # Saturday
    # the same instant expressed in UTC gives the same answer
    assert is_open(OFFICE_NY, datetime(2026, 11, 18, 14, 0, tzinfo=UTC))


def test_end_of_business_day():
    wednesday = ny(2026, 11, 18, 11, 0)
    assert end_of_business_day(OFFICE_NY, wednesday, 0) == ny(2026, 11, 18, 17, 0)
    assert end_of_business_day(OFFICE_NY, wednesday, 1) == ny(2026, 11, 19, 17, 0)
    assert end_of_business_day(OFFICE_NY, wednesday, 3) == ny(2026, 11, 23, 17, 0)  # skips the weekend
    # after closing belongs to the next business day
    assert end_of_business_day(OFFICE_NY, ny(2026, 11, 20, 18, 0), 0) == ny(2026, 11, 23, 17, 0)
    assert_utc(end_of_business_day(OFFICE_NY, wednesday, 0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="naive"):
        add_business_time(OFFICE_NY, datetime(2026, 11, 18, 10, 0), HOUR)
    with pytest.raises(ValueError, match="naive"):
        is_open(OFFICE_NY, datetime(2026, 11, 18, 10, 0))
    with pytest.raises(ValueError, match="negative"):
        add_business_time(OFFICE_NY, ny(2026, 11, 18, 10, 0), -HOUR)
    with pytest.raises(ValueError, match="negative"):
        end_of_business_day(OFFICE_NY, ny(2026, 11, 18, 10, 0), -1)


def test_calendar_without_any_business_day_in_reach_fails_clearly():
    # the only workday is always a holiday for ten years
    sundays = [date(2026, 11, 22) + timedelta(weeks=week) for week in range(530)]
    calendar = BusinessCalendar(workdays=["sun"], holidays=sundays)
    with pytest.raises(ValueError, match="no business hours"):
        add_business_hours(calendar, datetime(2026, 11, 18, tzinfo=UTC), 1)


# --- validation ------------------------------------------------------------------------------


def test_unknown_time_zone_is_rejected():
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus_Mons'"):
        BusinessCalendar(timezone="Mars/Olympus_Mons")


def test_opens_must_be_before_closes():
    with pytest.raises(ValidationError, match=r"opens \(17:00\) must be earlier than closes \(09:00\)"):
        BusinessCalendar(opens="17:00", closes="09:00")
    with pytest.raises(ValidationError, match="must be earlier"):
        BusinessCalendar(opens="09:00", closes="09:00")


def test_unknown_weekday_is_rejected():
    with pytest.raises(ValidationError, match=r"unknown weekday\(s\) \['fun'\]"):
        BusinessCalendar(workdays=["mon", "funday"])
    with pytest.raises(ValidationError, match="workdays"):
        BusinessCalendar(workdays=[])


@pytest.mark.parametrize("clock", ["9:00", "09:60", "24:01", "25:00", "0900", "9am", ""])
def test_bad_clock_format_is_rejected(clock):
    with pytest.raises(ValidationError, match="expected a 24-hour clock time HH:MM"):
        BusinessCalendar(opens=clock)


def test_extra_fields_are_rejected():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BusinessCalendar(timezone="UTC", weekend=["sat"])


# --- properties ------------------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Sydney"]


@st.composite
def calendars(draw) -> BusinessCalendar:
    opens = draw(st.integers(0, 23))
    closes = draw(st.integers(opens + 1, 24))
    return BusinessCalendar(
        timezone=draw(st.sampled_from(ZONES)),
        workdays=draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)),
        opens=f"{opens:02d}:00",
        closes=f"{closes:02d}:00",
        holidays=draw(st.lists(st.dates(date(2019, 12, 25), date(2031, 1, 31)), max_size=40)),
    )


instants = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from([UTC] + [ZoneInfo(name) for name in ZONES[1:]]),
    allow_imaginary=False,
)
amounts = st.integers(0, 200 * 3600).map(lambda seconds: timedelta(seconds=seconds))
PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(calendar=calendars(), start=instants, amount=amounts)
def test_business_time_between_inverts_add(calendar, start, amount):
    due = add_business_time(calendar, start, amount)
    assert_utc(due)
    assert due >= start
    assert business_time_between(calendar, start, due) == amount


@PROPERTY
@given(calendar=calendars(), start=instants, first=amounts, second=amounts)
def test_add_is_monotonic_in_amount(calendar, start, first, second):
    small, large = sorted((first, second))
    assert add_business_time(calendar, start, small) <= add_business_time(calendar, start, large)


@PROPERTY
@given(calendar=calendars(), start=instants, first=amounts, second=amounts.filter(lambda amount: amount > timedelta(0)))
def test_adding_a_sum_equals_chaining_two_adds(calendar, start, first, second):
    # ``second`` > 0: adding zero to an instant that sits exactly at a closing time moves it
    # to the next opening (documented: zero business time from a closed instant is the next
    # opening), so chaining with a zero second step is not an identity at closing times.
    chained = add_business_time(calendar, add_business_time(calendar, start, first), second)
    assert add_business_time(calendar, start, first + second) == chained


@PROPERTY
@given(calendar=calendars(), start=instants, amount=amounts)
def test_result_lies_in_business_hours_or_at_a_closing(calendar, start, amount):
    due = add_business_time(calendar, start, amount)
    if amount > timedelta(0):
        # the business second just before the result is open...
        assert is_open(calendar, due - TICK)
        # ...and the result is either still open or exactly the closing time of that day
        assert is_open(calendar, due) or end_of_business_day(calendar, due - TICK, 0) == due
    else:
        # zero: ``start`` itself when open, otherwise the next opening
        assert is_open(calendar, due)
        assert due == start if is_open(calendar, start) else due > start
        assert business_time_between(calendar, start, due) == timedelta(0)


@PROPERTY
@given(calendar=calendars(), start=instants, days=st.integers(0, 10))
def test_end_of_business_day_is_a_later_closing(calendar, start, days):
    end = end_of_business_day(calendar, start, days)
    assert_utc(end)
    assert end >= start
    assert end > start if days == 0 else end > end_of_business_day(calendar, start, days - 1)
    assert not is_open(calendar, end) or is_open(calendar, end) and calendar.closes == "24:00"


@PROPERTY
@given(start=instants, amount=amounts, zone=st.sampled_from(ZONES))
def test_round_the_clock_add_equals_wall_time(start, amount, zone):
    calendar = BusinessCalendar(timezone=zone, workdays=list(WEEKDAYS), opens="00:00", closes="24:00")
    # elapsed time, not wall-clock arithmetic in the start's zone (``aware + timedelta``)
    end = start.astimezone(UTC) + amount
    assert add_business_time(calendar, start, amount) == end
    assert business_time_between(calendar, start, end) == amount


@PROPERTY
@given(calendar=calendars(), start=instants, middle=amounts, end=amounts)
def test_business_time_between_is_additive(calendar, start, middle, end):
    a = start.astimezone(UTC)  # so that + and - below are elapsed time, not wall-clock time
    b = a + min(middle, end)
    c = a + max(middle, end)
    assert business_time_between(calendar, a, c) == business_time_between(calendar, a, b) + business_time_between(
        calendar, b, c
    )
    assert business_time_between(calendar, a, c) <= c - a


@PROPERTY
@given(calendar=calendars(), moments=st.lists(instants, min_size=1, max_size=30))
def test_the_local_date_memo_answers_as_the_time_zone_does(calendar, moments):
    # ``_local_date`` keeps the UTC span of the last local date it was asked about (never one
    # with a daylight-saving change in it): whatever order instants come in, same answers.
    from leadflow.business_calendar import _local_date

    for moment in moments:
        instant = moment.astimezone(UTC)
        assert _local_date(calendar, instant) == instant.astimezone(calendar.zone).date()
        assert _local_date(calendar, instant - TICK) == (instant - TICK).astimezone(calendar.zone).date()


@PROPERTY
@given(calendar=calendars(), asks=st.lists(st.tuples(instants, st.integers(0, 12)), min_size=1, max_size=20))
def test_the_closing_time_memo_answers_as_counting_afresh(calendar, asks):
    # ``end_of_business_day`` keeps its answers by the day counted from: asked in any order,
    # the same as a copy of the calendar (which starts with no memo) counts for itself.
    for moment, days_after in asks:
        assert end_of_business_day(calendar, moment, days_after) == end_of_business_day(
            calendar.model_copy(), moment, days_after)


def test_the_local_date_memo_is_not_kept_across_a_daylight_saving_change():
    from leadflow.business_calendar import _local_date

    new_york = BusinessCalendar(timezone="America/New_York")
    change = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 02:00 EST becomes 03:00 EDT
    for instant in (change - timedelta(hours=3), change, datetime(2026, 3, 9, 3, 59, tzinfo=UTC),
                    datetime(2026, 3, 9, 4, 0, tzinfo=UTC), datetime(2026, 3, 8, 4, 59, tzinfo=UTC)):
        assert _local_date(new_york, instant) == instant.astimezone(new_york.zone).date()
    assert _local_date(new_york, datetime(2026, 3, 9, 12, tzinfo=UTC)) == date(2026, 3, 9)
    assert new_york.last_day[0][2] == date(2026, 3, 9)  # a plain 24-hour day is kept
    assert _local_date(new_york, change) == date(2026, 3, 8)
    assert new_york.last_day[0][2] == date(2026, 3, 9)  # the 23-hour day is not
