"""Rule unit-test files as ``metric-reader test`` reads them: promtool's format exactly
(compared with the installed promtool where there is one), metric-reader's ``action_test``
and ``plugin_failures``, and every problem of a file at once, with its place."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from metric_reader._config._prom_duration import parse_prometheus_duration
from metric_reader._core._exceptions import ConfigError
from metric_reader._core._selector import Selector
from metric_reader._replay._ruletest._file import (
    SCRIPTED_FAILURE,
    STALE,
    ExpAction,
    RuleTestFile,
    read_rule_test_file,
)
from metric_reader._replay._ruletest._series_desc import SeriesDescError, parse_series_description
from metric_reader._replay._ruletest._series_store import SeriesStore

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def write(tmp_path: Path, text: str, name: str = "test.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def values_of(text: str) -> list[object]:
    return parse_series_description(f"m {text}")[1]


# --- the expanding notation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("1+1x3", [1.0, 2.0, 3.0, 4.0]),
        ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),
        ("1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
        ("-2-1x3", [-2.0, -3.0, -4.0, -5.0]),
        ("1x4", [1.0] * 5),
        ("1x0", [1.0]),
        ("_", [None]),
        ("_x3", [None, None, None]),
        ("_x0", []),
        ("1 _x3 stale", [1.0, None, None, None, STALE]),
        ("010 08 1e3 .5 5. 1E-2", [8.0, 8.0, 1000.0, 0.5, 5.0, 0.01]),
        ("0x2", [0.0, 0.0, 0.0]),
        ("Inf -inf +INF", [math.inf, -math.inf, math.inf]),
        ("0.1+0.1x2", [0.1, 0.1 + 0.1, 0.1 + 0.1 + 0.1]),
        ("", []),
        ("  1\t 2  ", [1.0, 2.0]),
    ],
)
def test_the_expanding_notation_gives_one_value_per_step(text: str, expected: list[object]) -> None:
    assert values_of(text) == expected


def test_a_staleness_marker_plus_an_increment_is_a_plain_nan() -> None:
    values = values_of("stale+1x2")
    assert values[0] is STALE
    assert all(isinstance(v, float) and math.isnan(v) for v in values[1:])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1+1", "expected 'x' and a count"),
        ("stalex2", "unexpected 'stalex2'"),
        ("stale x2", "expected a number, found 'x'"),
        ("1x3.0", "invalid repetition"),
        ("1x-3", "expected a number"),
        ("1e400", "value out of range"),
        ("1a", "bad number syntax"),
        ("foo", 'expected a number or "stale"'),
        ("Stale", 'expected a number or "stale"'),
        ("_+1x2", "unexpected '+'"),
        ("1x", "expected a number, found the end"),
    ],
)
def test_values_promtool_refuses_are_refused(text: str, problem: str) -> None:
    with pytest.raises(SeriesDescError, match=re.escape(problem)):
        values_of(text)


def test_a_count_that_looks_hexadecimal_is_said_to_be_decimal() -> None:
    """Prometheus' lexer reads no hexadecimal in series values: promtool runs ``0x10000000``
    as ``0`` ten million and one times; past the bound, the refusal says what it is."""
    with pytest.raises(SeriesDescError) as caught:
        values_of("1 0x10000000")
    assert caught.value.message == (
        "more than 2,000,000 values in one series "
        "(0x10000000 is not hexadecimal: 0 repeated 10,000,001 times)"
    )


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("up", {"__name__": "up"}),
        ('up{job="a",instance="b:1"}', {"__name__": "up", "job": "a", "instance": "b:1"}),
        ('{__name__="up", job="a",}', {"__name__": "up", "job": "a"}),
        ('a:b:c{x="1"}', {"__name__": "a:b:c", "x": "1"}),
        (r'm{a="q\"\\\n\x41\u00e9"}', {"__name__": "m", "a": 'q"\\\nAé'}),
        (r"m{a='it\'s',b=`raw\n`}", {"__name__": "m", "a": "it's", "b": r"raw\n"}),
        ('sum{a="b"}', {"__name__": "sum", "a": "b"}),
        ('m{__name__="other"}', {"__name__": "m"}),
    ],
)
def test_series_labels_are_read_as_promql_reads_them(text: str, labels: dict[str, str]) -> None:
    assert parse_series_description(f"{text} 1")[0] == labels


@pytest.mark.parametrize(
    "text",
    ['m{a="b"', 'm{a=~"b"}', "m{a=b}", 'm {a="b"}', 'm{"a"="b"}', "bool", "Inf", "1", 'm{a="\\q"}'],
)
def test_series_labels_promtool_refuses_are_refused(text: str) -> None:
    with pytest.raises(SeriesDescError):
        parse_series_description(f"{text} 1")


# --- compared with promtool ------------------------------------------------------------------

_SAME_AS_PROMTOOL = [
    "1 2 3",
    "1+1x5",
    "-2-1x3",
    "1-2x4",
    "5x3 _x2 7",
    "1 _ 3 _x3 5",
    "1 stale 2",
    "1 2 stale _x2 3",
    "stale+1x2 4",
    "010 08 017 1e3 .5 5. 1E-2",
    "0x2 0.1+0.1x3",
    "Inf -Inf NaN +inf",
    "_x0 1x0 2",
    "1e1+1e-1x3",
    "-0 +0 -1.5",
]
_REFUSED_BY_PROMTOOL = ["1+1", "stalex2", "1x3.0", "1e400", "1a", "foo", "_+1x2", "1x", "0X1F"]


def _promtool_run(tmp_path: Path, values: str, steps: int) -> subprocess.CompletedProcess[str]:
    exprs = ["m", "last_over_time(m[1s])"]
    tests = "".join(
        f"  - expr: {expr}\n    eval_time: {step}m\n" for step in range(steps) for expr in exprs
    )
    text = (
        "tests:\n- interval: 1m\n  input_series:\n  - series: m\n"
        f"    values: '{values}'\n  promql_expr_test:\n{tests}"
    )
    path = tmp_path / "promtool_test.yml"
    path.write_text(text)
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _promtool_observations(output: str) -> dict[tuple[str, float], float]:
    """What promtool found for each (expr, time) that it found something for: each of our
    tests expects nothing, so promtool prints what it got."""
    found = {}
    pattern = re.compile(r'expr: "(.*)", time: (\S+),\n\s+exp: nil\n\s+got: (.*)')
    for expr, time, got in pattern.findall(output):
        found[(expr, parse_prometheus_duration(time))] = float(got.rsplit(" ", 1)[1])
    return found


def _our_observations(values: str, steps: int) -> dict[tuple[str, float], float]:
    labels, parsed = parse_series_description(f"m {values}")
    from metric_reader._replay._ruletest._file import InputSeries

    store = SeriesStore([InputSeries(labels, tuple(parsed), 1)], 60.0, lookback_includes_start=True)
    found = {}
    for step in range(steps):
        at = step * 60.0
        for sample in store.select(Selector("m"), at):
            found[("m", at)] = sample.value
        here = parsed[step] if step < len(parsed) else None
        if isinstance(here, float):
            found[("last_over_time(m[1s])", at)] = here
    return found


def _same(a: dict[tuple[str, float], float], b: dict[tuple[str, float], float]) -> bool:
    return a.keys() == b.keys() and all(
        a[key] == b[key] or (math.isnan(a[key]) and math.isnan(b[key])) for key in a
    )


@needs_promtool
@pytest.mark.parametrize("values", _SAME_AS_PROMTOOL)
def test_values_read_the_same_as_promtool_reads_them(tmp_path: Path, values: str) -> None:
    """Each step's value, and each instant's value with the 5-minute lookback and the
    staleness markers, as promtool's own PromQL engine finds them."""
    steps = len(values_of(values)) + 7
    run = _promtool_run(tmp_path, values, steps)
    theirs = _promtool_observations(run.stdout + run.stderr)
    ours = _our_observations(values, steps)
    assert theirs, run.stdout + run.stderr
    assert _same(ours, theirs), f"ours: {ours}\npromtool: {theirs}"


@needs_promtool
@pytest.mark.parametrize("values", _REFUSED_BY_PROMTOOL)
def test_values_refused_are_those_promtool_refuses(tmp_path: Path, values: str) -> None:
    with pytest.raises(SeriesDescError):
        values_of(values)
    run = _promtool_run(tmp_path, values, 1)
    assert run.returncode == 1
    assert "parse error" in run.stderr


_LABELS_AS_PROMTOOL = [
    r'm{a="q\"\\\n\x41\u00e9\t"}',
    r"m{a='it\'s',b=`raw\n`}",
    '{__name__="m", job="a",}',
    r'm{a="\101\U0001F600"}',
    'sum{by="x"}',
]


@needs_promtool
@pytest.mark.parametrize("series", _LABELS_AS_PROMTOOL)
def test_series_labels_are_the_ones_promtool_reads(tmp_path: Path, series: str) -> None:
    from metric_reader._core._selector import quote

    labels, _ = parse_series_description(f"{series} 1")
    name = labels["__name__"]
    path = tmp_path / "labels.yml"
    path.write_text(
        "tests:\n- interval: 1m\n  input_series:\n"
        f"  - series: {json.dumps(series)}\n    values: '1'\n"
        f"  promql_expr_test:\n  - expr: '{{__name__=\"{name}\"}}'\n    eval_time: 0s\n"
    )
    assert PROMTOOL is not None
    run = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    shown = ", ".join(f"{label}={quote(value)}" for label, value in sorted(labels.items()))
    assert f"got: {{{shown}}} 1E+00" in run.stderr, run.stderr


# --- the test file ---------------------------------------------------------------------------


def test_a_promtool_test_file_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    for name in ("b.yml", "a.yml"):
        (tmp_path / "rules" / name).write_text("groups: []\n")
    path = write(
        tmp_path,
        """\
        rule_files: ['rules/*.yml']
        evaluation_interval: 30s
        group_eval_order: [first, second]
        tests:
          - name: high load
            interval: 1m
            external_labels: {cluster: eu}
            external_url: http://example
            input_series:
              - series: 'load{instance="a"}'
                values: '1+1x3 _ stale'
            alert_rule_test:
              - eval_time: 5m
                alertname: HighLoad
                exp_alerts:
                  - exp_labels: {instance: a, severity: page}
                    exp_annotations: {summary: 'a is loaded'}
              - eval_time: 10m
                alertname: HighLoad
            promql_expr_test:
              - expr: load
                eval_time: 1m
                exp_samples:
                  - labels: 'load{instance="a"}'
                    value: 2
          - input_series:
              - series: up
                values: 1
        """,
    )
    read = read_rule_test_file(path)
    assert read.rule_files == (tmp_path / "rules/a.yml", tmp_path / "rules/b.yml")
    assert read.evaluation_interval == 30.0
    assert read.group_eval_order == ("first", "second")
    first, second = read.tests
    assert (first.name, first.interval) == ("high load", 60.0)
    assert second.interval == 30.0  # the file's evaluation_interval
    assert first.external_labels == {"cluster": "eu"}
    assert first.external_url == "http://example"
    (series,) = first.input_series
    assert series.labels == {"__name__": "load", "instance": "a"}
    assert series.samples(60.0) == [
        (0.0, 1.0),
        (60.0, 2.0),
        (120.0, 3.0),
        (180.0, 4.0),
        (300.0, STALE),
    ]
    alert, quiet = first.alert_rule_tests
    assert (alert.eval_time, alert.alertname) == (300.0, "HighLoad")
    assert alert.exp_alerts[0].labels == {"instance": "a", "severity": "page"}
    assert alert.exp_alerts[0].annotations == {"summary": "a is loaded"}
    assert quiet.exp_alerts == ()
    (expr,) = first.promql_expr_tests
    assert (expr.expr, expr.eval_time) == ("load", 60.0)
    assert expr.exp_samples[0].labels == {"__name__": "load", "instance": "a"}
    assert expr.exp_samples[0].value == 2.0
    assert first.max_eval_time() == 600.0
    assert read.warnings == ()


def test_without_intervals_promtools_one_minute_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "tests:\n  - input_series: [{series: up, values: '1 2'}]\n")
    read = read_rule_test_file(path)
    assert read.evaluation_interval == 60.0
    assert read.tests[0].interval == 60.0
    assert read.rule_files == ()
    assert read.config_file is None


def test_a_config_file_is_found_beside_the_test_file(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text("")
    read = read_rule_test_file(write(tmp_path, "config_file: rules.toml\ntests: []\n"))
    assert read.config_file == tmp_path / "rules.toml"


def test_what_promtool_warns_about_is_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        rule_files: [missing.yml, 'none/*.yml']
        tests:
          - input_series:
              - {series: 'up{a="1"}', values: '1'}
              - {series: 'up{a="1"}', values: '2'}
        """,
    )
    read = read_rule_test_file(path)
    assert read.warnings == (
        f'{path}:1:14: rule_files: no file matches pattern "missing.yml"',
        f'{path}:1:27: rule_files: no file matches pattern "none/*.yml"',
        f"{path}:5:9: series given twice (first at line 4): the later one is used, as "
        "promtool does",
    )
    assert read.tests[0].input_series[0].values == (2.0,)


def test_action_tests_and_plugin_failures(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        tests:
          - interval: 1m
            input_series: [{series: 'load{instance="a"}', values: '1 5x10 1'}]
            plugin_failures:
              - plugin: log_action
                times: 2
              - plugin: pager
                from: 5m
                until: 8m
                error: pager is down
            action_test:
              - eval_time: 15m
                exp_actions:
                  - at: 1m
                    plugin: log_action
                    kind: fire
                    labels: {instance: a}
                    value: 5
                    failed: true
                  - plugin: log_action
                    kind: resolve
                    rule: load
                    labels: {instance: a}
                    annotations: {summary: done}
              - eval_time: 0s
                exp_actions: []
        """,
    )
    group = read_rule_test_file(path).tests[0]
    first, none = group.action_tests
    assert first.eval_time == 900.0
    assert first.exp_actions[0] == ExpAction(
        plugin="log_action",
        kind="fire",
        labels={"instance": "a"},
        value=5.0,
        annotations=None,
        at=60.0,
        rule=None,
        failed=True,
        line=14,
    )
    second = first.exp_actions[1]
    assert (second.kind, second.rule, second.value, second.at, second.failed) == (
        "resolve",
        "load",
        None,
        None,
        False,
    )
    assert second.annotations == {"summary": "done"}
    assert none.exp_actions == ()
    by_count, by_time = group.plugin_failures
    assert by_count.error == SCRIPTED_FAILURE
    assert [by_count.fails(n, 0.0) for n in (1, 2, 3)] == [True, True, False]
    assert by_time.error == "pager is down"
    assert [by_time.fails(1, t) for t in (299.0, 300.0, 479.0, 480.0)] == [
        False,
        True,
        True,
        False,
    ]


def test_every_problem_of_a_file_is_reported_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        evaluation_interval: 1 minute
        test:
          - x
        tests:
          - intervl: 1m
            input_series:
              - series: 'up{a="1"'
                values: 1
              - series: up
                values: '1 2 3x'
              - series: '{a="1"}'
                values: 1
              - series: up
                value: 1
            alert_rule_test:
              - eval_time: 5m
                exp_alerts: []
            action_test:
              - eval_time: 1m
                exp_actions:
                  - plugin: p
                    kind: fired
                    value: high
              - eval_time: 2m
            plugin_failures:
              - plugin: p
              - plugin: p
                times: 0
              - plugin: p
                times: 1
                from: 1m
        """,
    )
    with pytest.raises(ConfigError) as caught:
        read_rule_test_file(path)
    assert caught.value.problems == (
        f'{path}:2:1: unknown field "test" in a test file (did you mean "tests"?)',
        f'{path}:1:22: evaluation_interval: unknown unit " minute" in duration "1 minute"',
        f'{path}:5:5: unknown field "intervl" in a test group (did you mean "interval"?)',
        f"{path}:7:17: series: at character 9: expected ',' or '}}' in the label set, "
        "found the end",
        f"{path}:10:17: values: at character 7: expected a number, found the end",
        f'{path}:11:17: series: "{{a=\\"1\\"}}" has no metric name',
        f'{path}:14:9: unknown field "value" in an input series (did you mean "values"?)',
        f"{path}:16:9: an item under alert_rule_test misses required attribute alertname",
        f"{path}:22:19: kind: expected one of fire, repeat, resolve, storm, unverified, "
        'gave_up, approval_request, got "fired"',
        f'{path}:23:20: value: expected a number, got "high"',
        f"{path}:24:9: action_test: exp_actions must be given ([] for none)",
        f"{path}:26:9: a plugin failure needs times, or from (and until)",
        f'{path}:28:16: times: expected a whole number from 1, got "0"',
        f"{path}:29:9: a plugin failure takes times, or from and until: not both",
    )


def test_an_action_tests_rules_are_names_each_given_once(tmp_path: Path) -> None:
    """``rules`` scopes an action_test (issue 23, point 9); whether a rule has each name is
    the runner's to say (tests/replay/test_test_command.py)."""
    path = write(
        tmp_path,
        """\
        tests:
          - name: t
            action_test:
              - {eval_time: 1m, rules: [HighLoad, 'hosts:Down'], exp_actions: []}
              - {eval_time: 1m, exp_actions: []}
        """,
    )
    scoped, every = read_rule_test_file(path).tests[0].action_tests
    assert [(name.name, name.place) for name in scoped.rules or ()] == [
        ("HighLoad", f"{path}:4:33"),
        ("hosts:Down", f"{path}:4:43"),
    ]
    assert every.rules is None
    bad = write(
        tmp_path,
        """\
        tests:
          - name: t
            action_test:
              - {eval_time: 1m, rules: HighLoad, exp_actions: []}
              - {eval_time: 1m, rules: [], exp_actions: []}
              - {eval_time: 1m, rules: [A, A, ''], exp_actions: []}
              - {eval_time: 1m, rule: [A], exp_actions: []}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        read_rule_test_file(bad)
    assert caught.value.problems == (
        f'{bad}:4:32: test group "t": rules: expected a list, got "HighLoad"',
        f'{bad}:5:32: test group "t": rules: name at least one rule or alert (leave rules out '
        "for all)",
        f'{bad}:6:36: test group "t": rules: "A" given twice',
        f'{bad}:6:39: test group "t": rules: a name must not be empty',
        f'{bad}:7:25: unknown field "rule" in an action_test (did you mean "rules"?)',
    )


def test_yaml_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "tests: [\n")
    with pytest.raises(ConfigError) as caught:
        read_rule_test_file(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:2:1: ")


def test_a_file_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        read_rule_test_file(tmp_path / "absent.yml")


def test_the_model_is_what_the_runner_is_given(tmp_path: Path) -> None:
    read = read_rule_test_file(write(tmp_path, "tests: []\n"))
    assert isinstance(read, RuleTestFile)
    assert read.tests == ()


# --- the documentation's example ---------------------------------------------------------------

_DOCS = Path(__file__).resolve().parents[2] / "docs" / "rule-tests.md"


def _docs_block(after: str, language: str) -> str:
    text = _DOCS.read_text()
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]


def _docs_example(tmp_path: Path) -> Path:
    (tmp_path / "alerts.yml").write_text(_docs_block("`alerts.yml`", "yaml"))
    (tmp_path / "rules.toml").write_text(_docs_block("`rules.toml`", "toml"))
    return write(tmp_path, _docs_block("`load_test.yml`", "yaml"), "load_test.yml")


def test_the_documented_example_is_read(tmp_path: Path) -> None:
    read = read_rule_test_file(_docs_example(tmp_path))
    (group,) = read.tests
    assert read.config_file == tmp_path / "rules.toml"
    assert [(a.at, a.kind, a.failed) for a in group.action_tests[0].exp_actions] == [
        (420.0, "fire", True),
        (480.0, "fire", False),
        (780.0, "resolve", False),
    ]
    assert group.plugin_failures[0].times == 1


@needs_promtool
def test_promtool_passes_the_documented_example_without_metric_readers_keys(
    tmp_path: Path,
) -> None:
    """The alerts the example expects are the ones Prometheus' own rule manager fires."""
    path = _docs_example(tmp_path)
    promtool_only = re.sub(
        r"(?ms)^    (plugin_failures|action_test):.*?(?=^    \w|\Z)", "", path.read_text()
    )
    promtool_only = promtool_only.replace("config_file: rules.toml", "rule_files: [alerts.yml]")
    assert "action_test" not in promtool_only and "config_file" not in promtool_only
    path.write_text(promtool_only)
    assert PROMTOOL is not None
    run = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_missing_config_file_and_a_group_ordered_twice_are_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        config_file: absent.toml
        group_eval_order: [a, b, a]
        rule_files: ['[']
        tests: []
        """,
    )
    with pytest.raises(ConfigError) as caught:
        read_rule_test_file(path)
    assert caught.value.problems == (
        f'{path}:3:14: rule_files: "[": syntax error in pattern',
        f'{path}:1:14: config_file: "absent.toml" is not a file',
        f"{path}:2:26: group name repeated in evaluation order: a",
    )
