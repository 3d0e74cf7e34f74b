"""The bundled plugins ``http_action`` and ``exec_action``, loaded and called as the service does.

``http_action`` talks to a real HTTP server on 127.0.0.1; ``exec_action`` runs real commands.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from _echo_proxy import EchoingProxy, shown_pieces
from _events import make_event as _make_event
from loguru import logger

from metric_reader import Event, __version__
from metric_reader._actions import (
    LoadedPlugin,
    PluginFailure,
    PluginProblem,
    PluginTimeout,
    bundled_plugin_dir,
    load_plugin_file,
)

PY = shlex.quote(sys.executable)


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def load(name: str) -> LoadedPlugin | PluginProblem:
    return load_plugin_file(bundled_plugin_dir() / f"{name}.py", bundled=True)


def loaded(name: str) -> LoadedPlugin:
    plugin = load(name)
    assert isinstance(plugin, LoadedPlugin), plugin
    assert plugin.name == name and plugin.bundled and plugin.has_resolve
    return plugin


def refused(name: str) -> str:
    problem = load(name)
    assert isinstance(problem, PluginProblem), f"{name} loaded but should have been refused"
    assert problem.name == name
    assert "\n" not in problem.reason
    return problem.reason


def make_event(**changes: Any) -> Event:
    defaults = {
        "labels": {"job": "x", "instance": "host:9100"},
        "value": 95.5,
        "breach_started": datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC),
        "plugin": "http_action",
        "annotations": {},
    }
    return _make_event(**{**defaults, **changes})


def all_messages(records: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['message']} {r['extra']}" for r in records)


# --- http_action -----------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        def no_constants(name: str) -> Any:
            raise AssertionError(f"not valid JSON: {name}")

        return json.loads(self.body, parse_constant=no_constants)


@dataclass
class Recorder:
    """What the test server answers, and every request it got."""

    url: str
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.delenv("HTTP_PLUGIN_HEADERS", raising=False)
    monkeypatch.delenv("HTTP_PLUGIN_TIMEOUT", raising=False)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.requests.append(Request("POST", self.path, headers, body))
            if recorder.delay:
                recorder.release.wait(recorder.delay)
            self.send_response(recorder.status)
            for name, value in recorder.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(recorder.body)))
            self.end_headers()
            self.wfile.write(recorder.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    recorder = Recorder(url=f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", f"{recorder.url}/hooks/alert?token=abc")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recorder
    recorder.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def expected_body(event: Event, **changes: Any) -> dict[str, Any]:
    body = {
        "rule": event.rule,
        "metric_name": event.metric_name,
        "labels": dict(event.labels),
        "value": event.value,
        "threshold": event.threshold,
        "level": event.level,
        "kind": event.kind,
        "breach_started": event.breach_started.isoformat(),
        "duration_seconds": event.duration.total_seconds(),
        "fire_count": event.fire_count,
        "plugin": event.plugin,
        "annotations": {},
        "idempotency_key": event.idempotency_key,
        "external_labels": {},
        "generator_url": "",
    }
    body.update(changes)
    return body


@pytest.mark.anyio
async def test_http_action_posts_every_event_field_as_json_with_its_headers(
    server: Recorder, monkeypatch: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv(
        "HTTP_PLUGIN_HEADERS",
        '{"Authorization": "Bearer s3cret-token", "X-Team": "ops; on call", "x-empty": ""}',
    )
    event = make_event(kind="repeat", level="hard", fire_count=2, labels={"job": 'a"b\\c'})

    await loaded("http_action").call("execute", event, timeout=5)

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/hooks/alert?token=abc"
    assert request.json() == expected_body(event)
    assert request.json() == {
        "rule": "queue",
        "metric_name": "queue_depth",
        "labels": {"job": 'a"b\\c'},
        "value": 95.5,
        "threshold": ">80",
        "level": "hard",
        "kind": "repeat",
        "breach_started": "2024-01-02T03:04:05.250000+00:00",
        "duration_seconds": 30.0,
        "fire_count": 2,
        "plugin": "http_action",
        "annotations": {},
        "idempotency_key": "",
        "external_labels": {},
        "generator_url": "",
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"metric-reader/{__version__} (http_action)"
    assert request.headers["authorization"] == "Bearer s3cret-token"
    assert request.headers["x-team"] == "ops; on call"
    assert request.headers["x-empty"] == ""
    assert "s3cret" not in all_messages(log_records)
    assert "token=abc" not in all_messages(log_records)  # the endpoint's query is not logged
    [done] = [r for r in log_records if r["message"].startswith("http_action: POST")]
    assert done["extra"]["plugin"] == "http_action"
    assert done["extra"]["status"] == 200


@pytest.mark.anyio
async def test_http_action_resolve_posts_kind_resolve(server: Recorder) -> None:
    event = make_event(kind="resolve", value=12.0, fire_count=3)

    await loaded("http_action").call("resolve", event, timeout=5)

    [request] = server.requests
    assert request.json() == expected_body(event, kind="resolve", value=12.0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "sent"),
    [(float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (0.0, 0.0)],
)
async def test_http_action_sends_nan_and_infinities_as_strings_so_the_json_is_valid(
    server: Recorder, value: float, sent: object
) -> None:
    await loaded("http_action").call("execute", make_event(value=value), timeout=5)

    [request] = server.requests
    assert request.json()["value"] == sent


@pytest.mark.anyio
async def test_http_action_custom_headers_replace_the_defaults(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "HTTP_PLUGIN_HEADERS",
        '{"content-type": "application/cloudevents+json", "User-Agent": "mine/1"}',
    )

    await loaded("http_action").call("execute", make_event(), timeout=5)

    [request] = server.requests
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["user-agent"] == "mine/1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "reason"), [(500, "Internal Server Error"), (404, "Not Found"), (302, "Found")]
)
async def test_http_action_fails_on_an_answer_that_is_not_2xx(
    server: Recorder, status: int, reason: str
) -> None:
    server.status = status
    server.body = b"something went\nwrong"
    server.headers = {"Location": "/elsewhere"}

    with pytest.raises(PluginFailure) as caught:
        await loaded("http_action").call("execute", make_event(), timeout=5)

    message = str(caught.value)
    assert f"POST {server.url} answered {status} {reason}: something went wrong" in message
    assert "token=abc" not in message and "/hooks" not in message
    assert getattr(caught.value.__cause__, "status_code", None) == status
    assert len(server.requests) == 1  # a redirect is not followed


@pytest.mark.anyio
async def test_http_action_quotes_only_the_start_of_a_long_error_body(server: Recorder) -> None:
    server.status = 503
    server.body = b"A" * 150 + b"B" * 100 + b"C" * 100_000

    with pytest.raises(PluginFailure) as caught:
        await loaded("http_action").call("execute", make_event(), timeout=5)

    message = str(caught.value)
    assert "answered 503 Service Unavailable: " + "A" * 150 + "B" * 50 + "..." in message
    assert "C" not in message.split("Unavailable")[1]


@pytest.mark.anyio
async def test_http_action_gives_up_on_a_slow_server_after_its_timeout(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_TIMEOUT", "300ms")
    server.delay = 10
    plugin = loaded("http_action")

    started = time.monotonic()
    with pytest.raises(PluginFailure) as caught:
        await plugin.call("execute", make_event(), timeout=5)

    assert time.monotonic() - started < 2
    assert not isinstance(caught.value, PluginTimeout)  # its own timeout, not the service's
    assert f"POST {server.url} got no answer within 300ms (HTTP_PLUGIN_TIMEOUT)" in str(
        caught.value
    )


@pytest.mark.anyio
async def test_http_action_fails_clearly_when_the_connection_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", f"http://127.0.0.1:{port}/hook")
    monkeypatch.delenv("HTTP_PLUGIN_HEADERS", raising=False)

    with pytest.raises(PluginFailure) as caught:
        await loaded("http_action").call("execute", make_event(), timeout=5)

    assert f"POST http://127.0.0.1:{port} could not connect: Connection refused" in str(
        caught.value
    )


def test_http_action_works_across_fresh_event_loops(server: Recorder) -> None:
    """``metric-reader fire`` runs each call in a new event loop: nothing may be left over."""
    plugin = loaded("http_action")

    for _ in range(3):
        anyio.run(plugin.call, "execute", make_event(), 5.0)

    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_http_action_reads_its_settings_at_each_call(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = loaded("http_action")
    monkeypatch.setenv("HTTP_PLUGIN_HEADERS", '{"X-Later": "yes"}')
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", f"{server.url}/other")

    await plugin.call("execute", make_event(), timeout=5)

    [request] = server.requests
    assert (request.path, request.headers["x-later"]) == ("/other", "yes")
    monkeypatch.setenv("HTTP_PLUGIN_TIMEOUT", "soon")
    with pytest.raises(PluginFailure, match="HTTP_PLUGIN_TIMEOUT='soon'"):
        await plugin.call("execute", make_event(), timeout=5)


def test_http_action_loads_with_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PLUGIN_ENDPOINT", "HTTP_PLUGIN_HEADERS", "HTTP_PLUGIN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    loaded("http_action")
    for timeout in ("1m30s", "2.5s", "750ms", "1h"):
        monkeypatch.setenv("HTTP_PLUGIN_TIMEOUT", timeout)
        loaded("http_action")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Authorization: Bearer s3cret", "is not valid JSON"),
        ('{"Authorization": "Bearer s3cret"', "is not valid JSON"),
        ('["Authorization", "Bearer s3cret"]', "is a JSON array, not an object"),
        ('"Bearer s3cret"', "is a JSON string, not an object"),
        ('{"X-Retries": 3}', "gives header 'X-Retries' a JSON number, not a string"),
        ('{"Bad Name": "s3cret"}', "has an invalid header name 'Bad Name'"),
        ('{"": "s3cret"}', "has an invalid header name ''"),
        ('{"X-A": "s3cret\\r\\nX-Injected: 1"}', "gives header 'X-A' a value with a line break"),
        ('{"X-A": "s3cret-\u00e9"}', "gives header 'X-A' a value with a line break"),
        ('{"Content-Length": "12"}', "sets 'Content-Length'"),
        ('{"X-A": "s3cret", "x-a": "s3cret"}', "names header 'x-a' twice"),
    ],
)
def test_http_action_refuses_malformed_headers_without_showing_their_values(
    monkeypatch: pytest.MonkeyPatch, headers: str, reason: str
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_HEADERS", headers)
    monkeypatch.delenv("HTTP_PLUGIN_ENDPOINT", raising=False)
    monkeypatch.delenv("HTTP_PLUGIN_TIMEOUT", raising=False)

    message = refused("http_action")

    assert f"HTTP_PLUGIN_HEADERS {reason}" in message
    assert "expected a JSON object of strings" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("timeout", ["5", "abc", "-1s", "0s", "0", "5 s", "1d", "10sec"])
def test_http_action_refuses_a_timeout_that_is_not_a_positive_go_duration(
    monkeypatch: pytest.MonkeyPatch, timeout: str
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_TIMEOUT", timeout)
    monkeypatch.delenv("HTTP_PLUGIN_ENDPOINT", raising=False)
    monkeypatch.delenv("HTTP_PLUGIN_HEADERS", raising=False)

    message = refused("http_action")

    assert f"HTTP_PLUGIN_TIMEOUT={timeout!r} is not a Go duration above 0" in message
    assert "such as 500ms, 5s" in message


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("localhost:8080", "'localhost:8080'"),
        ("ftp://files.example/x", "'ftp://files.example/x'"),
        ("http://", "'http://'"),
        ("https://user:pa55@", "'https://***@'"),
    ],
)
def test_http_action_refuses_an_endpoint_that_is_not_an_http_url(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, shown: str
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", endpoint)
    monkeypatch.delenv("HTTP_PLUGIN_HEADERS", raising=False)
    monkeypatch.delenv("HTTP_PLUGIN_TIMEOUT", raising=False)

    message = refused("http_action")

    assert f"HTTP_PLUGIN_ENDPOINT={shown}" in message
    assert "expected an http:// or https:// URL" in message
    assert "pa55" not in message


def test_http_action_masks_a_url_password_holding_at_signs_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 3986: the userinfo ends at the last ``@`` before the host."""
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", "https://user:p@ss@tPa55@")
    monkeypatch.delenv("HTTP_PLUGIN_HEADERS", raising=False)
    monkeypatch.delenv("HTTP_PLUGIN_TIMEOUT", raising=False)

    message = refused("http_action")

    assert "HTTP_PLUGIN_ENDPOINT='https://***@'" in message
    assert "tPa55" not in message and "ss@" not in message, message


@pytest.mark.anyio
@pytest.mark.parametrize("way", ["text200", "reason", "json"])
@pytest.mark.parametrize("credentials", ["headers", "url"])
async def test_http_action_puts_no_credential_an_endpoint_echoes_in_its_message(
    monkeypatch: pytest.MonkeyPatch, way: str, credentials: str
) -> None:
    """Its header values, or the credentials of its URL (sent as basic auth), said back by
    an endpoint in a body, a reason phrase or JSON, are masked in the failure's message."""
    password, pair = "Pw-8dN3q5xy", base64.b64encode(b"hook:Pw-8dN3q5xy").decode()
    headers = {"X-Api-Key": 'key-"9Lm\\4Xw'}
    if credentials == "headers":
        headers["Authorization"] = "Bearer ha-T0k3n-Wq7Zr2"
    proxy = EchoingProxy()
    userinfo = f"hook:{password}@" if credentials == "url" else ""
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", proxy.url.replace("//", f"//{userinfo}") + f"/{way}")
    monkeypatch.setenv("HTTP_PLUGIN_HEADERS", json.dumps(headers))
    monkeypatch.delenv("HTTP_PLUGIN_TIMEOUT", raising=False)
    try:
        with pytest.raises(PluginFailure) as caught:
            await loaded("http_action").call("execute", make_event(), timeout=5)
    finally:
        proxy.close()
    sent = proxy.requests[0]
    assert sent["x-api-key"] == headers["X-Api-Key"]
    expected = "Bearer ha-T0k3n-Wq7Zr2" if credentials == "headers" else f"Basic {pair}"
    assert sent["authorization"] == expected
    message = str(caught.value)
    assert "answered" in message and "***" in message, message
    secrets = ["ha-T0k3n-Wq7Zr2", headers["X-Api-Key"], password, pair]
    assert shown_pieces(message, secrets) == [], message


# --- exec_action -----------------------------------------------------------------------

DUMP_ENV = f"{PY} -c 'import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], \"w\"))'"


@pytest.fixture
def exec_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("EXEC_ACTION_COMMAND", raising=False)
    monkeypatch.delenv("EXEC_ACTION_RESOLVE_COMMAND", raising=False)
    return monkeypatch


def dump_env_command(out: Path) -> str:
    return f"{DUMP_ENV} {shlex.quote(str(out))}"


@pytest.mark.anyio
async def test_exec_action_passes_every_event_field_in_the_environment(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "seen env.json"  # a space: the quoted argument must stay one word
    exec_env.setenv("EXEC_ACTION_COMMAND", dump_env_command(out))
    exec_env.setenv("SERVICE_OWN_SETTING", "kept")
    exec_env.setenv("METRIC_READER_LABEL_STALE", "inherited")
    event = make_event(
        rule="disk",
        metric_name='sum(rate(x{job="a b"}[5m]))',
        labels={"job": "api", "instance": "host:9100", "weird-name.x": "v=1\nline2", "JOB": "up"},
        value=0.25,
        level="hard",
        kind="repeat",
        duration=timedelta(seconds=90, milliseconds=500),
        fire_count=2,
    )

    await loaded("exec_action").call("execute", event, timeout=10)

    env = json.loads(out.read_text())
    seen = {k: v for k, v in env.items() if k.startswith("METRIC_READER_")}
    assert seen == {
        "METRIC_READER_RULE": "disk",
        "METRIC_READER_METRIC_NAME": 'sum(rate(x{job="a b"}[5m]))',
        "METRIC_READER_VALUE": "0.25",
        "METRIC_READER_THRESHOLD": ">80",
        "METRIC_READER_DURATION_SECONDS": "90.5",
        "METRIC_READER_LEVEL": "hard",
        "METRIC_READER_KIND": "repeat",
        "METRIC_READER_BREACH_STARTED": "2024-01-02T03:04:05.250000+00:00",
        "METRIC_READER_FIRE_COUNT": "2",
        "METRIC_READER_IDEMPOTENCY_KEY": "",
        "METRIC_READER_LABELS": json.dumps(
            {"JOB": "up", "instance": "host:9100", "job": "api", "weird-name.x": "v=1\nline2"}
        ),
        "METRIC_READER_LABEL_JOB": "up",  # "JOB" sorts before "job": first one wins
        "METRIC_READER_LABEL_INSTANCE": "host:9100",
        "METRIC_READER_LABEL_WEIRD_NAME_X": "v=1\nline2",
        "METRIC_READER_ANNOTATIONS": "{}",
    }
    assert env["SERVICE_OWN_SETTING"] == "kept"
    assert env["PATH"] == os.environ["PATH"]


@pytest.mark.anyio
async def test_exec_action_passes_annotations_and_am_executors_variables(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A rule-file alert's annotations, as METRIC_READER_ANNOTATION_<NAME> and as
    prometheus-am-executor's AMX_* variables (names as it writes them: label and annotation
    names as they are). Those inherited from the service's own environment are dropped."""
    out = tmp_path / "env.json"
    exec_env.setenv("EXEC_ACTION_COMMAND", dump_env_command(out))
    exec_env.setenv("AMX_LABEL_stale", "inherited")
    exec_env.setenv("METRIC_READER_ANNOTATION_STALE", "inherited")
    labels = {"alertname": "HighLoad", "instance": "host:9100", "severity": "page"}
    event = make_event(
        rule="HighLoad",
        metric_name="HighLoad",
        threshold="node_load1 > 4",
        labels=labels,
        annotations={"summary": "host:9100 is loaded", "runbook_url": "https://r/x"},
        plugin="reboot",  # the name the call was made to: a plugin made of exec_action
    )

    await loaded("exec_action").call("execute", event, timeout=10)

    env = json.loads(out.read_text())
    annotations = {k: v for k, v in env.items() if "ANNOTATION" in k}
    assert annotations == {
        "METRIC_READER_ANNOTATIONS": json.dumps(
            {"runbook_url": "https://r/x", "summary": "host:9100 is loaded"}
        ),
        "METRIC_READER_ANNOTATION_SUMMARY": "host:9100 is loaded",
        "METRIC_READER_ANNOTATION_RUNBOOK_URL": "https://r/x",
        "AMX_ANNOTATION_summary": "host:9100 is loaded",
        "AMX_ANNOTATION_runbook_url": "https://r/x",
        "AMX_ALERT_1_ANNOTATION_summary": "host:9100 is loaded",
        "AMX_ALERT_1_ANNOTATION_runbook_url": "https://r/x",
    }
    amx = {k: v for k, v in env.items() if k.startswith("AMX_") and "ANNOTATION" not in k}
    started = str(int(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()))
    assert amx == {
        "AMX_RECEIVER": "reboot",
        "AMX_STATUS": "firing",
        "AMX_EXTERNAL_URL": "",
        "AMX_ALERT_LEN": "1",
        **{f"AMX_LABEL_{name}": value for name, value in labels.items()},
        **{f"AMX_GLABEL_{name}": value for name, value in labels.items()},
        "AMX_ALERT_1_STATUS": "firing",
        "AMX_ALERT_1_START": started,
        "AMX_ALERT_1_END": "0",
        "AMX_ALERT_1_URL": "",
        # Alertmanager 0.25's /api/v2/alerts fingerprint of these labels
        "AMX_ALERT_1_FINGERPRINT": "040400668ded4317",
        **{f"AMX_ALERT_1_LABEL_{name}": value for name, value in labels.items()},
    }


@pytest.mark.anyio
async def test_exec_action_resolve_says_resolved_and_when_it_ended(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    exec_env.setenv("EXEC_ACTION_COMMAND", dump_env_command(out))
    event = make_event(kind="resolve", duration=timedelta(minutes=5), plugin="exec_action")

    await loaded("exec_action").call("resolve", event, timeout=10)

    env = json.loads(out.read_text())
    started = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert (env["AMX_STATUS"], env["AMX_ALERT_1_STATUS"]) == ("resolved", "resolved")
    assert env["AMX_ALERT_1_START"] == str(int(started))
    assert env["AMX_ALERT_1_END"] == str(int(started) + 300)
    assert env["AMX_RECEIVER"] == "exec_action"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "text"),
    [(95.0, "95"), (-3.0, "-3"), (1e21, "1e+21"), (float("nan"), "NaN"), (float("-inf"), "-Inf")],
)
async def test_exec_action_writes_values_as_prometheus_does(
    exec_env: pytest.MonkeyPatch, tmp_path: Path, value: float, text: str
) -> None:
    out = tmp_path / "env.json"
    exec_env.setenv("EXEC_ACTION_COMMAND", dump_env_command(out))

    await loaded("exec_action").call("execute", make_event(value=value), timeout=10)

    assert json.loads(out.read_text())["METRIC_READER_VALUE"] == text


@pytest.mark.anyio
async def test_exec_action_resolve_runs_the_command_with_kind_resolve(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    exec_env.setenv("EXEC_ACTION_COMMAND", dump_env_command(out))

    await loaded("exec_action").call("resolve", make_event(kind="resolve"), timeout=10)

    assert json.loads(out.read_text())["METRIC_READER_KIND"] == "resolve"


@pytest.mark.anyio
async def test_exec_action_resolve_runs_its_own_command_when_one_is_set(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fired, resolved = tmp_path / "fired.json", tmp_path / "resolved.json"
    exec_env.setenv("EXEC_ACTION_COMMAND", dump_env_command(fired))
    exec_env.setenv("EXEC_ACTION_RESOLVE_COMMAND", dump_env_command(resolved))
    plugin = loaded("exec_action")

    await plugin.call("resolve", make_event(kind="resolve"), timeout=10)

    assert not fired.exists()
    assert json.loads(resolved.read_text())["METRIC_READER_KIND"] == "resolve"


@pytest.mark.anyio
async def test_exec_action_never_goes_through_a_shell(
    exec_env: pytest.MonkeyPatch, tmp_path: Path, log_records: list[dict[str, Any]]
) -> None:
    script = "import sys; print(sys.argv[1:])"
    exec_env.chdir(tmp_path)
    exec_env.setenv("EXEC_ACTION_COMMAND", f'{PY} -c "{script}" $HOME ">" out ";" rm -rf x')

    await loaded("exec_action").call("execute", make_event(), timeout=10)

    [stdout] = [r for r in log_records if r["extra"].get("stream") == "stdout"]
    assert stdout["message"].endswith("\n['$HOME', '>', 'out', ';', 'rm', '-rf', 'x']")
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_exec_action_logs_what_the_command_printed(
    exec_env: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    exec_env.setenv("EXEC_ACTION_COMMAND", "sh -c 'echo to out; echo to err >&2'")

    await loaded("exec_action").call("execute", make_event(plugin="exec_action"), timeout=10)

    by_stream = {r["extra"]["stream"]: r for r in log_records if "stream" in r["extra"]}
    assert by_stream["stdout"]["message"] == "exec_action: sh stdout:\nto out"
    assert by_stream["stderr"]["message"] == "exec_action: sh stderr:\nto err"
    for record in by_stream.values():
        assert record["extra"]["plugin"] == "exec_action"
        assert record["level"].name == "INFO"
    [done] = [r for r in log_records if "exited with status 0" in r["message"]]
    assert done["extra"]["returncode"] == 0


@pytest.mark.anyio
async def test_exec_action_keeps_only_the_end_of_a_long_output(
    exec_env: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    script = "import sys; sys.stdout.write('x' * 1_000_000 + 'THE END')"
    exec_env.setenv("EXEC_ACTION_COMMAND", f'{PY} -c "{script}"')

    await loaded("exec_action").call("execute", make_event(), timeout=10)

    [stdout] = [r for r in log_records if r["extra"].get("stream") == "stdout"]
    text = stdout["message"].split(":\n", 1)[1]
    assert text == f"[{1_000_007 - 4096} bytes not shown]..." + "x" * (4096 - 7) + "THE END"


@pytest.mark.anyio
async def test_exec_action_fails_on_a_non_zero_exit_with_the_end_of_stderr(
    exec_env: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    exec_env.setenv(
        "EXEC_ACTION_COMMAND",
        "sh -c 'echo partial; i=0; while [ $i -lt 200 ]; do echo noise $i >&2; i=$((i+1)); done;"
        ' echo "disk is full" >&2; exit 3\'',
    )

    with pytest.raises(PluginFailure) as caught:
        await loaded("exec_action").call("execute", make_event(), timeout=10)

    message = str(caught.value)
    assert "'exec_action' execute failed: ExecActionError: sh exited with status 3" in message
    assert message.endswith("noise 199 | disk is full")
    assert "noise 0 " not in message  # only the tail
    assert "\n" not in message
    assert getattr(caught.value.__cause__, "returncode", None) == 3
    streams = {r["extra"]["stream"]: r for r in log_records if "stream" in r["extra"]}
    assert streams["stdout"]["message"].endswith("partial")
    assert streams["stderr"]["level"].name == "WARNING"


@pytest.mark.anyio
async def test_exec_action_reports_a_command_killed_by_a_signal(
    exec_env: pytest.MonkeyPatch,
) -> None:
    exec_env.setenv("EXEC_ACTION_COMMAND", "sh -c 'kill -9 $$'")

    with pytest.raises(PluginFailure, match=r"sh was killed by SIGKILL \(9\) \(no stderr output\)"):
        await loaded("exec_action").call("execute", make_event(), timeout=10)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left for init to reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_for_pids(pid_file: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if pid_file.exists():
            pids = [int(p) for p in pid_file.read_text().split()]
            if len(pids) == count:
                return pids
        time.sleep(0.02)
    raise AssertionError(f"the command did not write {count} pids to {pid_file}")


def assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [pid for pid in pids if running(pid)] == []


# the shell and a background child of its own both sleep; both must be killed
SLEEPER = "sh -c 'sleep 60 & echo $$ $! > \"$PID_FILE\"; wait'"


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_exec_action_kills_the_command_when_the_call_is_cancelled(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    exec_env.setenv("PID_FILE", str(pid_file))
    exec_env.setenv("EXEC_ACTION_COMMAND", SLEEPER)
    plugin = loaded("exec_action")

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(1):
            await plugin.call("execute", make_event(), timeout=60)

    assert time.monotonic() - started < 5
    pids = wait_for_pids(pid_file, 2)
    assert_gone(pids)


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_exec_action_kills_the_command_at_the_plugin_timeout(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    exec_env.setenv("PID_FILE", str(pid_file))
    exec_env.setenv("EXEC_ACTION_COMMAND", SLEEPER)

    with pytest.raises(PluginTimeout):
        await loaded("exec_action").call("resolve", make_event(kind="resolve"), timeout=1)

    assert_gone(wait_for_pids(pid_file, 2))


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_exec_action_does_not_wait_for_what_the_command_left_in_the_background(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    exec_env.setenv("PID_FILE", str(pid_file))
    exec_env.setenv("EXEC_ACTION_COMMAND", "sh -c 'sleep 30 & echo $! > \"$PID_FILE\"; echo ok'")

    started = time.monotonic()
    try:
        await loaded("exec_action").call("execute", make_event(), timeout=10)
        assert time.monotonic() - started < 3
    finally:
        [background] = wait_for_pids(pid_file, 1)
        if running(background):
            os.kill(background, 9)


def test_exec_action_refuses_to_load_without_a_command(exec_env: pytest.MonkeyPatch) -> None:
    assert "EXEC_ACTION_COMMAND is not set" in refused("exec_action")
    exec_env.setenv("EXEC_ACTION_COMMAND", "   ")
    assert "EXEC_ACTION_COMMAND is not set" in refused("exec_action")
    exec_env.setenv("EXEC_ACTION_COMMAND", "''")
    assert "EXEC_ACTION_COMMAND=\"''\" has no program to run" in refused("exec_action")


@pytest.mark.parametrize("variable", ["EXEC_ACTION_COMMAND", "EXEC_ACTION_RESOLVE_COMMAND"])
@pytest.mark.parametrize("command", ["echo 'not closed", 'echo "not closed', "echo trailing\\"])
def test_exec_action_refuses_a_command_that_cannot_be_split(
    exec_env: pytest.MonkeyPatch, variable: str, command: str
) -> None:
    exec_env.setenv("EXEC_ACTION_COMMAND", "true")
    exec_env.setenv(variable, command)

    message = refused("exec_action")

    assert f"{variable}={command!r} cannot be split into words" in message
    assert "balanced ' and \" quotes" in message


@pytest.mark.parametrize("variable", ["EXEC_ACTION_COMMAND", "EXEC_ACTION_RESOLVE_COMMAND"])
def test_exec_action_refuses_a_program_that_does_not_exist(
    exec_env: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    exec_env.setenv("EXEC_ACTION_COMMAND", "true")
    not_executable = tmp_path / "notify.sh"
    not_executable.write_text("#!/bin/sh\n")
    cases = {
        "no-such-program-4711 --now": "program 'no-such-program-4711' is not found on PATH",
        f"{tmp_path}/missing arg": f"program '{tmp_path}/missing' does not exist",
        f"{not_executable} arg": f"program '{not_executable}' is not executable",
        f"{tmp_path} arg": f"program '{tmp_path}' is a directory",
    }
    for command, reason in cases.items():
        exec_env.setenv(variable, command)
        assert f"{variable}={command!r}: {reason}" in refused("exec_action")


def test_exec_action_accepts_a_program_by_path_or_on_path(
    exec_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "notify"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    exec_env.setenv("EXEC_ACTION_COMMAND", f"{script} --team ops")
    loaded("exec_action")
    exec_env.setenv("EXEC_ACTION_COMMAND", "sh -c 'exit 0'")
    exec_env.setenv("EXEC_ACTION_RESOLVE_COMMAND", "true")
    loaded("exec_action")
