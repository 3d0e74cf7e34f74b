"""``verify_query``: a fix judged by a query of its own instead of the rule's condition, on
a fake clock (the replay evaluates through the same step as the service). The query's
answer at each evaluation comes with the observation, as the service reads it."""

from __future__ import annotations

from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, Replayer

QUERY = 'kube_deployment_status_replicas_unavailable{deployment=~"x|y"} > 0'
RULE = {
    "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9",
    "METRIC_NAME": "worker_last_progress_age_seconds",
    "THRESHOLD": ">600",
    "BACKOFF_DELAY": "1m",
    "POLLING_INTERVAL": "1s",
    "ACTION_PLUGIN": "restart",
    "VERIFY_WITHIN": "2s",
    "VERIFY_QUERY": QUERY,
    "ESCALATE_PLUGIN": "pager",
}
X = (("deployment", "x"),)
UNHEALTHY_X = [Sample((("__name__", "kube_deployment_status_replicas_unavailable"), *X), 1.0)]
UNHEALTHY_Y = [Sample((("deployment", "y"),), 2.0)]  # another alert's: says nothing of x


def _run(values: list[float], answers: list[list[Sample] | None]) -> Replayer:
    [config] = load_settings(RULE).rules
    replayer = Replayer(config)
    for at, (value, answer) in enumerate(zip(values, answers, strict=True)):
        needed = EvaluationStep.verify_queries(replayer.rule)
        verify = {query: answer for query in needed}
        replayer.step(Observation(float(at), [Sample(X, value)], verify))
    return replayer


def test_a_fix_that_shows_elsewhere_holds_while_the_rules_own_series_still_breaches() -> None:
    answers: list[list[Sample] | None] = [[], UNHEALTHY_X + UNHEALTHY_Y, UNHEALTHY_Y]
    answers += [UNHEALTHY_X, UNHEALTHY_X, UNHEALTHY_X]
    replayer = _run([900.0] * 6, answers)
    result = replayer.result
    calls = [(call.at, call.plugin, call.event.kind, call.verified) for call in result.calls]
    # Held at 2: no series of the query for deployment x (y's is another alert's), though
    # the worker's age still breaches; what the query says later changes nothing.
    assert calls == [(0.0, "restart", "fire", True)]
    assert [(row.kind, row.verified) for row in result.history] == [("fire", True)]
    assert EvaluationStep.verify_queries(replayer.rule) == frozenset()  # nothing more to read


def test_a_fix_whose_query_stays_unhealthy_did_not_hold_though_its_condition_ended() -> None:
    # The age is back under the threshold at 1, but the deployment is still unavailable:
    # at the deadline (2) the query's read failed, which judges nothing; at 3 it did not.
    answers: list[list[Sample] | None] = [[], UNHEALTHY_X, None, UNHEALTHY_X, UNHEALTHY_X]
    replayer = _run([900.0, 10.0, 10.0, 10.0, 10.0], answers)
    result = replayer.result
    calls = [(call.at, call.plugin, call.event.kind, call.verified) for call in result.calls]
    assert calls == [
        (0.0, "restart", "fire", False),
        (1.0, "restart", "resolve", None),
        (3.0, "pager", "unverified", None),
    ]
    [unverified] = [call.event for call in result.calls if call.plugin == "pager"]
    assert unverified.labels == {"deployment": "x"}
    assert unverified.annotations["verification"].startswith(
        f"verify_query {QUERY} still unhealthy 2s after the fix (attempt 1 of 3 did not hold)"
    )


def test_a_fix_whose_query_cannot_be_read_is_judged_by_the_condition_after_a_grace() -> None:
    """A verify_query that keeps failing must not hold the fix (and the level's repeats)
    pending for ever: VERIFY_READ_GRACE after the deadline, the rule's condition judges."""
    from metric_reader._engine._state import VERIFY_READ_GRACE

    steps = 2 + int(VERIFY_READ_GRACE) + 2
    replayer = _run([900.0] * steps, [[]] + [None] * (steps - 1))
    kinds = [(call.at, call.event.kind) for call in replayer.result.calls]
    unverified = [at for at, kind in kinds if kind == "unverified"]
    assert unverified == [2.0 + VERIFY_READ_GRACE]  # the deadline was at 2
