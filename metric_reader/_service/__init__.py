"""The service: the rules evaluated on their groups' ticks, the plugin calls they owe, the
state file and the leader election, started, reloaded and stopped.

``Service`` (``_wiring``) wires the parts: the scheduler (``_scheduler``: the groups' loops
and ticks), the runner (``_runner``: one owed call claimed, dispatched, recorded and saved),
what is kept per rule (``_rules``), the lifecycle (``_lifecycle``: start, reload, stop) and
the view the HTTP endpoints read (``_view``). Every rule is evaluated through the engine's
``EvaluationStep``, the one the replay uses too.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
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

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "ConfigFiles": "._config_watch",
            "EXPRESSION_TIMEOUT": "._lifecycle",
            "EarlySignals": "._lifecycle",
            "Look": "._config_watch",
            "MissedEvaluations": "._scheduler",
            "RESTART_SETTINGS": "._lifecycle",
            "Reloader": "._lifecycle",
            "SHUTDOWN_GRACE": "._lifecycle",
            "SIGHUP_IGNORED": "._lifecycle",
            "SIGNALS": "._lifecycle",
            "STOP_SIGNALS": "._lifecycle",
            "Service": "._wiring",
            "next_tick": "._scheduler",
        },
    )
