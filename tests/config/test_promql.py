"""PromQL parsed when the configuration is read, without a Prometheus: a rule file's ``expr``
(alerting and recording rules) and a rule's ``query``, refused in one line as promtool
refuses them, and nothing refused that Prometheus 2 parses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from metric_reader._config import ConfigError, load_settings
from metric_reader._config._promql import MAX_TOKENS, promql_problem
from metric_reader._config._rule_files import load_rule_files


def problems_of(tmp_path: Path, text: str) -> tuple[str, ...]:
    path = tmp_path / "rules.yml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_rule_files([path])
    return tuple(line.replace(str(path), "{f}") for line in caught.value.problems)


def test_every_expression_of_a_rule_file_is_parsed_and_refused_at_its_place(
    tmp_path: Path,
) -> None:
    """promtool 2.42 says of this file (its path before each line):
    5:15: group "g", rule 1, "A": could not parse expression: 1:1: parse error: unknown
    function with name "derivv"; 7:15: ... 2:1: parse error: unclosed left parenthesis;
    10:15: ... 1:4: parse error: error parsing regexp: missing closing ): `^(?:()$`;
    12:15: group "g", rule 4, "r:x": ... 1:5: parse error: unexpected end of input inside
    braces. Where the parser does not say the place in the expression, neither do we (an
    expression cut short is placed at its end, as Prometheus' lexer places it)."""
    problems = problems_of(
        tmp_path,
        """\
        groups:
          - name: g
            rules:
              - alert: A
                expr: derivv(node_load1[5m]) > 0
              - alert: B
                expr: |
                  sum(rate(http_requests_total[5m])
              - alert: C
                expr: up{job=~"("} == 0
              - record: r:x
                expr: foo{
              - alert: Fine
                expr: up == 0
        """,
    )
    prefix = '{f}:%s: group "g", rule %s: could not parse expression: '
    assert problems == (
        prefix % ("5:15", '1, "A"') + '1:1: parse error: unknown function with name "derivv"',
        prefix % ("7:15", '2, "B"') + "2:1: parse error: unclosed left parenthesis",
        prefix % ("10:15", '3, "C"')
        + "1:4: parse error: error parsing regexp: missing closing ): `^(?:()$`",
        prefix % ("12:15", '4, "r:x"') + "1:5: parse error: unexpected end of input inside braces",
    )


def test_a_query_that_does_not_parse_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    env = {"QUERY": "sum(rate(errors_total[5m])", "THRESHOLD": ">1"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.problems == (
        "QUERY='sum(rate(errors_total[5m])' is invalid: could not parse expression: "
        "1:27: parse error: unclosed left parenthesis",
    )
    config = tmp_path / "rules.toml"
    config.write_text('[[rules]]\nname = "q"\nquery = "rate(errors_total)"\nthreshold = ">1"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_FILE": str(config)})
    assert caught.value.problems == (
        f"{config}:3: rules[0].query='rate(errors_total)' is invalid: could not parse "
        "expression: parse error: expected type matrix in call to function 'rate', got vector",
    )


@pytest.mark.parametrize(
    "expr",
    [
        # A function of Prometheus 2 that Prometheus 3 renamed (double_exponential_smoothing).
        "holt_winters(node_load1[1h], 0.3, 0.1) > 4",
        # Raw strings keep their backslashes; the Rust parser alone reads them as escapes.
        r'label_replace(up, "port", "$1", "instance", `.*:(\d+)`)',
        r"up{instance=~`.*:\d+`}",
        # RE2 syntax that Rust's regex does not have: quoted text, octal escapes.
        r'up{job=~"\\Q.*\\E|node"}',
        r'up{job=~"\\101.*"}',
        # Prometheus' check before a range does not see start() and end().
        "rate(http_requests_total @ start() [5m])",
        "rate(http_requests_total @ end()[5m])",
        # A regex matcher that matches the empty value still needs another matcher...
        '{job=~".*", instance="a"}',
        # ... or one that does not match it.
        '{job=~".+"}',
    ],
)
def test_what_prometheus_2_parses_is_not_refused(expr: str) -> None:
    assert promql_problem(expr) is None


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('{job=~".*"}', "vector selector must contain at least one non-empty matcher"),
        (r'up{job=~"\\C"}', "1:4: parse error: error parsing regexp: invalid escape sequence"),
        ("up{job=~`a**`}", "1:4: parse error: error parsing regexp: invalid nested repetition"),
        ("holt_winters(x, 0.3, 0.1)", "expected type matrix in call to function 'holt_winters'"),
    ],
)
def test_what_prometheus_2_refuses_is_refused(expr: str, problem: str) -> None:
    found = promql_problem(expr)
    assert found is not None and problem in found, found


def test_an_expression_too_long_to_parse_here_is_left_to_prometheus() -> None:
    """The Rust parser's time grows with the square of the operators and its stack
    overflows past a few thousand: nothing that long is parsed here, and nothing crashes."""
    started = time.monotonic()
    for expr in (
        " + ".join(["x"] * (MAX_TOKENS + 1)),
        "(" * 50_000 + "x" + ")" * 50_000,
        "-" * 50_000 + "x",
        " or ".join(f'up{{job="j{n}"}}' for n in range(20_000)),
    ):
        assert promql_problem(expr) is None
    assert promql_problem("-" * (MAX_TOKENS - 1) + "x") is None
    assert promql_problem("(" * 400 + "x" + ")" * 399) is not None  # one short: parsed
    assert time.monotonic() - started < 5


def test_the_parser_is_imported_only_when_there_is_an_expression() -> None:
    code = (
        "import sys\n"
        "from metric_reader._config import load_settings\n"
        "import metric_reader._service, metric_reader._cli\n"
        "load_settings({'METRIC_NAME': 'up', 'THRESHOLD': '<1'})\n"
        "print('promql_parser' in sys.modules)\n"
        "load_settings({'QUERY': 'sum(up)', 'THRESHOLD': '<1'})\n"
        "print('promql_parser' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "True"], done.stderr
