"""The debounce window over a restart with ``STATE_FILE``: saved with the level, so a
series that breached 2 of its last 4 evaluations fires at its next breach after the
restart; a file written before the window was saved is read too, its evaluations counted
as the saved state says."""

from __future__ import annotations

import json
from typing import Any

from metric_reader._cluster._persist import restore, snapshot
from metric_reader._cluster._state_format import parse
from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import Rule, make_rule

ENV = {
    "SCRAPE_URL": "http://127.0.0.1:9/metrics",
    "METRIC_NAME": "jobs_waiting",
    "THRESHOLD": ">80",
    "POLLING_INTERVAL": "1s",
    "BREACH_COUNT": "3",
    "BREACH_WINDOW": "5",
}
WALL = 1_700_000_000.0


def _rule() -> Rule:
    [config] = load_settings(ENV).rules
    return make_rule(config)


def _poll(rule: Rule, t: float, value: float) -> list[str]:
    kinds = []
    for action in rule.evaluate(t, [Sample((), value)]):
        kinds.append(action.kind)
        rule.finish(t, action, True)
    return kinds


def _saved(values: list[float]) -> dict[str, Any]:
    rule = _rule()
    for t, value in enumerate(values):
        assert _poll(rule, float(t), value) == []
    doc = snapshot([rule], float(len(values)), WALL + len(values))
    return dict(json.loads(json.dumps(doc, allow_nan=False)))


def _restored(doc: dict[str, Any]) -> Rule:
    rule = _rule()
    restore([rule], doc, 100.0, WALL + 10)
    return rule


def test_the_window_is_saved_and_the_next_breach_after_a_restart_fires() -> None:
    doc = _saved([90, 10, 90, 10])
    [series] = doc["rules"]["jobs_waiting"]["series"]
    assert series["base"]["breaches"] == [False, True, False, True, False]
    assert _poll(_restored(doc), 100.0, 90) == ["fire"]


def test_a_file_without_the_window_counts_the_evaluations_as_its_ok_state_says() -> None:
    doc = _saved([90, 90, 10, 10])  # 2 of 4: OK, the next breach fires
    [series] = doc["rules"]["jobs_waiting"]["series"]
    del series["base"]["breaches"]  # as an earlier version wrote it: OK, none counted
    rule = _restored(doc)
    assert _poll(rule, 100.0, 90) == []
    assert _poll(rule, 101.0, 90) == []
    assert _poll(rule, 102.0, 90) == ["fire"]


def test_a_window_that_is_not_a_list_of_booleans_costs_only_its_series() -> None:
    doc = _saved([90])
    doc["rules"]["jobs_waiting"]["series"][0]["base"]["breaches"] = [1, 0]
    saved = parse(doc)
    assert saved.rules["jobs_waiting"].state.series == ()
    [note] = saved.notes
    assert "base.breaches: expected a list of true and false, got [1, 0]" in note
