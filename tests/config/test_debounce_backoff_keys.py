"""``breach_count``, ``breach_window``, ``backoff_multiplier`` and ``backoff_max``: level keys
(``hard.`` too), environment variables and route keys, and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from metric_reader._config import ConfigError, load_settings

ENV = {"METRIC_NAME": "m", "THRESHOLD": ">1", "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9"}


def test_the_keys_are_read_for_each_level_and_default_to_todays_behaviour() -> None:
    [rule] = load_settings(
        {
            **ENV,
            "BREACH_COUNT": "3",
            "BREACH_WINDOW": "5",
            "BACKOFF_DELAY": "1m",
            "BACKOFF_MULTIPLIER": "2",
            "BACKOFF_MAX": "4m",
            "HARD_THRESHOLD": ">2",
            "HARD_BREACH_COUNT": "2",  # alone: 2 in a row
            "HARD_BACKOFF_MULTIPLIER": "1.5",
        }
    ).rules
    assert rule.base is not None and rule.hard is not None
    base, hard = rule.base, rule.hard
    assert (base.breach_count, base.breach_window) == (3, 5)
    assert (base.backoff, base.backoff_multiplier, base.backoff_max) == (60, 2, 240)
    assert (hard.breach_count, hard.breach_window, hard.backoff_multiplier) == (2, 2, 1.5)
    [plain] = load_settings(ENV).rules
    assert plain.base is not None
    assert (plain.base.breach_count, plain.base.breach_window) == (1, 1)
    assert (plain.base.backoff_multiplier, plain.base.backoff_max) == (1, None)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"BREACH_COUNT": "4", "BREACH_WINDOW": "3"},
            "BREACH_COUNT='4' is invalid: more than BREACH_WINDOW=3",
        ),
        ({"BREACH_COUNT": "0"}, "BREACH_COUNT='0' is invalid: expected a whole number"),
        ({"HARD_THRESHOLD": ">2", "HARD_BREACH_WINDOW": "1001"}, "HARD_BREACH_WINDOW='1001'"),
        ({"BACKOFF_MULTIPLIER": "0.5"}, "BACKOFF_MULTIPLIER='0.5' is invalid: expected a number"),
        (
            {"BACKOFF_DELAY": "5m", "BACKOFF_MAX": "1m"},
            "BACKOFF_MAX='1m' is invalid: less than BACKOFF_DELAY",
        ),
    ],
)
def test_a_wrong_value_is_one_line(env: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({**ENV, **env})
    [problem] = str(error.value).strip().splitlines()[-1:]
    assert line in problem, str(error.value)


def test_a_backoff_max_without_a_multiplier_is_allowed() -> None:
    [rule] = load_settings({**ENV, "BACKOFF_DELAY": "1m", "BACKOFF_MAX": "4m"}).rules
    assert rule.base is not None and rule.base.backoff_multiplier == 1


def test_a_route_sets_the_escalating_repeats_of_the_alerts_it_takes(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - alert: Page\n        expr: up == 0\n        labels: {severity: page}\n"
        "      - alert: Ticket\n        expr: up == 0\n        labels: {severity: low}\n"
    )
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\nrule_files = ["alerts.yml"]\n'
        'action_plugin = "tickets"\nbackoff_delay = "1m"\nbreach_count = 2\n'
        "[[routes]]\nmatchers = ['severity=page']\naction_plugin = \"pager\"\n"
        'backoff_multiplier = 2\nbackoff_max = "4m"\n'
    )
    rules = {r.name: r for r in load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")}).rules}
    page, ticket = rules["Page"].base, rules["Ticket"].base
    assert page is not None and ticket is not None
    assert (page.backoff, page.backoff_multiplier, page.backoff_max) == (60, 2, 240)
    assert (ticket.backoff, ticket.backoff_multiplier, ticket.backoff_max) == (60, 1, None)
    # the rule file's debounce applies to its alerts: 2 evaluations in a row in the result
    assert (page.breach_count, page.breach_window) == (2, 2)
