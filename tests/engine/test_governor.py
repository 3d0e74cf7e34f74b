"""The governor, on a fake clock, through the evaluation step the service and the replay
share: what of the calls rules owe may run, and the history entry each becomes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from metric_reader._config import RuleConfig, Settings, load_settings
from metric_reader._core import HistoryEntry, LabelMatcher, MatchOp, Sample
from metric_reader._engine import (
    Call,
    EvaluationStep,
    Governor,
    Observation,
    OwedCall,
    Rule,
    StormNotice,
    make_rule,
)

RULE = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
backoff_delay = "1h"
action_plugin = "grow"
"""


def _settings(tmp_path: Path, extra: str = "", rule: str = "") -> Settings:
    path = tmp_path / "rules.toml"
    path.write_text(RULE + rule + "\n" + extra)
    return load_settings({"CONFIG_FILE": str(path)})


class Harness:
    """A step with a governor, evaluating one rule over several series; every call handed
    out is run at once and succeeds unless ``fails`` says otherwise."""

    def __init__(self, settings: Settings, fails: Callable[[str | None], bool] = lambda p: False):
        self.history: list[HistoryEntry] = []
        self.governor = Governor(record=self.history.append, quiet=True)
        self.rule: Rule = make_rule(settings.rules[0])
        self.rule.quiet = True
        self.governor.configure(
            settings.limits, settings.plugin_guards, [self.rule], settings.time_intervals
        )
        self.step = EvaluationStep(settings.routes, self.governor)
        self.fails = fails
        self.called: list[tuple[float, str, str | None, str]] = []
        """(time, series, plugin, kind) of each plugin call made."""

    def tick(self, at: float, values: dict[str, float]) -> list[Call]:
        handed: list[Call] = []
        samples = [Sample((("disk", name),), value) for name, value in values.items()]
        self.step.evaluate(self.rule, Observation(at, samples), handed.append)
        for call in handed:
            for plugin in call.plugins():
                series = dict(call.action.labels)["disk"] if isinstance(call, OwedCall) else "*"
                kind = call.event(plugin, at).kind
                self.called.append((at, series, plugin, kind))
                call.report(plugin, not self.fails(plugin))
            call.settle(at)
        return handed

    def outcomes(self) -> list[tuple[str, str, str]]:
        return [(dict(e.series).get("disk", "*"), e.outcome, e.reason) for e in self.history]


def _backoff(settings: Settings, seconds: float) -> RuleConfig:
    rule = settings.rules[0]
    assert rule.base is not None
    return dataclasses.replace(rule, base=dataclasses.replace(rule.base, backoff=seconds))


def _full(n: int, value: float = 95.0) -> dict[str, float]:
    return {f"d{i:02}": value for i in range(n)}


def test_a_global_budget_lets_that_many_act_and_the_others_when_it_frees(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path, '[limits]\nmax_actions = 3\nper = "10s"\n'))
    h.tick(0.0, _full(10))
    assert [series for _, series, _, _ in h.called] == ["d00", "d01", "d02"]
    suppressed = [e for e in h.history if e.outcome == "suppressed"]
    assert [dict(e.series)["disk"] for e in suppressed] == [f"d{i:02}" for i in range(3, 10)]
    assert {e.reason for e in suppressed} == {"budget"}
    assert "budget of global: 3 per 10s" in suppressed[0].detail

    for at in range(1, 10):  # held back at every evaluation, recorded once
        h.tick(float(at), _full(10))
    assert len(h.called) == 3
    assert len(h.history) == 10

    h.tick(10.0, _full(10))  # the first three calls aged out: three more act
    assert [series for at, series, _, _ in h.called if at == 10.0] == ["d03", "d04", "d05"]
    assert [e.outcome for e in h.history[-3:]] == ["executed"] * 3


def test_resolves_are_never_limited_by_a_budget(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path, '[limits]\nmax_actions = 1\nper = "1h"\n'))
    h.tick(0.0, _full(2))
    h.tick(1.0, _full(2, 10.0))  # both recover: only d00 had acted
    assert [(s, k) for _, s, _, k in h.called] == [("d00", "fire"), ("d00", "resolve")]


def test_a_rule_and_a_plugin_budget_each_cap_their_own_calls(tmp_path: Path) -> None:
    h = Harness(
        _settings(
            tmp_path,
            '[plugins.grow]\nmax_actions = 2\nper = "1h"\n',
            rule='max_actions = 5\nper = "1h"\n',
        )
    )
    h.tick(0.0, _full(4))
    assert len(h.called) == 2
    held = [e for e in h.history if e.outcome == "suppressed"]
    assert [e.detail.split(";")[0] for e in held] == ["budget of plugin grow: 2 per 1h0m0s"] * 2


def test_a_failing_plugin_opens_its_breaker_then_one_trial_call_decides(tmp_path: Path) -> None:
    breaker = (
        '[plugins.grow]\nbreaker_failures = 3\nbreaker_window = "1m"\nbreaker_cooldown = "10s"\n'
    )
    failing = {"on": True}
    h = Harness(_settings(tmp_path, breaker), fails=lambda plugin: failing["on"])
    h.tick(0.0, _full(3))  # three failed calls: open
    assert h.governor.breakers["grow"].state == "open"
    for at in range(1, 10):  # retries owed, none made during the cooldown
        h.tick(float(at), _full(3))
    assert len(h.called) == 3
    assert {e.reason for e in h.history if e.outcome == "suppressed"} == {"breaker"}

    h.tick(10.0, _full(3))  # cooldown over: one trial only, which fails: open again
    assert len(h.called) == 4
    assert h.governor.breakers["grow"].state == "open"
    failing["on"] = False
    h.tick(20.0, _full(3))  # the next trial succeeds: closed
    assert h.governor.breakers["grow"].state == "closed"
    h.tick(21.0, _full(3))  # and the other two get their fire
    assert sorted(s for at, s, _, _ in h.called if at >= 20.0) == ["d00", "d01", "d02"]


def test_a_storm_makes_one_storm_call_and_no_per_series_call_until_it_is_over(
    tmp_path: Path,
) -> None:
    h = Harness(_settings(tmp_path, rule='max_breaching = 5\nstorm_plugin = "pager"\n'))
    handed = h.tick(0.0, _full(12))
    [storm] = [call for call in handed if isinstance(call, StormNotice)]
    event = storm.event("pager", 0.0)
    assert (event.kind, event.value, len(event.series)) == ("storm", 12.0, 12)
    assert h.called == [(0.0, "*", "pager", "storm")]
    h.tick(1.0, _full(12))
    assert len(h.called) == 1  # once per storm

    calm = {**_full(12, 10.0), **_full(4)}  # d00..d03 still breached, 8 recovered
    h.tick(2.0, calm)
    assert sorted(s for at, s, _, _ in h.called if at == 2.0) == ["d00", "d01", "d02", "d03"]
    assert {e.reason for e in h.history if e.outcome == "suppressed"} == {"storm"}


def test_a_percentage_limit_counts_the_rule_s_series(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path, rule='max_breaching = "20%"\n'))
    h.tick(0.0, {**_full(10, 10.0), "d00": 95.0, "d01": 95.0})  # 2 of 10: not more than 20%
    assert len(h.called) == 2
    h.tick(1.0, {**_full(10, 10.0), "d00": 95.0, "d01": 95.0, "d02": 95.0})
    assert [k for _, _, _, k in h.called[2:]] == ["storm"]


MUTE = """\
[[time_intervals]]
name = "night"
[[time_intervals.time_intervals]]
times = [{start_time = "00:00", end_time = "00:01"}]
"""


def test_a_mute_window_holds_calls_back_and_the_fire_comes_when_it_ends(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path, MUTE, rule='mute_time_intervals = ["night"]\n'))
    h.tick(0.0, _full(1))  # 1970-01-01 00:00:00 UTC: inside the window
    h.tick(59.0, _full(1))
    assert h.called == []
    assert h.outcomes() == [("d00", "suppressed", "muted")]
    assert h.history[0].detail == "mute time interval night"
    h.tick(60.0, _full(1))  # 00:01: the window ended
    assert h.called == [(60.0, "d00", "grow", "fire")]


def test_an_active_silence_holds_calls_back_until_it_is_expired(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    matcher = LabelMatcher("alertname", MatchOp.EQ, "disk")
    silence = h.governor.silences.put((matcher,), 0.0, 3600.0, "alice", "migration", 0.0)
    h.tick(1.0, _full(1))
    assert h.called == []
    assert h.outcomes() == [("d00", "suppressed", "silenced")]
    assert silence.id in h.history[0].detail
    h.governor.silences.expire(silence.id, 2.0)
    h.tick(3.0, _full(1))
    assert h.called == [(3.0, "d00", "grow", "fire")]


def test_while_paused_nothing_is_called_and_owed_calls_run_on_resume(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    h.governor.set_pause(0.0, None, "maintenance")
    h.tick(0.0, _full(2))
    h.tick(1.0, _full(2))
    assert h.called == []
    assert h.outcomes() == [("d00", "suppressed", "paused"), ("d01", "suppressed", "paused")]
    h.governor.resume(2.0)
    h.tick(2.0, _full(2))
    assert [s for _, s, _, _ in h.called] == ["d00", "d01"]


def test_a_pause_with_an_end_ends_by_itself(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    h.governor.set_pause(0.0, 5.0, "deploy")
    h.tick(4.0, _full(1))
    h.tick(5.0, _full(1))
    assert h.called == [(5.0, "d00", "grow", "fire")]


def test_shadow_mode_records_would_have_run_and_goes_on_as_if_it_succeeded(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, rule='mode = "shadow"\n')
    h = Harness(dataclasses.replace(settings, rules=(_backoff(settings, 10.0),)))
    h.tick(0.0, _full(1))
    h.tick(10.0, _full(1))  # the repeat comes as after a successful fire
    h.tick(11.0, _full(1, 10.0))
    assert h.called == []
    assert [(e.kind, e.outcome, e.plugin) for e in h.history] == [
        ("fire", "shadow", "grow"),
        ("repeat", "shadow", "grow"),
        ("resolve", "shadow", "grow"),
    ]


def test_every_call_made_is_in_the_history_with_its_key_and_attempt(tmp_path: Path) -> None:
    failing = {"on": True}
    h = Harness(_settings(tmp_path), fails=lambda plugin: failing["on"])
    h.tick(0.0, _full(1))
    failing["on"] = False
    h.tick(1.0, _full(1))  # the retry, one polling interval later
    first, retry = h.history
    assert (first.outcome, first.attempt, retry.outcome, retry.attempt) == (
        "failed",
        1,
        "executed",
        2,
    )
    assert first.idempotency_key == retry.idempotency_key != ""
    assert (retry.rule, retry.plugin, retry.threshold, retry.value) == ("disk", "grow", ">90", 95.0)


def test_a_trial_call_that_never_reports_does_not_hold_the_plugin_forever() -> None:
    from metric_reader._config import BreakerConfig
    from metric_reader._engine import Breaker

    breaker = Breaker("grow", BreakerConfig(failures=1, window=60.0, cooldown=10.0))
    breaker.record(False, 0.0)
    assert breaker.allows(5.0) == (False, None)
    assert breaker.allows(10.0) == (True, "half-open: one trial call")  # its outcome is lost
    assert breaker.allows(15.0) == (False, None)  # one trial at a time
    assert breaker.allows(20.0) == (True, None)  # a cooldown later: another trial
