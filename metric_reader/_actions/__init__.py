"""Actions: the plugin contract, loading and trusting plugin files, watching
``PLUGIN_DIR``, calling plugins within a time limit, and the dispatch policy.

What the other layers use is exported here; the modules behind it are private.
"""

from .._core import ActionPlugin, PluginFailure, PluginTimeout
from ._callers import LoadedPlugin
from ._catalog import PluginCatalog, bundled_plugin_dir, discover_plugins
from ._dispatch import dispatch
from ._jobs import settle, threads_holding_exit
from ._loader import load_plugin_file
from ._result import Dispatched, PluginProblem

__all__ = [
    "ActionPlugin",
    "Dispatched",
    "LoadedPlugin",
    "PluginCatalog",
    "PluginFailure",
    "PluginProblem",
    "PluginTimeout",
    "bundled_plugin_dir",
    "discover_plugins",
    "dispatch",
    "load_plugin_file",
    "settle",
    "threads_holding_exit",
]
