"""``metric-reader test`` and ``check --no-read`` are a developer's inner loop and a CI step:
they import what they use, not the service (its HTTP surface, prometheus_client), nor, for
a test, the cluster, the plugins, the sources, an event loop, logging, HTTP and TLS. ``make bench``
(rule_tests) times them next to promtool."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
    "argparse",  # ``test FILE...`` is read without the parser
    "uuid",  # only a new silence has an ID made for it
    "secrets",  # nor is an approval asked for
    "html",  # nor does the example call the templates' html function
    "dataclasses",  # records are defined without it (it imports inspect, ast, dis: 10 ms)
    "inspect",
)
NOT_FOR_CHECK = (
    "metric_reader._service",
    "metric_reader._surface",
    "prometheus_client",
    "loguru",  # nothing to log: no warning, no plugin named
    "httpx",  # no source read, and the default trust store is loaded by the first client
    "ssl",
    "importlib.metadata",  # no installed package declares a plugin: not asked
    "metric_reader._actions._catalog",  # nor do the rules name one: none is looked for
    "metric_reader._core._events",  # a plugin's business: none is called
    "metric_reader._config._routes",  # the configuration gives none
    "argparse",  # ``check --no-read`` is read without the parser
    "dataclasses",  # records are defined without it (it imports inspect, ast, dis: 10 ms)
    "inspect",
    "ast",  # nor does a template of the rules quote a string
)


def test_test_and_check_no_read_import_only_what_they_use(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - alert: A\n        expr: up == 0\n        for: 5m\n"
        "        labels: {severity: page}\n"
        "        annotations: {summary: '{{ $labels.instance }}: {{ $value | humanize }}'}\n"
    )
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
            if name.startswith("metric_reader") or name.split(".")[0] in (
                "anyio", "loguru", "dataclasses", "inspect", "ast"
            ):
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


@pytest.mark.parametrize(
    "argv",
    [
        ["test", "a_test.yml"],
        ["test", "a_test.yml", "dir/b.yml", "-"],
        ["check"],
        ["check", "--no-read"],
    ],
)
def test_test_and_check_read_without_the_parser_as_the_parser_reads_them(argv: list[str]) -> None:
    from metric_reader._cli import _parse, _parser

    assert vars(_parse(argv)) == vars(_parser(argv).parse_args(argv))


NOT_FOR_ONE_HTTP_RULE = (
    "yaml",  # no rule file
    "re2",  # no label regex
    "promql_parser",  # no expression
    "certifi",  # no https:// endpoint: no CA bundle loaded
    "aiohttp",  # requests go through _http/_wire.py (aiohttp is only in the bench extra)
    "sqlite3",  # no HISTORY_FILE and no call owed: no history made
    "metric_reader._replay",
    "metric_reader._promql",
    "metric_reader._config._alert_rules",
    "metric_reader._config._rule_files",  # nor a glob
    "metric_reader._config._go_glob",
    "metric_reader._sources._scrape_kind",  # no scrape page
    "metric_reader._cluster._election",  # no election, no shards, no state file
    "metric_reader._cluster._kube",
    "metric_reader._cluster._shard",
    "metric_reader._cluster._state_lock",
    "metric_reader._surface._status",  # no request for the status page or the API
    "metric_reader._surface._status_page",
    "metric_reader._surface._actions_api",
    "metric_reader._core._chart",
    "metric_reader._core._gotemplate",  # no template (the bundled exec_action has no args)
    "argparse",  # no argument: the service
)


def test_the_service_with_one_http_rule_imports_only_what_it_uses() -> None:
    """The resident memory of one rule (issue 27: 30 MB) is mostly what was imported: the
    service polls an http:// Prometheus with one rule from the environment and the bundled
    log_action, and is stopped once it has been answered. ``benchmarks/startup.py`` gives
    what each dependency costs."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        answered = threading.Event()
        class Prometheus(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b'{{"status":"success","data":{{"resultType":"vector","result":[]}}}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                answered.set()
            def log_message(self, *args):
                pass
        server = ThreadingHTTPServer(("127.0.0.1", 0), Prometheus)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        def stop():
            answered.wait(20)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=stop, daemon=True).start()
        from metric_reader._cli import main
        env = {{
            "METRIC_NAME": "up",
            "THRESHOLD": "<0",
            "ACTION_PLUGIN": "log_action",
            "PROMETHEUS_ENDPOINT": f"http://127.0.0.1:{{server.server_port}}",
            "LISTEN_ADDRESS": "127.0.0.1:0",
            "LOG_LEVEL": "warning",
        }}
        assert main([], env) == 0
        assert answered.is_set()
        print(*[m for m in {NOT_FOR_ONE_HTTP_RULE!r} if m in sys.modules])
        """
    )
    # SSL_CERT_FILE / SSL_CERT_DIR are loaded at start, where a bad store is a configuration
    # error: not this machine's.
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported by the service: {done.stdout}"
