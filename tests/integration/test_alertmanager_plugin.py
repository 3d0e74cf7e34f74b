"""End to end: a real service with the bundled ``alertmanager_action`` and a real Alertmanager.

Debian's ``prometheus-alertmanager`` runs on a loopback port with a route to a webhook
receiver in the test (group_wait and group_interval of 1 s). The service reads a local
``/metrics`` page; a breach shows up in Alertmanager's ``GET /api/v2/alerts`` with the
labels, annotations and start the plugin sent, and is resolved when the value drops. A
silence created in Alertmanager keeps its alert's notifications from the webhook while
another alert of the same group gets through.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    EVENT_TIMEOUT,
    ScrapeServer,
    Service,
    ServiceFactory,
    _binary,
    _start_logged,
    _stop_process,
    _tail,
    _wait_ready,
    free_port,
)

RULE = "queue-depth"


class Webhook:
    """Alertmanager's webhook receiver: keeps every notification it is sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notifications: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.notifications.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[tuple[str, dict[str, str]]]:
        """(status, labels) of every alert in every notification so far."""
        with self.lock:
            return [
                (alert["status"], alert["labels"])
                for notification in self.notifications
                for alert in notification["alerts"]
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Alertmanager:
    url: str
    log: Path
    webhook: Webhook

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts that have not ended (silenced ones too)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as answer:
            alerts: list[dict[str, Any]] = json.load(answer)
        return alerts

    def alert(self, **labels: str) -> dict[str, Any] | None:
        for alert in self.alerts():
            if all(alert["labels"].get(k) == v for k, v in labels.items()):
                return alert
        return None

    def silence(self, **labels: str) -> str:
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in labels.items()
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test",
            "comment": "maintenance",
        }
        request = urllib.request.Request(
            f"{self.url}/api/v2/silences",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return str(json.load(answer)["silenceID"])

    def diagnostics(self) -> str:
        try:
            alerts = json.dumps(self.alerts())
        except OSError as exc:
            alerts = f"<{exc}>"
        return (
            f"--- alertmanager alerts ---\n{alerts}\n"
            f"--- webhook alerts ---\n{self.webhook.alerts()}\n"
            f"--- alertmanager log ---\n{_tail(self.log, 30)}"
        )


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    binary = _binary("ALERTMANAGER_BIN", "prometheus-alertmanager", "prometheus-alertmanager")
    webhook = Webhook()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: [alertname]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {webhook.url}\n"
        "        send_resolved: true\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "alertmanager.log"
    proc: subprocess.Popen[bytes] = _start_logged(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: a single instance
            "--log.level=debug",
        ],
        log,
        tmp_path,
    )
    try:
        _wait_ready("alertmanager", url, proc, log)
        yield Alertmanager(url, log, webhook)
    finally:
        _stop_process(proc)
        webhook.close()


def start(
    service: ServiceFactory, tmp_path: Path, scrape: ScrapeServer, am: Alertmanager
) -> Service:
    config = tmp_path / "rules.toml"
    config.write_text(
        f"""
[[rules]]
name = "{RULE}"
metric_name = "queue_depth"
scrape_url = "{scrape.url}"
polling_interval = "250ms"
threshold = ">80"
threshold_duration = "500ms"
action_plugin = "alertmanager_action"

[plugins.alertmanager_action]
urls = ["{am.url}"]
resend_interval = "2s"
labels = {{ team = "ops" }}
annotations = {{ summary = "the queue is long" }}
"""
    )
    svc = service({"CONFIG_FILE": str(config)})
    svc.extra_diagnostics.append(am.diagnostics)
    return svc


def test_a_breach_is_an_alert_in_alertmanager_until_it_ends(
    service: ServiceFactory,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    alertmanager: Alertmanager,
) -> None:
    scrape_server.set_value("queue_depth", 10, {"queue": "orders"})
    svc = start(service, tmp_path, scrape_server, alertmanager)
    svc.wait_until(lambda: scrape_server.requests >= 2, EVENT_TIMEOUT, "two polls")

    breached_after = datetime.now(UTC)
    scrape_server.set_value("queue_depth", 95, {"queue": "orders"})
    alert = svc.wait_until(
        lambda: alertmanager.alert(queue="orders"), EVENT_TIMEOUT, "the alert in Alertmanager"
    )
    seen_at = datetime.now(UTC)

    assert alert["labels"] == {"alertname": RULE, "queue": "orders", "team": "ops"}
    assert alert["annotations"] == {"summary": "the queue is long"}
    assert alert["status"]["state"] == "active"
    # startsAt: when the breach began, a poll (250 ms) at most after the value changed
    starts_at = datetime.fromisoformat(alert["startsAt"])
    assert breached_after - timedelta(milliseconds=300) <= starts_at <= seen_at
    assert datetime.fromisoformat(alert["endsAt"]) > seen_at  # four re-sends ahead
    svc.wait_until(
        lambda: ("firing", alert["labels"]) in alertmanager.webhook.alerts(),
        EVENT_TIMEOUT,
        "the firing notification at the webhook",
    )

    scrape_server.set_value("queue_depth", 10, {"queue": "orders"})
    svc.wait_until(
        lambda: alertmanager.alert(queue="orders") is None,
        EVENT_TIMEOUT,
        "the alert resolved (gone from the active alerts)",
    )
    svc.wait_until(
        lambda: ("resolved", alert["labels"]) in alertmanager.webhook.alerts(),
        EVENT_TIMEOUT,
        "the resolved notification at the webhook",
    )
    assert "alertmanager_action: 1 alert(s) sent (resolve)" in svc.output()
    assert svc.stop() == 0


def test_a_silence_in_alertmanager_keeps_its_alert_from_the_receiver(
    service: ServiceFactory,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    alertmanager: Alertmanager,
) -> None:
    for queue in ("silenced", "loud"):
        scrape_server.set_value("queue_depth", 10, {"queue": queue})
    silence = alertmanager.silence(alertname=RULE, queue="silenced")
    svc = start(service, tmp_path, scrape_server, alertmanager)
    svc.wait_until(lambda: scrape_server.requests >= 2, EVENT_TIMEOUT, "two polls")

    for queue in ("silenced", "loud"):
        scrape_server.set_value("queue_depth", 95, {"queue": queue})
    silenced = svc.wait_until(
        lambda: alertmanager.alert(queue="silenced"), EVENT_TIMEOUT, "the silenced alert"
    )
    assert silenced["status"] == {"state": "suppressed", "silencedBy": [silence], "inhibitedBy": []}
    loud_labels = {"alertname": RULE, "queue": "loud", "team": "ops"}
    svc.wait_until(
        lambda: ("firing", loud_labels) in alertmanager.webhook.alerts(),
        EVENT_TIMEOUT,
        "the unsilenced alert at the webhook",
    )

    # The group's notifications list every firing alert not muted: the loud one resolving
    # sends one more, long after the silenced alert reached Alertmanager.
    scrape_server.set_value("queue_depth", 10, {"queue": "loud"})
    svc.wait_until(
        lambda: ("resolved", loud_labels) in alertmanager.webhook.alerts(),
        EVENT_TIMEOUT,
        "the unsilenced alert's resolve at the webhook",
    )
    received = alertmanager.webhook.alerts()
    assert [labels for _, labels in received if labels["queue"] == "silenced"] == [], received
    # still firing, still silenced: the plugin re-sends it (every 2 s), each time later ends
    first_end = silenced["endsAt"]

    def re_sent() -> bool:
        alert = alertmanager.alert(queue="silenced")
        return alert is not None and alert["endsAt"] > first_end

    svc.wait_until(re_sent, EVENT_TIMEOUT, "the silenced alert re-sent with a later endsAt")
    assert alertmanager.alert(queue="silenced")["status"]["state"] == "suppressed"  # type: ignore[index]
    assert svc.stop() == 0
