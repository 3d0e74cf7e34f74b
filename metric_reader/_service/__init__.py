"""The service: the rules evaluated on their groups' ticks, the plugin calls they owe, the
state file and the leader election, started, reloaded and stopped.

``Service`` (``_wiring``) wires the parts: the scheduler (``_scheduler``: the groups' loops
and ticks), the runner (``_runner``: one owed call claimed, dispatched, recorded and saved),
what is kept per rule (``_rules``), the lifecycle (``_lifecycle``: start, reload, stop) and
the view the HTTP endpoints read (``_view``). Every rule is evaluated through the engine's
``EvaluationStep``, the one the replay uses too.
"""

from ._config_watch import ConfigFiles, Look
from ._lifecycle import (
    EXPRESSION_TIMEOUT,
    RESTART_SETTINGS,
    SHUTDOWN_GRACE,
    SIGHUP_IGNORED,
    SIGNALS,
    STOP_SIGNALS,
    EarlySignals,
    Reloader,
)
from ._scheduler import MissedEvaluations, next_tick
from ._wiring import Service

__all__ = [
    "EXPRESSION_TIMEOUT",
    "RESTART_SETTINGS",
    "SHUTDOWN_GRACE",
    "SIGHUP_IGNORED",
    "SIGNALS",
    "STOP_SIGNALS",
    "ConfigFiles",
    "EarlySignals",
    "Look",
    "MissedEvaluations",
    "Reloader",
    "Service",
    "next_tick",
]
