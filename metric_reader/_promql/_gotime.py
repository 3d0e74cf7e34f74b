"""The calendar fields of a Unix time in UTC, as Go's ``time`` computes them.

Python's ``datetime`` stops at year 9999; Go's ``time.Unix(sec, 0).UTC()`` takes any int64
(``year(vector(1e15))``, or the smallest int64 that ``int64(NaN)`` gives on amd64) and
wraps as Go's uint64 arithmetic does. This is Go's ``absDate`` (time/time.go), ported.
"""

from __future__ import annotations

from .._core import record

_SECONDS_PER_DAY = 86400
_DAYS_PER_400_YEARS = 365 * 400 + 97
_DAYS_PER_100_YEARS = 365 * 100 + 24
_DAYS_PER_4_YEARS = 365 * 4 + 1
_ABSOLUTE_ZERO_YEAR = -292277022399
_UNIX_TO_INTERNAL = (1969 * 365 + 1969 // 4 - 1969 // 100 + 1969 // 400) * _SECONDS_PER_DAY
_ABSOLUTE_TO_INTERNAL = (_ABSOLUTE_ZERO_YEAR - 1) * 3652425 * _SECONDS_PER_DAY // 10000
_UNIX_TO_ABSOLUTE = _UNIX_TO_INTERNAL - _ABSOLUTE_TO_INTERNAL
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)
_MONDAY = 1


@record(frozen=True, slots=True)
class Civil:
    year: int
    month: int
    """1 to 12."""
    day: int
    """Day of the month, from 1."""
    year_day: int
    """From 1."""
    weekday: int
    """0 is Sunday."""
    hour: int
    minute: int


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and is_leap(year):
        return 29
    return _DAYS_BEFORE[month] - _DAYS_BEFORE[month - 1]


def civil(unix_seconds: int) -> Civil:
    """The UTC calendar fields of ``time.Unix(unix_seconds, 0)`` (an int64)."""
    absolute = (unix_seconds + _UNIX_TO_ABSOLUTE) % 2**64  # Go: uint64(sec + unixToAbsolute)
    day = absolute // _SECONDS_PER_DAY
    n = day // _DAYS_PER_400_YEARS
    year = 400 * n
    day -= _DAYS_PER_400_YEARS * n
    n = day // _DAYS_PER_100_YEARS
    n -= n >> 2
    year += 100 * n
    day -= _DAYS_PER_100_YEARS * n
    n = day // _DAYS_PER_4_YEARS
    year += 4 * n
    day -= _DAYS_PER_4_YEARS * n
    n = day // 365
    n -= n >> 2
    year += n
    day -= 365 * n
    year = _int64(year + _ABSOLUTE_ZERO_YEAR)
    year_day = day
    month, month_day = _month_day(year, day)
    return Civil(
        year=year,
        month=month,
        day=month_day,
        year_day=year_day + 1,
        weekday=(absolute + _MONDAY * _SECONDS_PER_DAY)
        % (7 * _SECONDS_PER_DAY)
        // _SECONDS_PER_DAY,
        hour=absolute % _SECONDS_PER_DAY // 3600,
        minute=absolute % 3600 // 60,
    )


def _month_day(year: int, day: int) -> tuple[int, int]:
    if is_leap(year):
        if day == 31 + 29 - 1:
            return 2, 29
        if day > 31 + 29 - 1:
            day -= 1  # after the leap day: pretend it was not there
    month = day // 31  # may be one month short
    end = _DAYS_BEFORE[month + 1]
    if day >= end:
        month += 1
        begin = end
    else:
        begin = _DAYS_BEFORE[month]
    return month + 1, day - begin + 1


def _int64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63
