"""The governor over HTTP: silences as Alertmanager's API v2 serves them, so ``amtool``
works against the service, and the pause switch.

- ``GET /api/v2/silences`` (``filter`` matchers, repeated; ``active``, ``pending``,
  ``expired`` booleans), ``POST /api/v2/silences`` (a new silence, or with an ``id`` that
  one changed: ``{"silenceID": ...}``), ``GET`` and ``DELETE /api/v2/silence/{id}`` (delete
  expires it), ``GET /api/v2/status`` (what ``amtool`` asks before each command): the
  shapes, statuses and messages of Alertmanager's ``api/v2/openapi.yaml`` and ``api.go``.
- ``GET /api/pause`` (the switch's state), ``POST /api/pause`` (JSON or a form: ``for``, a
  duration, none: until resumed; ``reason``; ``by``) and ``POST /api/resume``.
- ``/api/approvals``: the approval requests, and their answers (``_approvals_api``, which
  asks a bearer token too).

Reads are always allowed. A change is refused with ``403`` unless ``ENABLE_LIFECYCLE``
(as ``/-/reload``), and from another site by ``_writes`` before it gets here; each change
is saved in the state file before it is answered.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .. import __version__
from .._config import parse_matcher, parse_prometheus_duration
from .._core import LabelMatcher, MatchOp, logger, utf8
from .._engine import Governor, Silence
from . import _approvals_api
from ._approvals_api import ApprovalsApi
from ._governor_doc import pause_doc, rfc3339
from ._messages import Request, Response
from ._view import ServiceView

AM_STATUS = "/api/v2/status"
SILENCES = "/api/v2/silences"
SILENCE = "/api/v2/silence/"
PAUSE = "/api/pause"
RESUME = "/api/resume"
MAX_BODY = 64 * 1024
"""Longest request body taken (a silence, a pause); longer is ``413``."""
WRITES_OFF = (
    "changing silences and the pause over HTTP is off: set ENABLE_LIFECYCLE=true "
    "(enable_lifecycle = true in CONFIG_FILE) to allow it"
)
_PAUSE_FIELDS = ("for", "reason", "by")


def handles(path: str) -> bool:
    """Whether ``path`` is one of the governor's endpoints."""
    return (
        path in (AM_STATUS, SILENCES, PAUSE, RESUME)
        or path.startswith(SILENCE)
        or _approvals_api.handles(path)
    )


def takes_body(request: Request) -> bool:
    """Whether the server reads the body of ``request`` (of at most ``MAX_BODY`` bytes)."""
    if _approvals_api.takes_body(request):
        return True
    return request.method in ("POST", "PUT") and request.path in (SILENCES, PAUSE, RESUME)


class BadInput(ValueError):
    """A request the endpoint refuses with ``400``: the message is one line."""


def _json(status: int, document: object) -> Response:
    body = json.dumps(document, allow_nan=False, ensure_ascii=False)
    return Response(status, utf8(body + "\n"), "application/json")


def _text(status: int, text: str, **headers: str) -> Response:
    return Response(status, utf8(text + "\n"), headers=dict(headers))


def _not_allowed(*methods: str) -> Response:
    allowed = ", ".join(methods)
    return _text(405, f"only {allowed} allowed here", Allow=allowed)


class GovernorApi:
    def __init__(
        self,
        service: ServiceView,
        enable_lifecycle: bool,
        clock: Callable[[], float] = time.time,
        approval_token_file: Path | None = None,
    ) -> None:
        self.service = service
        self.enable_lifecycle = enable_lifecycle
        self.clock = clock
        self.started = clock()
        self.approvals = ApprovalsApi(
            lambda: service.governor,
            enable_lifecycle,
            approval_token_file,
            service.governor_ready,
            service.governor_changed,
            clock,
        )

    @property
    def governor(self) -> Governor:
        return self.service.governor

    async def answer(self, request: Request) -> Response:
        """The response to ``request`` for one of the paths ``handles`` takes."""
        path, method = request.path, request.method
        reading = method in ("GET", "HEAD")
        if _approvals_api.handles(path):
            return await self.approvals.answer(request)
        if path == AM_STATUS:
            return self.am_status() if reading else _not_allowed("GET", "HEAD")
        allowed: tuple[str, ...]
        if path == SILENCES:
            allowed = ("GET", "HEAD", "POST")
        elif path.startswith(SILENCE):
            allowed = ("GET", "HEAD", "DELETE")
        elif path == PAUSE:
            allowed = ("GET", "HEAD", "POST")
        else:
            allowed = ("POST",)
        if method not in allowed:
            return _not_allowed(*allowed)
        if not reading and not self.enable_lifecycle:
            return _text(403, WRITES_OFF)
        if not reading and not await self.service.governor_ready():
            return _text(503, "starting: the state file is still being restored; try again\n")
        try:
            if path == SILENCES:
                return self.list_silences(request) if reading else await self.post_silence(request)
            if path.startswith(SILENCE):
                silence_id = path[len(SILENCE) :]
                if reading:
                    return self.get_silence(silence_id)
                return await self.expire_silence(silence_id)
            if path == PAUSE and reading:
                return _json(200, self.pause_state())
            if path == PAUSE:
                return await self.pause(request)
            return await self.resume(request)
        except BadInput as exc:
            return _json(400, str(exc)) if path.startswith("/api/v2/") else _text(400, str(exc))

    # --- Alertmanager's API v2 --------------------------------------------------------------

    def am_status(self) -> Response:
        """What ``amtool`` reads first: the version (it warns when its own differs), no
        cluster, no Alertmanager configuration."""
        return _json(
            200,
            {
                "cluster": {"status": "disabled", "peers": []},
                "versionInfo": {
                    "version": __version__,
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "",
                },
                "config": {"original": ""},
                "uptime": rfc3339(self.started),
            },
        )

    def list_silences(self, request: Request) -> Response:
        params = _query(request.query)
        try:
            wanted = [parse_matcher(text) for text in params.get("filter", [])]
        except ValueError as exc:
            raise BadInput(f"bad matcher format: {exc}") from None
        states = {
            state
            for state in ("active", "pending", "expired")
            if _boolean(params.get(state, ["true"])[-1], state)
        }
        now = self.clock()
        self.governor.silences.forget_old(now)
        listed = [
            silence
            for silence in self.governor.silences
            if silence.state(now) in states and _filtered(silence, wanted)
        ]
        listed.sort(key=lambda s: _sort_key(s, now))
        return _json(200, [silence_json(silence, now) for silence in listed])

    def get_silence(self, silence_id: str) -> Response:
        silence = self.governor.silences.get(silence_id)
        if silence is None:
            return _json(404, f"silence {silence_id} not found")
        return _json(200, silence_json(silence, self.clock()))

    async def expire_silence(self, silence_id: str) -> Response:
        """Alertmanager's answers: ``404`` for an unknown id, ``500`` (its ``already
        expired`` error) for one that has ended."""
        try:
            silence = self.governor.silences.expire(silence_id, self.clock())
        except LookupError:
            return _json(404, f"silence {silence_id} not found")
        except ValueError as exc:
            return _json(500, str(exc))
        logger.bind(silence=silence.id).info("silence {} expired", silence.id)
        await self.service.governor_changed()
        return Response(200, b"", "application/json")

    async def post_silence(self, request: Request) -> Response:
        """Alertmanager's ``Set``: a silence with an ``id`` is changed in place when its
        matchers stay and its times allow it; otherwise it is expired and a new one (a new
        id) takes its place. A new silence starting in the past starts now."""
        given = _json_body(request)
        if not isinstance(given, dict):
            raise BadInput("the body must be a JSON object: a postableSilence")
        for key in ("matchers", "startsAt", "endsAt", "createdBy", "comment"):
            if key not in given:
                raise BadInput(f"{key} in body is required")
        matchers = _matchers(given["matchers"])
        starts, ends = _time(given["startsAt"], "startsAt"), _time(given["endsAt"], "endsAt")
        created_by, comment = _string(given, "createdBy"), _string(given, "comment")
        silence_id = given.get("id") or None
        if silence_id is not None and not isinstance(silence_id, str):
            raise BadInput("id in body must be of type string")
        if starts >= ends:
            raise BadInput("Failed to create silence: start time must be before end time")
        now = self.clock()
        if ends < now:
            raise BadInput("Failed to create silence: end time can't be in the past")
        silences = self.governor.silences
        try:
            if silence_id is not None:
                old = silences.get(silence_id)
                if old is None:
                    return _json(404, "silence not found")
                if _can_update(old, matchers, starts, ends, now):
                    silence = silences.put(
                        matchers, starts, ends, created_by, comment, now, silence_id
                    )
                    return await self._saved(silence, "changed")
                if old.state(now) != "expired":
                    silences.expire(silence_id, now)
            silence = silences.put(matchers, max(starts, now), ends, created_by, comment, now)
        except ValueError as exc:
            raise BadInput(f"invalid silence: {exc}") from None
        return await self._saved(silence, "created")

    async def _saved(self, silence: Silence, done: str) -> Response:
        who = f" by {silence.created_by}" if silence.created_by else ""
        logger.bind(silence=silence.id).info(
            "silence {} {}{}: {{{}}} until {}",
            silence.id,
            done,
            who,
            ", ".join(str(m) for m in silence.matchers),
            rfc3339(silence.ends_at),
        )
        await self.service.governor_changed()
        return _json(200, {"silenceID": silence.id})

    # --- the pause switch ----------------------------------------------------------------

    def pause_state(self) -> dict[str, object]:
        doc = pause_doc(self.governor.paused(self.clock()))
        return {"paused": False} if doc is None else {"paused": True, **doc}

    async def pause(self, request: Request) -> Response:
        given = _fields(request)
        unknown = sorted(set(given) - set(_PAUSE_FIELDS))
        if unknown:
            raise BadInput(f"unknown field {unknown[0]!r}: give for, reason and by")
        for_text = given.get("for", "").strip()
        now = self.clock()
        until = None
        if for_text:
            try:
                lasting = parse_prometheus_duration(for_text)
            except ValueError as exc:
                raise BadInput(f"for {for_text!r}: {exc}") from None
            if lasting <= 0:
                raise BadInput("for must be more than 0 (leave it out: until resumed)")
            until = now + lasting
        self.governor.set_pause(now, until, given.get("reason", ""), given.get("by", ""))
        await self.service.governor_changed()
        return _json(200, self.pause_state())

    async def resume(self, request: Request) -> Response:
        was = self.governor.resume(self.clock())
        await self.service.governor_changed()
        return _json(200, {"paused": False, "resumed": was})


# --- reading requests -------------------------------------------------------------------------


def _query(query: str) -> dict[str, list[str]]:
    try:
        return parse_qs(query, keep_blank_values=True, max_num_fields=100)
    except ValueError:
        raise BadInput("too many query parameters") from None


def _boolean(text: str, name: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise BadInput(f"{name} must be true or false, got {text!r}")


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"the body is not JSON: {exc}") from None


def _fields(request: Request) -> dict[str, str]:
    """A form (``for=1h&reason=...``) or a JSON object of strings."""
    if request.header("Content-Type").split(";")[0].strip().lower() == "application/json":
        given = _json_body(request)
        if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
            raise BadInput('the body must be a JSON object of strings: {"for": "1h", ...}')
        return given
    try:
        form = parse_qs(request.body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise BadInput("the body is not a form (for=1h&reason=...) nor JSON") from None
    return {name: values[-1] for name, values in form.items()}


def _string(given: Mapping[str, Any], key: str) -> str:
    value = given[key]
    if not isinstance(value, str):
        raise BadInput(f"{key} in body must be of type string")
    return value


def _time(value: object, key: str) -> float:
    if not isinstance(value, str):
        raise BadInput(f"{key} in body must be of type date-time (RFC 3339)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{key} in body must be of type date-time (RFC 3339): {value!r}") from None
    if moment.tzinfo is None:
        raise BadInput(f"{key} in body must give its time zone (Z or +01:00): {value!r}")
    at = moment.timestamp()
    if not math.isfinite(at):
        raise BadInput(f"{key} in body is out of range: {value!r}")
    return at


def _matchers(value: object) -> tuple[LabelMatcher, ...]:
    if not isinstance(value, list) or not value:
        raise BadInput("matchers in body should have at least 1 items")
    matchers = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadInput(f"matchers.{index} in body must be of type object")
        name, text = item.get("name"), item.get("value")
        regex, equal = item.get("isRegex"), item.get("isEqual", True)
        if not isinstance(name, str) or not isinstance(text, str):
            raise BadInput(f"matchers.{index}: name and value are required strings")
        if not isinstance(regex, bool) or not isinstance(equal, bool):
            raise BadInput(f"matchers.{index}: isRegex is required and, as isEqual, a boolean")
        if not name:
            raise BadInput(f"matchers.{index}: invalid label name {name!r}")
        op = {
            (True, False): MatchOp.EQ,
            (False, False): MatchOp.NE,
            (True, True): MatchOp.RE,
            (False, True): MatchOp.NRE,
        }[equal, regex]
        try:
            matchers.append(LabelMatcher(name, op, text))
        except ValueError as exc:
            raise BadInput(f"failed to convert API silence to internal silence: {exc}") from None
    return tuple(matchers)


# --- answering ---------------------------------------------------------------------------------


def matcher_json(matcher: LabelMatcher) -> dict[str, object]:
    return {
        "isEqual": matcher.op in (MatchOp.EQ, MatchOp.RE),
        "isRegex": matcher.op in (MatchOp.RE, MatchOp.NRE),
        "name": matcher.name,
        "value": matcher.value,
    }


def silence_json(silence: Silence, now: float) -> dict[str, object]:
    """A ``gettableSilence``."""
    return {
        "id": silence.id,
        "status": {"state": silence.state(now)},
        "updatedAt": rfc3339(silence.updated_at),
        "comment": silence.comment,
        "createdBy": silence.created_by,
        "endsAt": rfc3339(silence.ends_at),
        "matchers": [matcher_json(m) for m in silence.matchers],
        "startsAt": rfc3339(silence.starts_at),
    }


def _filtered(silence: Silence, wanted: list[LabelMatcher]) -> bool:
    """Alertmanager's filter: each matcher asked for is one of the silence's (same name,
    operator and value), not a match of labels."""
    have = {(m.name, m.op, m.value) for m in silence.matchers}
    return all((m.name, m.op, m.value) in have for m in wanted)


def _sort_key(silence: Silence, now: float) -> tuple[int, float]:
    """Alertmanager's order: active (the next to end first), pending (the next to start
    first), expired (the latest ended first)."""
    state = silence.state(now)
    if state == "active":
        return 1, silence.ends_at
    if state == "pending":
        return 2, silence.starts_at
    return 3, -silence.ends_at


def _can_update(
    old: Silence, matchers: tuple[LabelMatcher, ...], starts: float, ends: float, now: float
) -> bool:
    """Alertmanager's ``canUpdate``: the same matchers; an active silence keeps its start
    and may not end in the past, a pending one may not start in the past; an expired one
    is never changed."""
    if [(m.name, m.op, m.value) for m in old.matchers] != [
        (m.name, m.op, m.value) for m in matchers
    ]:
        return False
    state = old.state(now)
    if state == "active":
        return abs(starts - old.starts_at) < 0.001 and ends >= now  # shown to the ms
    if state == "pending":
        return starts >= now
    return False
