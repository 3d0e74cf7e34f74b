"""A backtest judges fixes by a rule's ``verify_query`` as the service does: the query's
answer over the window (read with ``query_range``) is given to each evaluation at its
time, so a fix that shows elsewhere is marked held though the rule's series still breaches."""

from __future__ import annotations

from pathlib import Path

from metric_reader._config import load_settings
from metric_reader._replay._backtest import replay_histories, verify_queries
from metric_reader._sources import RangeSeries, evaluation_times

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
STEP = 60.0
RULE = """
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1m"
[[rules]]
name = "stuck"
metric_name = "worker_age_seconds"
threshold = ">600"
backoff_delay = "10m"
action_plugin = "restart_pod"
verify_within = "2m"
verify_query = "replicas_unavailable > 0"
escalate_plugin = "pager"
"""


def test_the_backtest_judges_fixes_by_the_verify_query_over_the_window(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULE)
    settings = load_settings({"CONFIG_FILE": str(config)})
    [rule] = settings.rules
    assert verify_queries(rule, settings.routes) == ["replicas_unavailable > 0"]
    times = evaluation_times(START, START + 4 * STEP, STEP)
    ms = [round(t * 1000) for t in times]
    answer = [  # both workers stuck all along
        RangeSeries({"__name__": "worker_age_seconds", "deployment": d}, dict.fromkeys(ms, 900.0))
        for d in ("x", "y")
    ]
    # x is available again from the second minute, y never.
    unavailable = [
        RangeSeries({"deployment": "x"}, {ms[0]: 1.0}),
        RangeSeries({"deployment": "y"}, dict.fromkeys(ms, 1.0)),
    ]
    [replayed] = replay_histories(
        settings, [(rule, answer, times)], [{"replicas_unavailable > 0": unavailable}]
    )
    calls = [
        (call.at - START, call.plugin, call.event.kind, dict(call.series), call.verified)
        for call in replayed.calls
    ]
    assert calls == [
        (0.0, "restart_pod", "fire", {"deployment": "x"}, True),
        (0.0, "restart_pod", "fire", {"deployment": "y"}, False),
        (120.0, "pager", "unverified", {"deployment": "y"}, None),
    ]
