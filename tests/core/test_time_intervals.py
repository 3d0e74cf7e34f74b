"""Mute windows mean what Alertmanager's ``time_intervals`` mean: the examples of its
documentation (docs/configuration.md, ``<time_interval>``) and the cases of its
``timeinterval_test.go``, written in TOML, contain and exclude the same moments, and what
Alertmanager refuses is refused with the place named."""

from __future__ import annotations

import tomllib
from datetime import datetime

import pytest

from metric_reader._core import (
    TimeInterval,
    check_time_interval_names,
    matching_time_intervals,
    muted,
    parse_time_intervals,
)


def at(text: str) -> datetime:
    """A moment written as Go's ``time.RFC822Z``, as timeinterval_test.go writes them."""
    return datetime.strptime(text, "%d %b %y %H:%M %z")


def intervals(toml: str) -> tuple[TimeInterval, ...]:
    """The one set named "t" of ``toml``, the body of its ``[[time_intervals]]`` entry."""
    document = tomllib.loads('[[time_intervals]]\nname = "t"\n' + toml)
    return parse_time_intervals(document["time_intervals"], "rules.toml")["t"]


CASES = {
    # The documentation's example: 9:00 to 17:00, Monday to Friday, in Sydney.
    "business hours in Sydney": (
        """[[time_intervals.time_intervals]]
        times = [{start_time = "09:00", end_time = "17:00"}]
        weekdays = ["monday:friday"]
        location = "Australia/Sydney"
        """,
        ["06 Apr 21 13:00 +1000", "06 Apr 21 06:59 +0000", "01 Nov 21 09:00 +1100"],
        # 13:00 UTC is 23:00 in Sydney; 17:00 is excluded; 21:00 UTC on a Sunday in
        # October is 08:00 on Monday in Sydney, summer time (+11).
        ["06 Apr 21 13:00 +0000", "06 Apr 21 17:00 +1000", "31 Oct 21 21:00 +0000"],
    ),
    # The documentation's lists, in one interval; years and months by number and name.
    "first and last days of summer months 2020 to 2022": (
        """[[time_intervals.intervals]]
        days_of_month = ["1:5", "-3:-1"]
        months = ["may:august"]
        years = ["2020:2022", "2030"]
        """,
        ["01 May 20 00:00 +0000", "31 Aug 22 23:59 +0000", "28 Jun 21 12:00 +0000"],
        ["06 May 20 00:00 +0000", "27 Jun 21 12:00 +0000", "01 Sep 22 00:00 +0000"],
    ),
    # timeinterval_test.go: the last 3 days of each month, February of a leap year too.
    "negative days of the month": (
        """[[time_intervals.time_intervals]]
        days_of_month = ["-3:-1"]
        """,
        ["29 Jan 20 15:04 +0000", "31 Jan 20 15:04 +0000", "29 Feb 20 23:05 +0000"],
        ["27 Jan 20 15:04 +0000", "26 Feb 20 23:59 +0000", "01 Mar 20 00:00 +0000"],
    ),
    # Days beyond the month are clamped to it (the documentation's 1:31 in February); a
    # range starting after the month's end skips it (timeinterval_test.go).
    "clamped days": (
        """[[time_intervals.time_intervals]]
        months = ["2"]
        days_of_month = ["1:31"]
        years = ["2020"]
        [[time_intervals.time_intervals]]
        months = ["june"]
        days_of_month = ["-31:-1"]
        [[time_intervals.time_intervals]]
        months = ["february"]
        days_of_month = ["30:31"]
        """,
        ["29 Feb 20 23:59 +0000", "01 Jun 20 00:00 +0000", "30 Jun 20 00:00 +0000"],
        ["01 Mar 20 00:00 +0000", "31 May 20 00:00 +0000", "28 Feb 21 13:00 +0000"],
    ),
    # The last day, in New York, during the month the clocks go forward.
    "last day across summer time": (
        """[[time_intervals.time_intervals]]
        days_of_month = [-1]
        location = "America/New_York"
        """,
        ["31 Mar 21 12:00 -0400", "01 Apr 21 03:59 +0000"],
        ["30 Mar 21 12:00 -0400", "01 Apr 21 04:00 +0000"],
    ),
    # TestTimeIntervalComplete: every given field must hold; names in any case.
    "complete": (
        """[[time_intervals.time_intervals]]
        weekdays = ["Monday:Wednesday", "saturday", "SUNDAY"]
        times = [{start_time = "13:00", end_time = "15:00"}]
        days_of_month = ["1", "10", "20:-1"]
        years = ["2020:2023"]
        months = ["January:march"]
        """,
        ["10 Jan 21 13:00 +0000", "30 Jan 21 14:24 +0000"],
        ["09 Jan 21 13:00 +0000", "20 Jan 21 12:59 +0000", "02 Feb 21 13:00 +0000"],
    ),
    # Off hours as Alertmanager users write them: two ranges, since none crosses midnight;
    # a set holds when any of its intervals does.
    "off hours": (
        """[[time_intervals.time_intervals]]
        times = [
          {start_time = "00:00", end_time = "09:00"}, {start_time = "17:00", end_time = "24:00"}
        ]
        [[time_intervals.time_intervals]]
        weekdays = ["saturday", "sunday"]
        """,
        ["08 Jul 20 17:00 +0000", "08 Jul 20 08:59 +0000", "11 Jul 20 12:00 +0000"],
        ["08 Jul 20 09:00 +0000", "08 Jul 20 16:59 +0000"],
    ),
    # No field: always; an empty list: never (Alertmanager's code, whatever its docs say).
    "always": ("[[time_intervals.time_intervals]]\n", ["02 Jan 06 15:04 +0000"], []),
    "never": (
        "[[time_intervals.time_intervals]]\nweekdays = []\n[[time_intervals.time_intervals]]\n"
        'times = []\nyears = ["2020"]\n',
        [],
        ["02 Jan 20 15:04 +0000"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_an_interval_contains_what_alertmanager_s_contains(case: str) -> None:
    toml, inside, outside = CASES[case]
    parsed = intervals(toml)
    for moment in inside:
        assert any(i.contains(at(moment)) for i in parsed), moment
    for moment in outside:
        assert not any(i.contains(at(moment)) for i in parsed), moment


REFUSED = {
    # timeinterval_test.go's refusals, then config.go's.
    'times = [{start_time = "01:99", end_time = "23:59"}]': (
        'intervals[0].times[0].start_time: "01:99" is not a time: use HH:MM'
    ),
    'times = [{start_time = "12:30", end_time = "24:01"}]': '"24:01" is not a time',
    'times = [{start_time = "17:31", end_time = "17:31"}]': (
        "times[0]: start_time 17:31 is not before end_time 17:31: a range cannot cross midnight"
    ),
    'times = [{start_time = "14:03"}]': "times[0]: both start_time and end_time must be given",
    'times = [{start_time = "14:03", end_time = "15:00", end = "x"}]': 'unknown key "end"',
    'weekdays = ["friday:monday"]': 'weekdays[0]: "friday:monday" ends before it starts',
    'weekdays = ["monday", "mon"]': (
        'intervals[0].weekdays[1]: "mon" is not a weekday: use monday..sunday or a range '
        "like monday:friday"
    ),
    'weekdays = ["1:3"]': '"1" is not a weekday',
    'weekdays = ["monday:tuesday:friday"]': '"monday:tuesday:friday" is not a range',
    'days_of_month = ["0"]': "days_of_month[0]: 0 is not a day of the month",
    'days_of_month = ["-50:-20"]': "-50 is not a day of the month",
    "days_of_month = [50]": "50 is not a day of the month",
    'days_of_month = ["-15:5"]': "the end day must be negative when the start day is",
    'days_of_month = ["10:-25"]': "end day -25 is always before start day 10",
    'days_of_month = [" 5"]': '" 5" is not a day of the month',
    'months = ["martius:june"]': '"martius" is not a month',
    'months = ["13"]': '"13" is not a month',
    'months = ["december:january"]': "end month january is before start month december",
    'years = ["2022:2020"]': "end year 2020 is before start year 2022",
    "years = [2020.5]": "must be a string naming a year or a range, not a float",
    'location = "Mars/Olympus_Mons"': '"Mars/Olympus_Mons" is not a time zone',
    'location = "../etc/passwd"': "is not a time zone",
    'weekday = ["monday"]': 'intervals[0]: unknown key "weekday": use times, weekdays,',
}


@pytest.mark.parametrize("toml", REFUSED)
def test_what_alertmanager_refuses_is_refused_with_its_place(toml: str) -> None:
    document = tomllib.loads(
        f'[[time_intervals]]\nname = "t"\n[[time_intervals.intervals]]\n{toml}'
    )
    with pytest.raises(ValueError) as refused:
        parse_time_intervals(document["time_intervals"], "rules.toml")
    message = str(refused.value)
    assert message.startswith("rules.toml: time_intervals[0].intervals[0]"), message
    assert REFUSED[toml] in message
    assert "\n" not in message


def test_the_sets_are_named_once_and_referenced_by_their_names() -> None:
    read = tomllib.loads(
        """
        [[time_intervals]]
        name = "weekends"
        time_intervals = [{weekdays = ["saturday", "sunday"]}]
        [[time_intervals]]
        name = "holidays"
        [[time_intervals.time_intervals]]
        months = ["december"]
        days_of_month = ["24:26"]
        [[time_intervals]]
        name = "weekends"
        """
    )["time_intervals"]
    with pytest.raises(
        ValueError,
        match=r'^rules.toml: time_intervals\[2\].name: time interval "weekends" is not unique$',
    ):
        parse_time_intervals(read, "rules.toml")
    sets = parse_time_intervals(read[:2], "rules.toml")
    assert list(sets) == ["weekends", "holidays"]
    with pytest.raises(ValueError, match='undefined time interval "offhours"'):
        check_time_interval_names(
            ["weekends", "offhours"], sets, "rules.toml: rules[0].mute_time_intervals"
        )
    for refused, message in [
        ({"name": "x"}, "not a table"),  # a table, not an array of tables
        ([{"time_intervals": []}], r"time_intervals\[0\]: missing name"),
        ([{"name": "x", "intervals": [], "time_intervals": []}], "give one"),
        ([{"name": "x", "interval": []}], 'unknown key "interval"'),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_time_intervals(refused, "rules.toml")

    # Alertmanager's route semantics: muted inside any mute set; with active sets, muted
    # outside all of them.
    saturday, christmas_day, monday = (
        at("05 Dec 20 12:00 +0000"),
        at("25 Dec 20 12:00 +0000"),  # a Friday
        at("07 Dec 20 12:00 +0000"),
    )
    assert matching_time_intervals(["weekends", "holidays"], sets, christmas_day) == ("holidays",)
    assert [
        muted(["weekends", "holidays"], [], sets, t) for t in (saturday, christmas_day, monday)
    ] == [True, True, False]
    assert [muted([], ["weekends"], sets, t) for t in (saturday, christmas_day, monday)] == [
        False,
        True,
        True,
    ]
    assert [muted([], [], sets, t) for t in (saturday, christmas_day, monday)] == [False] * 3


def test_a_moment_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        TimeInterval().contains(datetime(2024, 1, 1))
