"""Actions: the plugin contract, loading and trusting plugin files, watching
``PLUGIN_DIR``, calling plugins within a time limit, and the dispatch policy.

What the other layers use is exported here; the modules behind it are private.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from .._core import ActionPlugin, PluginFailure, PluginTimeout
    from ._callers import LoadedPlugin
    from ._catalog import PluginCatalog, bundled_plugin_dir, discover_plugins
    from ._dispatch import Dispatched, dispatch
    from ._installed import plugins_may_be_installed
    from ._jobs import settle, threads_holding_exit
    from ._late import LateCall
    from ._loader import load_plugin_file
    from ._result import PluginProblem
    from ._threads import PLUGIN_THREADS, QUEUE_LIMIT, queued_calls

__all__ = [
    "PLUGIN_THREADS",
    "QUEUE_LIMIT",
    "ActionPlugin",
    "Dispatched",
    "LateCall",
    "LoadedPlugin",
    "PluginCatalog",
    "PluginFailure",
    "PluginProblem",
    "PluginTimeout",
    "bundled_plugin_dir",
    "discover_plugins",
    "dispatch",
    "load_plugin_file",
    "plugins_may_be_installed",
    "queued_calls",
    "settle",
    "threads_holding_exit",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "ActionPlugin": ".._core",
            "Dispatched": "._dispatch",
            "LateCall": "._late",
            "LoadedPlugin": "._callers",
            "PLUGIN_THREADS": "._threads",
            "PluginCatalog": "._catalog",
            "PluginFailure": ".._core",
            "PluginProblem": "._result",
            "PluginTimeout": ".._core",
            "QUEUE_LIMIT": "._threads",
            "bundled_plugin_dir": "._catalog",
            "discover_plugins": "._catalog",
            "dispatch": "._dispatch",
            "load_plugin_file": "._loader",
            "plugins_may_be_installed": "._installed",
            "queued_calls": "._threads",
            "settle": "._jobs",
            "threads_holding_exit": "._jobs",
        },
    )
