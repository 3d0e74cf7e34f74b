"""``metric-reader test`` and ``check`` next to promtool, over every file of the corpus of
public rule files and rule tests (``shared/compat/corpus``, found as ``tests/_corpus.py``
finds it; one line says so when it is absent).

For each promtool test file: ``promtool test rules F`` and ``python -m metric_reader test F``,
each a subprocess run in the file's directory, the median of ``REPEAT`` wall times each;
the ratio of the two per file, reported as the median over the files (target ≤ 2), the
largest (target ≤ 5) and the file it comes from. For each rule file: ``promtool check rules
F`` and ``metric-reader check --no-read`` with ``RULE_FILES=F`` (target ≤ 3 in the median).
Then one synthetic test file both ways: one series of a million samples (``1x1000000``), an
alert on it and three ``eval_time``\\ s.

What a user runs: the package's bytecode is written once (a warm-up run) before anything is
timed, as an installed package has it. A run that takes longer than ``TIMEOUT`` seconds is
stopped and counted as ``TIMEOUT`` (so the ratio shown is at least that). Files on which the
two exit differently are timed all the same, and counted in the note: their times are not of
the same work.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).parent.parent
REPEAT = 3
TIMEOUT = 120.0
PROMETHEUS_ENDPOINT = "http://127.0.0.1:9"  # never read: check --no-read

CORPUS = next(  # as tests/_corpus.py finds it: beside the checkout, as CI has it
    (
        parent / "shared" / "compat" / "corpus"
        for parent in REPO.parents
        if (parent / "shared" / "compat" / "corpus").is_dir()
    ),
    None,
)

SYNTHETIC_RULES = """\
groups:
  - name: synthetic
    rules:
      - alert: Up
        expr: up == 1
        for: 5m
        labels:
          severity: page
"""
SYNTHETIC_TEST = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1x1000000'
    alert_rule_test:
      - eval_time: 2m
        alertname: Up
      - eval_time: 10m
        alertname: Up
        exp_alerts:
          - exp_labels: {job: a, severity: page}
      - eval_time: 60m
        alertname: Up
        exp_alerts:
          - exp_labels: {job: a, severity: page}
"""


@dataclass(frozen=True)
class Timed:
    seconds: float
    code: int | None


def _environment(**extra: str) -> dict[str, str]:
    """This checkout's package first, bytecode written (as installed), none of the service's
    own settings from the caller's environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "CONFIG_FILE", "RULE_FILES", "PLUGIN_DIR")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def wall_time(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Timed:
    """Median seconds of ``REPEAT`` runs (``TIMEOUT`` for a run stopped at it), and the exit
    code of the last (None when stopped).

    The wait blocks in ``waitpid``: ``subprocess.run(timeout=...)`` polls instead, with
    sleeps of up to 50 ms, which rounded every run up to the next poll (a 30 ms promtool run
    was timed 32 or 64 ms, a 150 ms one 165 or 215 ms)."""
    times = []
    code: int | None = None
    for _ in range(REPEAT):
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        stop = threading.Timer(TIMEOUT, proc.kill)
        stop.start()
        try:
            code = proc.wait()
        finally:
            stop.cancel()
        elapsed = time.perf_counter() - started
        if elapsed >= TIMEOUT:
            times.append(TIMEOUT)
            code = None
            break  # one is enough to know
        times.append(elapsed)
    return Timed(statistics.median(times), code)


def _kind(path: Path) -> str | None:
    """``test`` (a promtool test file), ``rules`` (a rule file) or None, as promtool would
    take the file: by its top-level keys."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(), Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return "rules" if "groups" in path.read_text(errors="replace") else None
    if isinstance(data, dict) and "tests" in data:
        return "test"
    if isinstance(data, dict) and "groups" in data:
        return "rules"
    return None


def corpus_files(corpus: Path) -> tuple[list[Path], list[Path]]:
    """The corpus' promtool test files and rule files, sorted."""
    tests, rules = [], []
    for path in sorted(corpus.rglob("*")):
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        kind = _kind(path)
        if kind == "test":
            tests.append(path)
        elif kind == "rules":
            rules.append(path)
    return tests, rules


def _ratio_rows(
    what: str,
    ratios: dict[str, float],
    median_target: float,
    max_target: float | None,
    differ: int,
) -> list[dict[str, object]]:
    if not ratios:
        return []
    worst = max(ratios, key=ratios.__getitem__)
    rows: list[dict[str, object]] = [
        {
            "name": f"{what}: time / promtool's, median over files",
            "value": statistics.median(ratios.values()),
            "unit": "x",
            "target": median_target,
            "note": f"{len(ratios)} files, median of {REPEAT} runs each; exit codes differ "
            f"or a run stopped on {differ}",
        }
    ]
    if max_target is not None:
        rows.append(
            {
                "name": f"{what}: time / promtool's, worst file",
                "value": ratios[worst],
                "unit": "x",
                "target": max_target,
                "note": worst,
            }
        )
    return rows


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _say_pair(what: str, path: Path, theirs: Timed, ours: Timed, ratios: dict[str, float]) -> int:
    """The file's ratio recorded and its line said; 1 when the exit codes differ (or a run
    was stopped): both timed, but not the same outcome."""
    assert CORPUS is not None
    name = str(path.relative_to(CORPUS))
    ratios[name] = ours.seconds / theirs.seconds
    differ = theirs.code != ours.code
    _say(
        f"  {what} {theirs.seconds * 1000:8.0f} ms {ours.seconds * 1000:8.0f} ms  {name}"
        + (f"  (exit {theirs.code} vs {ours.code})" if differ else "")
    )
    return int(differ)


def run() -> list[dict[str, object]]:
    if shutil.which("promtool") is None:
        _say("rule_tests: skipped, no promtool on PATH")
        return []
    python = [sys.executable, "-m", "metric_reader"]
    env = _environment()
    subprocess.run([*python, "--version"], env=env, capture_output=True, check=True)  # bytecode
    rows: list[dict[str, object]] = []
    if CORPUS is None:
        _say("rule_tests: corpus skipped, no shared/compat/corpus beside the checkout")
    else:
        tests, rules = corpus_files(CORPUS)
        test_ratios: dict[str, float] = {}
        differ = 0
        for path in tests:
            theirs = wall_time(["promtool", "test", "rules", path.name], path.parent)
            ours = wall_time([*python, "test", path.name], path.parent, env)
            differ += _say_pair("test ", path, theirs, ours, test_ratios)
        rows += _ratio_rows("metric-reader test", test_ratios, 2.0, 5.0, differ)
        check_ratios: dict[str, float] = {}
        differ = 0
        with tempfile.TemporaryDirectory() as empty:
            for path in rules:
                theirs = wall_time(["promtool", "check", "rules", str(path)], Path(empty))
                check_env = _environment(
                    RULE_FILES=str(path), PROMETHEUS_ENDPOINT=PROMETHEUS_ENDPOINT
                )
                ours = wall_time([*python, "check", "--no-read"], Path(empty), check_env)
                differ += _say_pair("check", path, theirs, ours, check_ratios)
        rows += _ratio_rows("metric-reader check --no-read", check_ratios, 3.0, None, differ)
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "rules.yml").write_text(SYNTHETIC_RULES)
        (where / "big_test.yml").write_text(SYNTHETIC_TEST)
        theirs = wall_time(["promtool", "test", "rules", "big_test.yml"], where)
        ours = wall_time([*python, "test", "big_test.yml"], where, env)
    rows += [
        {
            "name": "test of a 1x1000000 series: promtool",
            "value": theirs.seconds,
            "unit": "s",
            "note": f"median of {REPEAT}",
        },
        {
            "name": "test of a 1x1000000 series: metric-reader / promtool",
            "value": ours.seconds / theirs.seconds,
            "unit": "x",
            "target": 5.0,
            "note": f"{ours.seconds:.2f} s"
            + (f", stopped at {TIMEOUT:.0f} s" if ours.code is None else "")
            + (
                f"; exit {ours.code}, promtool's {theirs.code}: not the same work"
                if ours.code is not None and ours.code != theirs.code
                else ""
            ),
        },
    ]
    return rows
