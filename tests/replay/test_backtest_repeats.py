"""A backtest repeats as the service does: with escalating repeats (``backoff_multiplier``,
``backoff_max``) the repeats of one breach come 1, 2, 4 and then every 4 minutes apart."""

from __future__ import annotations

from pathlib import Path

from metric_reader._config import load_settings
from metric_reader._replay._backtest import replay_histories
from metric_reader._sources import RangeSeries, evaluation_times

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
STEP = 60.0
RULE = """
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1m"

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
backoff_delay = "1m"
backoff_multiplier = 2
backoff_max = "4m"
action_plugin = "restart_pod"
"""


def test_a_backtest_repeats_at_1_2_4_and_then_every_4_minutes(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULE)
    settings = load_settings({"CONFIG_FILE": str(config)})
    [rule] = settings.rules
    times = evaluation_times(START, START + 20 * STEP, STEP)
    answer = [RangeSeries({"__name__": "disk_used"}, {round(at * 1000): 95.0 for at in times})]
    [replayed] = replay_histories(settings, [(rule, answer, times)])
    assert replayed is not None
    calls = [(round((call.at - START) / 60), call.event.kind) for call in replayed.calls]
    assert calls == [
        (0, "fire"),
        (1, "repeat"),
        (3, "repeat"),
        (7, "repeat"),
        (11, "repeat"),
        (15, "repeat"),
        (19, "repeat"),
    ]
