"""Ask before acting: the approval requests of rules and routes in ``mode = "approve"``.

The first time a fire or repeat is owed to a plugin in approve mode, the governor makes a
request of it (``ask``): an id (16 random hex digits, unguessable), what would run, and when
it expires (``approval_timeout``, 15 minutes by default). The request is told once to the
rule's or route's ``approval_plugin`` (an event of kind ``approval_request``; only logged
without one) and the call is suppressed with the reason ``approval``: it stays owed. Then:

- **approved** (``metric-reader approve ID``, ``POST /api/approvals/ID/approve``): the call
  runs at the series' next evaluation, once (``ran``): a second approval of the same request
  is refused, and the request is keyed by the call itself (series, level, kind and the
  count of calls of the breach that succeeded before it), so the next repeat is another
  call and asks again. Not by the breach's number, which each replica counts for itself:
  a request lives as long as the breach it was made in (it is finished when the series
  level is next seen OK), so a new leader that took the old one's requests finds them. A
  retry of the approved call after a failure is the same call: it needs no second approval.
- **denied**: the call is not made in this breach (it stays owed and held; the next breach
  asks again);
- **expired**: not answered within ``approval_timeout``: as denied, never run;
- **withdrawn**: the breach ended (or the rule went away) before it was run.

A resolve is never asked about: it only tells the plugins that took an approved fix that
the breach ended. Every step is an action-history row (``approval_requested``,
``approved``, ``denied``, ``expired``, ``withdrawn``). The requests are the governor's
state: kept in the state file and shared with the followers as budgets are, so an approval
runs its call once across a restart or a leader failover.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, cast

from .._core import (
    Event,
    HistoryEntry,
    Labels,
    Outcome,
    idempotency_key,
    iso_utc,
    record,
    record_replace,
)
from ._notice import Notice, Recorder
from ._state import Action, State

if TYPE_CHECKING:
    from ._rule import Rule

ApprovalState = Literal["pending", "approved", "ran", "denied", "expired", "withdrawn"]
OPEN: tuple[ApprovalState, ...] = ("pending", "approved")
RECENT_KEPT = 20
"""Finished requests listed in ``/api/approvals`` (and kept in the state file) besides those
that still hold a call."""

Key = tuple[str, Labels, str, str, int, str]


@record(slots=True)
class ApprovalRequest:
    """One owed call waiting for a person's answer."""

    id: str
    rule: str
    identity: str
    """The rule's ``identity_digest``: a rule a reload replaced by another never meets it."""
    series: Labels
    level: str
    breach: int
    kind: str
    fire_count: int
    plugin: str
    """The plugin the call goes to once approved."""
    approval_plugin: str
    """Where the request was sent (empty: only logged)."""
    summary: str
    link: str
    created: float
    expires: float
    value: float = math.nan
    threshold: str = ""
    state: ApprovalState = "pending"
    decided_at: float | None = None
    by: str = ""

    @property
    def key(self) -> Key:
        return _key(
            self.identity,
            self.series,
            self.level,
            self.kind,
            self.fire_count,
            self.plugin,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "state": self.state,
            "rule": self.rule,
            "series": dict(self.series),
            "level": self.level,
            "kind": self.kind,
            "plugin": self.plugin,
            "approval_plugin": self.approval_plugin,
            "summary": self.summary,
            "link": self.link,
            "created": iso_utc(self.created),
            "expires": iso_utc(self.expires),
            "decided": None if self.decided_at is None else iso_utc(self.decided_at),
            "by": self.by,
        }

    def export(self) -> dict[str, object]:
        return {
            "id": self.id,
            "rule": self.rule,
            "identity": self.identity,
            "series": dict(self.series),
            "level": self.level,
            "breach": self.breach,
            "kind": self.kind,
            "fire_count": self.fire_count,
            "plugin": self.plugin,
            "approval_plugin": self.approval_plugin,
            "summary": self.summary,
            "link": self.link,
            "created": self.created,
            "expires": self.expires,
            "value": None if math.isnan(self.value) else self.value,
            "threshold": self.threshold,
            "state": self.state,
            "decided_at": self.decided_at,
            "by": self.by,
        }


def request_of(kept: object) -> ApprovalRequest:
    """A request ``export`` wrote; ``ValueError`` when it cannot be used."""
    if not isinstance(kept, Mapping):
        raise ValueError("not an object")
    try:
        series = kept["series"]
        if not isinstance(series, Mapping):
            raise ValueError("series is not an object")
        state = str(kept["state"])
        if state not in ("pending", "approved", "ran", "denied", "expired", "withdrawn"):
            raise ValueError(f"unknown state {state!r}")
        value = kept.get("value")
        decided = kept.get("decided_at")
        return ApprovalRequest(
            id=str(kept["id"]),
            rule=str(kept["rule"]),
            identity=str(kept["identity"]),
            series=tuple(sorted((str(k), str(v)) for k, v in series.items())),
            level=str(kept["level"]),
            breach=int(kept["breach"]),
            kind=str(kept["kind"]),
            fire_count=int(kept["fire_count"]),
            plugin=str(kept["plugin"]),
            approval_plugin=str(kept.get("approval_plugin", "")),
            summary=str(kept.get("summary", "")),
            link=str(kept.get("link", "")),
            created=float(kept["created"]),
            expires=float(kept["expires"]),
            value=math.nan if value is None else float(value),
            threshold=str(kept.get("threshold", "")),
            state=cast(ApprovalState, state),
            decided_at=None if decided is None else float(decided),
            by=str(kept.get("by", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unusable approval request ({exc})") from None


def _key(identity: str, series: Labels, level: str, kind: str, count: int, plugin: str) -> Key:
    return (identity, tuple(sorted(series)), level, kind, count, plugin)


class Approvals:
    """The requests, by id; ``record`` takes each step's history row."""

    def __init__(self, record: Callable[[HistoryEntry], None]) -> None:
        self._record = record
        self._requests: dict[str, ApprovalRequest] = {}
        self._by_key: dict[Key, str] = {}
        self._recent: deque[str] = deque()
        self._new: list[ApprovalRequest] = []
        self.revision = 0
        """Counts the changes worth saving."""

    def __iter__(self) -> Iterator[ApprovalRequest]:
        return iter(list(self._requests.values()))

    def get(self, request_id: str) -> ApprovalRequest | None:
        return self._requests.get(request_id)

    # --- the governor's questions ----------------------------------------------------------

    def ask(
        self,
        rule: Rule,
        action: Action,
        plugin: str,
        approval_plugin: str | None,
        now: float,
    ) -> ApprovalRequest:
        """The request of the call of ``plugin`` for ``action``: made now (and told to
        ``approval_plugin`` once, see ``take_new``) the first time it is owed."""
        key = _key(
            rule.identity_digest,
            action.labels,
            action.level,
            action.kind,
            action.fire_count,
            plugin,
        )
        found = self._by_key.get(key)
        request = self._requests.get(found) if found is not None else None
        if request is not None:
            self._expire(request, now)
            return request
        import secrets  # here: it imports random, base64 and hmac, ~1.4 ms of every rule test

        request_id = secrets.token_hex(8)
        while request_id in self._requests:  # pragma: no cover - 64 random bits
            request_id = secrets.token_hex(8)
        guard = rule.config.guard
        series = "{" + ", ".join(f'{k}="{v}"' for k, v in action.labels) + "}"
        said = rule.annotations(action.labels, action.value).get("summary", "")
        level = "" if action.level == "base" else f" ({action.level} level)"
        summary = (
            f"{action.kind} of rule {rule.name}{level} for {series} to plugin {plugin} "
            f"waits for approval: metric-reader approve {request_id} (or deny); "
            f"expires at {_utc(now + guard.approval_timeout)}"
        ) + (f". {said}" if said else "")
        external = rule.config.external_url
        request = ApprovalRequest(
            id=request_id,
            rule=rule.name,
            identity=rule.identity_digest,
            series=key[1],
            level=action.level,
            breach=action.breach,
            kind=action.kind,
            fire_count=action.fire_count,
            plugin=plugin,
            approval_plugin=approval_plugin or "",
            summary=summary,
            link=f"{external}/#approval-{request_id}" if external else "",
            created=now,
            expires=now + guard.approval_timeout,
            value=action.value,
            threshold=rule.level(action.level).threshold.text,
        )
        self._requests[request_id] = request
        self._by_key[key] = request_id
        self._new.append(request)
        self.revision += 1
        self._step(request, "approval_requested", now, f"approval {request_id} requested")
        return request

    def ran(self, request: ApprovalRequest, now: float) -> None:
        """The approved call was handed out to run."""
        if request.state == "approved":
            request.state = "ran"
            self.revision += 1

    def take_new(self) -> list[ApprovalRequest]:
        """The requests made since last asked: each is told to its ``approval_plugin``."""
        new, self._new = self._new, []
        return new

    # --- a person's answer ---------------------------------------------------------------

    def decide(self, request_id: str, approve: bool, now: float, by: str = "") -> ApprovalRequest:
        """Approve or deny the pending request ``request_id``. ``LookupError``: there is none;
        ``ValueError``: it is not pending any more (the message says what became of it)."""
        request = self._requests.get(request_id)
        if request is None:
            raise LookupError(request_id)
        self._expire(request, now)
        if request.state != "pending":
            raise ValueError(f"approval {request_id} is {_said(request.state)}, not pending")
        request.state = "approved" if approve else "denied"
        request.decided_at = now
        request.by = by
        self.revision += 1
        who = f" by {by}" if by else ""
        if approve:
            detail = f"approval {request_id} approved{who}: runs at the series' next evaluation"
            self._step(request, "approved", now, detail)
        else:
            detail = f"approval {request_id} denied{who}: not run in this breach"
            self._step(request, "denied", now, detail)
        return request

    # --- keeping them current ------------------------------------------------------------

    def sweep(self, rule: Rule, now: float) -> None:
        """After an evaluation of ``rule``: expire the requests of it not answered in time,
        withdraw those whose breach ended, forget the finished ones of breaches over."""
        for request in list(self._requests.values()):
            if request.identity != rule.identity_digest or not self._holds(request):
                continue
            self._expire(request, now)
            if not _breach_goes_on(rule, request):
                self._withdraw(request, now, "the breach ended before it ran")
                self._finished(request)

    def keep_only(self, identities: set[str], now: float) -> None:
        """A reload: the requests of rules no longer configured are withdrawn."""
        for request in list(self._requests.values()):
            if request.identity not in identities and self._holds(request):
                self._withdraw(request, now, "its rule was removed or changed")
                self._finished(request)

    def _holds(self, request: ApprovalRequest) -> bool:
        """Whether ``request`` is the one of its call (not a finished one, kept to list)."""
        return self._by_key.get(request.key) == request.id

    def _withdraw(self, request: ApprovalRequest, now: float, why: str) -> None:
        if request.state not in OPEN:
            return
        request.state = "withdrawn"
        request.decided_at = now
        self.revision += 1
        self._step(request, "withdrawn", now, f"approval {request.id} withdrawn: {why}")

    def _expire(self, request: ApprovalRequest, now: float) -> bool:
        if request.state != "pending" or now < request.expires:
            return False
        request.state = "expired"
        request.decided_at = request.expires
        self.revision += 1
        self._step(request, "expired", now, f"approval {request.id} expired unanswered: not run")
        return True

    def _finished(self, request: ApprovalRequest) -> None:
        """The breach of ``request`` is over: it holds its call no more (a denied or
        expired one held it until now) and is only listed, among the recent ones."""
        self._by_key.pop(request.key, None)
        self._recent.append(request.id)
        self.revision += 1
        while len(self._recent) > RECENT_KEPT:
            self._requests.pop(self._recent.popleft(), None)

    # --- the state file ------------------------------------------------------------------

    def export(self) -> list[dict[str, object]]:
        return [request.export() for request in self._requests.values()]

    def restore(self, kept: list[object], replace: bool = False) -> list[str]:
        """Take the requests a state file kept (``replace``: only those, a follower taking
        the leader's); one that cannot be used is skipped with a line saying so. A request
        known here that was answered keeps its answer (a restart never reopens one)."""
        notes = []
        if replace:
            self._requests.clear()
            self._by_key.clear()
            self._recent.clear()
            self._new.clear()
        for item in kept:
            try:
                request = request_of(item)
            except ValueError as exc:
                notes.append(f"governor.approvals: {exc}: not restored")
                continue
            mine = self._requests.get(request.id)
            if mine is not None and _rank(mine.state) >= _rank(request.state):
                continue
            self._requests[request.id] = request
            if request.state in OPEN or request.state in ("denied", "expired", "ran"):
                self._by_key[request.key] = request.id
            else:
                self._recent.append(request.id)
        return notes

    def _step(self, request: ApprovalRequest, outcome: Outcome, now: float, detail: str) -> None:
        self._record(
            HistoryEntry(
                at=now,
                rule=request.rule,
                series=dict(request.series),
                plugin=request.plugin,
                kind=request.kind,
                outcome=outcome,
                detail=detail,
                value=request.value,
                threshold=request.threshold,
                level=request.level,
            )
        )


def _rank(state: ApprovalState) -> int:
    return 0 if state == "pending" else 1 if state == "approved" else 2


def _breach_goes_on(rule: Rule, request: ApprovalRequest) -> bool:
    series = rule.series.get(request.series)
    if series is None:
        return False
    machine = series.level(request.level)
    return machine is not None and machine.state is not State.OK


def _said(state: ApprovalState) -> str:
    return "approved and run" if state == "ran" else state


def _utc(at: float) -> str:
    if not math.isfinite(at):
        return str(at)
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class ApprovalNotice(Notice):
    """The one call an approval request makes: its ``approval_plugin`` told, with the id,
    the summary and the link (only logged without one). It is not retried (the request
    stays answerable however the notice went; a paused service asks nothing), and it counts
    for the plugin's breaker."""

    __slots__ = ("_governor", "_plugins", "at", "request", "rule", "wall")

    def __init__(self, governor: Recorder, request: ApprovalRequest, rule: Rule, at: float) -> None:
        self.rule = rule
        self.request = request
        self.at = at
        self.wall = request.created
        self._governor = governor
        plugin = request.approval_plugin or None
        self._plugins = [plugin]  # a paused service makes no approval request

    def event(self, plugin: str | None, now: float, wall: datetime | None = None) -> Event:
        """The event of the call it asks about (the same labels), of kind
        ``approval_request``, with the request's id, summary, link and expiry as
        annotations (over the alert's own)."""
        request, rule = self.request, self.rule
        created = datetime.fromtimestamp(request.created, UTC)
        asked = Action(
            labels=request.series,
            level="hard" if request.level == "hard" else "base",
            kind="fire" if request.kind == "fire" else "repeat",
            value=request.value,
            active_at=self.at,
            duration=0.0,
            fire_count=request.fire_count,
            breach=request.breach,
            started_at=self.at,
        )
        base = rule.event(asked, self.at, plugin or "", created)
        return record_replace(
            base,
            kind="approval_request",
            annotations={
                **base.annotations,
                "summary": request.summary,
                "approval_id": request.id,
                "approval_url": request.link,
                "approval_expires": iso_utc(request.expires),
                "approval_for": f"{request.kind} to plugin {request.plugin}",
            },
            idempotency_key=idempotency_key(
                rule.name,
                dict(request.series),
                request.level,
                created,
                request.breach,
                asked.kind,
                request.fire_count,
                f"approval:{request.id}",
            ),
            generator_url=request.link or base.generator_url,
        )

    def _record(
        self, plugin: str | None, outcome: Outcome, reason: str = "", detail: str = ""
    ) -> None:
        request = self.request
        self._governor.record(
            HistoryEntry(
                at=self.wall,
                rule=request.rule,
                series=dict(request.series),
                plugin=plugin or "",
                kind="approval_request",
                outcome=outcome,
                reason=reason,
                detail=detail
                or f"approval {request.id} for the {request.kind} to {request.plugin}",
                value=request.value,
                threshold=request.threshold,
                level=request.level,
            )
        )
