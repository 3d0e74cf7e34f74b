"""Actions: the plugin contract, loading and trusting plugin files, watching
``PLUGIN_DIR``, calling plugins within a time limit, and the dispatch policy.

What the other layers use is exported here; the modules behind it are private.
"""

from .._core import ActionPlugin, PluginFailure, PluginTimeout
from ._callers import LoadedPlugin
from ._catalog import PluginCatalog, bundled_plugin_dir, discover_plugins
from ._dispatch import Dispatched, dispatch
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
    "queued_calls",
    "settle",
    "threads_holding_exit",
]
