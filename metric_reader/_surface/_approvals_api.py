"""The approval requests over HTTP (``mode = "approve"``, ``_engine._approvals``).

- ``GET /api/approvals``: the pending requests and the recent ones, newest first;
  ``GET /api/approvals/ID``: one.
- ``POST /api/approvals/ID/approve`` and ``POST /api/approvals/ID/deny`` (an optional form
  or JSON ``by``, who answered): what ``metric-reader approve ID`` and ``deny ID`` send.

An answer is a change, guarded as the others (``_governor_api``: ``ENABLE_LIFECYCLE``, and
``_writes``: no cross-site request), and more: it must carry ``Authorization: Bearer`` with
the token in ``APPROVAL_TOKEN_FILE`` (re-read when the file changes), compared in constant
time. Without that file the answers are refused with ``403`` saying so; a missing or wrong
token is ``401``. Only one answer takes a request: the next is ``409`` saying what became of
it, so two approvals sent at once run the call once. Each answer is saved in the state file
before it is answered.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs

from .._core import FetchError, logger, utf8
from .._engine import ApprovalRequest, Governor
from .._http import CredentialFile
from ._messages import Request, Response

APPROVALS = "/api/approvals"
TOKEN_VARIABLE = "APPROVAL_TOKEN_FILE"
NO_TOKEN_FILE = (
    "answering approval requests over HTTP is off: set APPROVAL_TOKEN_FILE (a file holding "
    "the bearer token that metric-reader approve and deny send)"
)
WRITES_OFF = (
    "answering approval requests over HTTP is off: set ENABLE_LIFECYCLE=true "
    "(enable_lifecycle = true in CONFIG_FILE) and APPROVAL_TOKEN_FILE to allow it"
)
_ANSWERS = {"approve": True, "deny": False}


def handles(path: str) -> bool:
    return path == APPROVALS or path.startswith(APPROVALS + "/")


def takes_body(request: Request) -> bool:
    return request.method == "POST" and handles(request.path)


def _json(status: int, document: object, **headers: str) -> Response:
    body = json.dumps(document, allow_nan=False, ensure_ascii=False)
    return Response(status, utf8(body + "\n"), "application/json", dict(headers))


def _text(status: int, text: str, **headers: str) -> Response:
    return Response(status, utf8(text + "\n"), headers=dict(headers))


class ApprovalsApi:
    def __init__(
        self,
        governor: Callable[[], Governor],
        enable_lifecycle: bool,
        token_file: Path | None,
        ready: Callable[[], Awaitable[bool]],
        changed: Callable[[], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._governor = governor
        self.enable_lifecycle = enable_lifecycle
        self.token = CredentialFile(token_file, TOKEN_VARIABLE) if token_file is not None else None
        self._ready = ready
        self._changed = changed
        self._clock = clock

    async def answer(self, request: Request) -> Response:
        path, method = request.path, request.method
        rest = path[len(APPROVALS) :].strip("/")
        parts = rest.split("/") if rest else []
        if len(parts) <= 1:
            if method not in ("GET", "HEAD"):
                return _text(405, "only GET and HEAD allowed here", Allow="GET, HEAD")
            return self.listing() if not parts else self.one(parts[0])
        if len(parts) != 2 or parts[1] not in _ANSWERS:
            return _text(404, "not found: POST /api/approvals/ID/approve or .../deny")
        if method != "POST":
            return _text(405, "only POST allowed here", Allow="POST")
        if not self.enable_lifecycle:
            return _text(403, WRITES_OFF)
        if self.token is None:
            return _text(403, NO_TOKEN_FILE)
        refusal = self._unauthorized(request)
        if refusal is not None:
            return refusal
        by = _by(request)
        if by is None:
            return _text(400, 'the body must be a form (by=NAME) or a JSON object {"by": NAME}')
        if not await self._ready():
            return _text(503, "starting: the state file is still being restored; try again")
        governor = self._governor()
        try:
            decided = governor.approvals.decide(parts[0], _ANSWERS[parts[1]], self._clock(), by)
        except LookupError:
            return _json(404, f"approval {parts[0]} not found")
        except ValueError as exc:
            return _json(409, str(exc))
        who = f" by {by}" if by else ""
        logger.bind(approval=decided.id, rule=decided.rule).warning(
            "approval {} {}{}: the {} to plugin {}",
            decided.id,
            decided.state,
            who,
            decided.kind,
            decided.plugin,
        )
        await self._changed()
        return _json(200, decided.as_dict())

    def _unauthorized(self, request: Request) -> Response | None:
        assert self.token is not None
        try:  # read again when the file changes; the last good token stays meanwhile
            expected = self.token.current()
        except FetchError:  # never read: the problem is in the service's log
            return _text(403, f"{TOKEN_VARIABLE} cannot be read: see the service's log")
        given = request.header("Authorization")
        scheme, _, token = given.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="metric-reader approvals"'}
        if scheme.lower() != "bearer" or not token.strip():
            return _text(401, "an answer needs Authorization: Bearer <token>", **challenge)
        if not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return _text(401, "wrong bearer token", **challenge)
        return None

    def listing(self) -> Response:
        now = self._clock()
        requests = list(self._governor().approvals)
        pending = [r for r in requests if r.state == "pending" and now < r.expires]
        recent = [r for r in requests if r not in pending]
        return _json(
            200,
            {
                "pending": [r.as_dict() for r in _newest(pending)],
                "recent": [_shown(r, now) for r in _newest(recent)],
            },
        )

    def one(self, request_id: str) -> Response:
        found = self._governor().approvals.get(request_id)
        if found is None:
            return _json(404, f"approval {request_id} not found")
        return _json(200, _shown(found, self._clock()))


def _newest(requests: list[ApprovalRequest]) -> list[ApprovalRequest]:
    return sorted(requests, key=lambda r: r.created, reverse=True)


def _shown(request: ApprovalRequest, now: float) -> dict[str, object]:
    shown = request.as_dict()
    if request.state == "pending" and now >= request.expires:
        shown["state"] = "expired"  # recorded as such at the series' next evaluation
    return shown


def _by(request: Request) -> str | None:
    """Who answered: ``by`` of a form or a JSON object; "" without a body; None: a body that
    is neither."""
    body = request.body.strip()
    if not body:
        return ""
    if request.header("Content-Type").split(";")[0].strip().lower() == "application/json":
        try:
            given = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(given, dict) or not isinstance(given.get("by", ""), str):
            return None
        return str(given.get("by", ""))[:200]
    try:
        form = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=5)
    except (UnicodeDecodeError, ValueError):
        return None
    return form.get("by", [""])[-1][:200]
