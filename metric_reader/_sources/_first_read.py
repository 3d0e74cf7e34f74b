"""``metric-reader check``: one read of every source, to say what each rule would see.

A rule whose query returns nothing (a misspelled metric name, a filter that matches no
series) is valid configuration, so ``check`` cannot refuse it; but it can say so before the
service runs. The reads share one deadline; one that fails or returns nothing is reported
as a warning and never changes ``check``'s exit code: the source may simply not be reachable
from where ``check`` runs (``--no-read`` skips them).

An alert of a rule file is read only for its errors: its expression returning nothing is
the alert's healthy state (*inactive*), so it gets a line of its own only when its read
fails, and all of them one line together.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import httpx

from .._config import PrometheusQuery, RuleConfig, Settings
from .._core import redact
from .._http import make_client
from ._fetches import Fetch
from ._groups import Group, build_fetches, shared_options
from ._prometheus import QueryParseError, instant_query


async def first_reads(settings: Settings, timeout: float) -> list[str]:
    """One line per rule that reads a metric, in the order of ``settings.rules``: how many
    series its source returns now, or why it could not be read within ``timeout`` seconds;
    for the alerts of the rule files, a line for each that could not be read, then one
    for them all."""
    rules = settings.rules
    targets = build_fetches(
        rules,
        settings.max_concurrent_queries,
        settings.max_response_bytes,
        settings.batch_selectors,
        batch_expressions=settings.batch_expressions,
    )
    found: dict[str, int | str] = {}
    """Each rule's series read, or why they could not be read."""

    async def read(client: httpx.AsyncClient, target: Fetch) -> None:
        try:
            reading = await target.perform(client, timeout)
        except Exception as exc:  # whatever it is, check goes on and says it
            error = redact(str(exc)) or type(exc).__name__
            for rule in target.rules:
                found[rule.name] = f"cannot read {target.description}: {error}"
            return
        for rule in target.rules:
            failed = reading.failed.get(rule.name)
            if failed is None:
                found[rule.name] = len(reading.samples.get(rule.name, []))
            else:  # its part of a batched read failed: its own query, read alone
                source = rule.source
                what = (
                    f"query {source.expression} at {source.endpoint}"
                    if isinstance(source, PrometheusQuery)
                    else target.description
                )
                found[rule.name] = f"cannot read {what}: {redact(str(failed))}"

    async with make_client(settings.client) as client:
        with anyio.move_on_after(timeout + 1.0):  # each read has its own deadline too
            async with anyio.create_task_group() as group:
                for target in targets:
                    group.start_soon(read, client, target)
    lines = []
    for rule in rules:
        got = found.get(rule.name, "no answer in time")
        if isinstance(got, str):
            lines.append(f"read {rule.name}: warning: {got}")
        elif rule.alert is None:
            lines.append(f"read {rule.name}: {_series(got)}")
    alerts = [found.get(rule.name) for rule in rules if rule.alert is not None]
    if alerts:
        counts = [count for count in alerts if isinstance(count, int)]
        lines.append(
            f"alerts of the rule files: {len(counts)} of {len(alerts)} read without error, "
            f"{sum(1 for count in counts if count)} with series now (no series: inactive)"
        )
    return lines


def _series(count: int) -> str:
    if count:
        return f"{count} series"
    return (
        "warning: returns no series; check the metric name, label filters or query (the "
        "service reports it as no data)"
    )


async def check_expressions(
    settings: Settings, timeout: float, running: Sequence[Group] = ()
) -> tuple[list[str], list[str]]:
    """The ``expr`` of every alert of the rule files, sent once to its Prometheus, as
    Prometheus checks them when it loads a rule file: the problems (a parse error, one line
    naming the file, line and alert) and the warnings (the Prometheus could not be asked:
    the service goes on, and reports each failed read).

    As many at once to one Prometheus as ``max_concurrent_queries`` allows, counting the
    reads of the ``running`` groups (a reload: their polls go on meanwhile)."""
    alerts = [rule for rule in settings.rules if rule.alert is not None]
    problems: dict[str, str] = {}
    unreachable: dict[str, str] = {}
    options = shared_options(
        settings.max_concurrent_queries,
        settings.max_response_bytes,
        settings.batch_selectors,
        running,
        batch_expressions=settings.batch_expressions,
    )

    async def check(client: httpx.AsyncClient, rule: RuleConfig) -> None:
        alert, source = rule.alert, rule.source
        assert alert is not None and isinstance(source, PrometheusQuery)  # the expr is its query
        slots = options.limit(source.endpoint).limiter
        try:
            await instant_query(
                client,
                source.endpoint,
                alert.expr,
                timeout,
                slots=slots,
                endpoint_defaulted=source.endpoint_defaulted,
            )
        except QueryParseError as exc:
            problems[rule.name] = (
                f"{alert.file}:{alert.line}: alert {alert.name!r}: expr: {exc.reason}"
            )
        except Exception as exc:  # down, slow, refused: not the expression's fault
            unreachable.setdefault(source.endpoint, redact(str(exc)) or type(exc).__name__)

    async with make_client(settings.client) as client:
        with anyio.move_on_after(timeout + 1.0):
            async with anyio.create_task_group() as group:
                for rule in alerts:
                    group.start_soon(check, client, rule)
    warnings = [
        f"the expressions of the rule files could not be checked at {endpoint}: {why}"
        for endpoint, why in unreachable.items()
    ]
    return [problems[r.name] for r in alerts if r.name in problems], warnings
