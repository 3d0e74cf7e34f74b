"""Ask before acting end to end: ``python -m metric_reader`` reading a real Prometheus in
``MODE=approve``. The approval request reaches ``APPROVAL_PLUGIN``, stays pending across a
restart (the state file), and two approvals ``POST``-ed at once run the fix exactly once.

What a user sees: the plugin calls (the recording plugins note each), ``/api/approvals``,
the answers' statuses and ``metric-reader history``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import (
    EVENT_TIMEOUT,
    PrometheusProxy,
    PrometheusStack,
    RecordingPlugins,
    ServiceFactory,
    _http_get,
)
from .test_silences_and_pause import _env, _history, _polls, _set, _started

TOKEN = "approve-me-0123456789"


def _approvals(env: dict[str, str]) -> dict[str, Any]:
    status, body = _http_get(f"http://{env['LISTEN_ADDRESS']}/api/approvals")
    assert status == 200, body
    listed: dict[str, Any] = json.loads(body)
    return listed


def _post(url: str, statuses: list[int]) -> None:
    request = urllib.request.Request(
        url, data=b"by=it", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            statuses.append(response.status)
    except urllib.error.HTTPError as exc:
        statuses.append(exc.code)


def test_a_pending_request_survives_a_restart_and_two_approvals_run_the_fix_once(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    metric = "approved_queue_depth"
    _set(prometheus_stack, metric, 10)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    env = {
        **_env(prometheus_proxy, metric, recording_plugin_dir, tmp_path),
        "MODE": "approve",
        "APPROVAL_PLUGIN": "recorder_hard",
        "APPROVAL_TOKEN_FILE": str(token),
        "EXTERNAL_URL": "https://mr.example.com",
    }
    svc = _started(service, env, recording_plugin_dir)
    _set(prometheus_stack, metric, 90)
    svc.wait_until(lambda: recording_plugin_dir.records(), EVENT_TIMEOUT, "the approval request")
    [asked] = recording_plugin_dir.records()
    assert (asked["plugin"], asked["kind"]) == ("recorder_hard", "approval_request")
    request_id = asked["annotations"]["approval_id"]
    assert asked["annotations"]["approval_url"] == f"https://mr.example.com/#approval-{request_id}"

    assert svc.stop() == 0  # pending across a restart: kept in the state file
    svc = _started(service, env, recording_plugin_dir)
    _polls(svc, prometheus_proxy, 3)
    [pending] = _approvals(env)["pending"]
    assert (pending["id"], pending["kind"], pending["plugin"]) == (request_id, "fire", "recorder")
    assert len(recording_plugin_dir.records()) == 1, "asked again, or the fix ran unapproved"

    url = f"http://{env['LISTEN_ADDRESS']}/api/approvals/{request_id}/approve"
    statuses: list[int] = []
    posts = [threading.Thread(target=_post, args=(url, statuses)) for _ in range(2)]
    for post in posts:
        post.start()
    for post in posts:
        post.join(10)
    assert sorted(statuses) == [200, 409]

    svc.wait_until(
        lambda: len(recording_plugin_dir.records()) == 2, EVENT_TIMEOUT, "the approved fix"
    )
    _polls(svc, prometheus_proxy, 4)
    calls = [(r["plugin"], r["kind"]) for r in recording_plugin_dir.records()]
    assert calls == [("recorder_hard", "approval_request"), ("recorder", "fire")]
    assert _approvals(env)["recent"][0]["state"] == "ran"
    assert _history(env) == [
        ("fire", "approval_requested", ""),
        ("fire", "suppressed", "approval"),
        ("approval_request", "executed", ""),
        ("fire", "suppressed", "approval"),  # once per process
        ("fire", "approved", ""),
        ("fire", "executed", ""),
    ]


def test_an_unanswered_request_expires_and_one_whose_breach_ends_is_withdrawn(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    """Neither runs: an approval that never comes within APPROVAL_TIMEOUT expires; a breach
    that ends before anyone answers withdraws its request."""
    metric = "expiring_queue_depth"
    for queue in ("a", "b"):
        prometheus_stack.push(metric, 10, {"queue": queue})
    prometheus_stack.wait_visible(f"count({metric} < 50)", 2.0)
    env = {
        **_env(prometheus_proxy, metric, recording_plugin_dir, tmp_path),
        "MODE": "approve",
        "APPROVAL_PLUGIN": "recorder_hard",
        "APPROVAL_TIMEOUT": "2s",
    }
    svc = _started(service, env, recording_plugin_dir)

    def asked() -> list[str]:
        return [r["labels"]["queue"] for r in recording_plugin_dir.records()]

    prometheus_stack.push(metric, 90, {"queue": "a"})  # never answered: expires
    svc.wait_until(lambda: asked() == ["a"], EVENT_TIMEOUT, "the request for queue a")
    prometheus_stack.push(metric, 90, {"queue": "b"})
    svc.wait_until(lambda: asked() == ["a", "b"], EVENT_TIMEOUT, "the request for queue b")
    prometheus_stack.push(metric, 10, {"queue": "b"})  # its breach ends first: withdrawn
    svc.wait_until(
        lambda: {"expired", "withdrawn"} <= {outcome for _, outcome, _ in _history(env)},
        EVENT_TIMEOUT,
        "one request expired and the other withdrawn",
    )
    _polls(svc, prometheus_proxy, 4)
    assert [(r["plugin"], r["kind"]) for r in recording_plugin_dir.records()] == [
        ("recorder_hard", "approval_request")
    ] * 2  # no fix ran
    outcomes = [outcome for _, outcome, _ in _history(env)]
    assert outcomes.count("expired") == 1 and outcomes.count("withdrawn") == 1
    assert "approved" not in outcomes and "executed" in outcomes  # only the two requests ran
