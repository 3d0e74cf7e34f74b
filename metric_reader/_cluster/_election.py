"""Leader election on a Kubernetes Lease, client-go's algorithm, plus a record of actions.

Every replica polls and evaluates; only the leader runs actions. Before it runs one, the
leader records it in the Lease, so a new leader knows which actions are done
(``LeaderElector`` says how, and why it is safe).
"""

from __future__ import annotations

import json
import math
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import anyio

from .._config import ElectionSettings
from .._core import Conflict, KubeError, Labels, Throttle, logger
from .._engine import MAX_COUNT
from ._kube import Lease, LeaseClient, micro_time

ANNOTATION = "metric-reader.io/actions"
GOVERNOR_ANNOTATION = "metric-reader.io/governor"
"""The governor's state (budgets spent, breakers, silences, the pause), which the leader
writes with every renewal and a new leader takes on, so a failover never resets a budget."""
MAX_RECORD_BYTES = 200 * 1024  # the API server allows 256 KiB of annotations in all
MAX_GOVERNOR_BYTES = 32 * 1024
KEEP_RESOLVED = 600.0
JITTER = 1.2  # client-go's JitterFactor for the retry period

Status = Literal["claimed", "ok", "failed"]


def default_identity() -> str:
    """Unique per process: the host (pod) name and a random suffix, as client-go's examples."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class ActionRecord:
    """The last action the leader ran for one rule, series and level."""

    rule: str
    level: str
    labels: Labels
    kind: str
    at: float
    """Wall-clock time (epoch seconds) the action was handed out."""
    fire_count: int
    """Successful fire and repeat calls of the breach, this one included."""
    by: str
    nonce: str
    status: Status = "claimed"

    @property
    def key(self) -> tuple[str, str, Labels]:
        return (self.rule, self.level, self.labels)

    def to_json(self) -> list[Any]:
        labels = dict(self.labels)
        return [self.rule, self.level, labels, self.kind, round(self.at, 3), self.fire_count,
                self.by, self.nonce, self.status]  # fmt: skip

    @classmethod
    def from_json(cls, item: Any) -> ActionRecord | None:
        try:
            rule, level, labels, kind, at, fire_count, by, nonce, status = item
            if not (isinstance(labels, dict) and status in ("claimed", "ok", "failed")):
                return None
            return cls(
                str(rule),
                str(level),
                tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                str(kind),
                float(at),
                min(max(int(fire_count), 0), MAX_COUNT),
                str(by),
                str(nonce),
                status,
            )
        except (TypeError, ValueError, OverflowError):  # 1e999 or a 400-digit number too
            return None


def decode_records(lease: Lease) -> dict[tuple[str, str, Labels], ActionRecord]:
    try:
        items = json.loads(lease.annotations.get(ANNOTATION, "[]"))
    except ValueError:
        items = []
    records = {}
    for item in items if isinstance(items, list) else []:
        record = ActionRecord.from_json(item)
        if record is not None and math.isfinite(record.at):
            records[record.key] = record
    return records


def encode_records(records: Iterable[ActionRecord]) -> tuple[str, int]:
    """The annotation's text, newest first within ``MAX_RECORD_BYTES``, and how many of
    the oldest records did not fit."""
    newest_first = sorted(records, key=lambda record: record.at, reverse=True)
    items: list[str] = []
    size = 2
    for record in newest_first:
        item = json.dumps(record.to_json(), separators=(",", ":"))
        size += len(item) + 1
        if size > MAX_RECORD_BYTES:
            break
        items.append(item)
    return "[" + ",".join(items) + "]", len(newest_first) - len(items)


Adopt = Callable[[list[ActionRecord]], None]


class LeaderElector:
    """Keeps (or waits for) the Lease; ``acting()`` says whether actions may run now.

    The algorithm is client-go's ``leaderelection``: get the Lease, create it if absent,
    take it over only when its holder has not renewed it for ``leaseDurationSeconds`` as
    measured by the local clock from when this replica saw it change, and renew it every
    retry period with its ``resourceVersion``, so any concurrent write makes ours fail with
    409 Conflict, which counts as lost.

    Safety: the leader acts only until ``renew_deadline`` after the start of its last
    successful write. Another replica takes over no earlier than ``lease_duration`` after it
    saw that write, which it can only see after it was sent; so with the deadline shorter
    than the lease duration, an old leader has stopped acting before a new one can start,
    whatever the network does.

    Handover without running an action twice: before it runs an action the leader records
    it in the Lease (an annotation, written with the same optimistic concurrency as the
    renewal), and runs it only when that write succeeded. Followers read the record every
    retry period and mark in their own state machines what the leader ran, so a new leader
    knows which actions are done, when the last one was, and what still needs a resolve.
    The record travels with the lock itself: no shared volume, no second object to keep
    consistent with the lock. An action is recorded before it runs, so a leader that dies
    during the call leaves it recorded: at most once per backoff window.
    """

    def __init__(
        self,
        client: LeaseClient,
        identity: str,
        timing: ElectionSettings,
        adopt: Adopt,
        still_active: Callable[[ActionRecord], bool] = lambda record: False,
        clock: Callable[[], float] = anyio.current_time,
        wall_clock: Callable[[], float] = time.time,
        share: Callable[[], dict[str, Any]] | None = None,
        take: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``share``: the governor's state, written by the leader (``GOVERNOR_ANNOTATION``);
        ``take``: takes on the leader's, as a follower and before leading."""
        self.share = share
        self.take = take
        self.client = client
        self.identity = identity
        self.timing = timing
        self.adopt = adopt
        self.still_active = still_active
        self.clock = clock
        self.wall_clock = wall_clock
        self.records: dict[tuple[str, str, Labels], ActionRecord] = {}
        self.holder = ""
        self._lease: Lease | None = None
        self._leading = False
        self._valid_until = -math.inf
        self._observed_version = ""
        self._observed_at = -math.inf
        self._uncertain = False
        self._lock = anyio.Lock()
        self._pending: list[_Claim] = []
        lease = f"{client.namespace}/{client.name}"
        self._errors = Throttle(f"lease {lease}", "WARNING", "leader election")
        self._full = Throttle(f"lease {lease}", "WARNING", "leader election")
        self._log = logger.bind(lease=lease, identity=identity)

    def acting(self) -> bool:
        """Leader, and within the renew deadline of the last successful write."""
        return self._leading and self.clock() < self._valid_until

    async def run(self) -> None:
        """Acquire, renew, and follow, until cancelled."""
        while True:
            try:
                async with self._lock:
                    if self._leading:  # a hanging request must not delay giving up
                        with anyio.move_on_after(self._valid_until - self.clock()) as scope:
                            await self._cycle()
                        if scope.cancelled_caught:
                            self._uncertain = True
                            self._lose("could not renew the lease within the renew deadline")
                    else:
                        await self._cycle()
            except KubeError as exc:
                self._errors.report(self.clock(), str(exc))
            else:
                self._errors.clear()
            period = self.timing.retry_period
            await anyio.sleep(period if self._leading else period * random.uniform(1, JITTER))

    async def claim(
        self, rule: str, level: str, labels: Labels, kind: str, fire_count: int
    ) -> ActionRecord | None:
        """Record an action in the Lease before running it; the record, or ``None`` when
        this replica may not act (not the leader, or the write failed)."""
        if not self.acting():
            return None
        record = ActionRecord(
            rule, level, labels, kind, self.wall_clock(), fire_count, self.identity,
            secrets.token_hex(4),
        )  # fmt: skip
        claim = _Claim(record)
        self._pending.append(claim)
        async with self._lock:
            if not claim.done:
                batch, self._pending = self._pending, []
                ok = False
                if self.acting():
                    for each in batch:
                        self.records[each.record.key] = each.record
                    try:
                        ok = await self._write()
                    except KubeError as exc:
                        self._errors.report(self.clock(), str(exc))
                for each in batch:
                    each.done, each.ok = True, ok
        return record if claim.ok and self.acting() else None

    def outcome(self, record: ActionRecord, ok: bool) -> None:
        """How a claimed action ended; written with the next renewal. A failed one is not
        counted as done by a new leader."""
        current = self.records.get(record.key)
        if current is not None and current.nonce == record.nonce:
            self.records[record.key] = replace(current, status="ok" if ok else "failed")

    async def release(self) -> None:
        """Give the Lease up at shutdown so another replica takes over at once."""
        async with self._lock:
            if not self.acting() or self._lease is None:
                return
            self._leading = False
            spec = {"holderIdentity": "", "leaseDurationSeconds": 1,
                    "renewTime": micro_time(self.wall_clock())}  # fmt: skip
            try:
                await self.client.update(self._lease.changed(spec, self._annotations(self._lease)))
            except KubeError as exc:
                self._log.warning("leader election: could not release the lease: {}", exc)
            else:
                self._log.info("leader election: released the lease")

    async def _cycle(self) -> None:
        if self._leading and not self._uncertain:
            try:
                await self._write()
            except Conflict:
                self._lose("the lease was changed by another replica (409 Conflict)")
            return
        lease = await self.client.get()
        now = self.clock()
        if lease is None:
            await self._create()
            return
        self._uncertain = False
        if lease.resource_version != self._observed_version:
            self._observed_version, self._observed_at = lease.resource_version, now
            self.records = decode_records(lease)
            if not self._leading:
                self.adopt([r for r in self.records.values() if r.by != self.identity])
                self._take_governor(lease)
        self._follow(lease.holder)
        if self._leading and lease.holder == self.identity:
            self._lease = lease  # an uncertain write: go on from what the server has
            await self._write()
            return
        duration = lease.duration or self.timing.lease_duration
        if lease.holder and lease.holder != self.identity and now < self._observed_at + duration:
            if self._leading:
                self._lose(f"the lease is held by {lease.holder}")
            return
        await self._take_over(lease)

    async def _create(self) -> None:
        wall, sent = self.wall_clock(), self.clock()
        spec = self._spec(wall, acquire=True)
        spec["leaseTransitions"] = 0
        try:
            lease = await self.client.create(spec, {ANNOTATION: "[]"})
        except Conflict:
            return  # someone created it first: follow it from the next cycle
        self.records = {}
        self._become_leader(lease, sent)

    async def _take_over(self, lease: Lease) -> None:
        wall, sent = self.wall_clock(), self.clock()
        ours = lease.holder == self.identity
        spec = self._spec(wall, acquire=not ours)
        if not ours:
            spec["leaseTransitions"] = lease.transitions + 1
        # Before acting, take on what the previous leader recorded as run and spent.
        self.adopt([r for r in self.records.values() if r.by != self.identity])
        self._take_governor(lease)
        try:
            new = await self.client.update(lease.changed(spec, self._annotations(lease)))
        except Conflict:
            return
        self._become_leader(new, sent)

    async def _write(self) -> bool:
        """Renew, with the current records; the lease and the deadline move on."""
        assert self._lease is not None
        sent = self.clock()
        spec = {"renewTime": micro_time(self.wall_clock())}
        try:
            lease = await self.client.update(
                self._lease.changed(spec, self._annotations(self._lease))
            )
        except Conflict:
            self._lose("the lease was changed by another replica (409 Conflict)")
            return False
        except KubeError:
            self._uncertain = True  # it may have been written: read it before the next write
            raise
        self._lease = lease
        self._observed_version, self._observed_at = lease.resource_version, self.clock()
        if self._leading:
            self._valid_until = sent + self.timing.renew_deadline
        return self._leading

    def _become_leader(self, lease: Lease, sent: float) -> None:
        self._lease = lease
        self._observed_version, self._observed_at = lease.resource_version, self.clock()
        self._leading = True
        self._uncertain = False
        self._valid_until = sent + self.timing.renew_deadline
        self.holder = self.identity
        self._log.info("leader election: became the leader; this replica runs the actions")

    def _lose(self, why: str) -> None:
        if self._leading:
            self._log.warning("leader election: lost the lease ({}); actions stop here", why)
        self._leading = False
        self._valid_until = -math.inf

    def _follow(self, holder: str) -> None:
        if holder != self.holder:
            self.holder = holder
            if holder and holder != self.identity:
                self._log.bind(leader=holder).info(
                    "leader election: following {}; it runs the actions", holder
                )

    def _spec(self, wall: float, *, acquire: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.timing.lease_duration)),
            "renewTime": micro_time(wall),
        }
        if acquire:
            spec["acquireTime"] = micro_time(wall)
        return spec

    def _annotations(self, lease: Lease) -> dict[str, str]:
        """``lease``'s annotations with the current records, pruned: a record stays while
        its series is still breached here, or for ``KEEP_RESOLVED``."""
        wall = self.wall_clock()
        kept = [
            record
            for record in self.records.values()
            if wall - record.at < KEEP_RESOLVED or self.still_active(record)
        ]
        self.records = {record.key: record for record in kept}
        annotations = dict(lease.annotations)
        annotations[ANNOTATION], dropped = encode_records(kept)
        if dropped:
            self._full.report(self.clock(), f"action record full, {dropped} oldest left out")
        if self.share is not None:
            text, left_out = encode_governor(self.share())
            annotations[GOVERNOR_ANNOTATION] = text
            if left_out:
                self._full.report(self.clock(), f"governor record full: {left_out} left out")
        return annotations

    def _take_governor(self, lease: Lease) -> None:
        text = lease.annotations.get(GOVERNOR_ANNOTATION)
        if self.take is None or not text:
            return
        try:
            shared = json.loads(text)
        except ValueError:
            return
        if isinstance(shared, dict) and shared.get("by") != self.identity:
            self.take(shared)


OPEN_APPROVALS = ("pending", "approved")


def encode_governor(state: dict[str, Any]) -> tuple[str, str]:
    """The governor annotation's text within ``MAX_GOVERNOR_BYTES``, and what had to be left
    out for it ("" when nothing): the silences, then the approval requests answered (those
    pending or approved, which are still to run, stay)."""
    text = json.dumps(state, separators=(",", ":"))
    if len(text.encode()) <= MAX_GOVERNOR_BYTES:
        return text, ""
    silences = state.get("silences") or []
    state = {**state, "silences": []}
    text = json.dumps(state, separators=(",", ":"))
    if len(text.encode()) <= MAX_GOVERNOR_BYTES:
        return text, f"{len(silences)} silences"
    approvals = state.get("approvals") or []
    kept = [a for a in approvals if isinstance(a, dict) and a.get("state") in OPEN_APPROVALS]
    state = {**state, "approvals": kept}
    text = json.dumps(state, separators=(",", ":"))
    return text, f"{len(silences)} silences, {len(approvals) - len(kept)} approvals answered"


@dataclass
class _Claim:
    record: ActionRecord
    done: bool = False
    ok: bool = False
