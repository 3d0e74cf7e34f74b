"""``metric-reader silence add|query|expire``, ``pause``, ``resume``, ``approve`` and
``deny``: the running service's silences, pause switch and approval requests, changed over
its HTTP API (``--url``; by default
where ``LISTEN_ADDRESS`` of the configuration says, else ``http://localhost:9180``).

Silences go through Alertmanager's API v2, as ``amtool`` sends them, and print as
``amtool`` prints them; the service must run with ``ENABLE_LIFECYCLE=true`` for a change.
A failure is one line on stderr and exit code 1; a mistake in the arguments, exit code 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .._config import (
    load_settings,
    parse_listen_address,
    parse_matcher,
    parse_prometheus_duration,
    read_credential,
)
from .._core import ConfigError, LabelMatcher, MatchOp
from ._exits import EXIT_CONFIG, EXIT_FATAL, EXIT_OK

DEFAULT_URL = "http://localhost:9180"
TIMEOUT = 10.0


class Failed(Exception):
    """One line for stderr; ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_FATAL) -> None:
        super().__init__(message)
        self.code = code


def governor_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    url = (args.url or default_url(env)).rstrip("/")
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            api = _Api(client, url)
            if args.governor == "pause":
                return _pause(api, args)
            if args.governor == "resume":
                return _resume(api)
            if args.governor in ("approve", "deny"):
                return _answer(api, args, env)
            if args.governor == "silence add":
                return _add(api, args)
            if args.governor == "silence query":
                return _query(api, args)
            return _expire(api, args.ids)
    except Failed as exc:
        print(f"metric-reader: {exc}", file=sys.stderr, flush=True)
        return exc.code


def default_url(env: Mapping[str, str]) -> str:
    """Where the configuration's ``LISTEN_ADDRESS`` says the service listens; on this
    machine when it listens on every interface."""
    try:
        address = load_settings(env, rules=False).listen_address
    except ConfigError:
        return DEFAULT_URL
    if address is None:
        return DEFAULT_URL
    host, port = parse_listen_address(address)
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class _Api:
    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The JSON answer; ``Failed`` saying why there is none."""
        try:
            response = self.client.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise Failed(
                f"cannot reach the service at {self.url} ({exc or type(exc).__name__}): is it "
                "running, and is --url (or LISTEN_ADDRESS) right?"
            ) from None
        if response.status_code == 200:
            return response.json() if response.content else None
        text = response.text.strip()
        try:
            said = json.loads(text)
            text = said if isinstance(said, str) else text
        except ValueError:
            pass
        text = text.splitlines()[0] if text else response.reason_phrase
        if response.status_code == 404 and not text.startswith(("silence", "approval")):
            text += " (is this a metric-reader with silences, and --url right?)"
        raise Failed(f"{self.url}{path}: {response.status_code} {text}")


def _matchers(texts: Sequence[str]) -> list[LabelMatcher]:
    """amtool's: each argument one matcher; a first one without ``=`` or ``!~`` is the
    alert name (``DiskFull``: ``alertname="DiskFull"``)."""
    texts = list(texts)
    if texts and "=" not in texts[0] and "!~" not in texts[0]:
        texts[0] = f"alertname={texts[0]}"
    matchers = []
    for text in texts:
        try:
            matchers.append(parse_matcher(text))
        except ValueError as exc:
            raise Failed(f"matcher {text!r}: {exc}", EXIT_CONFIG) from None
    return matchers


def _moment(text: str, flag: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Failed(f"{flag} {text!r}: expected an RFC 3339 time", EXIT_CONFIG) from None
    if moment.tzinfo is None:
        raise Failed(f"{flag} {text!r}: give the time zone (Z or +01:00)", EXIT_CONFIG)
    return moment.timestamp()


def _duration(text: str, flag: str) -> float:
    try:
        seconds = parse_prometheus_duration(text)
    except ValueError as exc:
        raise Failed(f"{flag} {text!r}: {exc}", EXIT_CONFIG) from None
    if seconds <= 0:
        raise Failed(f"{flag} must be more than 0", EXIT_CONFIG)
    return seconds


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _shown(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _add(api: _Api, args: argparse.Namespace) -> int:
    matchers = _matchers(args.matchers)
    starts = time.time() if args.start is None else _moment(args.start, "--start")
    ends = (
        _moment(args.end, "--end")
        if args.end is not None
        else starts + _duration(args.duration, "--duration")
    )
    if starts > ends:
        raise Failed("the silence cannot start after it ends", EXIT_CONFIG)
    answer = api.call(
        "POST",
        "/api/v2/silences",
        json={
            "matchers": [
                {
                    "name": m.name,
                    "value": m.value,
                    "isRegex": m.op in (MatchOp.RE, MatchOp.NRE),
                    "isEqual": m.op in (MatchOp.EQ, MatchOp.RE),
                }
                for m in matchers
            ],
            "startsAt": _stamp(starts),
            "endsAt": _stamp(ends),
            "createdBy": _user() if args.author is None else args.author,
            "comment": args.comment,
        },
    )
    print(answer["silenceID"])
    return EXIT_OK


def _query(api: _Api, args: argparse.Namespace) -> int:
    filters = [str(m) for m in _matchers(args.matchers)]
    listed = api.call("GET", "/api/v2/silences", params={"filter": filters})
    now = datetime.now(UTC)
    shown = [s for s in listed if (datetime.fromisoformat(s["endsAt"]) <= now) == args.expired]
    if args.quiet:
        for silence in shown:
            print(silence["id"])
    elif args.format == "json":
        print(json.dumps(shown))
    else:
        rows = [("ID", "Matchers", "Ends At", "Created By", "Comment")]
        for s in sorted(shown, key=lambda s: datetime.fromisoformat(s["endsAt"])):
            rows.append(
                (
                    s["id"],
                    " ".join(_matcher_text(m) for m in s["matchers"]),
                    _shown(s["endsAt"]),
                    s["createdBy"],
                    s["comment"],
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            print(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
    return EXIT_OK


def _matcher_text(matcher: Mapping[str, Any]) -> str:
    op = {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}[
        bool(matcher.get("isEqual", True)), bool(matcher["isRegex"])
    ]
    return str(LabelMatcher(matcher["name"], MatchOp(op), matcher["value"]))


def _expire(api: _Api, ids: Sequence[str]) -> int:
    for silence_id in ids:
        api.call("DELETE", f"/api/v2/silence/{silence_id}")
    return EXIT_OK


def _pause(api: _Api, args: argparse.Namespace) -> int:
    form = {"reason": args.reason, "by": _user()}
    if args.for_ is not None:
        _duration(args.for_, "--for")
        form["for"] = args.for_
    state = api.call("POST", "/api/pause", data=form)
    until = "resumed (metric-reader resume)" if state["until"] is None else _shown(state["until"])
    print(f"paused until {until}: no plugin is called")
    return EXIT_OK


def _resume(api: _Api) -> int:
    state = api.call("POST", "/api/resume")
    print(
        "resumed: owed calls run at their next evaluation" if state["resumed"] else "was not paused"
    )
    return EXIT_OK


def _answer(api: _Api, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``approve ID`` / ``deny ID``: with the bearer token of ``--token-file``, else of
    ``APPROVAL_TOKEN_FILE`` (the environment's or the configuration's)."""
    path = args.token_file
    if path is None:
        try:
            path = load_settings(env, rules=False).approval_token_file
        except ConfigError as exc:
            raise Failed(f"the configuration: {str(exc).splitlines()[0]}", EXIT_CONFIG) from None
    if path is None:
        raise Failed(
            "no token: give --token-file or set APPROVAL_TOKEN_FILE (the file the service "
            "reads its approval token from)",
            EXIT_CONFIG,
        )
    try:
        token = read_credential(Path(path), "APPROVAL_TOKEN_FILE")
    except ValueError as exc:
        raise Failed(str(exc), EXIT_CONFIG) from None
    request_id = args.id.strip()
    if not request_id or not all(ch in "0123456789abcdef" for ch in request_id):
        raise Failed(f"{args.id!r} is not an approval id (16 hex digits)", EXIT_CONFIG)
    answer = api.call(
        "POST",
        f"/api/approvals/{request_id}/{args.governor}",
        data={"by": _user()},
        headers={"Authorization": f"Bearer {token}"},
    )
    done = (
        "approved: it runs at the series' next evaluation"
        if answer["state"] == "approved"
        else "denied: not run in this breach"
    )
    print(f"{answer['kind']} of rule {answer['rule']} to plugin {answer['plugin']} {done}")
    return EXIT_OK


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
