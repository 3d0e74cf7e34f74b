"""The rules and their state machines: pure code, every call given the time ``now``.

What the other layers use of the engine is exported here; the modules behind it are
private.
"""

from ._alerting import AlertingRule
from ._logging_rule import LoggingRule
from ._nodata import NO_DATA_POLLS, NoData, tracks_no_data
from ._recent import RECENT_SERIES_PER_RULE, recent_length, recent_shares, recent_window
from ._replay import Replay, ReplayedCall, Replayer, SeriesHistory, Step, replay
from ._rule import ActiveAlert, Rule, format_series, generator_url, revision
from ._rule_machine import RuleMachine
from ._rules import CarriedOver, carry_over, make_rule
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
from ._step import Evaluation, EvaluationStep, Notify, Observation, OwedCall

__all__ = [
    "MAX_COUNT",
    "MAX_RETRY_DELAY",
    "NO_DATA_POLLS",
    "RECENT_SERIES_PER_RULE",
    "Action",
    "ActiveAlert",
    "AlertingRule",
    "CarriedOver",
    "Evaluation",
    "EvaluationStep",
    "LevelMachine",
    "LevelPolicy",
    "LevelSnapshot",
    "LoggingRule",
    "NoData",
    "Notify",
    "Observation",
    "OwedCall",
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
    "State",
    "Step",
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
