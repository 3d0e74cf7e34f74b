"""Ask before acting (``mode = "approve"``), on a fake clock, through the evaluation step the
service and the replay share: the request, its notice, and the call run exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metric_reader._config import Settings, load_settings
from metric_reader._core import HistoryEntry, Sample
from metric_reader._engine import (
    ApprovalNotice,
    Call,
    EvaluationStep,
    Governor,
    Observation,
    Rule,
    make_rule,
)

RULE = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"
external_url = "https://mr.example.com"

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
backoff_delay = "1h"
action_plugin = "grow"
mode = "approve"
approval_plugin = "chat"
approval_timeout = "1m"
"""


def _settings(tmp_path: Path) -> Settings:
    path = tmp_path / "rules.toml"
    path.write_text(RULE)
    return load_settings({"CONFIG_FILE": str(path)})


class Harness:
    """One rule over one series; every call handed out runs at once and succeeds."""

    def __init__(self, settings: Settings, rule: Rule | None = None) -> None:
        self.history: list[HistoryEntry] = []
        self.governor = Governor(record=self.history.append, quiet=True)
        self.rule = rule if rule is not None else make_rule(settings.rules[0])
        self.rule.quiet = True
        self.governor.configure(None, {}, [self.rule], {})
        self.step = EvaluationStep((), self.governor)
        self.called: list[tuple[float, str | None, str]] = []
        """(time, plugin, kind) of each plugin call made."""
        self.notices: list[ApprovalNotice] = []

    def tick(self, at: float, value: float) -> None:
        handed: list[Call] = []
        samples = [Sample((("disk", "d1"),), value)]
        self.step.evaluate(self.rule, Observation(at, samples), handed.append)
        for call in handed:
            if isinstance(call, ApprovalNotice):
                self.notices.append(call)
            for plugin in call.plugins():
                self.called.append((at, plugin, call.event(plugin, at).kind))
                call.report(plugin, True)
            call.settle(at)

    def steps(self) -> list[tuple[str, str, str]]:
        return [(e.kind, e.outcome, e.reason) for e in self.history]

    def only_request(self) -> str:
        [request] = list(self.governor.approvals)
        return request.id


def test_an_approved_call_runs_once_however_many_approvals_come(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    h.tick(0.0, 95.0)
    request_id = h.only_request()
    # The request is told once to the approval plugin; the fix is held, owed still.
    assert h.called == [(0.0, "chat", "approval_request")]
    event = h.notices[0].event("chat", 0.0)
    assert event.annotations["approval_id"] == request_id
    assert event.annotations["approval_url"] == f"https://mr.example.com/#approval-{request_id}"
    assert f"metric-reader approve {request_id}" in event.annotations["summary"]
    assert event.labels == {"disk": "d1"}  # as the fix's own event
    h.tick(1.0, 95.0)
    h.tick(2.0, 95.0)
    assert len(h.called) == 1  # asked once, not at every evaluation
    assert h.steps() == [
        ("fire", "approval_requested", ""),
        ("fire", "suppressed", "approval"),
        ("approval_request", "executed", ""),
    ]

    h.governor.approvals.decide(request_id, True, 2.5, by="ops")
    with pytest.raises(ValueError, match="approved, not pending"):
        h.governor.approvals.decide(request_id, True, 2.6, by="someone else")
    for at in (3.0, 4.0, 5.0):
        h.tick(at, 95.0)
    assert h.called[1:] == [(3.0, "grow", "fire")]  # once, at the next evaluation
    assert h.steps()[3:] == [("fire", "approved", ""), ("fire", "executed", "")]
    assert h.governor.approvals.get(request_id).state == "ran"  # type: ignore[union-attr]

    h.tick(6.0, 10.0)  # the resolve of a fix that ran needs no approval
    assert h.called[-1] == (6.0, "grow", "resolve")
    assert len(list(h.governor.approvals)) == 1


def test_a_request_not_answered_in_time_expires_and_never_runs(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    h.tick(0.0, 95.0)
    request_id = h.only_request()
    h.tick(59.0, 95.0)
    h.tick(60.0, 95.0)  # approval_timeout 1m
    assert h.steps()[-1] == ("fire", "expired", "")
    with pytest.raises(ValueError, match="expired, not pending"):
        h.governor.approvals.decide(request_id, True, 61.0)
    for at in range(61, 200, 10):
        h.tick(float(at), 95.0)
    assert [kind for _, _, kind in h.called] == ["approval_request"]
    assert len(list(h.governor.approvals)) == 1  # not asked again in this breach


def test_a_request_is_withdrawn_when_the_breach_ends_first(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    h.tick(0.0, 95.0)
    request_id = h.only_request()
    h.tick(1.0, 10.0)
    assert h.steps()[-1] == ("fire", "withdrawn", "")
    with pytest.raises(ValueError, match="withdrawn, not pending"):
        h.governor.approvals.decide(request_id, True, 2.0)
    h.tick(2.0, 10.0)
    assert [kind for _, _, kind in h.called] == ["approval_request"]  # no fix, no resolve


def test_a_denied_call_is_not_made_in_that_breach_and_the_next_breach_asks_again(
    tmp_path: Path,
) -> None:
    h = Harness(_settings(tmp_path))
    h.tick(0.0, 95.0)
    h.governor.approvals.decide(h.only_request(), False, 1.0)
    for at in range(2, 10):
        h.tick(float(at), 95.0)
    assert [kind for _, _, kind in h.called] == ["approval_request"]
    assert ("fire", "denied", "") in h.steps()
    h.tick(10.0, 10.0)
    h.tick(11.0, 95.0)  # a new breach: a new request
    assert [kind for _, _, kind in h.called] == ["approval_request"] * 2
    assert [r.state for r in h.governor.approvals] == ["denied", "pending"]


def test_a_pending_request_survives_export_and_restore_and_runs_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = Harness(settings)
    first.tick(0.0, 95.0)
    request_id = first.only_request()
    saved = json.loads(json.dumps(first.governor.export()))

    second = Harness(settings, rule=first.rule)  # the rule's own state is the state file's
    assert second.governor.restore(saved, 1.0) == []
    second.governor.approvals.decide(request_id, True, 1.5)
    second.tick(2.0, 95.0)
    second.tick(3.0, 95.0)
    assert second.called == [(2.0, "grow", "fire")]

    # A follower takes the leader's state: the request ran, and no approval reopens it.
    third = Harness(settings, rule=first.rule)
    third.governor.adopt(json.loads(json.dumps(second.governor.export())), 3.5)
    assert third.governor.approvals.get(request_id).state == "ran"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="approved and run, not pending"):
        third.governor.approvals.decide(request_id, True, 3.6)
