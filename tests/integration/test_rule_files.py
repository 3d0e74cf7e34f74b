"""A Prometheus rule file run by metric-reader and by Prometheus itself, side by side.

One real Prometheus scrapes a page the test controls and evaluates ``alerts.yml`` (its
``rule_files``, every second). metric-reader runs the same file against that Prometheus.
The data goes through pending, firing, keep-firing and resolved; at each step the alerts
Prometheus shows in ``/api/v1/alerts`` (labels, state, annotations, ``activeAt``) and the
alerts metric-reader shows (``ALERTS`` and ``ALERTS_FOR_STATE`` on its ``/metrics``) must
agree, and the plugin is called with the alert's labels and rendered annotations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import (
    EVENT_TIMEOUT,
    RecordingPlugins,
    ScrapeServer,
    ServiceFactory,
    _binary,
    _http_get,
    _start_logged,
    _stop_process,
    _tail,
    _wait_ready,
    free_port,
    wait_until,
)

pytestmark = pytest.mark.serial  # compares two clocks: run alone after the parallel part

ALERTS_FILE = """\
groups:
  - name: host
    interval: 1s
    rules:
      - record: host:disk_used:max
        expr: max(disk_used_ratio)
      - alert: DiskAlmostFull
        expr: disk_used_ratio > 0.9
        for: 3s
        labels:
          severity: page
          team: storage
          mount_kind: '{{ if eq $labels.mount "/" }}root{{ else }}data{{ end }}'
        annotations:
          summary: 'Disk {{ $labels.mount }} is {{ $value | humanizePercentage }} full'
          description: '{{ printf "%.3f" $value }} of {{ $labels.instance }}'
      - alert: HostDown
        expr: host_up == 0
        keep_firing_for: 4s
        labels:
          severity: warning
        annotations:
          summary: '{{ $labels.host }} is down'
"""


@pytest.fixture
def prometheus_with_rules(scrape_server: ScrapeServer, tmp_path: Path) -> Iterator[str]:
    base = tmp_path / "prometheus"
    base.mkdir()
    (base / "alerts.yml").write_text(ALERTS_FILE)
    target = scrape_server.url.split("/")[2]
    (base / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - alerts.yml\n"
        f"scrape_configs:\n  - job_name: host\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "prometheus.log"
    proc: subprocess.Popen[bytes] = _start_logged(
        [
            _binary("PROMETHEUS_BIN", "prometheus", "prometheus"),
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log,
        base,
    )
    try:
        _wait_ready("prometheus", url, proc, log)
        yield url
    finally:
        _stop_process(proc)
        if proc.returncode not in (0, -15):
            print(_tail(log))


def _prometheus_alerts(url: str) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    status, body = _http_get(f"{url}/api/v1/alerts")
    assert status == 200, body
    return {
        tuple(sorted(alert["labels"].items())): alert
        for alert in json.loads(body)["data"]["alerts"]
    }


def _our_alerts(metrics_url: str) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    families = {f.name: f for f in text_string_to_metric_families(text)}
    out: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in families["ALERTS"].samples:
        labels = dict(sample.labels)
        state = labels.pop("alertstate")
        out[tuple(sorted(labels.items()))] = {"state": state}
    for sample in families["ALERTS_FOR_STATE"].samples:
        out[tuple(sorted(sample.labels.items()))]["activeAt"] = sample.value
    return out


def _agree(prometheus: str, ours: str) -> str | None:
    """None when both show the same alerts in the same states, else what differs."""
    theirs = {k: v["state"] for k, v in _prometheus_alerts(prometheus).items()}
    mine = {k: v["state"] for k, v in _our_alerts(ours).items()}
    return None if theirs == mine else f"prometheus {theirs}\nmetric-reader {mine}"


def _wait_agreeing(prometheus: str, ours: str, want: dict[str, str]) -> None:
    """Until both show exactly the alerts ``want`` (alertname and mount/host -> state)."""

    def shown(alerts: dict[tuple[tuple[str, str], ...], Any]) -> dict[str, str]:
        out = {}
        for labels, alert in alerts.items():
            named = dict(labels)
            key = f"{named['alertname']} {named.get('mount') or named.get('host')}"
            out[key] = alert["state"]
        return out

    wait_until(
        lambda: shown(_prometheus_alerts(prometheus)) == want and shown(_our_alerts(ours)) == want,
        EVENT_TIMEOUT,
        lambda: f"want {want}\n{_agree(prometheus, ours)}",
        interval=0.1,
    )


def test_a_rule_file_alerts_as_prometheus_alerts(
    tmp_path: Path,
    service: ServiceFactory,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    prometheus_with_rules: str,
) -> None:
    scrape_server.set_value("disk_used_ratio", 0.5, {"mount": "/"})
    scrape_server.set_value("disk_used_ratio", 0.5, {"mount": "/data"})
    scrape_server.set_value("host_up", 1, {"host": "db-1"})
    (tmp_path / "alerts.yml").write_text(ALERTS_FILE)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_with_rules}"\npolling_interval = "1s"\n'
        'action_plugin = "recorder"\nrule_files = ["alerts.yml"]\n'
    )
    port = free_port()
    svc = service(
        {
            "CONFIG_FILE": str(config),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "info",
            **recording_plugin_dir.env,
        }
    )
    ours = f"http://127.0.0.1:{port}/metrics"
    svc.wait_until(lambda: "recording rule host:disk_used:max skipped" in svc.stderr(), 10, "skip")

    # Pending, then firing after 3 s: both, for "/" only.
    scrape_server.set_value("disk_used_ratio", 0.95, {"mount": "/"})
    _wait_agreeing(prometheus_with_rules, ours, {"DiskAlmostFull /": "pending"})
    _wait_agreeing(prometheus_with_rules, ours, {"DiskAlmostFull /": "firing"})
    theirs = next(iter(_prometheus_alerts(prometheus_with_rules).values()))
    mine = _our_alerts(ours)[tuple(sorted(theirs["labels"].items()))]
    active_at = time.mktime(time.strptime(theirs["activeAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    active_at -= time.timezone
    assert abs(mine["activeAt"] - active_at) <= 1.0 + 1.0  # one interval, and the rounding
    [call] = [r for r in recording_plugin_dir.records() if r["rule"] == "DiskAlmostFull"]
    assert call["labels"] == theirs["labels"]  # alertname, team, severity, mount_kind, ...
    assert call["labels"]["mount_kind"] == "root" and call["labels"]["team"] == "storage"
    assert call["annotations"] == theirs["annotations"]
    assert call["annotations"]["summary"] == "Disk / is 95% full"
    assert call["metric_name"] == "DiskAlmostFull" and call["threshold"] == "disk_used_ratio > 0.9"

    # A host goes down: firing at once (no for); back up: keeps firing 4 s, then resolved.
    scrape_server.set_value("host_up", 0, {"host": "db-1"})
    _wait_agreeing(
        prometheus_with_rules, ours, {"DiskAlmostFull /": "firing", "HostDown db-1": "firing"}
    )
    scrape_server.set_value("host_up", 1, {"host": "db-1"})
    scrape_server.set_value("disk_used_ratio", 0.5, {"mount": "/"})
    _wait_agreeing(prometheus_with_rules, ours, {"HostDown db-1": "firing"})  # keep firing
    _wait_agreeing(prometheus_with_rules, ours, {})
    methods = sorted((r["rule"], r["method"]) for r in recording_plugin_dir.records())
    assert methods == [
        ("DiskAlmostFull", "execute"),
        ("DiskAlmostFull", "resolve"),
        ("HostDown", "execute"),
        ("HostDown", "resolve"),
    ]


def test_routes_send_each_alert_to_the_plugins_its_labels_take(
    tmp_path: Path,
    service: ServiceFactory,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    prometheus_with_rules: str,
) -> None:
    """``team=~"db|storage"`` (continue) and ``severity="page"`` both take DiskAlmostFull;
    HostDown (severity warning, no team) is taken by none and there is no default plugin:
    it is only logged. ``check`` says which routes each alert can reach."""
    scrape_server.set_value("disk_used_ratio", 0.95, {"mount": "/"})
    scrape_server.set_value("host_up", 0, {"host": "db-1"})
    (tmp_path / "alerts.yml").write_text(ALERTS_FILE)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_with_rules}"\npolling_interval = "1s"\n'
        'rule_files = ["alerts.yml"]\n'
        '[[routes]]\nmatchers = [\'team=~"db|storage"\']\naction_plugin = "recorder_hard"\n'
        "continue = true\n"
        '[[routes]]\nmatchers = [\'severity="page"\']\naction_plugin = "recorder"\n'
    )
    env = {"CONFIG_FILE": str(config), **recording_plugin_dir.env}
    check = subprocess.run(
        [sys.executable, "-m", "metric_reader", "check", "--no-read"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        'route DiskAlmostFull: routes[0] {team=~"db|storage"} -> recorder_hard; '
        'routes[1] {severity="page"} -> recorder'
    ) in check.stdout, check.stdout
    # HostDown has no team of its own: a series with a team label could still take route 0.
    assert (
        'route HostDown: routes[0] {team=~"db|storage"} -> recorder_hard; default -> log only'
    ) in check.stdout, check.stdout

    svc = service({**env, "LOG_LEVEL": "info"})
    svc.wait_until(
        lambda: (
            {(r["rule"], r["plugin"]) for r in recording_plugin_dir.records()}
            == {("DiskAlmostFull", "recorder_hard"), ("DiskAlmostFull", "recorder")}
        ),
        EVENT_TIMEOUT,
        "DiskAlmostFull to reach both routes' plugins",
    )
    svc.wait_until(
        lambda: (
            "fire: no ACTION_PLUGIN set, nothing to run" in svc.stderr()
            and "rule=HostDown" in svc.stderr()
        ),
        EVENT_TIMEOUT,
        "HostDown only logged",
    )
    records = recording_plugin_dir.records()
    assert all(r["annotations"]["summary"] == "Disk / is 95% full" for r in records)
    assert len(records) == 2  # once each: nothing fired twice
