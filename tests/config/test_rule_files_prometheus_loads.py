"""Rule files that Prometheus 2.42 loads are loaded: an alert's name is free text, the same
alert with the same labels twice in a group is a warning (promtool only lints it) and both
are evaluated, and a rule that takes keys through a merge key has its mistakes placed at
the rule, not at the anchor every such rule shares."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metric_reader._config import ConfigError, load_settings

FREE_TEXT = "Database backup (nightly) failed: >80% of 'prod'"


def _settings(tmp_path: Path, rules: str) -> object:
    (tmp_path / "alerts.yml").write_text(textwrap.dedent(rules))
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\nrule_files = ["alerts.yml"]\n'
    )
    return load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})


def test_an_alert_name_is_free_text(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        f"""\
        groups:
          - name: backups
            rules:
              - alert: "{FREE_TEXT}"
                expr: backup_failed > 0
        """,
    )
    [rule] = settings.rules  # type: ignore[attr-defined]
    assert rule.name == FREE_TEXT
    assert rule.alert.name == FREE_TEXT


def test_the_same_alert_twice_in_a_group_is_a_warning_and_both_are_rules(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path,
        """\
        groups:
          - name: search
            rules:
              - alert: ClusterStatus
                expr: cluster_status == 1
                labels: {severity: page}
              - alert: ClusterStatus
                expr: cluster_status == 2
                labels: {severity: page}
              - alert: ClusterStatus
                expr: cluster_status == 3
                labels: {severity: ticket}
        """,
    )
    path = tmp_path / "alerts.yml"
    assert settings.warnings == (  # type: ignore[attr-defined]
        f'{path}:7: group "search": alert "ClusterStatus" with the same labels as at '
        "line 4 (promtool lints it as a duplicate rule): both are evaluated, as rules "
        "'search:ClusterStatus-1' and 'search:ClusterStatus-2'",
    )
    rules = settings.rules  # type: ignore[attr-defined]
    assert [(rule.name, rule.source.expression) for rule in rules] == [
        ("search:ClusterStatus-1", "cluster_status == 1"),
        ("search:ClusterStatus-2", "cluster_status == 2"),
        ("search:ClusterStatus-3", "cluster_status == 3"),
    ]


def test_a_mistake_merged_into_rules_is_placed_at_each_rule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(
            tmp_path,
            """\
            groups:
              - name: g
                rules:
                  - &base
                    alert: A
                    expr: up == 0
                    labels:
                      team: "{{ .Broken"
                  - <<: *base
                    alert: B
                  - <<: *base
                    alert: C
            """,
        )
    path = tmp_path / "alerts.yml"
    unclosed = "template: __alert_check:1: unclosed action"
    assert caught.value.problems == (
        f'{path}:8:17: group "g", rule 1, "A": label "team": {unclosed}',
        f'{path}:9:9: group "g", rule 2, "B": label "team": {unclosed} (merged from line 8)',
        f'{path}:11:9: group "g", rule 3, "C": label "team": {unclosed} (merged from line 8)',
    )


def test_a_route_matches_a_free_text_alertname(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text(
        f'groups:\n  - name: g\n    rules:\n      - alert: "{FREE_TEXT}"\n        expr: up == 0\n'
    )
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\nrule_files = ["alerts.yml"]\n'
        "[[routes]]\n"
        f'matchers = ["alertname=\\"{FREE_TEXT}\\""]\n'
        'action_plugin = "pager"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    [rule] = settings.rules
    assert rule.base is not None and rule.base.plugin == "pager"
