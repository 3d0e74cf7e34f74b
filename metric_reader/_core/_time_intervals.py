"""Alertmanager's time intervals: named sets of times of day, weekdays, days of the month,
months and years, in a time zone, that mute calls (``mute_time_intervals``) or allow them
only then (``active_time_intervals``).

The syntax and the meaning are those of Alertmanager's ``timeinterval`` package and its
``time_intervals`` configuration, written in TOML::

    [[time_intervals]]
    name = "offhours"
    [[time_intervals.time_intervals]]
    times = [{start_time = "17:00", end_time = "24:00"}]
    weekdays = ["monday:friday"]
    location = "Europe/Berlin"

A time range includes its start minute and excludes its end minute; weekdays, days of the
month, months and years are inclusive ranges; a negative day of the month counts from the
month's end (-1 is the last day); a field not given allows every value; an interval is in
effect when every given field allows the moment, and a named set when any of its intervals
is. Each refusal names its place (``rules.toml: time_intervals[0].time_intervals[1]
.weekdays[0]: ...``) and says what is allowed. ``docs/time-intervals.md`` has the rest.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._plugin_settings import toml_type
from ._record import record

Ranges = tuple[tuple[int, int], ...]
"""Inclusive ``(begin, end)`` pairs; for ``times``, minutes of the day, end excluded."""
_Member = Callable[[str, str], int]  # reads one end of a range; ValueError naming ``at``
_Reader = Callable[[object, str], tuple[int, int]]  # reads one item of a list

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
"""Go's numbering, which Alertmanager's ranges follow: 0 is Sunday, so a range cannot run
from Saturday to Sunday (write ``saturday`` and ``sunday``)."""
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_SET_KEYS = ("name", "time_intervals", "intervals")
_SPEC_KEYS = ("times", "weekdays", "days_of_month", "months", "years", "location")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")  # Alertmanager's validTime
_INTEGER = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi reads
_INT64 = 2**63 - 1
_LOCAL = "Local"


@record(frozen=True, slots=True)
class TimeInterval:
    """One entry of a named set. ``None`` for a field means it was not given: every value
    is allowed. An empty tuple (``weekdays = []``) allows none, as in Alertmanager.
    ``weekdays`` count from Sunday = 0; ``days_of_month`` may be negative (-1 is the last
    day); ``location`` is an IANA time zone name, ``"Local"`` (the host's zone) or ``None``
    (UTC)."""

    times: Ranges | None = None
    weekdays: Ranges | None = None
    days_of_month: Ranges | None = None
    months: Ranges | None = None
    years: Ranges | None = None
    location: str | None = None

    def contains(self, t: datetime) -> bool:
        """Whether ``t`` (timezone-aware), read in the interval's location, is in it:
        Alertmanager's ``TimeInterval.ContainsTime`` of ``t.UTC()``."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"{t.isoformat()} has no time zone: give an aware datetime")
        zone = _zone(self.location)
        local = t.astimezone() if zone is None else t.astimezone(zone)
        if self.times is not None:
            minute = local.hour * 60 + local.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.days_of_month is not None and not _day_allowed(self.days_of_month, local):
            return False
        if self.months is not None and not _within(self.months, local.month):
            return False
        if self.weekdays is not None and not _within(self.weekdays, local.isoweekday() % 7):
            return False
        return self.years is None or _within(self.years, local.year)


def _within(ranges: Ranges, value: int) -> bool:
    return any(begin <= value <= end for begin, end in ranges)


def _day_allowed(ranges: Ranges, local: datetime) -> bool:
    """Negative days counted from the month's end. Alertmanager then skips a range starting
    after the month's end and clamps the others' ends to the month (1:31 is every day of
    February): neither changes which days of the month fall within a range."""
    days = calendar.monthrange(local.year, local.month)[1]
    return any(
        (days + first + 1 if first < 0 else first)
        <= local.day
        <= (days + last + 1 if last < 0 else last)
        for first, last in ranges
    )


@cache
def _zone(name: str | None) -> tzinfo | None:
    """The zone of ``location``; ``None`` for the host's (Go's ``Local``)."""
    if name is None or name in ("", "UTC"):
        return UTC
    if name == _LOCAL:
        return None
    return ZoneInfo(name)


def matching_time_intervals(
    names: Iterable[str], intervals: Mapping[str, Sequence[TimeInterval]], t: datetime
) -> tuple[str, ...]:
    """The names among ``names`` whose set contains ``t`` (Alertmanager's
    ``Intervener.Mutes``): to say which window muted a call. ``KeyError`` for a name not
    defined: ``check_time_interval_names`` refuses those when the configuration loads."""
    return tuple(name for name in names if any(i.contains(t) for i in intervals[name]))


def muted(
    mute: Sequence[str],
    active: Sequence[str],
    intervals: Mapping[str, Sequence[TimeInterval]],
    t: datetime,
) -> bool:
    """Whether a route or rule with these ``mute_time_intervals`` and
    ``active_time_intervals`` is muted at ``t``: when any mute set contains it, or when
    active sets are given and none contains it (Alertmanager's TimeMuteStage and
    TimeActiveStage)."""
    if matching_time_intervals(mute, intervals, t):
        return True
    return bool(active) and not matching_time_intervals(active, intervals, t)


def check_time_interval_names(
    names: Iterable[str], intervals: Mapping[str, object], where: str
) -> None:
    """Refuse a ``mute_time_intervals`` or ``active_time_intervals`` entry naming no
    ``[[time_intervals]]`` set; ``where`` is the place of the list (``rules.toml:
    rules[2].mute_time_intervals``)."""
    for index, name in enumerate(names):
        if name not in intervals:
            defined = ", ".join(f'"{n}"' for n in intervals) or "none"
            raise ValueError(
                f'{where}[{index}]: undefined time interval "{name}": define it in a '
                f"[[time_intervals]] table (defined: {defined})"
            )


def parse_time_intervals(value: object, where: str) -> dict[str, tuple[TimeInterval, ...]]:
    """Read the ``time_intervals`` array of tables of a TOML file (``where`` names the file)
    into each name's intervals; ``ValueError`` for whatever Alertmanager refuses, and for a
    month out of 1..12, which Alertmanager takes and never matches."""
    place = "time_intervals"
    if not isinstance(value, list):
        raise ValueError(
            f"{where}: {place}: must be an array of tables ([[time_intervals]]), "
            f"not {toml_type(value)}"
        )
    sets: dict[str, tuple[TimeInterval, ...]] = {}
    for index, entry in enumerate(value):
        at = f"{where}: {place}[{index}]"
        table = _table(entry, at, _SET_KEYS, "name and time_intervals")
        if "time_intervals" in table and "intervals" in table:
            raise ValueError(
                f"{at}: both time_intervals and intervals: they are the same list, give one"
            )
        name = table.get("name")
        if name is None or name == "":
            raise ValueError(f"{at}: missing name: every time interval needs one")
        if not isinstance(name, str):
            raise ValueError(f"{at}.name: must be a string, not {toml_type(name)}")
        if name in sets:
            raise ValueError(f'{at}.name: time interval "{name}" is not unique')
        key = "intervals" if "intervals" in table else "time_intervals"
        specs = table.get(key, [])
        if not isinstance(specs, list):
            raise ValueError(
                f"{at}.{key}: must be an array of tables ([[time_intervals.{key}]]), "
                f"not {toml_type(specs)}"
            )
        sets[name] = tuple(_interval(spec, f"{at}.{key}[{i}]") for i, spec in enumerate(specs))
    return sets


def _table(value: object, at: str, keys: Sequence[str], allowed: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"{at}: must be a table, not {toml_type(value)}")
    for key in value:
        if key not in keys:
            raise ValueError(f'{at}: unknown key "{key}": use {allowed}')
    return value


def _interval(spec: object, at: str) -> TimeInterval:
    table = _table(spec, at, _SPEC_KEYS, ", ".join(_SPEC_KEYS))
    location = table.get("location")
    if location is not None:
        location = _location(location, f"{at}.location")
    return TimeInterval(
        times=_list(table, "times", at, _time_range),
        weekdays=_list(table, "weekdays", at, _weekday_range),
        days_of_month=_list(table, "days_of_month", at, _day_range),
        months=_list(table, "months", at, _month_range),
        years=_list(table, "years", at, _year_range),
        location=location,
    )


def _list(
    table: Mapping[str, object],
    key: str,
    at: str,
    read: _Reader,
) -> Ranges | None:
    if key not in table:
        return None
    items = table[key]
    if not isinstance(items, list):
        raise ValueError(f"{at}.{key}: must be an array, not {toml_type(items)}")
    return tuple(read(item, f"{at}.{key}[{i}]") for i, item in enumerate(items))


def _time_range(value: object, at: str) -> tuple[int, int]:
    table = _table(value, at, ("start_time", "end_time"), "start_time and end_time")
    if not table.get("start_time") or not table.get("end_time"):
        raise ValueError(f"{at}: both start_time and end_time must be given")
    start = _minutes(table["start_time"], f"{at}.start_time")
    end = _minutes(table["end_time"], f"{at}.end_time")
    if start >= end:
        raise ValueError(
            f"{at}: start_time {table['start_time']} is not before end_time "
            f"{table['end_time']}: a range cannot cross midnight, use two "
            '(e.g. "17:00" to "24:00" and "00:00" to "09:00")'
        )
    return start, end


def _minutes(value: object, at: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f'{at}: must be a string "HH:MM", not {toml_type(value)}')
    if not _TIME.fullmatch(value):
        raise ValueError(f'{at}: "{value}" is not a time: use HH:MM from 00:00 to 24:00')
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _weekday_range(value: object, at: str) -> tuple[int, int]:
    begin, end = _range(value, at, _weekday, "a weekday")
    if begin > end:
        raise ValueError(
            f'{at}: "{value}" ends before it starts: weeks run sunday to saturday, so '
            'write e.g. "friday:saturday" and "sunday:monday"'
        )
    return begin, end


def _weekday(text: str, at: str) -> int:
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    raise ValueError(
        f'{at}: "{text}" is not a weekday: use monday..sunday or a range like monday:friday'
    )


def _day_range(value: object, at: str) -> tuple[int, int]:
    begin, end = _range(value, at, _integer("a day of the month", _DAYS_ALLOWED), "a day")
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{at}: {day} is not a day of the month: {_DAYS_ALLOWED}")
    if begin < 0 < end:
        raise ValueError(f"{at}: {begin}:{end}: the end day must be negative when the start day is")
    # Alertmanager's check, months taken as 28 days: refuses what can never match.
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"{at}: end day {end} is always before start day {begin}")
    return begin, end


_DAYS_ALLOWED = "use 1..31, -31..-1 counting from the month's end, or a range like 1:5 or -3:-1"


def _month_range(value: object, at: str) -> tuple[int, int]:
    begin, end = _range(value, at, _month, "a month")
    if begin > end:
        raise ValueError(
            f"{at}: end month {MONTHS[end - 1]} is before start month {MONTHS[begin - 1]}: "
            'a range cannot cross the new year, use two (e.g. "november:december" and '
            '"january:february")'
        )
    return begin, end


_MONTHS_ALLOWED = "use january..december, 1..12, or a range like may:august"


def _month(text: str, at: str) -> int:
    if text in MONTHS:
        return MONTHS.index(text) + 1
    number = _integer("a month", _MONTHS_ALLOWED)(text, at)
    if not 1 <= number <= 12:
        raise ValueError(f'{at}: "{text}" is not a month: {_MONTHS_ALLOWED}')
    return number


def _year_range(value: object, at: str) -> tuple[int, int]:
    allowed = "use a year like 2024 or a range like 2020:2022"
    begin, end = _range(value, at, _integer("a year", allowed), "a year")
    if begin > end:
        raise ValueError(f"{at}: end year {end} is before start year {begin}")
    return begin, end


def _integer(what: str, allowed: str) -> _Member:
    def read(text: str, at: str) -> int:
        if _INTEGER.fullmatch(text) and abs(int(text)) <= _INT64:
            return int(text)
        raise ValueError(f'{at}: "{text}" is not {what}: {allowed}')

    return read


def _range(value: object, at: str, member: _Member, what: str) -> tuple[int, int]:
    """Alertmanager's ``stringableRangeFromString``: ``x`` or ``x:y``, case ignored. A TOML
    integer is read as its digits (YAML gives Alertmanager the same for ``[1, 5]``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{at}: must be a string naming {what} or a range, not {toml_type(value)}")
    text = value.lower()
    parts = text.split(":")
    if len(parts) > 2:
        raise ValueError(f'{at}: "{value}" is not a range: use start:end, one colon')
    begin = member(parts[0], at)
    end = member(parts[-1], at)
    return begin, end


def _location(value: object, at: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{at}: must be a string, not {toml_type(value)}")
    try:
        _zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f'{at}: "{value}" is not a time zone: use an IANA name such as '
            '"Europe/Berlin", or "UTC", or "Local" (the host\'s zone)'
        ) from None
    return value
