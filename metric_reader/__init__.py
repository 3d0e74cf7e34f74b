"""metric-reader: watch metrics, act when a threshold has been crossed for long enough."""

from ._actions._contract import ActionPlugin
from ._core._durations import parse_duration
from ._core._events import Event

__all__ = ["ActionPlugin", "Event", "__version__", "parse_duration"]
__version__ = "0.1.0"
