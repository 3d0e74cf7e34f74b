"""The limits on what rules do, as the configuration gives them and ``check`` shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from metric_reader._cli._check import check_configuration
from metric_reader._config import load_settings

FILE = """\
prometheus_endpoint = "http://127.0.0.1:9"
paused = true
mode = "shadow"

[limits]
max_actions = 20

[plugins.log_action]
level = "warning"
breaker_failures = 3

[[time_intervals]]
name = "night"
[[time_intervals.time_intervals]]
times = [{start_time = "00:00", end_time = "06:00"}]

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
action_plugin = "log_action"
max_actions = 4
per = "10m"
max_breaching = "20%"
storm_plugin = "log_action"
mute_time_intervals = ["night"]
verify_within = "5m"
escalate_plugin = "log_action"
"""


def test_the_guards_are_read_and_check_shows_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(FILE)
    env = {"CONFIG_FILE": str(path)}
    settings = load_settings(env)
    assert settings.plugin_settings["log_action"] == {"level": "warning"}  # not the limits
    assert check_configuration(env, read_sources=False, backend_options={}) == 0
    out = capsys.readouterr().out
    assert "paused at start (PAUSED=true): no plugin is called until resumed" in out
    assert "limits: 20 calls per 1h0m0s (every rule's fire and repeat calls)" in out
    assert "plugin log_action: breaker opens after 3 failures within 5m0s, cools down 10m0s" in out
    assert (
        "guard disk: 4 calls per 10m0s; storm above 20% series breached -> log_action; "
        "mode shadow; muted during night; fixes verified within 5m0s, given up after 3 -> "
        "log_action"
    ) in out


def test_one_rule_of_the_environment_takes_its_limits_from_variables() -> None:
    [rule] = load_settings(
        {
            "METRIC_NAME": "disk_used",
            "THRESHOLD": ">90",
            "MAX_ACTIONS": "3",
            "MAX_BREACHING": "5",
            "MODE": "shadow",
        }
    ).rules
    assert rule.guard.budget is not None and rule.guard.budget.max_actions == 3
    assert (rule.guard.max_breaching, rule.guard.mode) == (5, "shadow")


def test_an_escalate_plugin_that_is_not_found_is_a_configuration_error(tmp_path: Path) -> None:
    from metric_reader._cli._loading import load_validated
    from metric_reader._core import ConfigError

    path = tmp_path / "rules.toml"
    path.write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\n'
        "[[rules]]\n"
        'name = "disk"\nmetric_name = "disk_used"\nthreshold = ">90"\n'
        'action_plugin = "log_action"\nverify_within = "5m"\nescalate_plugin = "pagr"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_validated({"CONFIG_FILE": str(path)}, all_bundled=False)
    assert "rule 'disk' escalate_plugin='pagr'" in str(raised.value)
