"""The dispatch policy: what happens to an action once a rule hands it out.

No plugin set: logged only. A plugin no longer loaded: a failure. A ``resolve`` for a
plugin without one: done, nothing called. ``DRY_RUN``: logged, not called. Otherwise the
plugin is called within ``PLUGIN_TIMEOUT`` and the outcome logged. The caller counts the
returned :class:`Dispatched` in its metrics. A call that timed out while its code runs on
is returned with the :class:`LateCall` to wait for before the call is settled (see
:mod:`._late`): nothing may run it again before that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._core import Event, Method, PluginFailure, PluginTimeout
from ._catalog import PluginCatalog
from ._jobs import Job
from ._late import LateCall
from ._result import CallResult

if TYPE_CHECKING:
    from loguru import Logger


@dataclass(frozen=True, slots=True)
class Dispatched:
    """What became of one action handed to its plugin (see :func:`dispatch`).

    ``result`` is None when there was nothing to count (no plugin set, or a ``resolve``
    for a plugin without one); ``seconds`` is None when the plugin was not called.
    """

    ok: bool
    plugin: str | None
    method: str
    result: CallResult | None = None
    seconds: float | None = None
    late: LateCall | None = None
    """A call that timed out while its code ran on: not settled yet. ``await
    late.ended()`` says whether it did the action after all."""
    error: str = ""
    """Why the call failed or timed out (one line, as logged); empty otherwise."""


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
        return Dispatched(
            ok=False,
            plugin=plugin_name,
            method=method,
            result="failure",
            error=f"plugin {plugin_name!r} is not loaded any more",
        )
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
    error = ""
    abandoned: list[Job] = []
    late: LateCall | None = None
    try:
        await plugin.call(method, event, timeout, abandoned=abandoned.append)
    except PluginTimeout as exc:
        result, error = "timeout", str(exc)
        log.bind(seconds=round(time.monotonic() - started, 3)).error(
            "{} timed out: {}", method, exc
        )
        if abandoned:
            late = LateCall(abandoned[-1], method, timeout, log)
    except PluginFailure as exc:
        result, error = "failure", str(exc)
        log.bind(seconds=round(time.monotonic() - started, 3)).error("{} failed: {}", method, exc)
    else:
        log.bind(seconds=round(time.monotonic() - started, 3)).info("{} succeeded", method)
    return Dispatched(
        ok=result == "success",
        plugin=plugin_name,
        method=method,
        result=result,
        seconds=time.monotonic() - started,
        late=late,
        error=error,
    )
