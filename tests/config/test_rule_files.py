"""Prometheus rule files: read as Prometheus reads them, refused as promtool refuses them,
with the file, line and column of each problem."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from metric_reader._config import ConfigError, RecordingRuleConfig, load_settings
from metric_reader._config._prom_duration import parse_prometheus_duration
from metric_reader._config._rule_files import (
    AlertRuleDef,
    expand_rule_file_globs,
    load_rule_files,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules" / "host-alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(*paths: Path) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_rule_files(paths)
    return caught.value.problems


def test_the_example_is_read_with_its_alerts_templates_and_recording_rule() -> None:
    host, prometheus = load_rule_files([EXAMPLE])

    assert (host.name, host.interval, host.limit, host.file) == ("host", 30.0, 0, EXAMPLE)
    assert [a.name for a in host.alerts] == [
        "HostFilesystemAlmostFull",
        "HostFilesystemFillsWithin24h",
        "HostHighLoad",
        "HostMemoryLow",
    ]
    load = host.alerts[2]
    assert (load.for_, load.keep_firing_for, load.line, load.group) == (900.0, 300.0, 38, "host")
    assert load.labels == {"severity": "warning"}
    assert load.annotations["summary"] == (
        'Load on {{ $labels.instance }} is {{ $value | printf "%.1f" }} per CPU'
    )
    assert load.expr.startswith("node_load15 / count without (cpu, mode)")
    # A folded scalar arrives folded, its templates untouched.
    assert host.alerts[0].annotations["description"] == (
        "Only {{ $value | humanizePercentage }} of {{ $labels.device }} is left "
        "on {{ $labels.mountpoint }}."
    )
    (recording,) = host.recording
    assert (recording.name, recording.line) == ("instance:node_cpu_utilisation:rate5m", 11)

    assert prometheus.interval is None  # the default evaluation interval
    assert [a.for_ for a in prometheus.alerts] == [180.0, 0.0, 900.0]
    assert prometheus.recording == ()


@needs_promtool
def test_promtool_accepts_the_example() -> None:
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(EXAMPLE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_group_labels_query_offset_limit_and_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        groups:
          - name: with-everything
            interval: 1h30m
            query_offset: 1m
            limit: 10
            labels:
              team: storage
              severity: page
            rules:
              - alert: DiskGone
                expr: absent(node_filesystem_size_bytes)
                labels: &common
                  severity: ticket
                  region: eu
                annotations:
                  <<: {summary: "{{ $labels.instance }}", runbook: base}
                  runbook: own
              - alert: DiskGoneToo
                expr: "1"
                for: 0
                labels: *common
          - name: negative-limit
            limit: -1
            interval: 0
        """,
    )
    first, second = load_rule_files([path])

    assert (first.interval, first.query_offset, first.limit) == (5400.0, 60.0, 10)
    gone = first.alerts[0]
    assert first.labels_of(gone) == {"team": "storage", "severity": "ticket", "region": "eu"}
    assert gone.annotations == {"summary": "{{ $labels.instance }}", "runbook": "own"}
    assert first.alerts[1].labels == gone.labels
    assert first.alerts[1].expr == "1"  # a YAML number is text, as yaml.v3 decodes it
    assert (second.limit, second.interval, second.alerts) == (0, None, ())


def test_a_limit_is_read_as_promtool_reads_it(tmp_path: Path) -> None:
    """yaml.v3 decodes Go's integers and cuts floats into an ``int``: promtool 2.42 loads
    them all, and ``limit: .inf`` or ``limit: "5"`` not (``limit-not-a-number`` below)."""
    written = ["1.5", "1e3", "0x10", "017", "0b11", "1_000", "+5", "-.inf"]
    path = write(
        tmp_path,
        "groups:\n"
        + "".join(f"  - name: g{n}\n    limit: {text}\n" for n, text in enumerate(written)),
    )
    assert [group.limit for group in load_rule_files([path])] == [1, 1000, 16, 15, 3, 1000, 5, 0]
    if PROMTOOL is not None:
        done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_an_empty_file_and_an_empty_group_list_have_no_groups(tmp_path: Path) -> None:
    assert (
        load_rule_files([write(tmp_path, "", "a.yml"), write(tmp_path, "groups:\n", "b.yml")]) == ()
    )


# Each bad file, and the one line it must give ({f} is the file). The last element is what
# promtool (2.42, Debian's) says of it: True refuses it too, False accepts it (metric-reader is
# stricter), None not comparable.
BAD = [
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
               for: 5m
        """,
        "{f}:6:8: did not find expected '-' indicator (while parsing a block collection at line 4)",
        True,
        id="yaml-syntax",
    ),
    pytest.param(
        "groups:\n\t- name: g\n",
        "{f}:2:1: found character that cannot start any token"
        " (while scanning for the next token at line 2)",
        True,
        id="tab-indent",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                anotations:
                  summary: x
        """,
        '{f}:6:9: unknown field "anotations" in a rule (did you mean "annotations"?)',
        True,
        id="unknown-rule-key",
    ),
    pytest.param(
        "groups:\n  - name: g\n    evaluation: 1m\n",
        '{f}:3:5: unknown field "evaluation" in a group'
        " (known: name, interval, query_offset, limit, rules, labels)",
        True,
        id="unknown-group-key",
    ),
    pytest.param(
        "group:\n  - name: g\n",
        '{f}:1:1: unknown field "group" in a rule file (did you mean "groups"?)',
        True,
        id="unknown-top-key",
    ),
    pytest.param(
        "- name: g\n",
        "{f}:1:1: a rule file: expected a mapping, got a list",
        True,
        id="not-a-mapping",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - alert: A
                record: a:b
                expr: up == 0
        """,
        """{f}:5:17: group "g", rule 1, "A": only one of 'record' and 'alert' must be set""",
        True,
        id="alert-and-record",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        for: 5m\n",
        """{f}:4:9: group "g", rule 1, "A": field 'expr' must be set in rule""",
        True,
        id="missing-expr",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: [up]\n",
        '{f}:5:15: group "g", rule 1, "A": expr: expected a string, got a list',
        True,
        id="expr-not-text",
    ),
    pytest.param(
        'groups:\n  - name: g\n    rules:\n      - alert: ""\n        expr: up == 0\n',
        """{f}:4:9: group "g", rule 1, "": one of 'record' or 'alert' must be set""",
        True,
        id="empty-alert",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                labels:
                  __name__: x
        """,
        '{f}:7:11: group "g", rule 1, "A": invalid label name: __name__',
        True,
        id="reserved-label",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            labels:
              "": x
        """,
        '{f}:4:7: group "g": invalid label name: ',
        None,  # group labels are Prometheus 3.0: promtool 2.42 refuses the key itself
        id="empty-group-label-name",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
        '{f}:4:5: group name "g" is repeated in the same file (first at line 2)',
        True,
        id="duplicate-group",
    ),
    pytest.param(
        "groups:\n  - rules: []\n",
        "{f}:2:5: group name must not be empty",
        True,
        id="empty-group-name",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: up\n"
        "        for: 5m\n",
        """{f}:4:17: group "g", rule 1, "a:b": invalid field 'for' in recording rule""",
        True,
        id="for-on-recording",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - record: a:b
                expr: up
                annotations:
                  summary: x
        """,
        """{f}:4:17: group "g", rule 1, "a:b": invalid field 'annotations' in recording rule""",
        True,
        id="annotations-on-recording",
    ),
    pytest.param(
        'groups:\n  - name: g\n    rules:\n      - record: a{b="c"}\n        expr: up\n',
        '{f}:4:17: group "g", rule 1, "a{{b=\\"c\\"}}": invalid recording rule name: a{{b="c"}}',
        True,
        id="braces-in-record",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - record: job-rate\n        expr: up\n",
        '{f}:4:17: group "g", rule 1, "job-rate": invalid recording rule name: job-rate',
        True,
        id="record-not-a-metric-name",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - record: a:b
                expr: up
                labels:
                  bad-name: x
        """,
        '{f}:7:11: group "g", rule 1, "a:b": invalid label name: bad-name',
        True,
        id="recording-label-name",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                labels:
                  région: eu
        """,
        '{f}:7:11: group "g", rule 1, "A": invalid label name: région',
        True,  # UTF-8 names are Prometheus 3's
        id="utf8-label-name",
    ),
    pytest.param(
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                annotations:
                  run.book: x
        """,
        '{f}:7:11: group "g", rule 1, "A": invalid annotation name: run.book',
        True,
        id="annotation-name",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 1.5m\n",
        '{f}:6:14: group "g", rule 1, "A": for: unknown unit "." in duration "1.5m"',
        True,
        id="fraction-duration",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n"
        "        keep_firing_for: -5m\n",
        '{f}:6:26: group "g", rule 1, "A": keep_firing_for: not a valid duration string: "-5m"',
        True,
        id="negative-duration",
    ),
    pytest.param(
        "groups:\n  - name: g\n    interval: 5\n",
        '{f}:3:15: group "g": interval: not a valid duration string: "5"',
        True,
        id="duration-without-unit",
    ),
    pytest.param(
        "groups:\n  - name: g\n    limit: ten\n",
        '{f}:3:12: group "g": limit: expected a whole number, got "ten"',
        True,
        id="limit-not-a-number",
    ),
    pytest.param(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n"
        "        expr: down\n",
        '{f}:6:9: mapping key "expr" already defined at line 5',
        True,
        id="duplicate-key",
    ),
    pytest.param(
        "groups: []\n---\ngroups: []\n",
        "{f}:2:1: a second YAML document: a rule file holds one (Prometheus reads only the first)",
        False,  # Prometheus reads the first document and drops the rest
        id="second-document",
    ),
]


@pytest.mark.parametrize(("text", "expected", "promtool_refuses"), BAD)
def test_a_bad_file_gives_one_line_with_its_place(
    tmp_path: Path, text: str, expected: str, promtool_refuses: bool | None
) -> None:
    path = write(tmp_path, text)
    assert problems_of(path) == (expected.format(f=path),)


@needs_promtool
@pytest.mark.parametrize(("text", "expected", "promtool_refuses"), BAD)
def test_promtool_judges_the_bad_files_alike(
    tmp_path: Path, text: str, expected: str, promtool_refuses: bool | None
) -> None:
    if promtool_refuses is None:
        pytest.skip("promtool 2.42 does not know what this file tests")
    path = write(tmp_path, text)
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert (done.returncode != 0) == promtool_refuses, done.stdout + done.stderr


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    one = write(
        tmp_path,
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                for: 5
                labels:
                  __name__: x
              - record: ok:rule
                expr: up
        """,
        "one.yml",
    )
    two = write(tmp_path, "groups: [}\n", "two.yml")
    missing = tmp_path / "missing.yml"

    problems = problems_of(one, two, missing)

    assert problems[:2] == (
        f'{one}:6:14: group "g", rule 1, "A": for: not a valid duration string: "5"',
        f'{one}:8:11: group "g", rule 1, "A": invalid label name: __name__',
    )
    assert problems[2].startswith(f"{two}:1:10: ")
    assert problems[3] == f"{missing}: cannot be read: No such file or directory"
    assert len(problems) == 4


def test_template_problems_come_from_the_hook_with_the_value_s_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                labels:
                  owner: "{{ $labels.team }}"
                annotations:
                  summary: ok
                  description: "{{ .Broken"
              - record: r:ecord
                expr: up
                labels:
                  x: "{{"
        """,
    )
    seen: list[str] = []

    def check(template: str) -> str | None:
        seen.append(template)
        return "unclosed action" if template.startswith("{{ .") else None

    with pytest.raises(ConfigError) as caught:
        load_rule_files([path], check_templates=check)

    assert caught.value.problems == (
        f'{path}:10:24: group "g", rule 1, "A": annotation "description": unclosed action',
    )
    # Alerting rules only: a recording rule's labels are not templates.
    assert sorted(seen) == ["ok", "{{ $labels.team }}", "{{ .Broken"]


def test_the_pure_python_yaml_parser_gives_the_same_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    good = load_rule_files([EXAMPLE])
    assert [a.line for g in good for a in g.alerts] == [14, 28, 38, 48, 59, 67, 74]
    bad = {case.id: case.values for case in BAD}
    for text, expected, _ in (bad["yaml-syntax"], bad["not-a-mapping"]):
        path = write(tmp_path, text)
        (problem,) = problems_of(path)
        # libyaml and PyYAML word syntax errors differently, but agree on the place.
        place = expected.format(f=path).split(": ")[0]
        assert problem.split(": ")[0] == place


def test_yaml_is_imported_only_when_rule_files_are_read() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from metric_reader._config import _rule_files\n"
        "import metric_reader._service, metric_reader._cli\n"
        "print('yaml' in sys.modules)\n"
        f"_rule_files.load_rule_files([Path({str(EXAMPLE)!r})])\n"
        "print('yaml' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "True"], done.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("2w", 14 * 86400.0),
        ("1y", 365 * 86400.0),
        ("1y2w3d4h5m6s7ms", 365 * 86400 + 17 * 86400 + 4 * 3600 + 306 + 0.007),
        ("250ms", 0.25),
    ],
)
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_prometheus_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("5", 'not a valid duration string: "5"'),
        ("-5m", 'not a valid duration string: "-5m"'),
        ("1m1h", 'not a valid duration string: "1m1h"'),
        ("1m1m", 'not a valid duration string: "1m1m"'),
        ("5 m", 'unknown unit " m" in duration "5 m"'),
        ("1us", 'unknown unit "us" in duration "1us"'),
        ("\u0665m", 'not a valid duration string: "\u0665m"'),  # Arabic-Indic 5: ASCII only
        ("300y", "duration out of range"),
    ],
)
def test_what_is_not_a_prometheus_duration(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_prometheus_duration(text)
    assert str(caught.value) == message


def _files(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("groups: []\n")


def test_globs_are_relative_to_the_base_sorted_and_each_file_once(tmp_path: Path) -> None:
    _files(tmp_path, "alerts/b.yml", "alerts/a.yml", "alerts/.hidden.yml", "alerts/c.yaml")
    os.symlink(tmp_path / "alerts" / "a.yml", tmp_path / "alerts" / "link.yml")
    alerts = tmp_path / "alerts"

    found = expand_rule_file_globs(
        ["alerts/*.yml", "alerts/a.yml", str(alerts / "c.yaml"), "alerts/none-*.yml"], tmp_path
    )

    # Go's glob matches dot files; the symlink is the same file as a.yml.
    assert found == [alerts / ".hidden.yml", alerts / "a.yml", alerts / "b.yml", alerts / "c.yaml"]


def test_glob_classes_are_go_s(tmp_path: Path) -> None:
    _files(tmp_path, "a1.yml", "a2.yml", "b1.yml", "[x].yml")
    assert expand_rule_file_globs(["[^a]?.yml"], tmp_path) == [tmp_path / "b1.yml"]
    assert expand_rule_file_globs(["a[1-1].yml", "\\[x].yml"], tmp_path) == [
        tmp_path / "[x].yml",
        tmp_path / "a1.yml",
    ]


def test_a_base_directory_with_glob_characters_is_taken_literally(tmp_path: Path) -> None:
    base = tmp_path / "rules[1]"
    _files(base, "a.yml")
    assert expand_rule_file_globs(["*.yml"], base) == [base / "a.yml"]


def test_bad_globs_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        expand_rule_file_globs(
            ["*/rules.yml", "missing.yml", "rules[.yml", "[]*.yml", "ok-*.yml"],
            tmp_path,
            source="RULE_FILES",
        )
    assert caught.value.problems == (
        "RULE_FILES: \"*/rules.yml\": invalid rule file path: '*' only in the file's name",
        'RULE_FILES: "missing.yml" does not point to an existing file',
        'RULE_FILES: "rules[.yml": syntax error in pattern',
        'RULE_FILES: "[]*.yml": syntax error in pattern',
    )


def test_a_matched_directory_is_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "sub.yml").mkdir()
    (path,) = expand_rule_file_globs(["*.yml"], tmp_path)
    assert problems_of(path) == (f"{path}: cannot be read: Is a directory",)


def test_alert_defs_are_frozen() -> None:
    (host, _) = load_rule_files([EXAMPLE])
    alert: AlertRuleDef = host.alerts[0]
    with pytest.raises(AttributeError):
        alert.name = "Other"  # type: ignore[misc]


# --- rule files in the settings: rule_files and RULE_FILES -------------------------------------

TWO_GROUPS = """\
groups:
  - name: disks
    interval: 30s
    limit: 50
    rules:
      - alert: DiskFull
        expr: disk_used > 0.9
        for: 5m
        keep_firing_for: 1m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.mount }} is full"}
      - alert: DiskFull
        expr: disk_used > 0.95
        labels: {severity: page}
      - record: disk:used:max
        expr: max(disk_used)
  - name: hosts
    rules:
      - alert: DiskFull
        expr: host_disk_used > 0.9
"""


def test_rule_files_give_one_rule_per_alert_with_the_files_defaults(tmp_path: Path) -> None:
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "disks.yml").write_text(TWO_GROUPS)
    config = tmp_path / "rules.toml"
    config.write_text(
        'prometheus_endpoint = "http://prom:9090"\npolling_interval = "10s"\n'
        'action_plugin = "log_action"\nrule_files = ["alerts/*.yml"]\n'
    )
    settings = load_settings({"CONFIG_FILE": str(config)})
    names = [rule.name for rule in settings.rules]
    assert names == ["disks:DiskFull-1", "disks:DiskFull-2", "hosts:DiskFull"]
    first, second, third = settings.rules
    assert first.source.expression == "disk_used > 0.9" and first.metric_name == "DiskFull"
    assert first.polling_interval == 30 and third.polling_interval == 10  # group, default
    assert first.series_limit == 50 and first.missing.value == "resolve"
    assert first.base is not None and first.base.duration == 300
    assert first.base.keep_firing_for == 60 and first.base.plugin == "log_action"
    assert first.base.threshold.text == "disk_used > 0.9"
    assert first.alert is not None and dict(first.alert.labels) == {"severity": "warning"}
    assert second.alert is not None and dict(second.alert.labels) == {"severity": "page"}
    assert settings.skipped_recording_rules == (
        f"{tmp_path / 'alerts' / 'disks.yml'}:15: recording rule disk:used:max skipped: "
        "metric-reader evaluates alerting rules only",
    )


def test_the_settings_keep_every_group_with_its_alerting_and_recording_rules_in_order(
    tmp_path: Path,
) -> None:
    """What ``metric-reader test`` evaluates as promtool does: groups in the order of the
    files and of each file, rules in their order, a recording rule with its group's labels."""
    (tmp_path / "a.yml").write_text(TWO_GROUPS)
    (tmp_path / "b.yml").write_text(
        "groups:\n  - name: later\n    labels: {team: db}\n    rules:\n"
        "      - record: job:up:sum\n        expr: sum by (job) (up)\n"
        "        labels: {source: rule}\n"
    )
    settings = load_settings({"RULE_FILES": f"{tmp_path}/*.yml"})

    disks, hosts, later = settings.rule_groups
    assert [(g.name, g.file.name, g.interval, g.limit) for g in settings.rule_groups] == [
        ("disks", "a.yml", 30.0, 50),
        ("hosts", "a.yml", None, 0),
        ("later", "b.yml", None, 0),
    ]
    first, second, recorded = disks.rules
    assert (first, second) == settings.rules[:2] and hosts.rules == settings.rules[2:]
    assert recorded == RecordingRuleConfig(
        record="disk:used:max",
        expr="max(disk_used)",
        labels=(),
        group="disks",
        group_index=0,
        index=2,
        file=tmp_path / "a.yml",
        line=15,
    )
    (own,) = later.rules
    assert isinstance(own, RecordingRuleConfig)
    assert (own.group_index, own.index, own.line) == (2, 0, 5)
    assert own.labels == (("team", "db"), ("source", "rule"))


def test_rule_files_from_the_environment_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up == 1\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"RULE_FILES": "a.yml, missing*.yml"})
    assert [rule.name for rule in settings.rules] == ["Up"]


def test_a_broken_rule_file_and_a_clash_of_names_are_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: queue\n        expr: up\n"
        "        annotations: {x: '{{ .Nope '}\n"
        "      - alert: other\n        expr: up\n"
    )
    config = tmp_path / "rules.toml"
    config.write_text('rule_files = ["a.yml"]\n[[rules]]\nname = "other"\nmetric_name = "q"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_FILE": str(config)})
    [template] = caught.value.problems
    assert template.startswith(f"{tmp_path / 'a.yml'}:6:") and "unclosed action" in template
    (tmp_path / "a.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: other\n        expr: up\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_FILE": str(config)})
    assert caught.value.problems == (
        f"{tmp_path / 'a.yml'}:4: alert 'other' has the name of a rule of the rule file; "
        "rename one of them",
    )
    config.write_text('rule_files = ["a.yml", "b.yml"]\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_FILE": str(config)})
    assert caught.value.problems == (
        f'{config}:1: rule_files: "b.yml" does not point to an existing file',
    )


# --- bounded: aliases, pipes, devices, size (issue 22, point 8) -------------------------------


def test_yaml_whose_aliases_expand_out_of_proportion_is_refused_as_yaml_v3_refuses_it(
    tmp_path: Path,
) -> None:
    """Each level merges the one before ten times: the reader walked 10^levels merges. A
    document more than 99% aliases past 1,000 nodes is refused (yaml.v3's rule), where
    the walk meets it, without expanding it."""
    lines = ["groups:", "- name: g0", "  labels: &l0 {a: '1', b: '2', c: '3', d: '4', e: '5'}"]
    for level in range(1, 30):
        merged = ", ".join([f"*l{level - 1}"] * 10)
        lines += [f"- name: g{level}", f"  labels: &l{level} {{<<: [{merged}]}}"]
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:9:20: document contains excessive aliasing: "), problem
    assert problem.endswith(
        " nodes once the aliases up to here are expanded (Prometheus refuses it too)"
    )


def test_an_anchor_holding_an_alias_to_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yml"
    path.write_text("groups: &g\n- name: a\n  rules: *g\n")
    assert problems_of(path) == (f"{path}:1:9: an anchor's value contains an alias to itself",)


def test_anchors_used_as_rule_files_use_them_are_read(tmp_path: Path) -> None:
    """Shared labels and annotations on a few hundred rules: aliases, but a small share of
    the document."""
    rules = "".join(
        f"  - alert: A{n}\n    expr: up == {n}\n    labels: *common\n"
        f"    annotations: {{<<: *notes, summary: 'rule {n}'}}\n"
        for n in range(300)
    )
    path = tmp_path / "shared.yml"
    path.write_text(
        "groups:\n- name: g\n  labels: &common {team: db, severity: page}\n"
        "  rules:\n  - alert: Base\n    expr: up\n    annotations: &notes {runbook: r}\n" + rules
    )
    (group,) = load_rule_files([path])
    assert len(group.alerts) == 301
    assert group.alerts[-1].labels == {"team": "db", "severity": "page"}
    assert group.alerts[-1].annotations == {"runbook": "r", "summary": "rule 299"}


def test_a_rule_file_is_read_up_to_16_mib(tmp_path: Path) -> None:
    """(A named pipe or a device is refused too: tests/integration/test_rule_file_cli.py
    runs those in a subprocess, bounded, as a regression would hang or eat memory.)"""
    huge = tmp_path / "huge.yml"
    with huge.open("wb") as file:
        file.truncate(16 * 1024 * 1024 + 1)  # sparse: no disk written
    assert problems_of(huge) == (
        f"{huge}: cannot be read: larger than 16 MiB, the most a configuration or rule file holds",
    )
