"""The rule file through the real command: check accepts the example, errors come together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert "<5e9 for 2m0s every 30m0s -> log_action" in table
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
