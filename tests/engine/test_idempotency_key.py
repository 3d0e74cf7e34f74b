"""``Event.idempotency_key``: the same for every try of one call, another for every other
call, so a plugin can tell a retry from a new call. Driven on a fake clock whose wall-clock
time is ``EPOCH + now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from metric_reader._config import RuleConfig, load_settings
from metric_reader._core import idempotency_key
from metric_reader._core._samples import Sample
from metric_reader._engine import (
    AlertingRule,
    EvaluationStep,
    Observation,
    OwedCall,
    Rule,
    make_rule,
)

MAIL = (("queue", "mail"),)
EPOCH = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
RULE = {
    "SCRAPE_URL": "http://127.0.0.1:9/metrics",
    "METRIC_NAME": "queue_depth",
    "THRESHOLD": ">50",
    "BACKOFF_DELAY": "10s",
    "POLLING_INTERVAL": "1s",
    "ACTION_PLUGIN": "pager",
}


def _config() -> RuleConfig:
    [config] = load_settings(RULE).rules
    return config


def _call(step: EvaluationStep, rule: Rule, at: float, value: float) -> list[OwedCall]:
    owed: list[OwedCall] = []
    step.evaluate(rule, Observation(at, [Sample(MAIL, value)]), owed.append)
    return owed


def _key(call: OwedCall, now: float, clock: float = 0.0) -> str:
    """The key the plugin is told at ``now``; ``clock``: where this process's monotonic
    clock started, against the wall clock."""
    wall = EPOCH + timedelta(seconds=now - clock)
    return call.event("pager", now, wall).idempotency_key


def test_every_try_of_a_call_has_its_key_and_every_other_call_another() -> None:
    step = EvaluationStep()
    rule = make_rule(_config())

    [fire] = _call(step, rule, 0.0, 95.0)
    first = _key(fire, 0.3)
    fire.plugins()
    fire.report("pager", ok=False)
    fire.settle(0.5)
    [retry] = _call(step, rule, 1.0, 95.0)
    assert _key(retry, 1.7) == first  # a retry, later: the same call
    retry.plugins()
    retry.report("pager", ok=True)
    retry.settle(2.0)

    [repeat] = _call(step, rule, 11.0, 95.0)
    assert repeat.action.kind == "repeat"
    second = _key(repeat, 11.0)
    assert second != first
    repeat.plugins()
    repeat.report("pager", ok=True)
    repeat.settle(11.5)
    [repeat_again] = _call(step, rule, 21.0, 95.0)
    third = _key(repeat_again, 21.0)
    assert third not in (first, second)  # one more success: the next repeat
    repeat_again.plugins()
    repeat_again.report("pager", ok=True)
    repeat_again.settle(21.5)

    [resolve] = _call(step, rule, 22.0, 10.0)
    assert resolve.action.kind == "resolve"
    assert _key(resolve, 22.0) not in (first, second, third)
    resolve.plugins()
    resolve.report("pager", ok=True)
    resolve.settle(22.5)
    [next_fire] = _call(step, rule, 23.0, 95.0)  # a new breach
    assert next_fire.action.kind == "fire"
    assert _key(next_fire, 23.0) != first


def test_the_rule_a_reload_makes_counts_breaches_again_but_never_meets_an_old_key() -> None:
    step = EvaluationStep()
    old = make_rule(_config())
    [fire] = _call(step, old, 0.0, 95.0)
    new = make_rule(_config())  # a reload that changed the rule: counted from 1 again
    [again] = _call(step, new, 5.0, 95.0)
    assert again.action.breach == fire.action.breach == 1
    assert _key(again, 5.0) != _key(fire, 0.0)


def test_a_restart_with_the_state_file_keeps_the_key_of_the_owed_call() -> None:
    step = EvaluationStep()
    rule = make_rule(_config())
    assert isinstance(rule, AlertingRule)
    [fire] = _call(step, rule, 100.0, 95.0)
    before = _key(fire, 100.2)
    fire.plugins()
    fire.report("pager", ok=False)
    fire.settle(100.5)

    # The new process's monotonic clock reads 7.0 when the old one would have read 130.0.
    shift = 7.0 - 130.0
    restarted = make_rule(_config())
    assert isinstance(restarted, AlertingRule)
    restarted.restore(rule.snapshot().retimed(lambda at: at + shift), 7.0)
    [retry] = _call(EvaluationStep(), restarted, 8.0, 95.0)
    assert retry.action.kind == "fire"
    assert _key(retry, 8.0, clock=shift) == before


def test_the_key_is_thirty_two_hex_digits_and_reads_every_part() -> None:
    parts = ("r", {"a": "1"}, "base", EPOCH, 1, "fire", 0)
    key = idempotency_key(*parts)  # type: ignore[arg-type]
    assert len(key) == 32 and int(key, 16) >= 0
    changed = [
        ("s", {"a": "1"}, "base", EPOCH, 1, "fire", 0),
        ("r", {"a": "2"}, "base", EPOCH, 1, "fire", 0),
        ("r", {"a": "1"}, "hard", EPOCH, 1, "fire", 0),
        ("r", {"a": "1"}, "base", EPOCH + timedelta(seconds=1), 1, "fire", 0),
        ("r", {"a": "1"}, "base", EPOCH, 2, "fire", 0),
        ("r", {"a": "1"}, "base", EPOCH, 1, "repeat", 0),
        ("r", {"a": "1"}, "base", EPOCH, 1, "fire", 1),
    ]
    keys = {idempotency_key(*other) for other in changed}  # type: ignore[arg-type]
    assert len(keys) == len(changed) and key not in keys
    # Within the second the breach started, the key holds: clocks read a few µs apart agree.
    nearly = EPOCH + timedelta(microseconds=5)
    assert idempotency_key("r", {"a": "1"}, "base", nearly, 1, "fire", 0) == key


def test_the_rule_a_reload_made_of_a_changed_one_has_keys_of_its_own() -> None:
    """Its breaches are counted from 1 again and may start in the same second as the old
    rule's: the digest of its configuration keeps the keys apart."""
    old = idempotency_key("r", {"a": "1"}, "base", EPOCH, 1, "fire", 0, "digest-of-old")
    new = idempotency_key("r", {"a": "1"}, "base", EPOCH, 1, "fire", 0, "digest-of-new")
    assert old != new


def test_a_retry_after_a_reload_that_kept_the_rule_keeps_its_key() -> None:
    """A reload that changes the rule's settings, not its identity (its name), keeps the
    rule and the breach: the retry of the failed fire is the same call."""
    step = EvaluationStep()
    rule = make_rule(_config())
    [fire] = _call(step, rule, 0.0, 95.0)
    before = _key(fire, 0.3)
    fire.plugins()
    fire.report("pager", ok=False)
    fire.settle(0.5)
    [changed] = load_settings({**RULE, "THRESHOLD": ">60", "BACKOFF_DELAY": "20s"}).rules
    step.reconfigure(rule, changed, 0.8, lambda call: None)
    [retry] = _call(step, rule, 1.0, 95.0)
    assert retry.action.kind == "fire"
    assert _key(retry, 1.2) == before
