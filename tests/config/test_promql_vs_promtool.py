"""A differential test of the PromQL check made at load (``_config/_promql.py``): every
expression below goes into one rule file that ``promtool check rules`` (Prometheus 2.42,
Debian's) reads, and metric-reader must refuse exactly the expressions promtool refuses,
but for the differences listed in ``KNOWN``.

The expressions: ``promql_probes.txt`` (the corners of the language: every function of
2.42, modifiers, string escapes, label regexes, type errors, syntax errors), the rule files
of ``examples/``, and, when it is there (``shared/compat/corpus`` beside the checkout, as
CI has it), the corpus of public rule files: awesome-prometheus-alerts, GOV.UK's, Thanos',
and Prometheus 2.42's own test data.

Every difference allowed is one way: metric-reader accepts what promtool 2.42 refuses,
mostly because it is the PromQL of Prometheus 3, which a newer Prometheus loads. Never the
other way: a file Prometheus loads is not refused. The Prometheus that the rules are sent
to at start, at a reload and in ``check`` refuses what its own version does not know.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from _corpus import CORPUS

from metric_reader._config._promql import promql_problem

REPO = Path(__file__).parents[2]
PROBES = Path(__file__).with_name("promql_probes.txt")
PROMTOOL = shutil.which("promtool")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the corpus in a second
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

_PROMETHEUS_3 = "the PromQL of Prometheus 3"
KNOWN = {
    # Functions added after 2.42.
    "double_exponential_smoothing(x[5m], 0.5, 0.5)": _PROMETHEUS_3,
    'sort_by_label(x, "a")': _PROMETHEUS_3,
    'sort_by_label_desc(x, "a")': _PROMETHEUS_3,
    "limitk(2, x)": _PROMETHEUS_3,
    "limit_ratio(0.5, x)": _PROMETHEUS_3,
    "mad_over_time(x[5m])": _PROMETHEUS_3,
    "info(x)": _PROMETHEUS_3,
    "histogram_stddev(x)": _PROMETHEUS_3,
    "histogram_stdvar(x)": _PROMETHEUS_3,
    "histogram_avg(x)": _PROMETHEUS_3,
    # Quoted UTF-8 metric and label names.
    '{"my.metric"}': _PROMETHEUS_3,
    '{"my.metric", a="b"}': _PROMETHEUS_3,
    'x{"a.b"="c"}': _PROMETHEUS_3,
    'sum by ("a.b") (x)': _PROMETHEUS_3,
    # Durations as numbers of seconds, and numbers as durations.
    "1y": _PROMETHEUS_3,
    "x[300]": _PROMETHEUS_3,
    "x[0]": _PROMETHEUS_3,
    "x offset 5": _PROMETHEUS_3,
    "x offset -5": _PROMETHEUS_3,
    # A named group as Go 1.22 writes it (Prometheus 3 is built with a newer Go).
    'x{a=~"(?<n>a)"}': "Go 1.22's regexp syntax",
    # Where the Rust parser is laxer than Prometheus: left to the Prometheus asked.
    "1e400": "the Rust parser takes a number out of range as +Inf",
    "start()": "the Rust parser takes start() as a function outside @",
    "x @ 1e20": "the Rust parser does not bound an @ timestamp",
    "x[1000000y]": "the Rust parser does not bound a duration",
    "x offset +5m": "the Rust parser takes a sign before an offset",
}


def _probes() -> list[str]:
    lines = PROBES.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


def _rule_file_expressions(root: Path) -> list[str]:
    """Every ``expr`` of the rule files under ``root`` (test files and files that are not
    YAML left out)."""
    found: list[str] = []
    for path in sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")]):
        try:
            document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if not isinstance(document, dict) or "tests" in document or "rule_files" in document:
            continue
        for group in document.get("groups") or []:
            for rule in (group.get("rules") or []) if isinstance(group, dict) else []:
                if isinstance(rule, dict) and isinstance(rule.get("expr"), str):
                    found.append(rule["expr"])
    return found


def _promtool_refusals(tmp_path: Path, expressions: list[str]) -> dict[str, str]:
    """What promtool says of each expression it refuses: one rule file, a group each."""
    groups = [
        {"name": f"g{index}", "rules": [{"alert": "A", "expr": expr}]}
        for index, expr in enumerate(expressions)
    ]
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True, width=1 << 20))
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    line = re.compile(r'group "g(\d+)", rule 1, "A": could not parse expression: (.*)')
    refusals = {
        expressions[int(match[1])]: match[2]
        for match in map(line.search, (done.stdout + done.stderr).splitlines())
        if match is not None
    }
    assert (done.returncode == 0) == (not refusals), done.stdout + done.stderr
    return refusals


def _differences(tmp_path: Path, expressions: list[str]) -> dict[str, tuple[str | None, str]]:
    """The expressions judged otherwise than promtool judges them: ours, promtool's."""
    expressions = sorted(set(expressions))
    theirs = _promtool_refusals(tmp_path, expressions)
    differences: dict[str, tuple[str | None, str]] = {}
    for expr in expressions:
        ours = promql_problem(expr)
        if (ours is None) != (expr not in theirs):
            differences[expr] = (ours, theirs.get(expr, "accepted"))
        elif ours is not None and re.match(r"\d+:\d+: ", ours):
            # Where the place in the expression is said, it is promtool's.
            assert ours.split(" ")[0] == theirs[expr].split(" ")[0], (expr, ours, theirs[expr])
    return differences


def test_the_probes_and_the_examples_are_judged_as_promtool_judges_them(
    tmp_path: Path,
) -> None:
    expressions = _probes() + _rule_file_expressions(REPO / "examples")
    assert set(KNOWN) <= set(expressions)
    differences = _differences(tmp_path, expressions)
    assert set(differences) == set(KNOWN), {
        expr: judged for expr, judged in differences.items() if expr not in KNOWN
    }
    refused_by_us_alone = [expr for expr, (ours, _) in differences.items() if ours is not None]
    assert refused_by_us_alone == []


@pytest.mark.skipif(CORPUS is None, reason="no shared/compat/corpus beside the checkout")
def test_the_public_rule_files_are_judged_as_promtool_judges_them(tmp_path: Path) -> None:
    assert CORPUS is not None
    expressions = _rule_file_expressions(CORPUS)
    assert len(set(expressions)) > 1000  # the corpus, not an empty folder
    differences = _differences(tmp_path, expressions)
    assert set(differences) <= set(KNOWN), differences
