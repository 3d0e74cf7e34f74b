"""The scheduler: evaluates every group on a steady cadence.

One task per group (``_sources._groups``: the rules of one source and interval). Its first
evaluation is at its offset, a fraction of a second after the start; the next ones on its
grid, ``offset + k * interval`` from the start, computed and never summed, so there is no
drift, and a ``for`` that is a multiple of the interval ends exactly on a tick. All the fetches
of a group run at its tick and every rule is evaluated at the tick, through the evaluation
step (``_engine.EvaluationStep``), which hands the calls the rules owe to the runner. When
a tick overruns, the ticks it overran are skipped, never queued, and counted as missed
evaluations.

A reload hands the scheduler new groups while it runs: the loops of the groups it no longer
has stop, those of new groups start, and a group it had already (kept by the reload, the
same object) goes on on its grid, undisturbed.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio
import httpx
from anyio.abc import TaskGroup
from prometheus_client.metrics import MetricWrapperBase

from .._core import (
    FetchError,
    FetchTimeout,
    QueueTimeout,
    Sample,
    format_duration,
    logger,
    logs_debug,
    loop_time,
    redact,
)
from .._engine import Call, EvaluationStep, Notify, Observation, revision
from .._sources import FailedRead, Fetch, Group, TickReads, fetch_timeout
from .._surface import ServiceMetrics
from ._rules import RuleRuntime, RuleRuntimes
from ._runner import Runner

_Family = TypeVar("_Family", bound=MetricWrapperBase)

MISSED_WINDOW = 60.0
"""Seconds: the warning about missed evaluations says how many were missed in this window,
and is said at most once per window."""


def next_tick(start: float, index: int, interval: float, now: float) -> tuple[int, int]:
    """The index k > ``index`` of the first tick ``start + k * interval`` after ``now``, and
    how many ticks were skipped to get there (a late tick is skipped, not queued). Ticks are
    computed from the start, never summed, so they stay on the grid for any number of polls."""
    following = max(index + 1, math.floor((now - start) / interval))
    while start + following * interval <= now:
        following += 1
    return following, following - index - 1


class MissedEvaluations:
    """Evaluations a group could not do on time: counted, and said in one warning a minute
    at most (how many in the last minute, why, and what to change), never a line a poll."""

    def __init__(self, group: str, advice: str) -> None:
        self.group = group
        self.advice = advice
        self.total = 0
        self._recent: deque[tuple[float, int]] = deque()
        self._warned_at: float | None = None

    def add(self, now: float, count: int, reason: str) -> None:
        if count <= 0:
            return
        self.total += count
        self._recent.append((now, count))
        if self._warned_at is None or now - self._warned_at >= MISSED_WINDOW:
            missed = self.in_last_minute(now)
            logger.bind(group=self.group, missed=missed).warning(
                "{} evaluation{} missed in the last minute: {}{}",
                missed,
                "" if missed == 1 else "s",
                reason,
                f"; {self.advice}" if self.advice else "",
            )
            self._warned_at = now

    def in_last_minute(self, now: float) -> int:
        while self._recent and now - self._recent[0][0] >= MISSED_WINDOW:
            self._recent.popleft()
        return sum(count for _, count in self._recent)

    def on_time(self, now: float) -> None:
        """A tick was evaluated in full; a minute after the last miss, say it once."""
        if self._warned_at is not None and not self.in_last_minute(now):
            logger.bind(group=self.group).info("evaluations on time again")
            self._warned_at = None


@dataclass(slots=True)
class GroupRuntime:
    """What the scheduler keeps for one group from tick to tick."""

    group: Group
    """Kept alive with its state: the state is found by the group's ``id``, which no other
    group may take while the state is held."""
    missed: MissedEvaluations
    next_fetch: int = 0
    """Where the next tick starts fetching: after the last fetch the previous tick started,
    so a group that cannot make every fetch in a tick still makes each in turn."""


@dataclass
class _Turn:
    """One run of :meth:`Scheduler.run`: its loops, the client they read with, where the
    calls the rules owe run, and what ends it."""

    loops: TaskGroup
    client: httpx.AsyncClient
    calls: TaskGroup
    until: anyio.Event
    running: dict[int, tuple[Group, anyio.CancelScope]] = field(default_factory=dict)
    """The loop of each group, by the group's ``id`` (the group is held: no other takes it)."""


class Scheduler:
    """Runs the groups: a task per group, its ticks, its fetches, and its missed
    evaluations; the rules a fetch answers for are evaluated through ``step``."""

    def __init__(
        self,
        rules: RuleRuntimes,
        step: EvaluationStep,
        runner: Runner,
        metrics: ServiceMetrics,
        acting: Callable[[], bool],
        changed: Callable[[], None],
    ) -> None:
        """``acting``: whether this replica runs actions now; ``changed``: called when an
        evaluation changed a rule's state (worth saving)."""
        self._rules = rules
        self._step = step
        self._runner = runner
        self._metrics = metrics
        self._acting = acting
        self._changed = changed
        self._groups: list[Group] = []
        self._runtimes: dict[int, GroupRuntime] = {}
        self._turn: _Turn | None = None
        self._labelled: dict[tuple[int, str], Any] = {}
        """The metric children of each group name, by metric: ``labels()`` looks its
        label values up again at every call, several times a poll. Emptied when the
        groups change, so a label set a reload removed is never written through again."""

    @property
    def groups(self) -> list[Group]:
        return self._groups

    @groups.setter
    def groups(self, groups: list[Group]) -> None:
        """Run ``groups`` from now on. A group run already (the same object: a reload kept
        it) goes on as it was, its missed evaluations and loop included; a new one starts
        with nothing missed, and its loop starts if the scheduler runs."""
        wanted = {id(group) for group in groups}
        self._groups = groups
        self._labelled.clear()
        self._runtimes = {key: kept for key, kept in self._runtimes.items() if key in wanted}
        if self._turn is not None:
            self._follow(self._turn)

    def _child(self, family: _Family, name: str) -> _Family:
        """``family.labels(name)``, made once per groups set."""
        key = (id(family), name)
        found = self._labelled.get(key)
        if found is None:
            found = self._labelled[key] = family.labels(name)
        return cast(_Family, found)

    def runtime(self, group: Group) -> GroupRuntime:
        found = self._runtimes.get(id(group))
        if found is None:
            missed = MissedEvaluations(group.name, group.advice)
            found = self._runtimes[id(group)] = GroupRuntime(group, missed)
        return found

    def missed(self, group: Group) -> MissedEvaluations:
        return self.runtime(group).missed

    async def run(self, client: httpx.AsyncClient, calls: TaskGroup, until: anyio.Event) -> None:
        """Evaluate every group, a task each, until ``until`` is set; the calls the rules
        owe run in ``calls``. Groups set meanwhile are followed (see ``groups``)."""
        async with anyio.create_task_group() as loops:
            turn = self._turn = _Turn(loops, client, calls, until)
            try:
                self._follow(turn)
                await until.wait()
                loops.cancel_scope.cancel()
            finally:
                self._turn = None

    def _follow(self, turn: _Turn) -> None:
        """Stop the loops of the groups no longer run, start those of new ones. Nothing
        starts once ``until`` is set: the turn ends, and the next one starts every group."""
        if turn.until.is_set():
            return
        wanted = {id(group) for group in self._groups}
        for key in [key for key in turn.running if key not in wanted]:
            _, scope = turn.running.pop(key)
            scope.cancel()
        for group in self._groups:
            if id(group) not in turn.running:
                scope = anyio.CancelScope()
                turn.running[id(group)] = (group, scope)
                turn.loops.start_soon(self._loop, turn, group, scope)

    async def _loop(self, turn: _Turn, group: Group, scope: anyio.CancelScope) -> None:
        if scope.cancel_called:  # the group was replaced before its loop began
            return
        with scope:
            await self._evaluate_forever(turn.client, group, turn.calls)

    async def _evaluate_forever(
        self, client: httpx.AsyncClient, group: Group, calls: TaskGroup
    ) -> None:
        interval = group.interval
        timeout = fetch_timeout(interval)
        logger.bind(group=group.name, rules=len(group.rules), reads=len(group.fetches)).info(
            "polling every {}", format_duration(interval)
        )
        # The grid: tick k at origin + k * interval, from the first read, a fraction of a
        # second after the start (the group's offset), so a sidecar is ready at once.
        origin = loop_time() + group.offset
        index, tick = 0, origin
        await asyncio.sleep(max(tick - loop_time(), 0))
        while True:
            await self.evaluate_group(client, group, timeout, calls, tick)
            now = loop_time()
            following, skipped = next_tick(origin, index, interval, now)
            index = following
            if skipped:
                self._missed(
                    group,
                    now,
                    skipped * len(group.rules),
                    f"an evaluation took longer than the {format_duration(interval)} interval,"
                    f" so {skipped} tick{'s were' if skipped > 1 else ' was'} skipped",
                )
            tick = origin + index * interval
            await asyncio.sleep(max(tick - loop_time(), 0))

    async def evaluate_group(
        self,
        client: httpx.AsyncClient,
        group: Group,
        timeout: float,
        calls: TaskGroup,
        tick: float,
    ) -> None:
        """Make every fetch of ``group`` (``group.concurrency`` at a time) within
        ``timeout`` of ``tick``, evaluating each fetch's rules at ``tick`` as its fetch
        answers. A fetch that cannot start in time is not started: its rules' evaluations
        are missed, and the next tick starts with it."""
        runtime = self.runtime(group)
        fetches = group.fetches
        count = len(fetches)
        first = runtime.next_fetch % count
        order = fetches[first:] + fetches[:first]
        deadline = tick + timeout
        started = 0
        late: list[Fetch] = []
        reads = TickReads()

        async def worker() -> None:
            nonlocal started
            while started < count:
                left = deadline - loop_time()
                if left <= 0:
                    return
                fetch = order[started]
                # The first reads have the poll's whole time; later ones what is left of it.
                on_time = started < group.concurrency
                budget = timeout if on_time else left
                started += 1
                outcome = await self.poll_once(
                    client, fetch, budget, calls, tick, group, late_start=not on_time, reads=reads
                )
                if isinstance(outcome, QueueTimeout) or (
                    isinstance(outcome, FetchTimeout) and not on_time
                ):
                    late.append(fetch)

        if min(group.concurrency, count) == 1:  # one read at a time: no task to spawn
            await worker()
        else:
            async with anyio.create_task_group() as workers:
                for _ in range(min(group.concurrency, count)):
                    workers.start_soon(worker)
        runtime.next_fetch = (first + started) % count
        now = loop_time()
        group.read_errors.report(now, reads, group.name, group.where)
        not_started = order[started:]
        if late or not_started:
            missed = sum(len(fetch.rules) for fetch in (*late, *not_started))
            reasons = []
            if not_started:
                reasons.append(
                    f"{len(not_started)} of {count} reads could not start within {timeout:g}s, "
                    f"{group.concurrency} at a time"
                )
            if late:
                reasons.append(
                    f"{len(late)} read{'s' if len(late) > 1 else ''} started late in the tick "
                    f"or waited for a free request slot, and did not finish within {timeout:g}s"
                )
            self._missed(group, now, missed, "; ".join(reasons))
        else:
            runtime.missed.on_time(now)

    def _missed(self, group: Group, now: float, count: int, reason: str) -> None:
        self._metrics.evaluations_missed.labels(group.name).inc(count)
        self.missed(group).add(now, count, reason)

    async def poll_once(
        self,
        client: httpx.AsyncClient,
        fetch: Fetch,
        timeout: float,
        calls: TaskGroup,
        tick: float | None = None,
        group: Group | None = None,
        *,
        late_start: bool = False,
        reads: TickReads | None = None,
    ) -> Exception | None:
        """Make ``fetch`` once and evaluate its rules at ``tick``, the moment the poll was
        scheduled (like Prometheus' evaluation timestamp), not when the answer arrived: a
        duration or backoff that is a multiple of the interval is reached on its tick. The
        calls the rules owe run in ``calls``.

        Returns why the fetch failed, or None. A failure, or an answer again, goes into
        ``reads``, what the group says once its tick is done (one line per error for all
        its reads); without ``reads`` (a read made alone) it is said at once. A fetch of a
        ``group`` that ran out of time because other fetches used it (it waited for a
        request slot, or started late in the tick: ``late_start``) is the group's overload,
        reported by the group (one warning a minute for all its fetches), not here."""
        alone = reads is None
        outcome = TickReads() if reads is None else reads
        started = loop_time()
        try:
            return await self._poll(
                client, fetch, timeout, calls, started, tick, group, late_start, outcome
            )
        finally:
            if alone:
                fetch.errors.report(started, outcome, fetch.group, "")

    async def _poll(
        self,
        client: httpx.AsyncClient,
        fetch: Fetch,
        timeout: float,
        calls: TaskGroup,
        started: float,
        tick: float | None,
        group: Group | None,
        late_start: bool,
        reads: TickReads,
    ) -> Exception | None:
        metrics = self._metrics
        self._child(metrics.polls, fetch.group).inc()
        try:
            fetched = await fetch.perform(client, timeout)
        except Exception as exc:
            # FetchError is what a source says; anything else is a bug in a library or in
            # ours, and still must not stop this fetch's polling or any other's.
            if not isinstance(exc, FetchError):
                logger.opt(exception=exc).bind(target=fetch.description).debug("unexpected")
            error = (
                str(exc) if isinstance(exc, FetchError) else redact(f"{type(exc).__name__}: {exc}")
            )
            self._child(metrics.poll_errors, fetch.group).inc()
            overload = isinstance(exc, QueueTimeout) or (
                late_start and isinstance(exc, FetchTimeout)
            )
            if not overload or group is None:
                reads.failed.append(FailedRead(fetch.description, len(fetch.rules), error))
            fetch.last_error = error
            for one in self._rules.of(fetch):
                one.failed(error)
            return exc
        finally:
            self._child(metrics.poll_seconds, fetch.group).observe(loop_time() - started)
        fetch.last_success, fetch.last_error = loop_time(), None
        for warning in fetched.warnings:
            fetch.warnings.report(started, warning)
        if not fetched.warnings:
            fetch.warnings.clear()
        now = loop_time()
        if logs_debug():  # a line a poll: not even bound when no sink takes it
            logger.bind(target=fetch.description, seconds=round(now - started, 4)).debug("polled")
        rules = self._rules.of(fetch)
        before = revision(one.rule for one in rules)
        acting = self._acting()
        at = started if tick is None else tick

        def owed(call: Call) -> None:
            self._runner.start(call, calls)

        verify = await self._read_verify(client, fetch, rules, fetched.failed, started, timeout)
        late = 0
        parts: dict[str, int] = {}  # rules whose part of a batched read failed, by error
        for one in rules:
            failed = fetched.failed.get(one.name)
            if failed is not None:  # its part of a batched read: its state stays as it was
                one.failed(str(failed))
                if isinstance(failed, QueueTimeout) and group is not None:
                    late += 1
                else:
                    parts[str(failed)] = parts.get(str(failed), 0) + 1
                continue
            samples = fetched.samples.get(one.name, [])
            self._evaluate(one, Observation(at, samples, verify), owed, acting, started)
        reads.failed += [FailedRead(fetch.description, n, error) for error, n in parts.items()]
        if not parts:
            reads.answered.append(fetch.description)
        if revision(one.rule for one in rules) != before:
            self._changed()
        if group is not None:
            self._child(metrics.evaluations, group.name).inc(len(rules) - len(fetched.failed))
            if late:
                self._missed(
                    group, now, late, f"a read found no free request slot within {timeout:g}s"
                )
        return None

    async def _read_verify(
        self,
        client: httpx.AsyncClient,
        fetch: Fetch,
        rules: list[RuleRuntime],
        failed: Mapping[str, FetchError],
        started: float,
        timeout: float,
    ) -> dict[str, list[Sample] | None]:
        """The answers of the ``verify_query`` texts the rules of ``fetch`` need now (only
        while a fix of theirs judged by one is pending), read on the fetch's source right
        after its own read, within what is left of ``timeout``; None: the read failed."""
        needed = {
            query
            for one in rules
            if one.name not in failed
            for query in self._step.verify_queries(one.rule)
        }
        read = fetch.read_query
        if not needed or read is None:
            return {}
        left = max(timeout - (loop_time() - started), 0.05)
        answers: dict[str, list[Sample] | None] = {}

        async def read_one(query: str) -> None:
            try:
                answers[query] = await read(client, query, left)
            except Exception as exc:  # as a failed poll: judges nothing, stops nothing
                answers[query] = None
                error = (
                    str(exc)
                    if isinstance(exc, FetchError)
                    else redact(f"{type(exc).__name__}: {exc}")
                )
                fetch.verify_errors.report(loop_time(), f"{query}: {error}")

        async with anyio.create_task_group() as reads:
            for query in sorted(needed):
                reads.start_soon(read_one, query)
        return answers

    def _evaluate(
        self,
        one: RuleRuntime,
        observation: Observation,
        owed: Notify,
        acting: bool,
        read_started: float,
    ) -> None:
        at = observation.at
        evaluation = self._step.evaluate(
            one.rule, observation, owed, acting=acting, no_data=one.no_data
        )
        if evaluation.refused is None:
            one.evaluated(at, loop_time() - read_started)
            one.series_limit_errors.clear()
            return
        # Failed for this rule: its state stays as it was, like a failed poll.
        one.failed(evaluation.refused)
        self._metrics.series_limit_exceeded.labels(one.name).inc()
        one.series_limit_errors.report(at, evaluation.refused)
