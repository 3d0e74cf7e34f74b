"""Quiet alerts are not "no data": a rule file's alert whose expression returns no series is
in its normal, healthy state, which Prometheus shows as *inactive*.

A real ``python -m metric_reader`` runs a rule file against a real Prometheus: five quiet
alerts, one that fires, one whose expression Prometheus cannot run, and a selector rule
whose metric name is misspelled. Only the selector rule is "no data" (one warning,
``/api/status``, ``metric_reader_rule_no_data``, the page's header); each quiet alert is
*inactive* with no series, its last evaluation and how long it took, listed on the page's
table of inactive alerts, after the firing one; the failing one is no quiet alert: its
error is on the page, in a section of its own.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .conftest import EVENT_TIMEOUT, STARTUP_TIMEOUT, PrometheusStack, ServiceFactory, free_port

ALERTS = """\
groups:
  - name: node-exporter
    interval: 500ms
    rules:
      - alert: HostOutOfDiskSpace
        expr: |
          (quiet_svc_filesystem_avail_bytes{job="quiet_svc"} * 100)
            / quiet_svc_filesystem_size_bytes{job="quiet_svc"} < 10
        for: 2m
      - alert: HostHalfFull
        expr: quiet_svc_filesystem_avail_bytes{job="quiet_svc"} > 0
      - alert: HostDown
        expr: up{job="quiet_svc_node"} == 0
      - alert: HostOomKill
        expr: increase(quiet_svc_vmstat_oom_kill{job="quiet_svc"}[1m]) > 0
      - alert: HostClockSkew
        expr: abs(quiet_svc_timex_offset_seconds{job="quiet_svc"}) > 0.05
      - alert: HostConntrackLimit
        expr: quiet_svc_nf_conntrack_entries / quiet_svc_nf_conntrack_entries_limit > 0.8
      - alert: BrokenRegex
        expr: label_replace(quiet_svc_filesystem_size_bytes, "x", "$1", "mountpoint", "(")
"""
QUIET = ["HostOutOfDiskSpace", "HostDown", "HostOomKill", "HostClockSkew", "HostConntrackLimit"]
DURATION = re.compile(r"([0-9.]+(h|m|s|ms|us|ns))+")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_quiet_alerts_are_inactive_with_their_last_evaluation_and_not_no_data(
    service: ServiceFactory, prometheus_stack: PrometheusStack, tmp_path: Path
) -> None:
    for name, value in (("avail", 40e9), ("size", 100e9)):
        prometheus_stack.push(
            f"quiet_svc_filesystem_{name}_bytes", value, {"mountpoint": "/"}, job="quiet_svc"
        )
    prometheus_stack.wait_visible('quiet_svc_filesystem_size_bytes{job="quiet_svc"}', 100e9)
    (tmp_path / "alerts.yml").write_text(ALERTS)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"\n'
        'rule_files = ["alerts.yml"]\npolling_interval = "500ms"\n'
        '[[rules]]\nname = "typo"\nmetric_name = "quiet_svc_filesystem_avail_byte"\n'
        'threshold = "<1e9"\n'
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    svc = service({"CONFIG_FILE": str(config), "LISTEN_ADDRESS": f"127.0.0.1:{port}"})

    def evaluated() -> dict[str, Any] | None:
        try:
            rules = json.loads(_get(f"{base}/api/status"))["rules"]
        except OSError:
            return None
        by_name = {rule["name"]: rule for rule in rules}
        done = all(rule["last_evaluation"] or rule["last_error"] for rule in rules)
        return by_name if done and by_name["HostHalfFull"]["state"] == "firing" else None

    rules = svc.wait_until(evaluated, STARTUP_TIMEOUT + EVENT_TIMEOUT, "every rule evaluated")

    for name in QUIET:
        quiet = rules[name]
        assert quiet["state"] == "inactive", quiet
        assert quiet["no_data"] is None and quiet["series"] == [] and not quiet["series_count"]
        assert quiet["alert"] == {
            "group": "node-exporter",
            "file": str(tmp_path / "alerts.yml"),
            "line": quiet["alert"]["line"],
        }
        assert DURATION.fullmatch(quiet["evaluation_duration"]), quiet
        assert quiet["last_error"] is None
    assert rules["typo"]["no_data"]["active"] and rules["typo"]["state"] == "inactive"
    broken = rules["BrokenRegex"]
    assert broken["last_evaluation"] is None and broken["no_data"] is None
    assert broken["last_error"].endswith(
        "HTTP 422, query failed: execution: invalid regular expression in label_replace(): "
        f"( (GET {prometheus_stack.prometheus_url}/api/v1/query)"
    ), broken

    no_data = {
        sample.labels["rule"]: sample.value
        for family in text_string_to_metric_families(_get(f"{base}/metrics"))
        for sample in family.samples
        if sample.name == "metric_reader_rule_no_data"
    }
    assert no_data == {"typo": 1.0}

    page = _get(f"{base}/")
    assert "<b>1</b> with no data" in page
    sections = re.findall(r'<h2 id="rule-([^"]+)"', page)
    assert sections == ["HostHalfFull", "typo", "BrokenRegex"]  # firing, then troubled
    assert "invalid regular expression in label_replace()" in page
    assert re.findall(r'<tr id="rule-([^"]+)"', page) == QUIET  # in file order

    warnings = [line for line in svc.stderr().splitlines() if "no data:" in line]
    assert len(warnings) == 1 and "typo" in warnings[0], warnings
