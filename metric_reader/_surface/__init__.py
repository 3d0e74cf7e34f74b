"""What the service shows: ``/metrics`` (``ALERTS`` too), the probes, ``/-/reload``,
``/api/status`` and the status page. It sees the service only through the ``ServiceView``
it declares (``_view``), and declares the status document's types (``_status_doc``).

What the other layers use of it is exported here; the modules behind it are private.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._governor_doc import governor_doc
    from ._metrics import ServiceMetrics
    from ._selection import Selection
    from ._status import status_snapshot
    from ._status_doc import StatusDocument
    from ._view import (
        ActionLog,
        FetchStatus,
        GroupStatus,
        LastEvaluation,
        PluginCounts,
        RuleSeries,
        UnloadedPlugin,
        fetched_recently,
    )
    from ._web import serve_http

__all__ = [
    "ActionLog",
    "FetchStatus",
    "GroupStatus",
    "LastEvaluation",
    "PluginCounts",
    "RuleSeries",
    "Selection",
    "ServiceMetrics",
    "StatusDocument",
    "UnloadedPlugin",
    "fetched_recently",
    "governor_doc",
    "serve_http",
    "status_snapshot",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "ActionLog": "._view",
            "FetchStatus": "._view",
            "GroupStatus": "._view",
            "LastEvaluation": "._view",
            "PluginCounts": "._view",
            "RuleSeries": "._view",
            "Selection": "._selection",
            "ServiceMetrics": "._metrics",
            "StatusDocument": "._status_doc",
            "UnloadedPlugin": "._view",
            "fetched_recently": "._view",
            "governor_doc": "._governor_doc",
            "serve_http": "._web",
            "status_snapshot": "._status",
        },
    )
