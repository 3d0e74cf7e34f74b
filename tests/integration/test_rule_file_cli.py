"""The rule file through the real command: check accepts the example, errors come together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _bounded import run_bounded

from .conftest import REPO_ROOT, base_env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", *args],
        cwd=REPO_ROOT,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_accepts_the_example_rule_file_and_prints_the_rules() -> None:
    result = run("check", CONFIG_FILE="examples/rules.toml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # 4 [[rules]] and the 7 alerts of examples/rules/host-alerts.yml (rule_files)
    assert lines[0] == "configuration OK from examples/rules.toml: 11 rule(s)"
    assert lines[2].split() == ["RULE", "READS", "FROM", "EVERY", "ACTION", "HARD"]
    table = "\n".join(lines[3:14])
    for name in ("data-volume-space", "checkout-error-rate", "queue-depth", "batch-heartbeat"):
        assert name in table
    assert "<5e9 for 2m0s every 30m0s x2 up to 2h0m0s -> log_action" in table
    assert "HostMemoryLow" in table and "alert for 2m0s every 5m0s -> log_action" in table
    assert 'route HostMemoryLow: routes[0] {severity="critical"} -> log_action' in lines
    assert any("recording rule instance:node_cpu_utilisation:rate5m skipped" in x for x in lines)
    assert "Traceback" not in result.stderr


def test_all_mistakes_of_a_rule_file_are_reported_together(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        '[[rules]]\nname = "a"\nmetric_name = "m"\nthreshold = ">1"\nbackof_delay = "1s"\n'
        'action_plugin = "no_such_plugin"\n'
        '[[rules]]\nname = "b"\nmetric_name = "m"\nthreshold = "80"\n'
    )
    result = run("check", CONFIG_FILE=str(config))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"metric-reader: configuration error: {config}:5: rules[0].backof_delay: unknown key; "
        "did you mean 'backoff_delay'?",
        f"metric-reader: configuration error: {config}:10: rules[1].threshold='80' is invalid: "
        "expected an operator (>, <, >=, <=, ==, !=) followed by a number, e.g. >80, <=0.5, "
        "!=0, >1e3",
    ]
    assert "Traceback" not in result.stderr


def test_a_plugin_the_rules_name_must_exist(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(
        '[[rules]]\nname = "a"\nmetric_name = "m"\nthreshold = ">1"\n'
        'action_plugin = "no_such_plugin"\n'
    )
    result = run("check", CONFIG_FILE=str(config))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "rule 'a' action_plugin='no_such_plugin' is invalid: no plugin of that name" in line


# --- inputs that cost unbounded time or memory (issue 22, point 8) -------------------------


def _merge_bomb(levels: int) -> str:
    """A rule file of under 1 KB whose labels merge the level before ten times, each level:
    10^levels merges for a reader that walks them."""
    lines = ["groups:", "- name: g0", "  labels: &l0 {a: '1', b: '2', c: '3', d: '4', e: '5'}"]
    for level in range(1, levels + 1):
        merged = ", ".join([f"*l{level - 1}"] * 10)
        lines += [f"- name: g{level}", f"  labels: &l{level} {{<<: [{merged}]}}"]
    return "\n".join(lines) + "\n"


def test_a_yaml_merge_key_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Each level merges the one before ten times: check walked 10^9 merges (minutes);
    Prometheus' yaml.v3 refuses the document for its aliasing, and so does check."""
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(_merge_bomb(9))
    assert len(bomb.read_bytes()) < 1024
    result = run_bounded("check", "--no-read", env={"RULE_FILES": str(bomb)}, timeout=30)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.splitlines()
    assert line.startswith(f"metric-reader: configuration error: {bomb}:"), line
    assert "document contains excessive aliasing" in line


def test_a_glob_matching_a_pipe_a_device_or_a_huge_file_names_each_in_one_line(
    tmp_path: Path,
) -> None:
    """A named pipe hung check (the open waits for a writer), a symlink to /dev/zero was
    read until MemoryError: only regular files are read, up to 16 MiB."""
    rules = tmp_path / "rules"
    rules.mkdir()
    os.mkfifo(rules / "a-pipe.yml")
    (rules / "b-zero.yml").symlink_to("/dev/zero")
    with (rules / "c-huge.yml").open("wb") as huge:
        huge.truncate(16 * 1024 * 1024 + 1)  # sparse: no disk written
    (rules / "d-fine.yml").write_text("groups: []\n")
    result = run_bounded("check", "--no-read", env={"RULE_FILES": f"{rules}/*.yml"}, timeout=30)
    assert result.returncode == 2, result.stderr[-2000:]
    prefix = "metric-reader: configuration error: "
    assert result.stderr.splitlines() == [
        f"{prefix}{rules}/a-pipe.yml: cannot be read: a named pipe, not a regular file",
        f"{prefix}{rules}/b-zero.yml: cannot be read: a character device, not a regular file",
        f"{prefix}{rules}/c-huge.yml: cannot be read: larger than 16 MiB, the most a "
        "configuration or rule file holds",
    ]


def test_a_config_file_or_credential_file_that_is_a_pipe_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    result = run_bounded("check", "--no-read", env={"CONFIG_FILE": str(pipe)}, timeout=30)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"metric-reader: configuration error: CONFIG_FILE: {pipe}: cannot read: a named pipe, "
        "not a regular file"
    ]
    env = {"PROMETHEUS_ENDPOINT": "http://127.0.0.1:9", "METRIC_NAME": "m", "THRESHOLD": ">1"}
    for variable in ("BEARER_TOKEN_FILE", "TLS_CA_FILE"):
        result = run_bounded("check", "--no-read", env={**env, variable: str(pipe)}, timeout=30)
        assert result.returncode == 2, result.stderr[-2000:]
        [line] = result.stderr.splitlines()
        assert f"{variable}={str(pipe)!r} is invalid: cannot read: a named pipe, not a" in line


# --- PromQL parsed without a Prometheus (issue 23, point 6) --------------------------------

BROKEN_EXPRESSIONS = """\
groups:
  - name: node
    rules:
      - alert: HostLoad
        expr: derivv(node_load1[5m]) > 0
      - alert: HostDown
        expr: |
          max by (instance) (up{job="node"} == 0
      - alert: HostUp
        expr: up{job="node"} == 1
"""


def test_check_no_read_and_the_start_refuse_a_promql_syntax_error_at_its_place(
    tmp_path: Path,
) -> None:
    """The form the README shows for rule files, ``check --no-read``, passed a misspelt
    function and an unclosed parenthesis; the service started on them when its Prometheus
    could not be asked. Both now refuse the file as promtool does: FILE:LINE:COL, exit 2."""
    rules = tmp_path / "node.yml"
    rules.write_text(BROKEN_EXPRESSIONS)
    prefix = f"metric-reader: configuration error: {rules}:"
    expected = [
        f'{prefix}5:15: group "node", rule 1, "HostLoad": could not parse expression: 1:1: '
        'parse error: unknown function with name "derivv"',
        f'{prefix}7:15: group "node", rule 2, "HostDown": could not parse expression: '
        "2:1: parse error: unclosed left parenthesis",
    ]
    env = {"RULE_FILES": str(rules), "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9"}
    checked = run_bounded("check", "--no-read", env=env, timeout=30)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert checked.stderr.splitlines() == expected
    assert "configuration OK" not in checked.stdout
    started = run_bounded(env=env, timeout=30)
    assert started.returncode == 2, started.stdout + started.stderr
    assert [line for line in started.stderr.splitlines() if line.startswith(prefix)] == expected
