"""How the endpoints are reached: TLS, credentials and extra headers, and the checks that
they are usable (certificates and keys load, credential files are readable).

Secrets (a token, a password, header values) travel as ``Secret``: its ``repr`` and ``str``
are ``'***'``, so a secret that reaches a log line, an error message or a status document
by mistake shows nothing. Only ``reveal()`` gives the value, and only the request path
calls it. Each secret is also remembered as it is made or read (``remember_secret``), so
that an endpoint saying it back (an auth proxy echoing ``Authorization``) does not show it
either.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core import record, remember_secret
from ._regular_file import open_regular_file

if TYPE_CHECKING:
    import ssl

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The default of ``MAX_RESPONSE_BYTES``: a body that decodes to more is a failed read.

A read can hold this much before it is refused (a Prometheus answer is decoded whole; of a
page, the parts with lines of the watched metrics are kept), on top of the service's own
50 MiB: about 90 MiB at the peak under an endless body, within the 128 MiB the example
manifests give the container, with room for plugins or a second such read (with 64 MiB,
the peak came within 6 MiB of the limit)."""
MAX_CREDENTIAL_BYTES = 64 * 1024
"""A token or password file larger than this is refused (Kubernetes tokens are ~1 KiB)."""


class Secret:
    """A value that must never be shown: ``repr``/``str`` give ``'***'``, and any text
    ``redact`` sees has it masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@record(frozen=True, slots=True)
class ClientConfig:
    """How every endpoint is reached. The default: system trust (certifi), no credentials."""

    ca_file: Path | None = None
    """``TLS_CA_FILE``: the only CAs trusted for endpoint certificates (PEM)."""
    cert_file: Path | None = None
    """``TLS_CERT_FILE``: client certificate for mutual TLS (PEM); with ``key_file``."""
    key_file: Path | None = None
    """``TLS_KEY_FILE``: its private key (PEM, unencrypted)."""
    insecure_skip_verify: bool = False
    """``TLS_INSECURE_SKIP_VERIFY``: accept any certificate (testing only)."""
    bearer_token_file: Path | None = None
    """``BEARER_TOKEN_FILE``: sent as ``Authorization: Bearer``; re-read when it changes."""
    basic_auth_username: str | None = None
    basic_auth_password_file: Path | None = None
    """``BASIC_AUTH_PASSWORD_FILE``: re-read when it changes."""
    basic_auth_password: Secret | None = None
    """``BASIC_AUTH_PASSWORD``: the password itself (the file is the safer choice)."""
    headers: tuple[tuple[str, Secret], ...] = ()
    """``HTTP_HEADERS``: extra request headers; their values count as secrets."""


@functools.cache
def _trust_on_first_use() -> type[ssl.SSLContext]:
    """A TLS context that loads certifi's CA bundle (httpx's default trust) at its first
    handshake rather than when it is made: a configuration that reaches only ``http://``
    endpoints never loads it (1.7 MB resident for the first context, 0.8 MB each after)."""
    import ssl
    import threading

    lock = threading.Lock()

    class TrustOnFirstUse(ssl.SSLContext):
        _trusted = False

        def _trust(self) -> None:
            with lock:
                if not self._trusted:
                    import certifi

                    self.load_verify_locations(cafile=certifi.where())
                    self._trusted = True

        def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
            self._trust()
            return super().wrap_socket(*args, **kwargs)

        def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
            self._trust()
            return super().wrap_bio(*args, **kwargs)

    return TrustOnFirstUse


def build_ssl_context(config: ClientConfig) -> ssl.SSLContext:
    """The TLS context for ``config``; raise ``ValueError`` naming the setting that is wrong
    (the message never holds file contents)."""
    import ssl  # on first use: a rule test never reaches an endpoint (start-up time)

    if config.insecure_skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.ca_file is not None:
        try:
            context = ssl.create_default_context(cafile=str(config.ca_file))
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"TLS_CA_FILE {str(config.ca_file)!r}: not a PEM file of CA certificates "
                f"({_ssl_reason(exc)})"
            ) from None
    elif not (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
        context = _trust_on_first_use()(ssl.PROTOCOL_TLS_CLIENT)  # httpx's default: certifi
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:  # as create_default_context does
            context.keylog_filename = keylog
        if sys.version_info >= (3, 13):
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    else:
        import httpx  # on first use, not with the configuration layer (start-up time)

        try:
            context = httpx.create_ssl_context()  # SSL_CERT_FILE or SSL_CERT_DIR
        except (ssl.SSLError, OSError) as exc:  # SSL_CERT_FILE: the others load
            raise ValueError(
                f"SSL_CERT_FILE {os.environ.get('SSL_CERT_FILE', '')!r}: not a PEM file of CA "
                f"certificates ({_ssl_reason(exc)})"
            ) from None
    if config.cert_file is not None and config.key_file is not None:
        try:
            context.load_cert_chain(
                str(config.cert_file), str(config.key_file), password=_no_password
            )
        except (ssl.SSLError, OSError, _EncryptedKey) as exc:
            raise ValueError(
                f"TLS_CERT_FILE {str(config.cert_file)!r} / TLS_KEY_FILE "
                f"{str(config.key_file)!r}: cannot use the client certificate and key "
                f"({_ssl_reason(exc)})"
            ) from None
    return context


class _EncryptedKey(Exception):
    def __str__(self) -> str:
        return "the key is encrypted; give an unencrypted PEM key"


def _no_password() -> bytes:
    """Called by OpenSSL only for an encrypted key: refuse, never prompt on a terminal."""
    raise _EncryptedKey


def _ssl_reason(exc: BaseException) -> str:
    import ssl

    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def read_credential(path: Path, variable: str) -> str:
    """The secret in ``path``, surrounding whitespace removed (as Prometheus does), and
    remembered as one; raise ``ValueError`` saying what is wrong, never what the file
    holds."""
    try:
        with open_regular_file(path) as file:
            data = file.read(MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{variable} {str(path)!r}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise ValueError(f"{variable} {str(path)!r}: larger than {MAX_CREDENTIAL_BYTES} bytes")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{variable} {str(path)!r}: not UTF-8 text") from None
    if not text:
        raise ValueError(f"{variable} {str(path)!r}: the file is empty")
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError(f"{variable} {str(path)!r}: more than one line")
    if variable == "BEARER_TOKEN_FILE" and not all(33 <= ord(ch) <= 126 for ch in text):
        raise ValueError(
            f"{variable} {str(path)!r}: a token must be printable ASCII without spaces"
        )
    remember_secret(text, source=f"{variable} {path}")  # the file's earlier values retire
    return text
