"""A backtest verifies fixes as the service does (issue 26, point 6): the replay knows
whether the series recovered, so the report marks each fix that did not hold and each
give-up of the loop breaker."""

from __future__ import annotations

from pathlib import Path

from metric_reader._config import load_settings
from metric_reader._replay._backtest import RuleBacktest, Window, replay_histories
from metric_reader._replay._report import json_report, summary, text_report
from metric_reader._sources import RangeSeries, evaluation_times

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
STEP = 60.0
END = START + 10 * STEP
RULE = """
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1m"
[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
backoff_delay = "1m"
action_plugin = "restart_pod"
verify_within = "2m"
max_attempts = 2
escalate_plugin = "pager"
"""


def test_the_backtest_marks_fixes_that_did_not_hold_and_the_give_up(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULE)
    settings = load_settings({"CONFIG_FILE": str(config)})
    [rule] = settings.rules
    times = evaluation_times(START, END, STEP)
    # Breached all along, but for host "b", which recovers a minute after its fire.
    answer = [
        RangeSeries({"__name__": "disk_used", "host": "a"}, {round(t * 1000): 95.0 for t in times}),
        RangeSeries(
            {"__name__": "disk_used", "host": "b"},
            {round(t * 1000): 95.0 if t < START + STEP else 10.0 for t in times},
        ),
    ]
    [replayed] = replay_histories(settings, [(rule, answer, times)])
    results, span = [RuleBacktest(rule, STEP, "disk_used", replayed)], Window(START, END)
    assert summary(results) == (
        "would have acted 6 times on 2 series; 2 fixes did not hold, given up 1 time "
        "(1 rule backtested)"
    )
    text = text_report(results, span)
    fix = "(metric_name='disk_used', value=95, threshold='>90', duration="
    still = "still breached 2m0s after the fix (attempt"
    assert (
        '  disk_used{host="a"}\n'
        "    2026-01-01T00:00:00Z  firing, value 95\n"
        f"    2026-01-01T00:00:00Z  fire: restart_pod.execute{fix}0s)  (the fix did not hold)\n"
        f"    2026-01-01T00:02:00Z  unverified: pager.execute(kind='unverified'): {still} 1 of "
        "2 did not hold): the next repeat tries again\n"
        f"    2026-01-01T00:02:00Z  repeat: restart_pod.execute{fix}2m0s)  (the fix did not "
        "hold)\n"
        f"    2026-01-01T00:04:00Z  gave_up: pager.execute(kind='gave_up'): {still} 2 of 2 did "
        "not hold): giving up, no plugin is called for this breach until it ends\n"
        '  disk_used{host="b"}\n'
        "    2026-01-01T00:00:00Z  firing, value 95\n"
        f"    2026-01-01T00:00:00Z  fire: restart_pod.execute{fix}0s)  (the fix held)\n"
    ) in text
    [document] = json_report(results, span)["rules"]
    verified = [
        (series["labels"]["host"], call["kind"], call["verified"])
        for series in document["series"]
        for call in series["calls"]
    ]
    assert verified == [
        ("a", "fire", False),
        ("a", "unverified", None),
        ("a", "repeat", False),
        ("a", "gave_up", None),
        ("b", "fire", True),
        ("b", "resolve", None),
    ]
