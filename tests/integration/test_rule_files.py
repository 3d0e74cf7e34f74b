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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    RecordingPlugins,
    ScrapeServer,
    ServiceFactory,
    _binary,
    _http_get,
    _start_logged,
    _stop_process,
    _wait_ready,
    free_port,
    wait_until,
)

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


@contextmanager
def prometheus(base: Path, rules: str, jobs: dict[str, str]) -> Iterator[str]:
    """A real Prometheus evaluating ``rules`` every second and scraping ``jobs`` (name ->
    ``host:port``) every second, itself among them when asked (job ``prometheus``)."""
    base.mkdir()
    (base / "alerts.yml").write_text(rules)
    port = free_port()
    jobs = {
        name: (f"127.0.0.1:{port}" if target == "self" else target) for name, target in jobs.items()
    }
    scrape = "".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['{target}']\n"
        for name, target in jobs.items()
    )
    (base / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - alerts.yml\nscrape_configs:\n{scrape}"
    )
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


@pytest.fixture
def prometheus_with_rules(scrape_server: ScrapeServer, tmp_path: Path) -> Iterator[str]:
    with prometheus(
        tmp_path / "prometheus", ALERTS_FILE, {"host": scrape_server.url.split("/")[2]}
    ) as url:
        yield url


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


def test_an_expression_prometheus_cannot_parse_is_a_configuration_error(
    tmp_path: Path, prometheus_with_rules: str
) -> None:
    """As Prometheus refuses a rule file whose expression does not parse, so does
    metric-reader, at start and in ``check``: one line with the file, line and alert, exit
    2, and no "configuration OK" before it. The expression is sent to the Prometheus the
    rules read as well as parsed at load: a function of Prometheus 3 parses, and this
    Prometheus (2.42) refuses it. A Prometheus that cannot be asked is only a warning."""
    (tmp_path / "bad.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Good\n        expr: up == 0\n"
        '      - alert: Broken\n        expr: sort_by_label(up, "job")\n'
    )
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_with_rules}"\nrule_files = ["bad.yml"]\n'
    )
    env = {**os.environ, "CONFIG_FILE": str(config), "LISTEN_ADDRESS": "off"}
    for args in ([], ["check"]):
        run = subprocess.run(
            [sys.executable, "-m", "metric_reader", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2, run.stderr
        errors = [line for line in run.stderr.splitlines() if "configuration error" in line]
        assert len(errors) == 1, run.stderr
        assert (
            errors[0].startswith(
                f"metric-reader: configuration error: {tmp_path / 'bad.yml'}:6: alert 'Broken': "
                "expr: 1:"
            )
            and "parse error" in errors[0]
        ), errors[0]
        assert "configuration OK" not in run.stdout

    config.write_text(
        f'prometheus_endpoint = "http://127.0.0.1:{free_port()}"\nrule_files = ["bad.yml"]\n'
    )
    check = subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "the expressions of the rule files could not be checked" in check.stderr


def _firing_variant(text: str) -> str:
    """The example host alerts made to fire on a healthy machine within seconds: the same
    expressions, labels and templates, with the comparisons turned round and short ``for``."""
    for old, new in (
        ("interval: 30s", "interval: 1s"),
        ("< 0.10", "< 1.10"),
        ("< 0.05", "< 1.05"),
        ("> 2\n", "> -1\n"),
        ("up == 0", "up == 1"),
        ("for: 5m", "for: 2s"),  # and keep_firing_for: 5m
        ("for: 15m", "for: 2s"),
        ("for: 2m", "for: 2s"),
        ("for: 3m", "for: 2s"),
        ("  - name: prometheus\n", "  - name: prometheus\n    interval: 1s\n"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "node_exporter.log"
    proc: subprocess.Popen[bytes] = _start_logged(
        [
            _binary("NODE_EXPORTER_BIN", "prometheus-node-exporter", "prometheus-node-exporter"),
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.filesystem",
            "--collector.loadavg",
            "--collector.meminfo",
            "--collector.cpu",
        ],
        log,
        tmp_path,
    )
    try:
        _wait_ready("node_exporter", f"http://127.0.0.1:{port}", proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop_process(proc)


def test_the_example_host_alerts_on_a_real_node_exporter_as_prometheus_shows_them(
    tmp_path: Path,
    service: ServiceFactory,
    recording_plugin_dir: RecordingPlugins,
    node_exporter: str,
) -> None:
    """``examples/rules/host-alerts.yml`` (turned round so that it fires here) against a real
    ``prometheus-node-exporter``: metric-reader and Prometheus show the same alerts, with
    the same labels (one per filesystem, the load, the memory, each target), all firing,
    and the plugin gets the annotations Prometheus renders."""
    rules = _firing_variant((REPO_ROOT / "examples" / "rules" / "host-alerts.yml").read_text())
    with prometheus(
        tmp_path / "prometheus", rules, {"node": node_exporter, "prometheus": "self"}
    ) as url:
        (tmp_path / "host-alerts.yml").write_text(rules)
        config = tmp_path / "rules.toml"
        config.write_text(
            f'prometheus_endpoint = "{url}"\naction_plugin = "recorder"\n'
            'rule_files = ["host-alerts.yml"]\n'
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

        def both() -> tuple[dict[Any, str], dict[Any, str]]:
            theirs = {k: v["state"] for k, v in _prometheus_alerts(url).items()}
            mine = {k: v["state"] for k, v in _our_alerts(ours).items()}
            return theirs, mine

        def agreed() -> bool:
            theirs, mine = both()
            names = {dict(k)["alertname"] for k in theirs}
            return (
                theirs == mine
                and set(theirs.values()) == {"firing"}
                and {"HostFilesystemAlmostFull", "HostMemoryLow", "PrometheusTargetDown"} <= names
            )

        svc.wait_until(agreed, 60, lambda: f"the same alerts, all firing:\n{both()}")
        theirs = _prometheus_alerts(url)
        filesystems = [k for k in theirs if dict(k)["alertname"] == "HostFilesystemAlmostFull"]
        assert filesystems, theirs
        for key in filesystems + [
            k for k in theirs if dict(k)["alertname"] == "PrometheusTargetDown"
        ]:
            svc.wait_until(
                lambda key=key: (
                    key
                    in {tuple(sorted(r["labels"].items())) for r in recording_plugin_dir.records()}
                ),
                EVENT_TIMEOUT,
                f"a plugin call for {key}",
            )
        by_labels = {tuple(sorted(r["labels"].items())): r for r in recording_plugin_dir.records()}
        for key in filesystems:  # the summary does not depend on the value
            assert by_labels[key]["annotations"]["summary"] == theirs[key]["annotations"]["summary"]
            assert "description" in by_labels[key]["annotations"]
