"""``ClientConfig`` from the settings given: each value parsed, the combinations checked
(both halves of mutual TLS, one kind of ``Authorization``), certificates, keys and
credential files tried, so a mistake is found before any poll."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from ._client import ClientConfig, Secret, build_ssl_context, read_credential
from ._problems import Given, Problems, env_name
from ._regular_file import open_regular_file
from ._values import boolean, readable_file, text

CLIENT_FILE_KEYS = (
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "bearer_token_file",
    "basic_auth_password_file",
)
CLIENT_KEYS = (
    *CLIENT_FILE_KEYS,
    "tls_insecure_skip_verify",
    "basic_auth_username",
    "basic_auth_password",
    "http_headers",
)
"""How every endpoint is reached (TLS, credentials, headers): built by ``client_config``."""

_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "expect",
    }
)
"""Headers the HTTP client manages itself: HTTP_HEADERS may not set them."""
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADERS_EXAMPLE = '{"X-Scope-OrgID": "tenant-1"}'


def username(value: object) -> str:
    given = text(value)
    if ":" in given or any(not ch.isprintable() for ch in given):
        raise ValueError("a basic auth user name cannot contain ':' or control characters")
    return given


def http_headers(value: object) -> tuple[tuple[str, Secret], ...]:
    """A JSON object of strings (a TOML table in the rule file). Messages name headers,
    never their values."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:  # its message has a position, not the text
            raise ValueError(
                f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                f"expected an object of strings, e.g. {_HEADERS_EXAMPLE}"
            ) from None
        except (ValueError, RecursionError):
            raise ValueError(f"not valid JSON; expected e.g. {_HEADERS_EXAMPLE}") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected an object (a table) of strings, e.g. {_HEADERS_EXAMPLE}")
    headers: list[tuple[str, Secret]] = []
    seen: set[str] = set()
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError("a header name is not a valid HTTP header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name} is managed by the HTTP client and cannot be set")
        if name.lower() in seen:
            raise ValueError(f"header {name} is given twice")
        if not isinstance(header_value, str):
            raise ValueError(f"the value of header {name} must be a string")
        if not all(ch == "\t" or 32 <= ord(ch) <= 126 for ch in header_value):
            raise ValueError(f"the value of header {name} must be printable ASCII on one line")
        seen.add(name.lower())
        headers.append((name, Secret(header_value.strip(" \t"))))
    return tuple(headers)


def _ssl_context_to_check(config: ClientConfig) -> bool:
    """Whether building the TLS context can find a mistake in the settings: files given.
    Otherwise it is the default one, and loading its certificates (tens of milliseconds:
    ``check --no-read`` and a rule test, which make no request, spare them) is left to the
    first client; ``SSL_CERT_FILE`` is looked at cheaply instead (``_cert_store_problem``)."""
    return config.ca_file is not None or config.cert_file is not None or config.key_file is not None


_PEM_MARKERS = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN TRUSTED CERTIFICATE-----")


def _cert_store_problem(environ: Mapping[str, str]) -> str | None:
    """Why the ``SSL_CERT_FILE`` of ``environ`` cannot be the default trust store, found
    without loading it: it cannot be read, or holds no PEM certificate. None when it looks
    usable, or is not set (``SSL_CERT_DIR`` is never refused by OpenSSL when loaded: its
    files are looked up as certificates are verified). A file that passes and still fails
    to load is reported when the TLS context is built (``build_ssl_context``): at the
    service's start, before ``check`` reads a source."""
    path = environ.get("SSL_CERT_FILE")
    if not path:  # unset or empty: not used (httpx, OpenSSL)
        return None
    try:
        with open_regular_file(Path(path)) as file:
            content = file.read()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
    else:
        if any(marker in content for marker in _PEM_MARKERS):
            return None
        reason = "no PEM certificate in it"
    return f"SSL_CERT_FILE {path!r}: not a PEM file of CA certificates ({reason})"


def client_config(
    top: dict[str, Given], problems: Problems, warnings: list[str], environ: Mapping[str, str]
) -> ClientConfig:
    """TLS, credentials and extra headers: checked now (files readable, certificates and
    keys usable, combinations sensible), so a mistake is found before any poll."""
    before = len(problems.lines)
    files: dict[str, Path | None] = {
        key: problems.parse(readable_file, top.get(key), None) for key in CLIENT_FILE_KEYS
    }
    insecure = bool(problems.parse(boolean, top.get("tls_insecure_skip_verify"), False))
    user = problems.parse(username, top.get("basic_auth_username"), None)
    headers = problems.parse(http_headers, top.get("http_headers"), ())
    password: Secret | None = None
    if "basic_auth_password" in top:
        given = top["basic_auth_password"]
        if isinstance(given.value, str):
            password = Secret(given.value)
        else:
            problems.invalid(given, "expected a string")

    def named(key: str, like: str) -> str:
        """``key`` the way ``like`` was given: a variable, or a key of the rule file."""
        return env_name(key) if top[like].at == env_name(like) else key

    def both_or_neither(one: str, other: str, why: str) -> None:
        if one in top and other not in top:
            problems.add(f"{top[one].at} is set but {named(other, one)} is not: {why}")

    why_tls = "mutual TLS needs both the client certificate and its key"
    both_or_neither("tls_cert_file", "tls_key_file", why_tls)
    both_or_neither("tls_key_file", "tls_cert_file", why_tls)
    if "basic_auth_password" in top and "basic_auth_password_file" in top:
        problems.add(
            f"{top['basic_auth_password'].at} and {top['basic_auth_password_file'].at} are "
            "both set: give one (the file is the safer choice)"
        )
    why_basic = "basic auth needs a user name and a password"
    if "basic_auth_username" in top:
        if "basic_auth_password" not in top and "basic_auth_password_file" not in top:
            wanted = named("basic_auth_password_file", "basic_auth_username")
            problems.add(f"{top['basic_auth_username'].at} is set but {wanted} is not: {why_basic}")
    else:
        for key in ("basic_auth_password", "basic_auth_password_file"):
            both_or_neither(key, "basic_auth_username", why_basic)
    basic = [k for k in ("basic_auth_username", "basic_auth_password_file") if k in top]
    if "bearer_token_file" in top and basic:
        problems.add(
            f"{top['bearer_token_file'].at} and {top[basic[0]].at} are both set: an endpoint "
            "takes one kind of Authorization; give either a bearer token or basic auth"
        )
    if headers and ("bearer_token_file" in top or basic):
        for name, _ in headers:
            if name.lower() == "authorization":
                problems.add(
                    f"{top['http_headers'].at} sets Authorization, which "
                    "BEARER_TOKEN_FILE / BASIC_AUTH_* set too: give one"
                )
    for key, variable in (
        ("bearer_token_file", "BEARER_TOKEN_FILE"),
        ("basic_auth_password_file", "BASIC_AUTH_PASSWORD_FILE"),
    ):
        path = files[key]
        if path is not None:
            try:
                read_credential(path, variable)
            except ValueError as exc:
                problems.add(f"{top[key].at}: {exc}")
    config = ClientConfig(
        ca_file=files["tls_ca_file"],
        cert_file=files["tls_cert_file"],
        key_file=files["tls_key_file"],
        insecure_skip_verify=insecure,
        bearer_token_file=files["bearer_token_file"],
        basic_auth_username=user,
        basic_auth_password_file=files["basic_auth_password_file"],
        basic_auth_password=password,
        headers=headers,
    )
    if len(problems.lines) == before and _ssl_context_to_check(config):
        try:
            build_ssl_context(config)
        except ValueError as exc:
            problems.add(str(exc))
    elif config.ca_file is None and not insecure:  # the default trust store: used
        store_problem = _cert_store_problem(environ)
        if store_problem is not None:
            problems.add(store_problem)
    if insecure:
        warnings.append(
            f"{top['tls_insecure_skip_verify'].at}=true: endpoint certificates are NOT "
            "verified; anyone on the network path can read or change the answers and see the "
            "credentials sent. Use TLS_CA_FILE instead"
        )
        if "tls_ca_file" in top:
            warnings.append(f"{top['tls_ca_file'].at} has no effect: TLS_INSECURE_SKIP_VERIFY")
    return config
