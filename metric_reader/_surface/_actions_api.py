"""``GET /api/actions``: the action history, newest first, as JSON.

``?since=`` a duration back from now (``1h``, ``7d``) or an RFC 3339 time, ``&rule=NAME``,
``&outcome=`` one of ``executed``, ``failed``, ``timed_out``, ``suppressed``, ``shadow``,
``&limit=N`` (``DEFAULT_ACTIONS``, at most ``MAX_ACTIONS``). A rule need not exist now: the
history keeps the actions of rules removed since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from .._config import MOMENT_HELP, parse_moment
from .._core import OUTCOMES, utf8
from ._messages import Response
from ._view import ActionLog

DEFAULT_ACTIONS = 100
MAX_ACTIONS = 1000
RECENT_ACTIONS = 20
"""Rows of the status page's "recent actions" table."""


class BadActionsQuery(ValueError):
    """A query string ``/api/actions`` cannot answer; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ActionsQuery:
    since: float | None = None
    rule: str | None = None
    outcome: str | None = None
    limit: int = DEFAULT_ACTIONS


def actions_query(query: str, now: float) -> ActionsQuery:
    """``query`` (the URL's query string) read at wall-clock ``now``; ``BadActionsQuery``."""
    try:
        params = parse_qs(query, strict_parsing=False, max_num_fields=20)
    except ValueError:
        raise BadActionsQuery("too many query parameters") from None
    given = {name: values[-1] for name, values in params.items()}
    unknown = sorted(set(given) - {"since", "rule", "outcome", "limit"})
    if unknown:
        raise BadActionsQuery(
            f"unknown parameter {unknown[0]!r}: use since, rule, outcome and limit"
        )
    since = None
    if "since" in given:
        try:
            since = parse_moment(given["since"], now)
        except ValueError:
            raise BadActionsQuery(f"since {given['since']!r}: expected {MOMENT_HELP}") from None
    outcome = given.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise BadActionsQuery(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    text = given.get("limit", str(DEFAULT_ACTIONS))
    if not text.isascii() or not text.isdigit() or len(text) > 9 or not int(text):
        raise BadActionsQuery(f"limit must be a whole number from 1, got {text!r}")
    return ActionsQuery(since, given.get("rule"), outcome, min(int(text), MAX_ACTIONS))


def actions_response(log: ActionLog, query: str, now: float) -> Response:
    """The ``/api/actions`` answer: ``{"actions": [...]}``, or ``400`` with one line."""
    try:
        asked = actions_query(query, now)
    except BadActionsQuery as exc:
        return Response(400, utf8(f"{exc}\n"))
    entries = log.query(asked.since, asked.rule, asked.outcome, asked.limit)
    document = {"actions": [entry.as_dict() for entry in entries]}
    body = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    return Response(200, utf8(body), "application/json")
