"""metric-reader: watch metrics, act when a threshold has been crossed for long enough.

The public names are imported when first used (PEP 562), so that ``python -m metric_reader``
and a plugin importing ``Event`` pay only for what they use."""

from typing import TYPE_CHECKING

from ._core import lazy_exports

if TYPE_CHECKING:
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

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "ActionPlugin": "._core",
            "AlertTemplate": "._core",
            "Event": "._core",
            "check_settings": "._core",
            "parse_duration": "._core",
            "toml_type": "._core",
        },
    )
del TYPE_CHECKING, lazy_exports  # not part of the surface
