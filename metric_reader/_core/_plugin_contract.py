"""The plugin contract: what a ``Plugin`` in a plugin file must look like."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, Protocol

Method = Literal["execute", "resolve"]
"""The plugin methods the service calls when a breach fires, repeats or ends."""

PluginSettings = Mapping[str, Mapping[str, Any]]
"""The rule file's ``[plugins.NAME]`` tables, by plugin name."""


class ActionPlugin(Protocol):
    """What metric-reader calls when a threshold has been crossed for long enough.

    A plugin file (a ``.py`` file in ``PLUGIN_DIR``) exposes a module-level ``Plugin``:
    an object of this shape, or a class of it that can be created with no arguments.
    Annotate yours with it to have a type checker compare it with the contract::

        from metric_reader import ActionPlugin

        class MyPlugin:
            name = "my_plugin"

            async def execute(self, metric_name, value, threshold, duration): ...

        Plugin: ActionPlugin = MyPlugin()

    Required:

    - ``name`` (``str``, not empty): what ``ACTION_PLUGIN`` and ``HARD_ACTION_PLUGIN``
      name.
    - ``execute(metric_name, value, threshold, duration)``: called when the breach has
      lasted ``THRESHOLD_DURATION``, and again every ``BACKOFF_DELAY`` while it lasts.
      ``metric_name`` is a ``str``, ``value`` a ``float`` (may be NaN or infinite),
      ``threshold`` the threshold as configured (``">80"``), ``duration`` a
      ``datetime.timedelta``. A plain ``def`` or an ``async def``; what it returns is
      ignored; raise to fail (the call is retried).

    Optional (a type cannot say "optional method", so they are described here only):

    - ``resolve(metric_name, value, threshold, duration)``: called once when the breach
      is over; ``def`` or ``async def``.
    - ``configure(settings)``: called at load time, before ``validate_config``, with the
      rule file's ``[plugins.NAME]`` table as a ``dict``, when there is one; raise to
      refuse it.
    - ``validate_config()``: called at load time, with no arguments; raise to refuse to
      load. A plain ``def``.

    ``execute`` and ``resolve`` get the whole :class:`metric_reader.Event` as ``event=``
    when they accept a keyword ``event`` (or ``**kwargs``). Calls and loading are bounded
    by ``PLUGIN_TIMEOUT``. The plugin guide (``plugin_dir/README.md``) tells the rest.
    """

    @property
    def name(self) -> str: ...

    def execute(
        self, metric_name: str, value: float, threshold: str, duration: timedelta, /
    ) -> object: ...
