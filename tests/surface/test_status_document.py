"""``/api/status`` pinned: sample documents rendered by the real code, compared whole to
``status_documents.json``, so a change to the document (a key renamed, dropped, moved or
typed differently) fails here, not in a script reading it.

Four rules (one with a firing series and a hard level, one that never saw a series and
has no data, one without a threshold whose reads fail, and an alert of a rule file whose
expression returns nothing: inactive, and no "no data"), two fetches, two groups; both
clocks fixed, so every time in the documents is too. A service's own document
(``leader_election``) is checked with its times and version left out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from metric_reader._actions import PluginCatalog
from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import RECENT_SERIES_PER_RULE, NoData, make_rule
from metric_reader._service import Service
from metric_reader._surface._selection import Selection
from metric_reader._surface._status import status_snapshot
from metric_reader._surface._status_page import render_status_page
from metric_reader._surface._view import FetchStatus, GroupStatus, LastEvaluation

EXPECTED = Path(__file__).with_name("status_documents.json")
NOW_MONO = 5000.0
NOW_WALL = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()

RULES = """
prometheus_endpoint = "http://prometheus.test:9090"
rule_files = ["alerts.yml"]

[[rules]]
name = "queues"
metric_name = "queue_depth"
scrape_url = "http://app.test:8080/metrics"
polling_interval = "10s"
threshold = ">50"
threshold_duration = "20s"
backoff_delay = "30s"
clear_threshold = "<40"
action_plugin = "log_action"
  [rules.hard]
  threshold = ">90"
  action_plugin = "file_action"

[[rules]]
name = "heartbeat"
metric_name = "batch_last_success"
polling_interval = "30s"
threshold = "<1"

[[rules]]
name = "errors"
query = "sum(rate(errors_total[5m]))"
polling_interval = "30s"
"""

ALERTS = """
groups:
  - name: host
    interval: 30s
    rules:
      - alert: HostDown
        expr: up{job="node"} == 0
        for: 1m
"""
RULES_DIR = "/etc/metric-reader"
"""Where the pinned documents say the rule file is (the test writes it elsewhere)."""

SELECTIONS = {
    "every_rule": Selection(),
    "status_page": Selection(limit=1000, per_rule=100, by_severity=True, recent=True),
    "one_page": Selection(rule="queues", limit=1, by_severity=True),
}


def sample_documents(tmp_path: Path) -> dict[str, Any]:
    """The sample state, as ``/api/status`` gives it with each of ``SELECTIONS``."""
    config = tmp_path / "rules.toml"
    config.write_text(RULES)
    (tmp_path / "alerts.yml").write_text(ALERTS)
    settings = load_settings({"CONFIG_FILE": str(config)})
    rules = [make_rule(rule) for rule in settings.rules]
    for rule in rules:
        rule.keep_recent(RECENT_SERIES_PER_RULE)
    queues, heartbeat, _, host_down = rules
    mail, sms = (("queue", "mail"),), (("queue", "sms"),)
    for at, depths in [(4960.0, (80.0, 10.0)), (4970.0, (95.0, 12.0)), (4980.0, (95.0, 12.5))]:
        samples = [Sample(mail, depths[0]), Sample(sms, depths[1])]
        for action in queues.evaluate(at, samples):
            queues.finish(at + 0.25, action, action.level == "base")  # the hard one fails
    queues.evaluate(4990.0, [Sample(mail, 97.0), Sample(sms, float("nan"))])  # a retry runs
    no_data = {rule.name: NoData(rule.name, rule.expression) for rule in rules[:3]}
    no_data["queues"].observe(4990.0, 2)
    for at in (4940.0, 4970.0, 5000.0):
        heartbeat.evaluate(at, [])
        no_data["heartbeat"].observe(at, 0)
        host_down.evaluate(at, [])  # quiet: its healthy state
    evaluations = {
        "queues": LastEvaluation(4990.0, 0.0123456),
        "heartbeat": LastEvaluation(5000.0, 2.040785915),
        "HostDown": LastEvaluation(5000.0, 0.000987654),
    }
    fetches = [
        FetchStatus("http://app.test:8080/metrics", 10.0, 1, 4990.5, None),
        FetchStatus("http://prometheus.test:9090", 30.0, 2, None, "HTTP 503: not ready"),
    ]
    groups = [
        GroupStatus("queues", 10.0, 0.0, 1, 1, 0, 0),
        GroupStatus("http://prometheus.test:9090 every 30s", 30.0, 2.040785915, 2, 2, 1, 4),
    ]
    return {
        name: json.loads(
            json.dumps(
                status_snapshot(
                    rules,
                    fetches,
                    NOW_MONO,
                    ready=False,
                    started_mono=4900.0,
                    version="1.2.3",
                    no_data=no_data,
                    selection=selection,
                    groups=groups,
                    now_wall=NOW_WALL,
                    evaluations=evaluations,
                    errors={"errors": "HTTP 503: not ready"},
                ),
                allow_nan=False,
            ).replace(str(tmp_path), RULES_DIR)
        )
        for name, selection in SELECTIONS.items()
    }


def test_the_status_documents_are_as_pinned(tmp_path: Path) -> None:
    assert sample_documents(tmp_path) == json.loads(EXPECTED.read_text())


def test_the_status_page_renders_the_pinned_document() -> None:
    """What the page reads of the document is there, with the types it expects."""
    document = json.loads(EXPECTED.read_text())["status_page"]
    page = render_status_page(document, SELECTIONS["status_page"])
    assert "<title>1 firing, 0 pending - metric-reader</title>" in page
    assert '<span class="state firing">firing</span>' in page
    assert '<span class="state nodata">no data</span>' in page
    assert "<b>1</b> with no data" in page  # heartbeat; not the quiet alert
    assert '<tr id="rule-HostDown">' in page  # in the table of inactive alerts
    assert "evaluated" in page and "in 988us" in page
    assert '<span class="state failing">1 failing</span> <a href="#rule-errors">' in page
    assert "<svg" in page  # the sparklines of the queues' series
    assert "HTTP 503: not ready" in page
    assert "1 group cannot keep up" in page


def test_a_services_document_adds_leader_election(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULES)
    (tmp_path / "alerts.yml").write_text(ALERTS)
    service = Service(load_settings({"CONFIG_FILE": str(config)}), PluginCatalog({}, []))

    async def status() -> dict[str, Any]:
        return json.loads(json.dumps(service.status(), allow_nan=False))

    document = anyio.run(status)
    assert list(document) == [
        "version",
        "time",
        "started_at",
        "ready",
        "targets",
        "groups",
        "rules",
        "truncated",
        "leader_election",
        "plugin_calls",
        "governor",
    ]
    assert document["leader_election"] == {"enabled": False, "acting": True}
    assert document["governor"] == {
        "paused": None,
        "breakers": [],
        "silences": {"active": 0, "pending": 0},
        "budgets": [],
        "storms": [],
    }
    assert document["plugin_calls"] == {
        "in_flight": 0,
        "queued": 0,
        "queue_limit": 10_000,
        "threads": 32,
    }
    assert [rule["name"] for rule in document["rules"]] == [
        "queues",
        "heartbeat",
        "errors",
        "HostDown",
    ]
    assert document["ready"] is False  # nothing fetched yet
