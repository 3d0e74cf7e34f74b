"""``metric-reader test`` and ``check --no-read`` are a developer's inner loop and a CI step:
they import what they use, not the service (its HTTP surface, prometheus_client), nor, for
a test, the cluster, the plugins, the sources, an event loop, logging, HTTP and TLS. ``make bench``
(rule_tests) times them next to promtool."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).parents[1]
EXAMPLE = REPO / "examples" / "tests" / "rules_test.yml"

NOT_FOR_TEST = (
    "metric_reader._service",
    "metric_reader._surface",
    "metric_reader._cluster",
    "metric_reader._actions",  # no action_test in the example
    "metric_reader._sources",
    "prometheus_client",
    "anyio",
    "loguru",  # a rule test logs nothing: its replays are quiet, its report is printed
    "httpx",  # nor does it reach an endpoint
    "ssl",
)
NOT_FOR_CHECK = (
    "metric_reader._service",
    "metric_reader._surface",
    "prometheus_client",
    "loguru",  # nothing to log: no warning, no plugin named
    "httpx",  # no source read, and the default trust store is loaded by the first client
    "ssl",
    "importlib.metadata",  # no installed package declares a plugin: not asked
)


def test_test_and_check_no_read_import_only_what_they_use(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n")
    refused = tmp_path / "refused_test.yml"
    refused.write_text("rule_files: [rules.yml]\ntests:\n  - intervl: 1m\n")
    script = textwrap.dedent(
        f"""
        import contextlib, io, sys
        import metric_reader
        assert "loguru" not in sys.modules and "metric_reader._core._events" not in sys.modules
        from metric_reader._cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["test", {str(EXAMPLE)!r}])
        assert code == 0, out.getvalue()
        print(*[m for m in {NOT_FOR_TEST!r} if m in sys.modules])
        env = {{"RULE_FILES": {str(rules)!r}, "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9"}}
        for name in list(sys.modules):  # a fresh start for check
            if name.startswith("metric_reader") or name.split(".")[0] in ("anyio", "loguru"):
                del sys.modules[name]
        from metric_reader._cli import main
        with contextlib.redirect_stdout(out):  # twice: a command's module is imported once
            codes = [main(["check", "--no-read"], env) for _ in range(2)]
        assert codes == [0, 0], out.getvalue()
        print(*[m for m in {NOT_FOR_CHECK!r} if m in sys.modules])
        for name in list(sys.modules):  # a fresh start for a test file refused as it is read
            if name.startswith("metric_reader"):
                del sys.modules[name]
        from metric_reader._cli import main
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            assert main(["test", {str(refused)!r}]) == 1, out.getvalue()
        print(*[m for m in ("metric_reader._engine", "metric_reader._promql") if m in sys.modules])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    test_line, check_line, refused_line = done.stdout.splitlines()
    assert test_line == "", f"imported by metric-reader test: {test_line}"
    assert check_line == "", f"imported by metric-reader check --no-read: {check_line}"
    assert refused_line == "", f"imported for a test file refused as it is read: {refused_line}"
