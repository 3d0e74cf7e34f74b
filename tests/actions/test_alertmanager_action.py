"""The bundled ``alertmanager_action``, loaded and called as the service does, against local
HTTP(S) servers on 127.0.0.1 that answer as Alertmanager's ``POST /api/v2/alerts`` does."""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from _certs import cert, new_key, write_pem
from _echo_proxy import EchoingProxy, shown_pieces
from _events import make_event as _make_event
from loguru import logger

from metric_reader import Event
from metric_reader._actions import (
    LoadedPlugin,
    PluginFailure,
    PluginProblem,
    bundled_plugin_dir,
    load_plugin_file,
)
from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, OwedCall, make_rule

NAME = "alertmanager_action"
TIMEOUT = 10.0
WAIT = 10.0
RFC3339_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting of the plugin, nor a proxy, from the environment running the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("ALERTMANAGER_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


# --- a stand-in for Alertmanager's API v2 ---------------------------------------------------


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: Any) -> None:
        self.path, self.headers, self.body = path, headers, body


class FakeAlertmanager:
    """``POST /api/v2/alerts`` checked as Alertmanager 0.25 checks it (a JSON list of alerts,
    each with valid ``labels``, RFC 3339 times, ``startsAt`` not after ``endsAt``): 200 with
    an empty body, or 400 with Alertmanager's JSON error. ``status`` forces an answer."""

    def __init__(self, tls: ssl.SSLContext | None = None, prefix: str = "") -> None:
        self.received: list[Received] = []
        self.status: int | None = None
        self.prefix = prefix
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, answer = outer._answer(self.path, raw)
                if status == 200:
                    outer.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw),
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self.server = server
        self.port = int(server.server_address[1])
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}{prefix}"
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _answer(self, path: str, raw: bytes) -> tuple[int, bytes]:
        if path != f"{self.prefix}/api/v2/alerts":
            return 404, b'{"code":404,"message":"path not found"}'
        if self.status is not None:
            return self.status, b'{"code":503,"message":"overloaded"}'
        try:
            problem = _api_problem(json.loads(raw))
        except json.JSONDecodeError:
            problem = "body is not JSON"
        if problem:
            return 400, json.dumps({"code": 400, "message": problem}).encode()
        return 200, b""

    def alerts(self) -> list[dict[str, Any]]:
        return [alert for request in self.received for alert in request.body]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _api_problem(body: Any) -> str | None:
    if not isinstance(body, list):
        return "body must be a list of alerts"
    for alert in body:
        labels = alert.get("labels")
        if not isinstance(labels, dict) or not labels:
            return "labels in body is required"
        if not all(LABEL_NAME.fullmatch(name) for name in labels):
            return "invalid label set"
        if not set(alert) <= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}:
            return f"unknown fields {sorted(alert)}"
        times = [alert[key] for key in ("startsAt", "endsAt") if key in alert]
        if not all(RFC3339_MILLIS.fullmatch(t) for t in times):
            return "times must be RFC 3339"
        if len(times) == 2 and times[1] < times[0]:
            return "start time must be before end time"
    return None


@pytest.fixture
def am() -> Iterator[FakeAlertmanager]:
    server = FakeAlertmanager()
    yield server
    server.close()


@pytest.fixture
def am2() -> Iterator[FakeAlertmanager]:
    server = FakeAlertmanager(prefix="/alertmanager")
    yield server
    server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- helpers --------------------------------------------------------------------------------


def load(table: dict[str, Any] | None) -> LoadedPlugin | PluginProblem:
    return load_plugin_file(
        bundled_plugin_dir() / f"{NAME}.py",
        bundled=True,
        settings={NAME: table} if table is not None else {},
    )


def loaded(table: dict[str, Any] | None = None) -> LoadedPlugin:
    plugin = load(table)
    assert isinstance(plugin, LoadedPlugin), plugin
    return plugin


def refused(table: dict[str, Any] | None) -> str:
    problem = load(table)
    assert isinstance(problem, PluginProblem), "loaded but should have been refused"
    assert "\n" not in problem.reason
    return problem.reason


def make_event(**changes: Any) -> Event:
    return _make_event(**{"plugin": NAME, **changes})


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


async def eventually(predicate: Callable[[], Any], message: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {message}")
        await anyio.sleep(0.02)
    return result


# --- what is sent ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_fire_is_posted_as_prometheus_posts_an_alert(am: FakeAlertmanager) -> None:
    plugin = loaded({"urls": [am.url]})
    event = make_event(labels={"job": "x", "instance": "a:1"}, annotations={"summary": "full"})

    before = datetime.now(UTC)
    await plugin.call("execute", event, TIMEOUT)
    after = datetime.now(UTC)

    [request] = am.received
    assert request.path == "/api/v2/alerts"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("metric-reader/")
    [alert] = request.body
    assert list(alert) == ["annotations", "endsAt", "startsAt", "labels"]  # Prometheus' order
    assert alert["labels"] == {"alertname": "queue", "instance": "a:1", "job": "x"}
    assert alert["annotations"] == {"summary": "full"}
    # startsAt: when it began to fire (Prometheus' FiredAt): breach start + 30 s breached
    assert alert["startsAt"] == "2024-01-02T03:04:35.000Z"
    # endsAt: four resend intervals (1m by default) ahead, in milliseconds
    ends_at = parse_time(alert["endsAt"])
    four_minutes = timedelta(minutes=4)
    assert before + four_minutes - timedelta(milliseconds=1) <= ends_at <= after + four_minutes


@pytest.mark.anyio
async def test_labels_annotations_and_generator_url_are_composed_as_documented(
    am: FakeAlertmanager,
) -> None:
    plugin = loaded(
        {
            "urls": [am.url],
            "labels": {"team": "ops", "job": "from-settings"},
            "annotations": {"runbook": "https://wiki/q", "summary": "static"},
            "generator_url": "http://prom:9090/graph?g0.expr={expr}&g0.tab=1",
        }
    )
    event = make_event(
        metric_name='sum(rate(x{a="b"}[5m])) > 1',
        labels={"alertname": "QueueFull", "job": "x", "empty": ""},
        annotations={"summary": "from the rule"},
        level="hard",
    )

    await plugin.call("execute", event, TIMEOUT)

    [alert] = am.alerts()
    assert alert["labels"] == {
        "alertname": "QueueFull",  # the alert's own name beats the rule's
        "breach_level": "hard",  # the escalation level is an alert of its own
        "job": "x",  # the series' label beats the settings'
        "team": "ops",
    }
    assert alert["annotations"] == {"runbook": "https://wiki/q", "summary": "from the rule"}
    assert alert["generatorURL"] == (
        "http://prom:9090/graph?g0.expr=sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29+%3E+1"
        "&g0.tab=1"
    )


@pytest.mark.anyio
async def test_a_resolve_ends_the_alert_now(am: FakeAlertmanager) -> None:
    plugin = loaded({"urls": [am.url]})
    await plugin.call("execute", make_event(), TIMEOUT)

    before = datetime.now(UTC)
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)
    after = datetime.now(UTC)

    fired, resolved = am.alerts()
    assert resolved["labels"] == fired["labels"]
    assert resolved["startsAt"] == fired["startsAt"]
    assert before - timedelta(milliseconds=1) <= parse_time(resolved["endsAt"]) <= after


ALERT_RULES = """\
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        annotations: {summary: '{{ $labels.queue }} holds {{ $value }}'}
"""


@pytest.mark.anyio
async def test_a_resolved_alert_carries_the_annotations_of_its_last_active_evaluation(
    am: FakeAlertmanager, tmp_path: Path
) -> None:
    """As Prometheus sends a resolved alert: the annotations rendered at the last
    evaluation at which it was active, not with ``$value`` = NaN."""
    (tmp_path / "alerts.yml").write_text(ALERT_RULES)
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\n'
        f'action_plugin = "{NAME}"\nrule_files = ["alerts.yml"]\n'
    )
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    rule, step = make_rule(settings.rules[0]), EvaluationStep(settings.routes)
    plugin = loaded({"urls": [am.url]})
    for at, samples in enumerate([[Sample((("queue", "mail"),), 120.0)], []]):
        owed: list[OwedCall] = []
        step.evaluate(rule, Observation(float(at), samples), owed.append)
        [call] = owed
        assert call.plugins() == [NAME]
        await plugin.call("resolve" if at else "execute", call.event(NAME, float(at)), TIMEOUT)
        call.report(NAME, ok=True)
        call.settle(float(at))

    fired, resolved = am.alerts()
    assert fired["annotations"] == resolved["annotations"] == {"summary": "mail holds 120"}
    assert resolved["labels"] == fired["labels"]


@pytest.mark.anyio
async def test_the_services_external_labels_and_url_go_with_its_alerts(
    am: FakeAlertmanager, tmp_path: Path
) -> None:
    """As Prometheus sends alerts: its external labels added where an alert has no label
    of that name (the alert's own wins), rendered in templates, and the generator URL
    the external URL's table view of the expression."""
    (tmp_path / "alerts.yml").write_text(
        "groups:\n  - name: hosts\n    rules:\n      - alert: HostDown\n"
        "        expr: up == 0\n        labels: {dc: own}\n"
        "        annotations: {summary: '{{ $labels.instance }}@{{ $externalLabels.region }}'}\n"
    )
    (tmp_path / "rules.toml").write_text(
        f'prometheus_endpoint = "http://127.0.0.1:9"\naction_plugin = "{NAME}"\n'
        'rule_files = ["alerts.yml"]\nexternal_labels = {region = "eqiad", dc = "x"}\n'
        'external_url = "https://prom.example/"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    rule, step = make_rule(settings.rules[0]), EvaluationStep(settings.routes)
    owed: list[OwedCall] = []
    step.evaluate(rule, Observation(0.0, [Sample((("instance", "foo"),), 0.0)]), owed.append)
    [call] = owed

    await loaded({"urls": [am.url]}).call("execute", call.event(NAME, 0.0), TIMEOUT)

    [alert] = am.alerts()
    assert alert["labels"] == {
        "alertname": "HostDown",
        "dc": "own",  # the alert's own label wins over the external one
        "instance": "foo",
        "region": "eqiad",
    }
    assert alert["annotations"] == {"summary": "foo@eqiad"}
    assert alert["generatorURL"] == "https://prom.example/graph?g0.expr=up+%3D%3D+0&g0.tab=1"


@pytest.mark.anyio
async def test_a_url_with_a_path_prefix_gets_the_api_path_after_it(
    am2: FakeAlertmanager,
) -> None:
    await loaded({"urls": [am2.url + "/"]}).call("execute", make_event(), TIMEOUT)

    [request] = am2.received
    assert request.path == "/alertmanager/api/v2/alerts"


# --- several Alertmanagers ------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_alertmanager_gets_the_alert(
    am: FakeAlertmanager, am2: FakeAlertmanager
) -> None:
    await loaded({"urls": [am.url, am2.url]}).call("execute", make_event(), TIMEOUT)

    assert [a["labels"] for a in am.alerts()] == [a["labels"] for a in am2.alerts()]
    assert len(am.alerts()) == 1


@pytest.mark.anyio
async def test_one_alertmanager_down_is_a_warning_not_a_failure(
    am: FakeAlertmanager, log_records: list[dict[str, Any]]
) -> None:
    down = closed_port_url()

    await loaded({"urls": [down, am.url]}).call("execute", make_event(), TIMEOUT)

    assert len(am.alerts()) == 1
    warnings = [r["message"] for r in log_records if r["level"].name == "WARNING"]
    assert f"{NAME}: POST {down} could not connect: Connection refused" in " ".join(warnings)


@pytest.mark.anyio
async def test_the_call_fails_when_no_alertmanager_took_the_alert(am: FakeAlertmanager) -> None:
    down = closed_port_url()
    am.status = 503
    plugin = loaded({"urls": [down, am.url]})

    with pytest.raises(PluginFailure) as failure:
        await plugin.call("execute", make_event(), TIMEOUT)

    message = str(failure.value)
    assert f"POST {down} could not connect: Connection refused" in message
    assert f"POST {am.url} answered 503 Service Unavailable: " in message
    assert '{"code":503,"message":"overloaded"}' in message


@pytest.mark.anyio
async def test_an_alert_alertmanager_refuses_fails_with_its_reason(am: FakeAlertmanager) -> None:
    plugin = loaded({"urls": [am.url]})
    event = make_event(labels={"bad-name": "x"})

    with pytest.raises(PluginFailure, match=r"answered 400 Bad Request: .*invalid label set"):
        await plugin.call("execute", event, TIMEOUT)


# --- re-sending -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_firing_alerts_are_re_sent_with_a_later_end_until_resolved(
    am: FakeAlertmanager, log_records: list[dict[str, Any]]
) -> None:
    plugin = loaded({"urls": [am.url], "resend_interval": "100ms"})
    await plugin.call("execute", make_event(labels={"job": "a"}), TIMEOUT)
    await plugin.call("execute", make_event(labels={"job": "b"}), TIMEOUT)

    def sent_for(job: str) -> list[dict[str, Any]]:
        return [a for a in am.alerts() if a["labels"]["job"] == job]

    await eventually(lambda: len(sent_for("a")) >= 4, "three re-sends of job=a")
    ends = [parse_time(a["endsAt"]) for a in sent_for("a")]
    # The fire's send can arrive after the first re-send (both in flight on a busy
    # machine), but the re-sends, one round after the other, arrive in order, each later.
    resends = sorted(ends)[1:]  # the fire's end is the earliest: worked out first
    assert [end for end in ends if end in resends] == resends
    assert len(set(ends)) == len(ends)
    for alert in sent_for("a")[1:]:
        assert alert["endsAt"] > alert["startsAt"]
        assert parse_time(alert["endsAt"]) - datetime.now(UTC) <= timedelta(milliseconds=400)

    await plugin.call("resolve", make_event(labels={"job": "a"}, kind="resolve"), TIMEOUT)
    resolved_end = sent_for("a")[-1]["endsAt"]
    count = len(sent_for("a"))
    await eventually(lambda: len(sent_for("a")) >= count + 2, "re-sends of the resolved alert")
    assert {a["endsAt"] for a in sent_for("a")[count:]} == {resolved_end}
    assert len(sent_for("b")) >= 3  # the other one still fires

    # past the retention, the resolved alert is no longer sent; the firing one still is
    plugin.obj.resolved_retention = 0.0  # type: ignore[attr-defined]
    mark = len(am.received)

    def jobs(request: Received) -> set[str]:
        return {alert["labels"]["job"] for alert in request.body}

    await eventually(
        lambda: any(jobs(r) == {"b"} for r in am.received[mark:]),
        "a re-send without the resolved alert",
    )
    await plugin.call("resolve", make_event(labels={"job": "b"}, kind="resolve"), TIMEOUT)
    await eventually(
        lambda: any(r["message"] == f"{NAME}: nothing left to re-send" for r in log_records),
        "the re-send task ends when nothing is left",
    )


@pytest.mark.anyio
async def test_a_failed_re_send_is_logged_and_the_next_one_goes_through(
    am: FakeAlertmanager, log_records: list[dict[str, Any]]
) -> None:
    plugin = loaded({"urls": [am.url], "resend_interval": "100ms"})
    await plugin.call("execute", make_event(), TIMEOUT)
    am.status = 503

    await eventually(
        lambda: any("re-sending 1 alert(s) failed" in r["message"] for r in log_records),
        "a failed re-send logged",
    )
    count = len(am.received)
    am.status = None
    await eventually(lambda: len(am.received) > count, "a re-send after the failures")


# --- TLS and credentials --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = new_key(), new_key(), new_key()
    ca = cert("test CA", ca_key, None, ca=True)
    return {
        "ca": write_pem(d / "ca.pem", cert=ca),
        "server": write_pem(
            d / "server.pem", cert=cert("127.0.0.1", server_key, ("test CA", ca_key), server=True)
        ),
        "server_key": write_pem(d / "server-key.pem", key=server_key),
        "client": write_pem(d / "client.pem", cert=cert("mr", client_key, ("test CA", ca_key))),
        "client_key": write_pem(d / "client-key.pem", key=client_key),
    }


@pytest.fixture
def mtls_am(pki: dict[str, Path]) -> Iterator[FakeAlertmanager]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server"], pki["server_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(pki["ca"])
    server = FakeAlertmanager(tls=context)
    yield server
    server.close()


@pytest.mark.anyio
async def test_mutual_tls_with_the_ca_file_and_a_client_certificate(
    mtls_am: FakeAlertmanager, pki: dict[str, Path]
) -> None:
    table = {"urls": [mtls_am.url], "tls_ca_file": str(pki["ca"])}
    # no client certificate: the server refuses it. TLS 1.3 says so after the handshake:
    # the client sees the alert, or only the connection closing, as the race goes.
    refusal = "failed: (TLS: TLSV13_ALERT_CERTIFICATE_REQUIRED|ReadError: the connection broke)"
    with pytest.raises(PluginFailure, match=refusal):
        await loaded(table).call("execute", make_event(), TIMEOUT)
    without_ca = {"urls": [mtls_am.url]}
    with pytest.raises(
        PluginFailure, match="could not connect: TLS certificate verification failed: "
    ):
        await loaded(without_ca).call("execute", make_event(), TIMEOUT)

    table |= {"tls_cert_file": str(pki["client"]), "tls_key_file": str(pki["client_key"])}
    await loaded(table).call("execute", make_event(), TIMEOUT)

    assert len(mtls_am.alerts()) == 1


@pytest.mark.anyio
async def test_a_bearer_token_file_is_read_at_every_send(
    am: FakeAlertmanager, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    plugin = loaded({"urls": [am.url], "bearer_token_file": str(token)})

    await plugin.call("execute", make_event(), TIMEOUT)
    token.write_text("second-token")
    await plugin.call("execute", make_event(), TIMEOUT)

    assert [r.headers["authorization"] for r in am.received] == [
        "Bearer first-token",
        "Bearer second-token",
    ]


@pytest.mark.anyio
async def test_basic_auth_from_the_environment(
    am: FakeAlertmanager, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    clean_env.setenv("ALERTMANAGER_URLS", f" {closed_port_url()} , {am.url} ")
    clean_env.setenv("ALERTMANAGER_BASIC_AUTH_USERNAME", "reader")
    clean_env.setenv("ALERTMANAGER_BASIC_AUTH_PASSWORD_FILE", str(password))

    await loaded().call("execute", make_event(), TIMEOUT)

    [request] = am.received
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"reader:s3cret").decode(
        "ascii"
    )


@pytest.mark.anyio
async def test_the_table_beats_the_environment(
    am: FakeAlertmanager, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("ALERTMANAGER_URLS", closed_port_url())
    clean_env.setenv("ALERTMANAGER_LABELS", '{"source": "env"}')
    clean_env.setenv("ALERTMANAGER_TIMEOUT", "not read")

    await loaded({"urls": [am.url], "timeout": "5s"}).call("execute", make_event(), TIMEOUT)

    [alert] = am.alerts()
    assert alert["labels"]["source"] == "env"  # keys the table does not give: the env's


# --- settings refused -----------------------------------------------------------------------


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    reason = refused({"url": ["http://a:9093"], "ALERTMANAGER_TIMEOUT": "5s"})
    assert reason.endswith(
        "ValueError: unknown keys 'url' (did you mean 'urls'?), 'ALERTMANAGER_TIMEOUT' "
        "(did you mean 'timeout'?); allowed: urls, timeout, resend_interval, generator_url, "
        "labels, annotations, tls_ca_file, tls_cert_file, tls_key_file, "
        "tls_insecure_skip_verify, bearer_token_file, basic_auth_username, "
        "basic_auth_password_file"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"urls": 9093}, "urls is an integer; expected http:// or https:// URLs"),
        ({"urls": [9093]}, "urls holds an integer; expected http:// or https:// URLs"),
        ({"urls": []}, "urls is empty"),
        ({"urls": ["ftp://a"]}, "urls: 'ftp://a': expected http:// or https:// URLs"),
        (
            {"urls": ["http://user:hunter2@a:9093"]},
            "urls: 'http://***@a:9093': credentials in the URL are not accepted",
        ),
        ({"urls": ["http://a:9093", "http://a:9093/"]}, "names http://a:9093/ twice"),
        ({"timeout": "5"}, "timeout='5' is not a Go duration above 0"),
        ({"resend_interval": 60}, "resend_interval=60 is not a Go duration above 0"),
        ({"labels": {"team-name": "ops"}}, "labels: 'team-name' is not a label name"),
        ({"annotations": {"summary": 3}}, "annotations: summary is an integer, not a string"),
        ({"tls_cert_file": "/c.pem"}, "tls_cert_file and tls_key_file go together"),
        ({"basic_auth_username": "u"}, "basic_auth_username and basic_auth_password_file go"),
        ({"tls_insecure_skip_verify": "yes"}, "tls_insecure_skip_verify='yes' is not true or"),
        ({"tls_ca_file": "/nonexistent/ca.pem"}, "tls_ca_file '/nonexistent/ca.pem': not a PEM"),
    ],
)
def test_bad_settings_are_refused_in_one_line(table: dict[str, Any], message: str) -> None:
    assert message in refused(table)


def test_bad_environment_settings_are_refused_naming_the_variable(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("ALERTMANAGER_RESEND_INTERVAL", "soon")
    assert "ALERTMANAGER_RESEND_INTERVAL='soon' is not a Go duration" in refused(None)
    clean_env.delenv("ALERTMANAGER_RESEND_INTERVAL")

    token, empty = tmp_path / "token", tmp_path / "empty"
    token.write_text("t")
    empty.write_text("\n")
    clean_env.setenv("ALERTMANAGER_BEARER_TOKEN_FILE", str(empty))
    assert f"bearer_token_file '{empty}': the file is empty" in refused(None)

    clean_env.setenv("ALERTMANAGER_BEARER_TOKEN_FILE", str(token))
    clean_env.setenv("ALERTMANAGER_BASIC_AUTH_USERNAME", "u")
    clean_env.setenv("ALERTMANAGER_BASIC_AUTH_PASSWORD_FILE", str(token))
    assert "bearer_token_file and basic_auth_* are both set" in refused(None)


def test_a_url_password_holding_at_signs_is_masked_whole(clean_env: pytest.MonkeyPatch) -> None:
    """RFC 3986: the userinfo ends at the last ``@`` before the host."""
    url = "http://user:p@ss@tPa55@a:9093"
    clean_env.setenv("ALERTMANAGER_URLS", url)
    for message in (refused({"urls": [url]}), refused(None)):
        assert "'http://***@a:9093': credentials in the URL are not accepted" in message
        assert "tPa55" not in message and "ss@" not in message, message


@pytest.mark.anyio
@pytest.mark.parametrize("way", ["text200", "reason", "json"])
async def test_credentials_an_alertmanager_proxy_echoes_are_not_in_the_message(
    tmp_path: Path, way: str
) -> None:
    token = 'am-T0k"en\\-Vq8Lw3Zr-9'
    (tmp_path / "token").write_text(token)
    proxy = EchoingProxy()
    try:
        plugin = loaded(
            {"urls": [f"{proxy.url}/{way}"], "bearer_token_file": str(tmp_path / "token")}
        )
        with pytest.raises(PluginFailure) as failure:
            await plugin.call("execute", make_event(), TIMEOUT)
    finally:
        proxy.close()
    assert proxy.requests[0]["authorization"] == f"Bearer {token}"
    message = str(failure.value)
    assert "answered" in message and "***" in message, message
    assert shown_pieces(message, [token]) == [], message


def test_with_no_settings_it_loads_and_sends_to_localhost_9093() -> None:
    plugin = loaded()
    assert plugin.has_resolve
