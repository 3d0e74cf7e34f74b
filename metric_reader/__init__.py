"""metric-reader: watch metrics, act when a threshold has been crossed for long enough."""

from ._core import (
    ActionPlugin,
    AlertTemplate,
    Event,
    check_settings,
    parse_duration,
    toml_type,
)

__all__ = [
    "ActionPlugin",
    "AlertTemplate",
    "Event",
    "__version__",
    "check_settings",
    "parse_duration",
    "toml_type",
]
__version__ = "0.1.0"
