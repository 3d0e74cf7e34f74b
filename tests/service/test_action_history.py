"""The service's action history: where it is kept, what ``record_action`` does with an
entry (a row and a count), and a dry run writing nothing."""

from __future__ import annotations

import time
from pathlib import Path

from metric_reader._actions import discover_plugins
from metric_reader._cluster import ActionHistory
from metric_reader._config import load_settings
from metric_reader._core import HistoryEntry
from metric_reader._service import Service
from metric_reader._service._history import record_action


def test_an_action_recorded_is_kept_beside_the_state_file_and_counted(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    settings = load_settings({"METRIC_NAME": "queue_depth", "STATE_FILE": str(state)})
    service = Service(settings, discover_plugins(None))
    entry = HistoryEntry(time.time(), "queue_depth", {"q": "mail"}, "", "fire", "suppressed",
                         "paused", "paused by ops: deploy")  # fmt: skip
    record_action(service.history, service.metrics, entry)
    record_action(service.history, service.metrics, entry)
    labels = {"rule": "queue_depth", "plugin": "", "outcome": "suppressed"}
    assert service.registry.get_sample_value("metric_reader_actions_total", labels) == 2
    assert service.actions.query() == [entry, entry]
    service.history.close()
    saved = ActionHistory.open_read_only(tmp_path / "state.json.history.sqlite")
    assert saved.query() == [entry, entry]
    saved.close()


def test_a_dry_run_keeps_its_history_in_memory(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = {"METRIC_NAME": "queue_depth", "STATE_FILE": str(state), "DRY_RUN": "true"}
    settings = load_settings(env)
    service = Service(settings, discover_plugins(None))
    entry = HistoryEntry(time.time(), "queue_depth", {}, "", "fire", "executed")
    record_action(service.history, service.metrics, entry)
    assert service.actions.query() == [entry]
    assert list(tmp_path.iterdir()) == []
