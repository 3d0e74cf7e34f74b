"""metric-reader: watch metrics, act when a threshold has been crossed for long enough."""

from ._core._durations import parse_duration
from ._core._events import Event
from ._core._plugin_contract import ActionPlugin
from ._core._plugin_settings import check_settings, toml_type

__all__ = ["ActionPlugin", "Event", "__version__", "check_settings", "parse_duration", "toml_type"]
__version__ = "0.1.0"
