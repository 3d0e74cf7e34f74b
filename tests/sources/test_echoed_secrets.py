"""An endpoint that says the credentials back (an auth proxy echoing ``Authorization`` and
the other headers in its error body, its reason phrase, a page or a warning) must not put
them anywhere the service shows text: the log of a real ``python -m metric_reader`` (debug,
text and JSON), ``/readyz``, ``/api/status``, the status page, ``check`` and ``backtest``.
Every piece of six characters of each secret is searched for, escaped or not: an excerpt
that cuts a secret in two must not show half of it either.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _echo_proxy import EchoingProxy, shown_pieces

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0
TOKEN = 'tok-Q7xZ"k\\9mWv-Xe5hoT0K3N'
"""Printable ASCII as a token file allows, with a quote and a backslash that JSON, ``repr``
and HTML escape."""
PASSWORD = "pw-Z8q&Rt2PASS<w0rd>"
HEADER_VALUE = "hv-J4r-Hk9HEADER-v4lue"
USER = "reader"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = [TOKEN, PASSWORD, HEADER_VALUE, BASIC]

RULES = """\
polling_interval = "200ms"

[[rules]]
name = "text"
query = "up"
prometheus_endpoint = "{proxy}/text120"
threshold = ">0"

[[rules]]
name = "json"
metric_name = "up"
prometheus_endpoint = "{proxy}/json"
threshold = ">0"

[[rules]]
name = "reason"
metric_name = "secure_metric"
scrape_url = "{proxy}/reason/metrics"
threshold = ">0"

[[rules]]
name = "page"
metric_name = "secure_metric"
scrape_url = "{proxy}/page/metrics"
threshold = ">0"

[[rules]]
name = "warn"
query = "up"
prometheus_endpoint = "{proxy}/warn"
"""


@pytest.fixture
def proxy() -> Iterator[EchoingProxy]:
    server = EchoingProxy()
    yield server
    server.close()


def _env(tmp_path: Path, proxy: EchoingProxy, auth: str) -> dict[str, str]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(proxy=proxy.url))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),  # this checkout, whatever is installed
        "CONFIG_FILE": str(rules),
        "HTTP_HEADERS": json.dumps({"X-Api-Key": HEADER_VALUE}),
        "LOG_LEVEL": "debug",
        "LISTEN_ADDRESS": "off",
    }
    if auth == "bearer":
        (tmp_path / "token").write_text(TOKEN + "\n")
        env["BEARER_TOKEN_FILE"] = str(tmp_path / "token")
    else:
        env |= {"BASIC_AUTH_USERNAME": USER, "BASIC_AUTH_PASSWORD": PASSWORD}
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
        check=False,
    )


def _echoed(proxy: EchoingProxy, auth: str) -> None:
    """The proxy got the credentials: there was something to echo."""
    sent = {headers.get("authorization") for headers in proxy.requests}
    assert (f"Bearer {TOKEN}" if auth == "bearer" else f"Basic {BASIC}") in sent, sent
    assert all(headers.get("x-api-key") == HEADER_VALUE for headers in proxy.requests)


@pytest.mark.parametrize(("fmt", "auth"), [("text", "bearer"), ("json", "basic")])
def test_a_real_service_shows_no_echoed_secret_in_its_log_or_endpoints(
    proxy: EchoingProxy, tmp_path: Path, fmt: str, auth: str
) -> None:
    env = _env(tmp_path, proxy, auth) | {"LOG_FORMAT": fmt, "LISTEN_ADDRESS": "127.0.0.1:0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_reader"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    stderr = process.stderr
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")))
    reader.start()
    pages: dict[str, str] = {}
    try:
        deadline = time.monotonic() + DEADLINE
        port = None
        while port is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r'\bport[=":\s]+(\d+)', "".join(lines))
            port = int(found[1]) if found else None
            time.sleep(0.05)
        assert port is not None, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            status = httpx.get(f"{base}/api/status", timeout=10).json()
            errors = [t["last_error"] for t in status["targets"] if t["last_error"]]
            warned = any("the proxy saw" in line for line in lines)
            if len(errors) == 4 and warned:
                break
            time.sleep(0.1)
        for path in ("/readyz", "/api/status", "/", "/metrics"):
            pages[path] = httpx.get(f"{base}{path}", timeout=10).text
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=DEADLINE)
    log = "".join(lines)
    _echoed(proxy, auth)
    assert len(errors) == 4, (status, log)
    assert "HTTP 401" in pages["/readyz"] and "HTTP 500" in pages["/readyz"], pages["/readyz"]
    assert "***" in pages["/api/status"] and "***" in pages["/"] and "***" in log
    assert '"level": "debug"' in log if fmt == "json" else " DEBUG " in log
    everything = "\n".join([log, *pages.values()])
    assert shown_pieces(everything, SECRETS) == [], everything


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_check_shows_no_echoed_secret(proxy: EchoingProxy, tmp_path: Path, auth: str) -> None:
    env = _env(tmp_path, proxy, auth)
    (tmp_path / "alerts.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: up > 0\n"
    )
    rules = Path(env["CONFIG_FILE"])
    rules.write_text(
        f'rule_files = ["alerts.yml"]\nprometheus_endpoint = "{proxy.url}/json"\n'
        + rules.read_text()
    )
    result = _run(["check"], env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning: cannot read" in output and "could not be checked" in output, output
    _echoed(proxy, auth)
    assert shown_pieces(output, SECRETS) == [], output


def test_backtest_shows_no_echoed_secret(proxy: EchoingProxy, tmp_path: Path) -> None:
    env = _env(tmp_path, proxy, "bearer")
    result = _run(["backtest", "--from", "5m", "--prometheus", f"{proxy.url}/json"], env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count("could not read its history") >= 4, output
    _echoed(proxy, "bearer")
    assert shown_pieces(output, SECRETS) == [], output
