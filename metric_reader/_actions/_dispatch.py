"""The dispatch policy: what happens to an action once a rule hands it out.

No plugin set: logged only. A plugin no longer loaded: a failure. A ``resolve`` for a
plugin without one: done, nothing called. ``DRY_RUN``: logged, not called. Otherwise the
plugin is called within ``PLUGIN_TIMEOUT`` and the outcome logged. The caller counts the
returned :class:`Dispatched` in its metrics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .._core import Event, Method, PluginFailure, PluginTimeout
from ._catalog import PluginCatalog
from ._result import CallResult, Dispatched

if TYPE_CHECKING:
    from loguru import Logger


async def dispatch(
    catalog: PluginCatalog,
    plugin_name: str | None,
    event: Event,
    log: Logger,
    *,
    dry_run: bool,
    timeout: float,
) -> Dispatched:
    """Hand ``event`` to ``plugin_name``'s ``execute`` (``resolve`` for a resolve).

    ``log`` carries the fields that say which rule and series the action is for.
    """
    method: Method = "resolve" if event.kind == "resolve" else "execute"
    if plugin_name is None:
        log.info("{}: no ACTION_PLUGIN set, nothing to run", event.kind)
        return Dispatched(ok=True, plugin=None, method=method)
    plugin = catalog.plugins.get(plugin_name)
    if plugin is None:  # its file was removed (or refused) since the start: a failure
        log.bind(plugin=plugin_name).error(
            "{} failed: plugin {!r} is not loaded any more", method, plugin_name
        )
        return Dispatched(ok=False, plugin=plugin_name, method=method, result="failure")
    if method == "resolve" and not plugin.has_resolve:
        log.bind(plugin=plugin_name).debug("resolve: plugin has no resolve method")
        return Dispatched(ok=True, plugin=plugin_name, method=method)
    if dry_run:  # evaluated and logged, never run
        log.bind(plugin=plugin_name, dry_run=True).warning(
            "DRY_RUN: would call {}.{}", plugin_name, method
        )
        return Dispatched(ok=True, plugin=plugin_name, method=method, result="dry_run")
    log = log.bind(plugin=plugin_name)
    started = time.monotonic()
    result: CallResult = "success"
    try:
        await plugin.call(method, event, timeout)
    except PluginTimeout as exc:
        result = "timeout"
        log.bind(seconds=round(time.monotonic() - started, 3)).error(
            "{} timed out: {}", method, exc
        )
    except PluginFailure as exc:
        result = "failure"
        log.bind(seconds=round(time.monotonic() - started, 3)).error("{} failed: {}", method, exc)
    else:
        log.bind(seconds=round(time.monotonic() - started, 3)).info("{} succeeded", method)
    return Dispatched(
        ok=result == "success",
        plugin=plugin_name,
        method=method,
        result=result,
        seconds=time.monotonic() - started,
    )
