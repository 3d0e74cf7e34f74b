"""CONFIG_FILE: many rules from TOML, errors that name their place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _slips import slips_of

from metric_reader._config import ConfigError, load_settings
from metric_reader._config._keys import LEVEL_KEYS as _LEVEL_KEYS
from metric_reader._config._keys import RULE_KEYS as _RULE_KEYS
from metric_reader._config._keys import TOP_LEVEL_KEYS

GOOD = """\
polling_interval = "5s"
prometheus_endpoint = "http://127.0.0.1:9090"
threshold_duration = "1m"
log_level = "debug"
max_concurrent_queries = 4

[[rules]]
name = "disk"
metric_name = "node_filesystem_avail_bytes"
label_filters = 'mountpoint="/data"'
threshold = "<5e9"
backoff_delay = "30m"
action_plugin = "log_action"
keep_firing_for = "2m"
clear_threshold = ">6e9"

[rules.hard]
threshold = "<1e9"
threshold_duration = "30s"
action_plugin = "file_action"

[[rules]]
name = "queue"
metric_name = "queue_depth"
scrape_url = "http://127.0.0.1:8080/metrics"
polling_interval = "1s"
threshold = ">80"

[[rules]]
name = "errors"
query = "sum(rate(errors_total[5m]))"
threshold = ">0.5"
threshold_duration = 0

[plugins.file_action]
size = 1024
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return str(path)


def test_rules_take_the_file_defaults_and_their_own_keys(tmp_path: Path) -> None:
    s = load_settings({"CONFIG_FILE": write(tmp_path, GOOD)})
    disk, queue, errors = s.rules
    assert (disk.name, disk.polling_interval, disk.source.where) == (
        "disk",
        5.0,
        "http://127.0.0.1:9090",
    )
    assert disk.source.expression == 'node_filesystem_avail_bytes{mountpoint="/data"}'
    assert disk.base is not None and disk.hard is not None
    assert (disk.base.duration, disk.base.backoff, disk.base.keep_firing_for) == (60, 1800, 120)
    assert disk.base.clear_threshold is not None and disk.base.clear_threshold.text == ">6e9"
    assert (disk.hard.threshold.text, disk.hard.duration, disk.hard.plugin) == (
        "<1e9",
        30,
        "file_action",
    )
    assert (queue.source.kind, queue.source.where, queue.polling_interval) == (
        "scrape",
        "http://127.0.0.1:8080/metrics",
        1.0,
    )
    assert errors.source.expression == "sum(rate(errors_total[5m]))"
    assert errors.base is not None and errors.base.duration == 0
    assert s.log_level == "DEBUG" and s.max_concurrent_queries == 4
    assert s.plugin_settings == {"file_action": {"size": 1024}}


def test_environment_overrides_the_file_defaults_but_not_a_rule(tmp_path: Path) -> None:
    s = load_settings(
        {"CONFIG_FILE": write(tmp_path, GOOD), "POLLING_INTERVAL": "2s", "LOG_LEVEL": "error"}
    )
    disk, queue, _ = s.rules
    assert disk.polling_interval == 2.0  # the file's default, overridden
    assert queue.polling_interval == 1.0  # the rule's own value stands
    assert s.log_level == "ERROR"


def test_rule_identity_variables_are_ignored_with_a_warning(tmp_path: Path) -> None:
    s = load_settings({"CONFIG_FILE": write(tmp_path, GOOD), "METRIC_NAME": "other"})
    assert [r.name for r in s.rules] == ["disk", "queue", "errors"]
    assert any("METRIC_NAME" in w for w in s.warnings)


def test_a_file_without_rules_uses_the_environment_rule(tmp_path: Path) -> None:
    path = write(tmp_path, 'polling_interval = "3s"\n')
    [rule] = load_settings({"CONFIG_FILE": path, "METRIC_NAME": "up", "THRESHOLD": "<1"}).rules
    assert (rule.name, rule.polling_interval) == ("up", 3.0)


def test_plugin_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    path = write(tmp_path, 'plugin_dir = "plugins"\n[[rules]]\nname = "a"\nmetric_name = "x"\n')
    assert load_settings({"CONFIG_FILE": path}).plugin_dir == tmp_path / "plugins"


BAD = """\
polling_interval = "5s"
pluginn_dir = "x"

[[rules]]
name = "a"
metric_name = "m"
threshold = 80
threshhold_duration = "5s"

[[rules]]
name = "b"
metric_name = "m"
threshold = ">1"
backoff_delay = "5"

[rules.hard]
threshold = ">2"
action_plugn = "x"

[[rules]]
name = "a"
query = "up"
"""


def test_every_error_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": path})
    assert list(error.value.problems) == [
        f"{path}:2: pluginn_dir: unknown key; did you mean 'plugin_dir'?",
        f"{path}:8: rules[0].threshhold_duration: unknown key; did you mean 'threshold_duration'?",
        f"{path}:18: rules[1].hard.action_plugn: unknown key; did you mean 'action_plugin'?",
        f'{path}:7: rules[0].threshold=80 is invalid: expected a string such as ">80", got int 80',
        f"{path}:14: rules[1].backoff_delay='5' is invalid: not a duration; expected a Go "
        "duration such as 300ms, 5s, 1m30s or 2h (units ns, us, ms, s, m, h)",
        f"{path}:21: rules[2].name='a' is invalid: a rule of that name is already defined "
        "at rules[0]",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[rules]]\nmetric_name = 'x'\n", ":1: rules[0]: name is not set"),
        ("[[rules]]\nname = 'x'\n", ":1: rules[0]: metric_name is not set"),
        (
            "[[rules]]\nname = 'x'\nquery = 'up'\nscrape_url = 'http://a/m'\n",
            ":3: rules[0].query='up' is invalid: needs the Prometheus source",
        ),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\naction_plugin = 'p'\n",
            ":4: rules[0].action_plugin='p' needs threshold",
        ),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\nthreshold = '>1'\n[rules.hard]\n"
            "action_plugin = 'p'\n",
            ":6: rules[0].hard.action_plugin='p' needs hard.threshold",
        ),
        ("[[rules]]\nname = 'x y'\nmetric_name = 'm'\n", ":2: rules[0].name='x y' is invalid"),
        ("rules = 3\n", "expected [[rules]] tables"),
        ("polling_interval = \n", ":1: not valid TOML"),
        ("[[rules]]\nname = 'x'\nmetric_name = 'm'\nhard = 1\n", "expected a [rules.hard] table"),
        ("max_concurrent_queries = 0\n", "max_concurrent_queries=0 is invalid"),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\nmax_breaching = '120%'\n",
            ":4: rules[0].max_breaching='120%' is invalid: a percentage must be more than 0% "
            "and at most 100%",
        ),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\nper = '1h'\n",
            ":4: rules[0].per is set but max_actions is not: a budget needs both",
        ),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\nmode = 'manual'\n",
            ":4: rules[0].mode='manual' is invalid: expected one of auto, shadow",
        ),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\nmute_time_intervals = ['night']\n",
            ":4: rules[0].mute_time_intervals=['night'] is invalid: time interval 'night' is "
            "not defined in [[time_intervals]] (none is defined)",
        ),
        ("[limits]\nmax_actions = 0\n", ":1: limits.max_actions=0 is invalid"),
        (
            "[plugins.p]\nbreaker_window = '1m'\n",
            ":1: plugins.p.breaker_window is set but breaker_failures is not",
        ),
        (
            "[[rules]]\nname = 'x'\nmetric_name = 'm'\nlabel_filters = 'a!~\"(?<=b)c\"'\n",
            ":4: rules[0].label_filters='a!~\"(?<=b)c\"' is invalid: at position 4: invalid "
            "regex '(?<=b)c' for label 'a': invalid perl operator: (?<= (label regexes use RE2 "
            "syntax, as in Prometheus: no lookaround or backreferences)",
        ),
    ],
)
def test_mistakes_name_their_place(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": path, "METRIC_NAME": "fallback"})
    assert fragment in str(error.value)
    assert all(line.startswith(("CONFIG_FILE: " + path, path)) for line in error.value.problems)


def test_a_blank_query_is_no_query(tmp_path: Path) -> None:
    """A rule needs something to read: a blank query alone is refused at load, not left
    to fail when the rule is first read."""
    path = write(tmp_path, "[[rules]]\nname = 'x'\nquery = '  '\n")
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": path})
    assert ":1: rules[0]: metric_name is not set" in str(error.value)


def test_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": str(tmp_path / "nope.toml")})
    assert str(error.value).startswith(f"CONFIG_FILE: {tmp_path / 'nope.toml'}: cannot read")


def test_every_key_gets_a_did_you_mean_for_every_kind_of_slip(tmp_path: Path) -> None:
    top_keys = [key for key in TOP_LEVEL_KEYS if "." not in key] + ["rules", "plugins"]
    rule_keys = [key for key in _RULE_KEYS if not key.startswith("hard.")] + ["hard"]
    top, rule, hard = slips_of(top_keys), slips_of(rule_keys), slips_of(_LEVEL_KEYS)
    text = "".join(f"{slip} = 'x'\n" for slip in top)
    text += "[[rules]]\nname = 'x'\nmetric_name = 'm'\nthreshold = '>1'\n"
    text += "".join(f"{slip} = 'x'\n" for slip in rule)
    text += "[rules.hard]\nthreshold = '>2'\n" + "".join(f"{slip} = 'x'\n" for slip in hard)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": path})
    wanted = [
        f"{table}{slip}: unknown key; did you mean {key!r}?"
        for table, made in (("", top), ("rules[0].", rule), ("rules[0].hard.", hard))
        for slip, key in made.items()
    ]
    problems = [line.split(": ", 1)[1] for line in error.value.problems]  # without file:line
    assert sorted(problems) == sorted(wanted)


def _nested(depth: int, shape: str) -> str:
    if shape == "arrays":
        return "[" * depth + "]" * depth
    return "{a = " * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [33, 450, 100_000])
@pytest.mark.parametrize(
    "template",
    [
        "[[rules]]\nname = 'x'\nmetric_name = 'm'\nthreshold = {value}\n",
        "[[rules]]\nname = 'x'\nmetric_name = 'm'\n[plugins.log_action]\nlevel = {value}\n",
        "polling_interval = {value}\n",
    ],
    ids=["rule", "plugin-settings", "top-level"],
)
@pytest.mark.parametrize("shape", ["arrays", "inline-tables"])
def test_a_file_nested_too_deeply_is_one_line_and_exit_2(
    tmp_path: Path, depth: int, template: str, shape: str
) -> None:
    """tomllib recurses once a level: a RecursionError was a traceback and exit 1 (and
    whether it came depended on how deep the stack was already)."""
    path = write(tmp_path, template.format(value=_nested(depth, shape)))
    done = subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        env={"CONFIG_FILE": path, "LISTEN_ADDRESS": "off"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr.splitlines()) == (
        2,
        [
            f"metric-reader: configuration error: CONFIG_FILE: {path}: tables or arrays nested "
            "more than 32 levels deep"
        ],
    ), done


# --- [plugins.NAME] with plugin: a plugin made of another (issue 23, point 11) -------------


def test_a_plugin_table_naming_a_plugin_makes_one_of_its_own(tmp_path: Path) -> None:
    s = load_settings(
        {
            "CONFIG_FILE": write(
                tmp_path,
                'rule_files = ["alerts.yml"]\n'
                '[plugins.reboot]\nplugin = "exec_action"\ncommand = ["reboot"]\n'
                '[plugins.alias]\nplugin = "log_action"\n'
                '[plugins.exec_action]\ncommand = "true"\n',
            )
        },
        rules=False,
    )
    assert s.plugin_bases == {"reboot": "exec_action", "alias": "log_action"}
    # `plugin` is not a setting: the plugin's configure never sees it
    assert s.plugin_settings == {
        "reboot": {"command": ["reboot"]},
        "exec_action": {"command": "true"},
    }


def test_a_plugin_table_naming_no_plugin_or_itself_or_a_made_one_is_one_line_each(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        '[plugins.a]\nplugin = 5\n[plugins.b]\nplugin = "b"\n[plugins.c]\nplugin = " "\n'
        '[plugins.d]\nplugin = "exec_action"\n[plugins.e]\nplugin = "d"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_FILE": path}, rules=False)
    assert caught.value.problems == (
        f"{path}:2: plugins.a.plugin=5 is invalid: expected the name of the plugin a is made "
        'of, e.g. plugin = "exec_action"',
        f"{path}:4: plugins.b.plugin='b' is invalid: a plugin cannot be made of itself; leave "
        "plugin out to give b its own settings",
        f"{path}:6: plugins.c.plugin=' ' is invalid: expected the name of the plugin c is made "
        'of, e.g. plugin = "exec_action"',
        f"{path}:10: plugins.e.plugin='d' is invalid: d is itself made of exec_action "
        "([plugins.d]); name the plugin it is made of, plugin = 'exec_action', and give the "
        "settings again",
    )
