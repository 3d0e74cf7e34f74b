"""The differential run of issue 24: every file of the public corpus (``shared/compat/corpus``:
promtool's own test data, thanos', GOV.UK's, awesome-prometheus-alerts) through Debian's
promtool 2.42 and through metric-reader, side by side.

- each rule file is accepted by both or refused by both (``promtool check rules``; ours:
  the loader, as ``check`` and the service load it);
- each test file passes under both or fails under both, with the same failing tests (the
  failure headers: group name, alert and time, or expression and time).

The files where they differ on purpose are listed, each with its reason, in
``docs/rule-tests.md`` ("Known differences on the corpus"); this test reads that table,
so a difference not listed fails here, and so does a listed one that went away.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from _corpus import CORPUS, REPO

from metric_reader._config import ConfigError, load_settings
from metric_reader._replay import test_command as report_tests

PROMTOOL = shutil.which("promtool")
pytestmark = [
    pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed"),
    pytest.mark.skipif(CORPUS is None, reason="no shared/compat/corpus beside the checkout"),
]
_HEADER = re.compile(r"^    (?:name|alertname|expr|rule): .*$", re.MULTILINE)
_LISTED = re.compile(r"^\| `([^`]+)` \| (check|test) \| (.+) \|$", re.MULTILINE)
_DUPLICATES = re.compile(r"(hand-side of the operation: \[\{)(.*?)(\}\];)")


def _headers(output: str) -> list[str]:
    """The failure header lines, sorted, each "duplicate series" list in one order: promtool
    prints that list in Go's map order, which differs from run to run."""

    def in_order(match: re.Match[str]) -> str:
        return match[1] + "}, {".join(sorted(match[2].split("}, {"))) + match[3]

    return sorted(_DUPLICATES.sub(in_order, line) for line in _HEADER.findall(output))


def _corpus_files() -> Iterator[tuple[str, Path]]:
    """Each rule file (``rules``) and test file (``test``) of the corpus, by what it holds."""
    assert CORPUS is not None
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        try:
            document = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            document = None
        if isinstance(document, dict) and "tests" in document:
            yield "test", path
        elif (isinstance(document, dict) and "groups" in document) or "groups:" in path.read_text():
            yield "rules", path


def _listed_differences() -> dict[tuple[str, str], str]:
    """The table of docs/rule-tests.md: (file relative to the corpus, check|test) → reason."""
    text = (REPO / "docs" / "rule-tests.md").read_text()
    section = text.split("### Known differences on the corpus", 1)[1].split("\n#", 1)[0]
    return {(m[1], m[2]): m[3] for m in _LISTED.finditer(section)}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _check_differs(path: Path, promtool: Future[subprocess.CompletedProcess[str]]) -> str | None:
    try:
        load_settings({"RULE_FILES": str(path), "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9"})
        ours_accepts = True
    except ConfigError:
        ours_accepts = False
    promtool_accepts = promtool.result().returncode == 0
    if promtool_accepts == ours_accepts:
        return None
    return f"promtool {'accepts' if promtool_accepts else 'refuses'}, metric-reader does not"


def _test_differs(path: Path, promtool: Future[subprocess.CompletedProcess[str]]) -> str | None:
    """Ours in process, as ``metric-reader test`` prints (stdout and stderr together)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        ours_passes = report_tests([path]) == 0
    theirs_pass = promtool.result().returncode == 0
    if theirs_pass != ours_passes:
        return f"promtool {'passes' if theirs_pass else 'fails'}, metric-reader does not"
    theirs = _headers(promtool.result().stderr)
    ours = _headers(out.getvalue())
    if theirs != ours:
        return f"different failures: promtool {theirs}, metric-reader {ours}"
    return None


def test_every_corpus_file_gets_the_same_verdict_as_promtool() -> None:
    assert CORPUS is not None
    # The longest first (one takes promtool 2.42 15 s), so the rest overlaps it.
    files = sorted(_corpus_files(), key=lambda item: -item[1].stat().st_size)
    differ: dict[tuple[str, str], str] = {}
    with ThreadPoolExecutor(4) as pool:  # promtool runs while ours run in this thread
        runs = [
            (
                kind,
                path,
                pool.submit(
                    _promtool,
                    "check" if kind == "rules" else "test",
                    "rules",
                    path.name,
                    cwd=path.parent,
                ),
            )
            for kind, path in files
        ]
        for kind, path, promtool in runs:
            name = str(path.relative_to(CORPUS))
            if kind == "rules":
                why = _check_differs(path, promtool)
                key = (name, "check")
            else:
                why = _test_differs(path, promtool)
                key = (name, "test")
            if why is not None:
                differ[key] = why
    listed = _listed_differences()
    assert sum(kind == "rules" for kind, _ in files) > 100  # the corpus is there, whole
    assert sum(kind == "test" for kind, _ in files) > 20
    unlisted = {key: why for key, why in differ.items() if key not in listed}
    gone = sorted(key for key in listed if key not in differ)
    assert unlisted == {}, "differences from promtool not listed in docs/rule-tests.md"
    assert gone == [], "listed in docs/rule-tests.md but no longer different"
