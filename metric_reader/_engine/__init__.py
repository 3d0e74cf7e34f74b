"""The rules and their state machines: pure code, every call given the time ``now``.

What the other layers use of the engine is exported here; the modules behind it are
private.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._alerting import AlertingRule
    from ._approvals import ApprovalNotice, ApprovalRequest, Approvals
    from ._breaker import Breaker
    from ._budget import Budget
    from ._fix import PendingFix
    from ._governor import Governor, Pause, Verdict
    from ._logging_rule import LoggingRule
    from ._nodata import NO_DATA_POLLS, NoData, tracks_no_data
    from ._recent import RECENT_SERIES_PER_RULE, recent_length, recent_shares, recent_window
    from ._replay import Replay, ReplayedCall, Replayer, SeriesHistory, Step, replay
    from ._rule import ActiveAlert, Rule, format_series, generator_url, revision
    from ._rule_machine import RuleMachine
    from ._rules import CarriedOver, carry_over, make_rule
    from ._silences import Silence, Silences
    from ._snapshot import LevelSnapshot, Restored, RuleSnapshot, SeriesSnapshot
    from ._state import (
        MAX_COUNT,
        MAX_RETRY_DELAY,
        Action,
        LevelMachine,
        LevelPolicy,
        SeriesMachine,
        State,
    )
    from ._step import Call, Evaluation, EvaluationStep, Notify, Observation, OwedCall, StormNotice
    from ._verify import FixNotice

__all__ = [
    "MAX_COUNT",
    "MAX_RETRY_DELAY",
    "NO_DATA_POLLS",
    "RECENT_SERIES_PER_RULE",
    "Action",
    "ActiveAlert",
    "AlertingRule",
    "ApprovalNotice",
    "ApprovalRequest",
    "Approvals",
    "Breaker",
    "Budget",
    "Call",
    "CarriedOver",
    "Evaluation",
    "EvaluationStep",
    "FixNotice",
    "Governor",
    "LevelMachine",
    "LevelPolicy",
    "LevelSnapshot",
    "LoggingRule",
    "NoData",
    "Notify",
    "Observation",
    "OwedCall",
    "Pause",
    "PendingFix",
    "Replay",
    "ReplayedCall",
    "Replayer",
    "Restored",
    "Rule",
    "RuleMachine",
    "RuleSnapshot",
    "SeriesHistory",
    "SeriesMachine",
    "SeriesSnapshot",
    "Silence",
    "Silences",
    "State",
    "Step",
    "StormNotice",
    "Verdict",
    "carry_over",
    "format_series",
    "generator_url",
    "make_rule",
    "recent_length",
    "recent_shares",
    "recent_window",
    "replay",
    "revision",
    "tracks_no_data",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "ApprovalNotice": "._approvals",
            "ApprovalRequest": "._approvals",
            "Approvals": "._approvals",
            "Budget": "._budget",
            "Breaker": "._breaker",
            "Silences": "._silences",
            "Silence": "._silences",
            "Call": "._step",
            "StormNotice": "._step",
            "FixNotice": "._verify",
            "PendingFix": "._fix",
            "Verdict": "._governor",
            "Pause": "._governor",
            "Governor": "._governor",
            "Action": "._state",
            "ActiveAlert": "._rule",
            "AlertingRule": "._alerting",
            "CarriedOver": "._rules",
            "Evaluation": "._step",
            "EvaluationStep": "._step",
            "LevelMachine": "._state",
            "LevelPolicy": "._state",
            "LevelSnapshot": "._snapshot",
            "LoggingRule": "._logging_rule",
            "MAX_COUNT": "._state",
            "MAX_RETRY_DELAY": "._state",
            "NO_DATA_POLLS": "._nodata",
            "NoData": "._nodata",
            "Notify": "._step",
            "Observation": "._step",
            "OwedCall": "._step",
            "RECENT_SERIES_PER_RULE": "._recent",
            "Replay": "._replay",
            "ReplayedCall": "._replay",
            "Replayer": "._replay",
            "Restored": "._snapshot",
            "Rule": "._rule",
            "RuleMachine": "._rule_machine",
            "RuleSnapshot": "._snapshot",
            "SeriesHistory": "._replay",
            "SeriesMachine": "._state",
            "SeriesSnapshot": "._snapshot",
            "State": "._state",
            "Step": "._replay",
            "carry_over": "._rules",
            "format_series": "._rule",
            "generator_url": "._rule",
            "make_rule": "._rules",
            "recent_length": "._recent",
            "recent_shares": "._recent",
            "recent_window": "._recent",
            "replay": "._replay",
            "revision": "._rule",
            "tracks_no_data": "._nodata",
        },
    )
