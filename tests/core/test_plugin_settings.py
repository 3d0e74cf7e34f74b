"""``check_settings`` and ``toml_type``: the public helpers every bundled plugin checks its
``[plugins.NAME]`` table with, so their words are the bundled plugins' words."""

from __future__ import annotations

import datetime

import pytest

from metric_reader import check_settings, toml_type


def test_known_keys_pass_and_an_empty_table_too() -> None:
    check_settings({"dir": "/tmp", "size": 5}, ("dir", "size"))
    check_settings({}, ["level"])


def test_every_unknown_key_is_named_with_the_closest_allowed_one() -> None:
    with pytest.raises(ValueError) as refused:
        check_settings({"sise": 1, "dri": "/tmp", "colour": "red"}, ("dir", "size"))
    assert str(refused.value) == (
        "unknown keys 'sise' (did you mean 'size'?), 'dri' (did you mean 'dir'?), 'colour'; "
        "allowed: dir, size"
    )


def test_an_environment_variables_name_suggests_the_key_it_stands_for() -> None:
    variables = {"FILE_ACTION_DIR": "dir"}
    with pytest.raises(ValueError, match=r"^unknown key 'file_action_dir' \(did you mean 'dir'"):
        check_settings({"file_action_dir": "/tmp"}, ["dir", "size"], variables)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("x", "a string"),
        (3, "an integer"),
        (0.5, "a float"),
        (True, "a boolean"),
        ([1], "an array"),
        ({"a": 1}, "a table"),
        (datetime.date(2026, 1, 2), "a date or time"),
        (datetime.time(8, 0), "a date or time"),
    ],
)
def test_a_value_is_named_by_its_toml_type(value: object, name: str) -> None:
    assert toml_type(value) == name
