"""``[[routes]]`` matchers: Alertmanager's syntax, every operator, quoted and unquoted.

A route's matcher decides which plugin an alert goes to; one read with the wrong operator
sends pages to the wrong place without any error, so each operator is checked both ways,
and through a rule file as a user writes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metric_reader._config import load_settings, routes_for
from metric_reader._config._routes import parse_matcher
from metric_reader._core import LabelMatcher, MatchOp


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ('env="dev"', MatchOp.EQ, "dev"),
        ("env=dev", MatchOp.EQ, "dev"),
        ('env!="dev"', MatchOp.NE, "dev"),
        ("env!=dev", MatchOp.NE, "dev"),
        (" env != dev ", MatchOp.NE, "dev"),
        ('team=~"db|storage"', MatchOp.RE, "db|storage"),
        ("team=~db|storage", MatchOp.RE, "db|storage"),
        ('team!~"db|storage"', MatchOp.NRE, "db|storage"),
        ("team!~db|storage", MatchOp.NRE, "db|storage"),
        ("env=", MatchOp.EQ, ""),  # as Alertmanager: the label is empty or missing
        ("env!=", MatchOp.NE, ""),  # the label is set
    ],
)
def test_every_operator_quoted_or_not(text: str, op: MatchOp, value: str) -> None:
    name = text.split("=")[0].split("!")[0].strip()
    assert parse_matcher(text) == LabelMatcher(name, op, value)


@pytest.mark.parametrize("text", ['env="dev', "env='dev", "env=`dev", "=dev", "env~dev"])
def test_what_is_not_a_matcher_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_matcher(text)


def test_an_unquoted_negated_route_takes_every_alert_but_the_one_it_names(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n"
    )
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\nrule_files = ["alerts.yml"]\n'
        'action_plugin = "tickets"\n'
        "[[routes]]\nmatchers = ['env!=dev', 'team!~db|storage']\n"
        'action_plugin = "pager"\n'
    )
    routes = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")}).routes

    def plugins(**labels: str) -> list[str]:
        return [route.plugin for route in routes_for(routes, labels)]

    assert plugins(env="prod", team="web") == ["pager"]
    assert plugins(team="web") == ["pager"]  # no env: the empty string, not "dev"
    assert plugins(env="dev", team="web") == []  # to the file's action_plugin
    assert plugins(env="prod", team="db") == []
    assert plugins(env="prod", team="storage") == []
