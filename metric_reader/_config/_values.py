"""Value parsers: each takes what the user wrote (a string from the environment, or any
value of the rule file) and returns it parsed, or raises ``ValueError`` saying what is
expected. Numbers take ASCII digits only, as Go's ``strconv`` does."""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import re
import stat
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

from .._core import (
    LabelMatcher,
    Threshold,
    is_label_name,
    parse_duration,
    parse_label_filters,
    parse_threshold,
    remember_url_credentials,
)
from ._prom_duration import parse_prometheus_duration
from ._promql import promql_problem
from ._regular_file import open_regular_file

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.:\-]+")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_SHORTEST = 0.001
"""Durations below 1ms are refused: the shortest unit of Prometheus' durations, and more
than any timer here can keep to."""


def text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value.strip()


def promql(value: object) -> str:
    """A PromQL expression (``QUERY``), parsed as Prometheus parses it; ``""``: none."""
    expression = text(value)
    # Judged as written: PromQL's whitespace is narrower than str.strip's ("0\x1f").
    problem = promql_problem(str(value)) if expression else None
    if problem is not None:
        raise ValueError(f"could not parse expression: {problem}")
    return expression


def _quoted(expected: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {expected}, got {type(value).__name__} {value!r}")
    return value


def _any_duration(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    return parse_duration(_quoted('a duration string such as "30s"', value))


def duration(value: object) -> float:
    seconds = _any_duration(value)
    if 0 < seconds < _SHORTEST:
        raise ValueError("must be 0 or at least 1ms")
    return seconds


def positive_duration(value: object) -> float:
    seconds = _any_duration(value)
    if seconds < _SHORTEST:
        raise ValueError("must be at least 1ms, e.g. 1s")
    return seconds


def long_duration(value: object) -> float:
    """A positive duration in Go's syntax or Prometheus' (``30d``, ``2w``, ``1y``): how long
    something is kept."""
    given = _quoted('a duration string such as "30d"', value)
    try:
        seconds = parse_duration(given)
    except ValueError:
        try:
            seconds = parse_prometheus_duration(given)
        except ValueError:
            raise ValueError(
                "not a duration; expected e.g. 30d, 2w, 12h or 1h30m (units y, w, d, h, m, s, ms)"
            ) from None
    if seconds < _SHORTEST:
        raise ValueError("must be at least 1ms, e.g. 30d")
    return seconds


def threshold(value: object) -> Threshold:
    return parse_threshold(_quoted('a string such as ">80"', value))


def label_filters(value: object) -> tuple[LabelMatcher, ...]:
    return parse_label_filters(_quoted("a string of PromQL matchers", value))


_PLAIN_URL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<path>(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?)"
)
"""A URL httpx would give back as written: lowercase host name or IPv4, a port that is not
the scheme's own, a path of plain segments (none of them a dot segment), no query. Taken
without importing httpx (``metric-reader test``, the start-up time of ``check``)."""


def _plain_url(given: str) -> bool:
    match = _PLAIN_URL.fullmatch(given)
    if match is None:
        return False
    port = match["port"]
    if port is not None and (
        int(port) > 65535 or port == {"http": "80", "https": "443"}[match["scheme"]]
    ):
        return False
    labels = match["host"].split(".")
    if all(label.isdigit() for label in labels):  # an IPv4 address, written as httpx takes it
        return len(labels) == 4 and all(
            int(label) <= 255 and (label == "0" or not label.startswith("0")) for label in labels
        )
    return not labels[-1].isdigit()


def url(value: object) -> str:
    given = text(value)
    if _plain_url(given):
        return given
    remember_url_credentials(given)  # refused below, but never to be shown anywhere
    import httpx  # on first use, not with the configuration layer (start-up time)

    try:
        parsed = httpx.URL(given)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("expected an http:// or https:// URL with a host")
    if parsed.userinfo:
        # It would show in logs, check and /api/status; credentials go in their own settings.
        raise ValueError(
            "credentials in the URL are not accepted; use BASIC_AUTH_USERNAME with "
            "BASIC_AUTH_PASSWORD_FILE, or BEARER_TOKEN_FILE"
        )
    return str(parsed)


def external_labels(value: object) -> dict[str, str]:
    """``external_labels``: a TOML table of strings, or (``EXTERNAL_LABELS``) one string of
    ``name=value`` pairs separated by commas (a value with a comma: use the TOML table)."""
    expected = "expected name=value pairs separated by commas, e.g. region=eu,dc=x"
    pairs: list[tuple[object, object]] = []
    if isinstance(value, str):
        for item in value.split(","):
            name, equals, label_value = item.partition("=")
            if not equals and item.strip():
                raise ValueError(f"{item.strip()!r} has no '=': {expected}")
            if equals:
                pairs.append((name.strip(), label_value.strip()))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
        expected = 'expected a table of strings, e.g. {region = "eu"}'
    else:
        raise ValueError(expected)
    labels: dict[str, str] = {}
    for key, given in pairs:
        if not isinstance(key, str) or not is_label_name(key):
            raise ValueError(f"{key!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if not isinstance(given, str):
            raise ValueError(f"label {key}: {expected}")
        if key in labels:
            raise ValueError(f"label {key} given twice")
        labels[key] = given
    return labels


def external_url(value: object) -> str:
    """``EXTERNAL_URL``: an absolute http(s) URL, its path without a trailing ``/``, as
    Prometheus keeps ``--web.external-url``."""
    given = text(value)
    remember_url_credentials(given)  # refused below, but never to be shown anywhere
    parts = urllib.parse.urlsplit(given)
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not accepted: it is shown in alerts")
    url(given)  # refused as any URL setting is: not http(s), no host
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def _matching(value: object, pattern: re.Pattern[str], reason: str, longest: int = 0) -> str:
    """The text of ``value`` if ``pattern`` matches all of it (and it is at most ``longest``
    characters, if given)."""
    given = text(value)
    if (longest and len(given) > longest) or not pattern.fullmatch(given):
        raise ValueError(reason)
    return given


def metric_name(value: object) -> str:
    return _matching(
        value,
        _METRIC_NAME,
        "expected a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); "
        "use query for a PromQL expression",
    )


def rule_name(value: object) -> str:
    return _matching(value, _RULE_NAME, "expected letters, digits, '_', '.', ':' or '-'")


def plugin_name(value: object) -> str:
    given = text(value)
    if not given:
        raise ValueError("empty plugin name")
    return given


def choice(allowed: Mapping[str, str] | tuple[str, ...]) -> Callable[[object], str]:
    """A parser of one of ``allowed`` (any case); a mapping gives the value it maps to."""

    def parse(value: object) -> str:
        key = text(value).lower()
        if key not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return allowed[key] if isinstance(allowed, Mapping) else key

    return parse


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    given = text(value).lower()
    if given not in _BOOLEANS:
        raise ValueError("expected one of true, false, 1, 0, yes, no")
    return _BOOLEANS[given]


_ASCII_SPACE = " \t\r\n"
_MAX_WHOLE = 2**63 - 1
"""The largest whole number Go's strconv.Atoi reads (int64)."""
_DIGITS = re.compile(r"[0-9]{1,19}")
"""ASCII digits only, as Go's strconv.Atoi: Python's int() also takes ``1_0`` and the
digits of other scripts."""


def _whole_number(value: object, least: int, expected: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip(_ASCII_SPACE)):
        number = int(value.strip(_ASCII_SPACE))
    else:
        raise ValueError(expected)
    if not least <= number <= _MAX_WHOLE:
        raise ValueError(expected)
    return number


def positive_int(value: object) -> int:
    return _whole_number(value, 1, "expected a whole number of at least 1")


MAX_BREACH_WINDOW = 1000
"""The most evaluations ``breach_window`` may count: a level keeps (and saves) that many."""


def breach_window(value: object) -> int:
    """``breach_count`` and ``breach_window``: a number of evaluations."""
    expected = f"expected a whole number of evaluations from 1 to {MAX_BREACH_WINDOW}"
    number = _whole_number(value, 1, expected)
    if number > MAX_BREACH_WINDOW:
        raise ValueError(expected)
    return number


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def multiplier(value: object) -> float:
    """``backoff_multiplier``: a finite number of at least 1 (``2``, ``1.5``, ``"2"``)."""
    expected = "expected a number of at least 1, e.g. 2 or 1.5"
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip(_ASCII_SPACE)):
        value = value.strip(_ASCII_SPACE)
    elif not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(expected)
    try:
        number = float(value)
    except OverflowError:  # a whole number beyond any float
        number = math.inf
    if not 1 <= number < math.inf:
        raise ValueError(expected)
    return number


def shard_index(value: object) -> int:
    return _whole_number(value, 0, "expected a whole number of at least 0 (the first shard is 0)")


_BYTE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_BYTE_SIZE = re.compile(r"([0-9]{1,19})[ \t]*([a-zA-Z]*)")


def byte_size(value: object) -> int:
    """A number of bytes: ``67108864``, or with a binary unit, ``64MiB`` (KiB, MiB, GiB)."""
    expected = "expected a whole number of bytes of at least 1, e.g. 67108864 or 64MiB"
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _BYTE_SIZE.fullmatch(value.strip(_ASCII_SPACE))):
        unit = _BYTE_UNITS.get(match[2].lower())
        if unit is None:
            raise ValueError(f"{expected} (units: KiB, MiB, GiB)")
        number = int(match[1]) * unit
    else:
        raise ValueError(expected)
    if not 1 <= number <= _MAX_WHOLE:
        raise ValueError(expected)
    return number


_PORT = re.compile(r"[0-9]{1,5}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_ALLOWED_FORMS = (
    "expected host:port, :port (every interface) or [IPv6 address]:port, "
    "e.g. 127.0.0.1:9180, :9180, [::1]:9180"
)


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[IPv6]:port`` as ``(host, port)``.

    ``:port`` gives the host ``""``: every interface, IPv4 and IPv6. The port may be 0 (the
    system picks a free one). Anything else raises ``ValueError`` saying what is allowed.
    """
    address = address.strip()
    host, sep, port_text = address.rpartition(":")
    if not sep:
        if _PORT.fullmatch(address):
            raise ValueError(f"no host: write :{address} for every interface; {_ALLOWED_FORMS}")
        raise ValueError(f"no port: {_ALLOWED_FORMS}")
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise ValueError(f"port {port_text!r} is not a number from 0 to 65535: {_ALLOWED_FORMS}")
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"{inner!r} is not an IPv6 address: {_ALLOWED_FORMS}") from None
        host = inner
    elif host and not _HOST.fullmatch(host):
        hint = " (put an IPv6 address in brackets)" if ":" in host else ""
        raise ValueError(f"{host!r} is not a host name or address{hint}: {_ALLOWED_FORMS}")
    return host, int(port_text)


def listen_address(value: object) -> str:
    """``LISTEN_ADDRESS``: an address ``parse_listen_address`` reads, or ``off``."""
    given = text(value)
    if given.lower() == "off":
        return "off"
    try:
        parse_listen_address(given)
    except ValueError as exc:
        raise ValueError(f"{exc}; or off to serve nothing") from None
    return given


def globs(value: object) -> tuple[str, ...]:
    """``rule_files``: a TOML list of file patterns, or (``RULE_FILES``) one string of
    patterns separated by commas."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError('expected a list of file patterns, e.g. ["alerts/*.yml"]')
    patterns = tuple(item.strip() for item in items if item.strip())
    if not patterns:
        raise ValueError("expected at least one file pattern, e.g. alerts/*.yml")
    return patterns


def directory(value: object) -> Path:
    path = Path(text(value))
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    except OSError as exc:  # the operating system's words: they say what to fix
        raise ValueError(describe_dir_error(path, exc)) from None
    return path


def describe_dir_error(path: Path, exc: OSError) -> str:
    """Why the directory ``path`` cannot be used, with the operating system's own words."""
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return f"it is a symlink to {os.readlink(path)}, which does not exist"
        return f"does not exist ({exc})"
    if isinstance(exc, NotADirectoryError):
        return f"not a directory ({exc})"
    return f"cannot be listed ({exc})"


def state_file(value: object) -> Path:
    given = text(value)
    if "\0" in given:
        raise ValueError("a path cannot contain a NUL character")
    path = Path(given)
    if not path.name:
        raise ValueError("expected a file path")
    if path.is_dir():
        raise ValueError("is a directory; expected a file path")
    if not path.parent.is_dir():
        raise ValueError(f"no such directory: {path.parent}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"directory {path.parent} is not writable")
    return path


def readable_file(value: object) -> Path:
    path = Path(text(value))
    if not path.name:
        raise ValueError("expected a file path")
    if path.is_dir():
        raise ValueError("is a directory; expected a file")
    try:
        with open_regular_file(path):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from None
    return path


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def lease_name(value: object) -> str:
    return _matching(
        value,
        _DNS_SUBDOMAIN,
        "a Lease name is lower-case letters, digits, '-' and '.', starting and ending "
        "with a letter or digit (at most 253 characters)",
        longest=253,
    )


def namespace(value: object) -> str:
    return _matching(
        value,
        _DNS_LABEL,
        "a namespace is lower-case letters, digits and '-', starting and ending with a "
        "letter or digit (at most 63 characters)",
        longest=63,
    )


_ORDINAL = re.compile(r".+-(0|[1-9][0-9]*)")
"""A StatefulSet pod name: the set's name, ``-``, the ordinal (no leading zeros)."""


def ordinal_from_hostname(hostname: str) -> int | None:
    """The ordinal of a StatefulSet pod (``metric-reader-2`` -> 2), or None if the host name
    is not ``NAME-ORDINAL``. Only the first label of a dotted name counts
    (``metric-reader-2.metric-reader.monitoring.svc`` -> 2)."""
    first = hostname.strip().split(".", 1)[0]
    match = _ORDINAL.fullmatch(first)
    return int(match[1]) if match else None


_PERCENT = re.compile(r"[0-9]+(\.[0-9]+)?")


def breaching_limit(value: object) -> tuple[int | None, float | None]:
    """``max_breaching``: a whole number of series (at least 1) or a percentage of the
    rule's series (``"20%"``, more than 0 and at most 100)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        if not _PERCENT.fullmatch(number):  # ASCII digits only, as every number here
            raise ValueError('expected a number of series or a percentage such as "20%"')
        percent = float(number)
        if not 0 < percent <= 100:
            raise ValueError("a percentage must be more than 0% and at most 100%")
        return None, percent
    return _whole_number(value, 1, 'expected a number of series (at least 1) or "20%"'), None


def names(value: object) -> tuple[str, ...]:
    """A list of names (``["offhours", "weekends"]``; in the environment, comma-separated)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError('expected a list of names, e.g. ["offhours"]')
    found = tuple(item.strip() for item in items if item.strip())
    if len(found) != len(items) and not isinstance(value, str):
        raise ValueError("a name may not be empty")
    return found
