"""``metric-reader test FILE...`` as a user runs it: real files, a real subprocess, and
Debian's promtool beside it where the two are compared."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bounded import run_bounded

from metric_reader._replay import test_command as report_tests

REPO = Path(__file__).resolve().parents[2]
HAVE_PROMTOOL = shutil.which("promtool") is not None

ALERTS = """
groups:
  - name: queues
    rules:
      - alert: QueueBacklog
        expr: sum by (queue) (queue_depth) > 100
        for: 2m
        labels: {severity: page}
        annotations: {summary: '{{ $labels.queue }} holds {{ $value }} messages'}
"""
CONFIG = """
rule_files = ["alerts.yml"]
action_plugin = "pager"
polling_interval = "1m"

[[rules]]
name = "dead-letters"
metric_name = "dead_letters"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">0"
threshold_duration = "1m"
backoff_delay = "3m"
action_plugin = "ticket"
"""
TESTS = """
config_file: rules.toml
tests:
  - name: backlog
    interval: 1m
    input_series:
      - series: 'queue_depth{queue="mail", pod="a"}'
        values: '10 80x5 10'
      - series: 'queue_depth{queue="mail", pod="b"}'
        values: '10 80x5 10'
      - series: 'dead_letters{queue="mail"}'
        values: '0 0 3x6 0'
    plugin_failures:
      - plugin: ticket
        times: 1
    alert_rule_test:
      - eval_time: 3m
        alertname: QueueBacklog
        exp_alerts:
          - exp_labels: {queue: mail, severity: page}
            exp_annotations: {summary: mail holds 160 messages}
      - eval_time: 7m
        alertname: QueueBacklog
        exp_alerts: []
    action_test:
      - eval_time: 9m
        exp_actions:
          - {at: 3m, plugin: pager, kind: fire, rule: QueueBacklog, value: 160,
             labels: {alertname: QueueBacklog, queue: mail, severity: page},
             annotations: {summary: mail holds 160 messages}}
          - {at: 3m, plugin: ticket, kind: fire, rule: dead-letters, failed: true,
             labels: {queue: mail}, value: 3}
          - {at: 4m, plugin: ticket, kind: fire, labels: {queue: mail}}
          - {at: 7m, plugin: pager, kind: resolve,
             labels: {alertname: QueueBacklog, queue: mail, severity: page}}
          - {at: 7m, plugin: ticket, kind: repeat, labels: {queue: mail}}
          - {at: 9m, plugin: ticket, kind: resolve, labels: {queue: mail}}
"""


def _write(tmp_path: Path, tests: str = TESTS) -> Path:
    (tmp_path / "alerts.yml").write_text(ALERTS)
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "queues_test.yml"
    path.write_text(tests)
    return path


def _run(*files: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "test", *map(str, files)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_passing_file_with_an_expression_and_a_selector_rule_exits_0(tmp_path: Path) -> None:
    result = _run(_write(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"Unit Testing:  {tmp_path / 'queues_test.yml'}\n  SUCCESS\n\n"


def test_a_failing_file_shows_expected_and_got_and_exits_1(tmp_path: Path) -> None:
    wrong = TESTS.replace(
        "exp_annotations: {summary: mail holds 160 messages}",
        "exp_annotations: {summary: mail holds 150 messages}",
    ).replace("{at: 7m, plugin: ticket, kind: repeat", "{at: 6m, plugin: ticket, kind: repeat")
    assert wrong.count("150") == 1 and "at: 6m, plugin: ticket" in wrong
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = _write(tmp_path / "good")
    bad = _write(tmp_path / "bad", wrong)
    result = _run(good, bad)
    assert result.returncode == 1, result.stdout + result.stderr
    # promtool's streams: the file names, SUCCESS and a blank line a failure and a file on
    # stdout; FAILED and the failures on stderr.
    assert result.stdout == (
        f"Unit Testing:  {good}\n  SUCCESS\n\nUnit Testing:  {bad}\n" + "\n" * 3
    )
    failed = result.stderr
    assert failed.startswith("  FAILED:\n    name: backlog,\n    alertname: QueueBacklog, time: 3m")
    assert 'Annotations:{summary="mail holds 150 messages"}' in failed  # expected
    assert 'Annotations:{summary="mail holds 160 messages"}' in failed  # got
    # The expected call, and the call that was made instead, each on its line.
    assert "action_test at 9m (line 26)" in failed
    assert '4: at 6m: repeat by ticket, labels {queue="mail"}\n' in failed
    assert '4: at 7m: repeat by ticket, rule dead-letters, labels {queue="mail"}, value 3' in failed


GONE = """
config_file: rules.toml
tests:
  - name: gone
    interval: 1m
    input_series:
      - series: 'queue_depth{queue="mail"}'
        values: '200x2 _x12 200x2'
    plugin_failures:
      - plugin: pager
        from: 0m
    alert_rule_test:
      - eval_time: 3m
        alertname: QueueBacklog
        exp_alerts:
          - exp_labels: {queue: mail, severity: page}
            exp_annotations: {summary: mail holds 200 messages}
      - eval_time: 10m
        alertname: QueueBacklog
        exp_alerts: []
"""


def test_an_alert_whose_series_went_away_is_not_firing_though_its_fire_failed(
    tmp_path: Path,
) -> None:
    """The series is in the expression's result to 7m (5 minutes of lookback after its
    last sample), then gone: the alert ends at once and, its fire never having reached
    the pager, nothing is owed, so the rule forgets the series there. It used to be
    listed as firing at 10m: the state of the replay's last step before the gap."""
    test = _write(tmp_path, GONE)
    (tmp_path / "rules.toml").write_text(CONFIG.split("[[rules]]")[0])  # the alert alone
    result = _run(test)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"Unit Testing:  {test}\n  SUCCESS\n\n"


def test_expression_rules_are_tested_without_prometheus(tmp_path: Path) -> None:
    """No promtool or prometheus on PATH: the expressions are evaluated in process."""
    bare = tmp_path / "bin"
    bare.mkdir()
    test = _write(tmp_path)
    result = _run(test, path=str(bare))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"Unit Testing:  {test}\n  SUCCESS\n\n"


def test_a_rule_file_expression_that_does_not_parse_fails_the_file_at_its_place(
    tmp_path: Path,
) -> None:
    """promtool's ``test rules`` refuses such a rule file before any test runs; so does
    ``test``, in promtool's words, without starting a Prometheus to find out."""
    _write(tmp_path)
    (tmp_path / "alerts.yml").write_text(ALERTS.replace("(queue_depth)", "(queue_depth"))
    bare = tmp_path / "bin"
    bare.mkdir()
    result = _run(tmp_path / "queues_test.yml", path=str(bare))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f'\n{tmp_path / "alerts.yml"}:6:15: group "queues", rule 1, "QueueBacklog": could '
        "not parse expression: 1:34: parse error: unclosed left parenthesis\n"
    ) in result.stderr
    assert "promtool" not in result.stderr


def test_a_file_that_cannot_be_read_fails_with_its_problems(tmp_path: Path) -> None:
    test = tmp_path / "broken_test.yml"
    test.write_text("rule_files: [missing.yml]\ntests:\n  - intervl: 1m\n")
    result = _run(test)
    assert result.returncode == 1
    assert "FAILED" in result.stderr
    assert "intervl" in result.stderr and "interval" in result.stderr


def test_the_example_rule_tests_pass() -> None:
    result = _run(*sorted((REPO / "examples" / "tests").glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


# --- inputs that cost unbounded time or memory (issue 22, point 8) -------------------------


def _selector_test(tmp_path: Path, groups: str) -> Path:
    """A test file of the dead-letters selector rule alone (no Prometheus needed)."""
    (tmp_path / "rules.toml").write_text(CONFIG.replace('rule_files = ["alerts.yml"]\n', ""))
    test = tmp_path / "bounded_test.yml"
    test.write_text("config_file: rules.toml\ntests:\n" + groups)
    return test


def test_an_eval_time_far_away_fails_its_group_in_one_line(tmp_path: Path) -> None:
    """2,000,000 hours at 1m were 120 million evaluations: MemoryError, now one line."""
    test = _selector_test(
        tmp_path,
        "  - name: far\n    interval: 1m\n    input_series:\n"
        "      - {series: 'dead_letters{queue=\"mail\"}', values: '0 3'}\n"
        "    action_test:\n      - {eval_time: 2000000h, exp_actions: []}\n",
    )
    result = run_bounded("test", str(test), env={}, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert result.stdout == f"Unit Testing:  {test}\n\n\n"
    assert result.stderr == (
        '  FAILED:\ntest group "far": '
        "120,000,001 evaluations up to eval_time 83333d8h (120,000,001 of rule "
        "'dead-letters') for 1 input series: a test group may hold at most 2,000,000 "
        "evaluations times input series\n"
    )


def test_input_series_past_a_million_values_are_problems_of_the_file(tmp_path: Path) -> None:
    """Three series of 9,999,999 values were under the 10 million a series documented, and
    ended in MemoryError: a test group holds at most 1,000,000, all its series together."""
    huge = "".join(
        f"      - {{series: 'dead_letters{{queue=\"q{n}\"}}', values: '1x9999998'}}\n"
        for n in range(3)
    )
    large = "".join(
        f"      - {{series: 'dead_letters{{queue=\"q{n}\"}}', values: '1x599999'}}\n"
        for n in range(2)
    )
    test = _selector_test(
        tmp_path,
        f"  - name: huge\n    input_series:\n{huge}  - name: large\n    input_series:\n{large}",
    )
    result = run_bounded("test", str(test), env={}, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert result.stderr.splitlines() == [
        "  FAILED:",
        *(
            f'{test}:{line}:54: test group "huge": values: at character 3: more than '
            "1,000,000 values in one series"
            for line in (5, 6, 7)
        ),
        f'{test}:10:7: test group "large": input_series: 1,200,000 values in all, more '
        "than the 1,000,000 one test group may hold",
    ]


def test_a_test_file_that_is_a_pipe_fails_in_one_line(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe_test.yml"
    os.mkfifo(pipe)
    result = run_bounded("test", str(pipe), env={}, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert result.stdout == f"Unit Testing:  {pipe}\n\n\n"
    assert result.stderr == (
        f"  FAILED:\n{pipe}: cannot be read: a named pipe, not a regular file\n"
    )


def test_an_annotation_printing_past_gos_bounds_renders_as_go(tmp_path: Path) -> None:
    """printf "%.299999999f" made a 300 MB annotation at each rendering; Go's fmt prints
    %!(NOVERB) for a precision past 10^6, and so does metric-reader."""
    bounded = "mail holds %!(NOVERB)%!(EXTRA float64=160) messages"
    tests = TESTS.replace("{summary: mail holds 160 messages}", f"{{summary: '{bounded}'}}")
    assert tests.count(bounded) == 2
    test = _write(tmp_path, tests)
    (tmp_path / "alerts.yml").write_text(
        ALERTS.replace("{{ $value }}", '{{ printf \\"%.299999999f\\" $value }}')
        .replace("summary: '", 'summary: "')
        .replace("messages'}", 'messages"}')
    )
    result = run_bounded("test", str(test), env={}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout == f"Unit Testing:  {test}\n  SUCCESS\n\n"


# --- action_test scoped to the rules it tests (issue 23, point 9) --------------------------

NEIGHBOURS = """
groups:
  - name: hosts
    rules:
      - alert: HighLoad
        expr: node_load1 > 4
        for: 2m
        labels: {severity: page}
      - alert: Watchdog
        expr: vector(1)
      - alert: NodeJobMissing
        expr: absent(up{job="node"})
  - name: canary
    rules:
      - alert: HighLoad
        expr: node_load1{instance="canary"} > 1
"""
PAGE = "{alertname: HighLoad, instance: a, severity: page}"
CANARY = "{alertname: HighLoad, instance: canary}"


def _neighbours_test(tmp_path: Path, action_tests: str) -> Path:
    """HighLoad (in two groups: rules hosts:HighLoad and canary:HighLoad) among alerts that
    fire from the first evaluation, as awesome-prometheus-alerts' Watchdog does."""
    (tmp_path / "alerts.yml").write_text(NEIGHBOURS)
    (tmp_path / "rules.toml").write_text(
        'rule_files = ["alerts.yml"]\naction_plugin = "pager"\npolling_interval = "1m"\n'
    )
    test = tmp_path / "load_test.yml"
    test.write_text(
        "config_file: rules.toml\ntests:\n  - name: load\n    interval: 1m\n"
        "    input_series:\n"
        "      - {series: 'node_load1{instance=\"a\"}', values: '1 5x4 1'}\n"
        "      - {series: 'node_load1{instance=\"canary\"}', values: '0 0 2 0'}\n"
        "    action_test:\n" + action_tests
    )
    return test


def test_an_action_test_naming_its_alert_ignores_the_other_rules_calls(tmp_path: Path) -> None:
    """A test of HighLoad failed on the calls of Watchdog (vector(1)) and NodeJobMissing
    (absent()): `rules` names what it asserts, by alert name (every rule of that alert) or
    by rule name."""
    test = _neighbours_test(
        tmp_path,
        "      - eval_time: 6m\n        rules: [HighLoad]\n        exp_actions:\n"
        f"          - {{at: 2m, plugin: pager, kind: fire, labels: {CANARY}}}\n"
        f"          - {{at: 3m, plugin: pager, kind: resolve, labels: {CANARY}}}\n"
        f"          - {{at: 3m, plugin: pager, kind: fire, labels: {PAGE}}}\n"
        f"          - {{at: 6m, plugin: pager, kind: resolve, labels: {PAGE}}}\n"
        "      - eval_time: 6m\n        rules: ['hosts:HighLoad', Watchdog]\n"
        "        exp_actions:\n"
        "          - {at: 0s, plugin: pager, kind: fire, labels: {alertname: Watchdog}}\n"
        f"          - {{at: 3m, plugin: pager, kind: fire, labels: {PAGE}}}\n"
        f"          - {{at: 6m, plugin: pager, kind: resolve, labels: {PAGE}}}\n",
    )
    result = _run(test)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"Unit Testing:  {test}\n  SUCCESS\n\n"


def test_an_unknown_rule_name_is_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    """Checked when the file is read, before any series is (no Prometheus needed)."""
    test = _neighbours_test(
        tmp_path,
        "      - {eval_time: 6m, rules: [HighLoad, Higload], exp_actions: []}\n",
    )
    bare = tmp_path / "bin"
    bare.mkdir()
    result = _run(test, path=str(bare))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        "  FAILED:\n"
        f'{test}:9:43: test group "load": rules: no rule or alert is named "Higload" '
        "(known: hosts:HighLoad, HighLoad, Watchdog, NodeJobMissing, canary:HighLoad)\n"
    )


def test_a_failing_action_test_marks_its_first_difference(tmp_path: Path) -> None:
    """The exp and got lists as before, the first entry that differs marked `>` in both (or
    in the longer one, when the shorter is all as expected)."""
    (tmp_path / "rules.toml").write_text(
        CONFIG.replace('rule_files = ["alerts.yml"]\n', "")
        + '\n[[rules]]\nname = "retries"\nmetric_name = "retries"\n'
        'scrape_url = "http://127.0.0.1:9/metrics"\nthreshold = ">5"\n'
    )
    test = tmp_path / "mail_test.yml"
    test.write_text(
        "config_file: rules.toml\ntests:\n  - name: mail\n    interval: 1m\n"
        "    input_series:\n"
        "      - {series: 'dead_letters{queue=\"mail\"}', values: '0 0 3x6 0'}\n"
        "      - {series: 'retries{queue=\"mail\"}', values: '9x9'}\n"
        "    action_test:\n"
        "      - eval_time: 9m\n        rules: [dead-letters]\n        exp_actions:\n"
        "          - {at: 3m, plugin: ticket, kind: fire, labels: {queue: mail}}\n"
        "          - {at: 7m, plugin: ticket, kind: repeat, labels: {queue: mail}}\n"
        "          - {at: 9m, plugin: ticket, kind: resolve, labels: {queue: mail}}\n"
        "      - eval_time: 6m\n        rules: [dead-letters]\n        exp_actions:\n"
        "          - {at: 3m, plugin: ticket, kind: fire, labels: {queue: mail}}\n"
    )
    result = _run(test)
    assert result.returncode == 1, result.stdout + result.stderr
    got = [
        'at 3m: fire by ticket, rule dead-letters, labels {queue="mail"}, value 3',
        'at 6m: repeat by ticket, rule dead-letters, labels {queue="mail"}, value 3',
        'at 9m: resolve by ticket, rule dead-letters, labels {queue="mail"}, value 3',
    ]
    assert result.stdout == f"Unit Testing:  {test}\n\n\n\n"
    assert result.stderr == (
        "  FAILED:\n"
        "    name: mail,\n"
        "    action_test of dead-letters at 9m (line 9), \n"
        "        exp:[\n"
        '            0: at 3m: fire by ticket, labels {queue="mail"}\n'
        '          > 1: at 7m: repeat by ticket, labels {queue="mail"}\n'
        '            2: at 9m: resolve by ticket, labels {queue="mail"}\n'
        "            ], \n"
        "        got:[\n"
        f"            0: {got[0]}\n"
        f"          > 1: {got[1]}\n"
        f"            2: {got[2]}\n"
        "            ]\n"
        "    name: mail,\n"
        "    action_test of dead-letters at 6m (line 15), \n"
        "        exp:[\n"
        '            0: at 3m: fire by ticket, labels {queue="mail"}\n'
        "            ], \n"
        "        got:[\n"
        f"            0: {got[0]}\n"
        f"          > 1: {got[1]}\n"
        "            ]\n"
    )


@pytest.mark.skipif(not HAVE_PROMTOOL, reason="needs Debian's prometheus package (promtool)")
def test_a_free_text_alert_and_an_alert_given_twice_are_tested(tmp_path: Path) -> None:
    """Alert names are free text in Prometheus 2.42, and the same alert with the same labels
    twice in a group is only linted: promtool tests such files, and so does metric-reader
    (the alert given twice fires twice, as in Prometheus)."""
    (tmp_path / "alerts.yml").write_text(
        "groups:\n  - name: backups\n    rules:\n"
        "      - alert: 'Backup (nightly) failed: >80%'\n        expr: backup_failed > 0\n"
        "      - alert: Twice\n        expr: backup_failed > 0\n"
        "      - alert: Twice\n        expr: backup_failed > 1\n"
    )
    test = tmp_path / "backups_test.yml"
    test.write_text(
        "rule_files: [alerts.yml]\ntests:\n  - interval: 1m\n    input_series:\n"
        "      - {series: 'backup_failed{db=\"orders\"}', values: '0 2 0'}\n"
        "    alert_rule_test:\n"
        "      - eval_time: 1m\n        alertname: 'Backup (nightly) failed: >80%'\n"
        "        exp_alerts: [{exp_labels: {db: orders}}]\n"
        "      - eval_time: 1m\n        alertname: Twice\n"
        "        exp_alerts: [{exp_labels: {db: orders}}, {exp_labels: {db: orders}}]\n"
    )
    result = _run(test)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"Unit Testing:  {test}\n  SUCCESS\n\n"
    promtool = subprocess.run(
        ["promtool", "test", "rules", str(test)], capture_output=True, text=True, timeout=60
    )
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr


# --- promtool's output and edge cases (issue 24, points 5 and 7) ---------------------------

UP_ALERTS = """
groups:
  - name: up
    rules:
      - alert: Up
        expr: up > 0
        labels: {severity: page}
        annotations: {summary: '{{ $labels.job }} is up'}
"""
UP_TESTS = """
rule_files: [up_alerts.yml]
tests:
  - name: named
    interval: 1m
    input_series:
      - {series: 'up{job="a", zone="z"}', values: '1x3'}
      - {series: 'up{job="a"}', values: '1x3'}
    alert_rule_test:
      - {eval_time: 1m, alertname: Up, exp_alerts: []}
    promql_expr_test:
      - {expr: up, eval_time: 90s}
      - {expr: 'sum(up) / 0', eval_time: 1m, exp_samples: [{value: 1}]}
      - {expr: 'sum((up)', eval_time: 1m}
  - interval: 1m
    input_series:
      - {series: 'up{job="b"}', values: '1'}
    alert_rule_test:
      - {eval_time: 0m, alertname: Up, exp_alerts: [{exp_labels: {job: b}}]}
"""
NO_RULES_TESTS = """
rule_files: ['none-*.yml']
tests:
  - interval: 1m
    input_series:
      - {series: 'up{job="a"}', values: '1 0'}
    promql_expr_test:
      - {expr: up, eval_time: 1m, exp_samples: [{labels: 'up{job="a"}', value: 0}]}
"""


@pytest.mark.skipif(not HAVE_PROMTOOL, reason="needs Debian's prometheus package (promtool)")
def test_the_report_is_promtools_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout and stderr as promtool 2.42 writes them: FAILED and the failures on stderr,
    the group's name only above an alert test's failure and only when it has one, alerts
    and samples in labels.Compare order, `nil`, `+Inf`, the engine's error; a file whose
    rule_files match nothing warns and runs its expression tests without rules."""
    (tmp_path / "up_alerts.yml").write_text(UP_ALERTS)
    (tmp_path / "up_test.yml").write_text(UP_TESTS)
    (tmp_path / "no_rules_test.yml").write_text(NO_RULES_TESTS)
    files = ["up_test.yml", "no_rules_test.yml"]
    promtool = subprocess.run(
        ["promtool", "test", "rules", *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    monkeypatch.chdir(tmp_path)
    code = report_tests([Path(name) for name in files])
    ours = capsys.readouterr()
    assert code == promtool.returncode == 1
    assert ours.out == promtool.stdout
    # The warning (on stderr as promtool's) says where the pattern is, in our words.
    ours_warning = "no_rules_test.yml:2:14: rule_files: no file matches pattern "
    theirs = promtool.stderr.replace("pattern none-*.yml", 'pattern "none-*.yml"')
    assert ours.err.replace(ours_warning, "no file match pattern ") == theirs
    assert "    name: named,\n    alertname: Up" in ours.err
    assert "name: ," not in ours.err


def test_the_services_own_settings_do_not_reach_a_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shell set up for the service (or set wrong) neither fails nor changes a test."""
    for name, value in {
        "LOG_LEVEL": "garbage",
        "METRIC_NAME": "",
        "POLLING_INTERVAL": "garbage",
        "CONFIG_FILE": str(tmp_path / "missing.toml"),
        "RULE_FILES": str(tmp_path / "missing.yml"),
        "THRESHOLD": ">1000",
    }.items():
        monkeypatch.setenv(name, value)
    test = _selector_test(
        tmp_path,
        "  - interval: 1m\n    input_series:\n"
        "      - {series: 'dead_letters{queue=\"mail\"}', values: '0 3 3'}\n"
        "    action_test:\n      - eval_time: 2m\n        exp_actions:\n"
        "          - {at: 2m, plugin: ticket, kind: fire, labels: {queue: mail}}\n",
    )
    assert report_tests([test]) == 0
    assert capsys.readouterr().out == f"Unit Testing:  {test}\n  SUCCESS\n\n"


def test_a_test_spanning_292_years_reads_its_first_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """promtool's long-period.yml reaches time.Duration's end (106751 days); the throwaway
    Prometheus's 100-year retention deleted the first samples."""
    test = tmp_path / "long_test.yml"
    test.write_text(
        "tests:\n  - interval: 100d\n    input_series:\n"
        "      - {series: test, values: '0 _x1066 1067'}\n    promql_expr_test:\n"
        "      - {expr: timestamp(test), eval_time: 0m, exp_samples: [{value: 0}]}\n"
        "      - {expr: timestamp(test), eval_time: 106700d,\n"
        "         exp_samples: [{value: 9218880000}]}\n"
    )
    assert report_tests([test]) == 0, capsys.readouterr().err
