"""Endpoint security: TLS verification, TLS_CA_FILE, mutual TLS, TLS_INSECURE_SKIP_VERIFY,
BEARER_TOKEN_FILE (rotation included), basic auth and HTTP_HEADERS, against a real local
HTTPS server on 127.0.0.1 with certificates made here (``cryptography``); and that none of
the secrets ever shows: not in logs (debug, text and JSON), errors, ``/api/status``,
``/metrics``, the status page or ``check`` output, in-process and through the real CLI.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from _certs import cert, new_key, write_pem
from cryptography.hazmat.primitives import serialization

from metric_reader._actions import discover_plugins
from metric_reader._cli import main
from metric_reader._config import ClientConfig, ConfigError, Secret, load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._core._logging import configure_logging
from metric_reader._http import make_client
from metric_reader._service import Service
from metric_reader._sources._scrape import fetch_page
from metric_reader._surface._web import serve_http

DEADLINE = 20.0
TOKEN = "tok-SECRETBEARER-1a2b3c"
TOKEN_ROTATED = "tok-SECRETBEARER-rotated-4d5e6f"
PASSWORD = "pw-SECRETBASIC-7a8b9c"
HEADER_VALUE = "hv-SECRETHEADER-0d1e2f"
USER = "reader"
PAGE = b"# TYPE secure_metric gauge\nsecure_metric 42\n"
QUERY_ANSWER = json.dumps(
    {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"__name__": "secure_metric"}, "value": [1, "42"]}],
        },
    }
).encode()


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that signed nothing here: trusting only it must fail."""
    encrypted_key: Path

    def key_secrets(self) -> list[str]:
        """Recognisable pieces of the client key's PEM: none may ever show."""
        lines = self.client_key.read_text().splitlines()
        return [line for line in lines if not line.startswith("-----") and len(line) >= 40]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key, server_key, client_key = (new_key() for _ in range(4))
    ca = cert("test CA", ca_key, None, ca=True)
    other = cert("other CA", other_key, None, ca=True)
    encrypted = d / "encrypted-key.pem"
    encrypted.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"letmein"),
        )
    )
    return Pki(
        ca=write_pem(d / "ca.pem", cert=ca),
        server_cert=write_pem(
            d / "server.pem", cert=cert("127.0.0.1", server_key, ("test CA", ca_key), server=True)
        ),
        server_key=write_pem(d / "server-key.pem", key=server_key),
        client_cert=write_pem(
            d / "client.pem", cert=cert("reader", client_key, ("test CA", ca_key))
        ),
        client_key=write_pem(d / "client-key.pem", key=client_key),
        other_ca=write_pem(d / "other-ca.pem", cert=other),
        encrypted_key=encrypted,
    )


# --- a local HTTPS endpoint -----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]
    status = 200

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        body = QUERY_ANSWER if self.path.startswith("/api/v1/query") else PAGE
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes are what several tests are about


class Endpoint:
    """HTTPS on 127.0.0.1 with the test CA's server certificate; ``client_certs`` makes it
    require a client certificate signed by the test CA (mutual TLS). ``seen`` holds the
    headers of every request that got through."""

    def __init__(self, pki: Pki, *, client_certs: bool) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        if client_certs:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(pki.ca)
        self.handler = type("Handler", (_Handler,), {"seen": []})
        self.server = _TlsServer(("127.0.0.1", 0), self.handler)
        # Handshake in the handler's thread, so a refused client blocks nobody.
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/metrics"

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[dict[str, str]]:
        return self.handler.seen

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(pki: Pki) -> Iterator[Endpoint]:
    server = Endpoint(pki, client_certs=False)
    yield server
    server.close()


@pytest.fixture
def mtls_endpoint(pki: Pki) -> Iterator[Endpoint]:
    server = Endpoint(pki, client_certs=True)
    yield server
    server.close()


def fetch(config: ClientConfig, url: str) -> bytes:
    async def go() -> bytes:
        async with make_client(config) as client:
            return await fetch_page(client, url, 10.0)

    return anyio.run(go)


def fetch_error(config: ClientConfig, url: str) -> str:
    with pytest.raises(FetchError) as caught:
        fetch(config, url)
    return str(caught.value)


# --- TLS ------------------------------------------------------------------------------------


def test_verification_is_on_by_default_and_rejects_an_unknown_ca(endpoint: Endpoint) -> None:
    message = fetch_error(ClientConfig(), endpoint.url)
    assert message.startswith("TLS certificate verification failed:"), message
    assert "TLS_CA_FILE" in message
    assert endpoint.seen == []


def test_the_default_trust_is_certifis_loaded_at_the_first_handshake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reaching only http:// endpoints costs no CA bundle in memory; the first TLS handshake
    loads the bundle httpx would have trusted."""
    import certifi

    from metric_reader._config import build_ssl_context

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = build_ssl_context(ClientConfig())
    assert context.cert_store_stats()["x509_ca"] == 0
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
    assert context.get_ca_certs() == httpx.create_ssl_context().get_ca_certs()
    assert (
        context.get_ca_certs() == ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    )


def test_a_poll_error_says_the_certificate_was_not_verified(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    settings = load_settings({"METRIC_NAME": "secure_metric", "SCRAPE_URL": endpoint.url})
    service = Service(settings, discover_plugins(None))
    (target,) = service.fetches

    async def go() -> None:
        async with make_client(settings.client) as client, anyio.create_task_group() as calls:
            await service.poll_once(client, target, 10.0, calls)
        status.update(service.status())

    status: dict[str, Any] = {}
    anyio.run(go)
    assert target.last_error is not None
    assert "TLS certificate verification failed" in target.last_error
    assert status["targets"][0]["last_error"] == target.last_error


def test_tls_ca_file_makes_it_work_and_replaces_the_default_trust(
    pki: Pki, endpoint: Endpoint
) -> None:
    settings = load_settings(
        {"METRIC_NAME": "m", "SCRAPE_URL": endpoint.url, "TLS_CA_FILE": str(pki.ca)}
    )
    assert fetch(settings.client, endpoint.url) == PAGE
    message = fetch_error(ClientConfig(ca_file=pki.other_ca), endpoint.url)
    assert "TLS certificate verification failed" in message


def test_mutual_tls_works_with_the_client_certificate_and_fails_without(
    pki: Pki, mtls_endpoint: Endpoint
) -> None:
    with_cert = ClientConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    assert fetch(with_cert, mtls_endpoint.url) == PAGE
    assert len(mtls_endpoint.seen) == 1

    message = fetch_error(ClientConfig(ca_file=pki.ca), mtls_endpoint.url)
    assert "TLS_CERT_FILE" in message, message
    assert len(mtls_endpoint.seen) == 1  # the refused client never got a request through


def test_insecure_skip_verify_works_and_warns_once_at_start(
    pki: Pki, endpoint: Endpoint, tmp_path: Path
) -> None:
    env = {"METRIC_NAME": "m", "SCRAPE_URL": endpoint.url, "TLS_INSECURE_SKIP_VERIFY": "true"}
    settings = load_settings(env)
    assert settings.client.insecure_skip_verify
    assert fetch(settings.client, endpoint.url) == PAGE
    (warning,) = settings.warnings
    assert warning.startswith("TLS_INSECURE_SKIP_VERIFY=true: endpoint certificates are NOT")

    # The real program says it once, at start, before polling.
    result = _cli(["check"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("TLS_INSECURE_SKIP_VERIFY=true") == 1
    assert "WARNING" in result.stderr


def test_nothing_turns_verification_off_unless_asked() -> None:
    """The only ``CERT_NONE`` in the package is the one TLS_INSECURE_SKIP_VERIFY asks for."""
    package = Path(__file__).parents[2] / "metric_reader"
    found = []
    for path in package.rglob("*.py"):
        text = path.read_text()
        for needle in ("verify=False", "CERT_NONE", "check_hostname = False", "_create_unverified"):
            found += [f"{path.name}: {needle}"] * text.count(needle)
    assert sorted(found) == ["_client.py: CERT_NONE", "_client.py: check_hostname = False"]


# --- credentials and headers ----------------------------------------------------------------


def test_bearer_token_reaches_the_server_and_a_rotated_token_is_used_without_restart(
    pki: Pki, endpoint: Endpoint, tmp_path: Path
) -> None:
    # Laid out as Kubernetes projects a token: token -> ..data/token, ..data -> a dated dir,
    # rotated by pointing ..data at a new dir in one rename.
    mount = tmp_path / "serviceaccount"
    (mount / "v1").mkdir(parents=True)
    (mount / "v1" / "token").write_text(TOKEN + "\n")
    (mount / "..data").symlink_to("v1")
    (mount / "token").symlink_to("..data/token")
    settings = load_settings(
        {
            "METRIC_NAME": "m",
            "SCRAPE_URL": endpoint.url,
            "TLS_CA_FILE": str(pki.ca),
            "BEARER_TOKEN_FILE": str(mount / "token"),
        }
    )

    async def go() -> None:
        async with make_client(settings.client) as client:
            assert await fetch_page(client, endpoint.url, 10.0) == PAGE
            assert endpoint.seen[-1]["authorization"] == f"Bearer {TOKEN}"

            (mount / "v2").mkdir()
            (mount / "v2" / "token").write_text(TOKEN_ROTATED + "\n")
            (mount / "..data_tmp").symlink_to("v2")
            os.replace(mount / "..data_tmp", mount / "..data")
            await fetch_page(client, endpoint.url, 10.0)
            assert endpoint.seen[-1]["authorization"] == f"Bearer {TOKEN_ROTATED}"

            # A plain rewrite in place is noticed too (size and mtime change).
            (mount / "v2" / "token").write_text(TOKEN + "-3\n")
            await fetch_page(client, endpoint.url, 10.0)
            assert endpoint.seen[-1]["authorization"] == f"Bearer {TOKEN}-3"

            # A token file that goes missing: the last good token stays in use.
            (mount / "token").unlink()
            await fetch_page(client, endpoint.url, 10.0)
            assert endpoint.seen[-1]["authorization"] == f"Bearer {TOKEN}-3"

    anyio.run(go)


def test_basic_auth_from_a_password_file_reaches_the_server(
    pki: Pki, endpoint: Endpoint, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text(PASSWORD + "\n")
    settings = load_settings(
        {
            "METRIC_NAME": "m",
            "SCRAPE_URL": endpoint.url,
            "TLS_CA_FILE": str(pki.ca),
            "BASIC_AUTH_USERNAME": USER,
            "BASIC_AUTH_PASSWORD_FILE": str(tmp_path / "password"),
        }
    )
    assert fetch(settings.client, endpoint.url) == PAGE
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert endpoint.seen[-1]["authorization"] == f"Basic {expected}"


def test_basic_auth_password_from_the_environment_and_headers_reach_a_prometheus_api(
    pki: Pki, endpoint: Endpoint
) -> None:
    settings = load_settings(
        {
            "METRIC_NAME": "secure_metric",
            "PROMETHEUS_ENDPOINT": endpoint.base,
            "TLS_CA_FILE": str(pki.ca),
            "BASIC_AUTH_USERNAME": USER,
            "BASIC_AUTH_PASSWORD": PASSWORD,
            "HTTP_HEADERS": json.dumps({"X-Scope-OrgID": "tenant-1", "X-Api-Key": HEADER_VALUE}),
        }
    )
    service = Service(settings, discover_plugins(None))
    (target,) = service.fetches

    async def go() -> None:
        async with make_client(settings.client) as client, anyio.create_task_group() as calls:
            await service.poll_once(client, target, 10.0, calls)

    anyio.run(go)
    assert target.last_error is None
    seen = endpoint.seen[-1]
    assert seen["x-scope-orgid"] == "tenant-1"
    assert seen["x-api-key"] == HEADER_VALUE
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert seen["authorization"] == f"Basic {expected}"


def test_headers_and_credentials_do_not_follow_a_redirect_to_another_origin(
    pki: Pki, endpoint: Endpoint, tmp_path: Path
) -> None:
    """A redirect to another host or port gets neither Authorization nor HTTP_HEADERS."""
    other = Endpoint(pki, client_certs=False)
    try:
        redirecting = type(
            "Redirect",
            (_Handler,),
            {"seen": [], "do_GET": _redirect_to(other.url)},
        )
        endpoint.server.RequestHandlerClass = redirecting
        (tmp_path / "token").write_text(TOKEN)
        config = ClientConfig(
            ca_file=pki.ca,
            bearer_token_file=tmp_path / "token",
            headers=(("X-Api-Key", Secret(HEADER_VALUE)),),
        )
        assert fetch(config, endpoint.url) == PAGE
        assert redirecting.seen[-1]["authorization"] == f"Bearer {TOKEN}"
        assert redirecting.seen[-1]["x-api-key"] == HEADER_VALUE
        assert "authorization" not in other.seen[-1]
        assert "x-api-key" not in other.seen[-1]
    finally:
        other.close()


def _redirect_to(url: str) -> Any:
    def do_GET(self: _Handler) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(302)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()

    return do_GET


# --- configuration --------------------------------------------------------------------------


def _config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings({"METRIC_NAME": "m", **env})
    return str(caught.value)


def test_a_wrong_ssl_cert_file_is_a_configuration_error(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SSL_CERT_FILE replaces the default trust store: one that is missing or holds no
    certificate is refused as the settings are read (``check --no-read`` too), one that
    looks like PEM but does not load as the service starts (and before ``check`` reads)."""
    missing = str(tmp_path / "nope.pem")
    assert _config_error({"SSL_CERT_FILE": missing}) == (
        f"SSL_CERT_FILE {missing!r}: not a PEM file of CA certificates (No such file or directory)"
    )
    assert "no PEM certificate in it" in _config_error({"SSL_CERT_FILE": str(pki.client_key)})
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(corrupt))
    env = {
        "METRIC_NAME": "m",
        "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9",
        "SSL_CERT_FILE": str(corrupt),
    }
    assert main(["check", "--no-read"], env) == 0
    capsys.readouterr()
    assert main(["check"], env) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"metric-reader: configuration error: SSL_CERT_FILE {str(corrupt)!r}: not a PEM file "
        "of CA certificates ("
    ), err
    assert len(err.splitlines()) == 1, err


def test_client_certificate_and_key_come_together(pki: Pki) -> None:
    message = _config_error({"TLS_CERT_FILE": str(pki.client_cert)})
    assert "TLS_CERT_FILE is set but TLS_KEY_FILE is not" in message
    message = _config_error({"TLS_KEY_FILE": str(pki.client_key)})
    assert "TLS_KEY_FILE is set but TLS_CERT_FILE is not" in message


def test_files_must_exist_and_hold_what_they_should(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    for variable in ("TLS_CA_FILE", "BEARER_TOKEN_FILE"):
        message = _config_error({variable: missing})
        assert message.startswith(f"{variable}={missing!r} is invalid: cannot read"), message
    assert "TLS_CA_FILE" in _config_error({"TLS_CA_FILE": str(pki.client_key)})
    mismatch = _config_error(
        {"TLS_CERT_FILE": str(pki.client_cert), "TLS_KEY_FILE": str(pki.server_key)}
    )
    assert "cannot use the client certificate and key" in mismatch
    encrypted = _config_error(
        {"TLS_CERT_FILE": str(pki.client_cert), "TLS_KEY_FILE": str(pki.encrypted_key)}
    )
    assert "encrypted" in encrypted
    (tmp_path / "empty").write_text("\n")
    assert "empty" in _config_error({"BEARER_TOKEN_FILE": str(tmp_path / "empty")})
    assert "is a directory" in _config_error({"BEARER_TOKEN_FILE": str(tmp_path)})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0)
    assert "cannot read: Permission denied" in _config_error({"BEARER_TOKEN_FILE": str(token)})


def test_credentials_that_conflict_or_are_half_given_are_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "password").write_text(PASSWORD)
    token, password = str(tmp_path / "token"), str(tmp_path / "password")
    assert "BASIC_AUTH_USERNAME is set but BASIC_AUTH_PASSWORD_FILE is not" in _config_error(
        {"BASIC_AUTH_USERNAME": USER}
    )
    assert "BASIC_AUTH_PASSWORD_FILE is set but BASIC_AUTH_USERNAME is not" in _config_error(
        {"BASIC_AUTH_PASSWORD_FILE": password}
    )
    both = _config_error(
        {
            "BASIC_AUTH_USERNAME": USER,
            "BASIC_AUTH_PASSWORD": PASSWORD,
            "BASIC_AUTH_PASSWORD_FILE": password,
        }
    )
    assert "are both set: give one" in both
    assert PASSWORD not in both
    assert "one kind of Authorization" in _config_error(
        {"BEARER_TOKEN_FILE": token, "BASIC_AUTH_USERNAME": USER, "BASIC_AUTH_PASSWORD": "x"}
    )
    assert "sets Authorization" in _config_error(
        {"BEARER_TOKEN_FILE": token, "HTTP_HEADERS": '{"Authorization": "Bearer x"}'}
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ('{"X-Api-Key": "' + HEADER_VALUE, "not valid JSON"),
        ('["' + HEADER_VALUE + '"]', "expected an object"),
        ('{"Host": "' + HEADER_VALUE + '"}', "header Host is managed by the HTTP client"),
        ('{"X-Api-Key": "' + HEADER_VALUE + '\\n"}', "must be printable ASCII on one line"),
        ('{"' + HEADER_VALUE + ' x": "1"}', "not a valid HTTP header name"),
        ('{"X-Api-Key": 12}', "must be a string"),
    ],
)
def test_bad_http_headers_are_refused_without_showing_values(headers: str, expected: str) -> None:
    message = _config_error({"HTTP_HEADERS": headers})
    assert message.startswith("HTTP_HEADERS=(value not shown) is invalid: "), message
    assert expected in message
    assert HEADER_VALUE not in message


def test_the_rule_file_takes_the_same_settings_relative_to_itself(
    pki: Pki, endpoint: Endpoint, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca.read_bytes())
    (tmp_path / "token").write_text(TOKEN)
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'tls_ca_file = "ca.pem"\n'
        'bearer_token_file = "token"\n'
        f'http_headers = {{ "X-Scope-OrgID" = "tenant-1", "X-Api-Key" = "{HEADER_VALUE}" }}\n'
        "[[rules]]\n"
        'name = "r"\n'
        'metric_name = "secure_metric"\n'
        f'scrape_url = "{endpoint.url}"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(rules)})
    assert settings.client.ca_file == tmp_path / "ca.pem"
    assert settings.client.bearer_token_file == tmp_path / "token"
    assert fetch(settings.client, endpoint.url) == PAGE
    assert endpoint.seen[-1]["x-scope-orgid"] == "tenant-1"
    assert endpoint.seen[-1]["authorization"] == f"Bearer {TOKEN}"

    rules.write_text(rules.read_text().replace('"tenant-1"', '"bad\\u0001"'))
    message = _config_error({"CONFIG_FILE": str(rules)})
    assert "http_headers=(value not shown) is invalid" in message
    assert HEADER_VALUE not in message

    rules.write_text('tls_cert_file = "ca.pem"\n' + rules.read_text().split("\n", 1)[1])
    assert "tls_cert_file is set but tls_key_file is not" in _config_error(
        {"CONFIG_FILE": str(rules)}
    )


def test_secret_values_print_as_stars() -> None:
    secret = Secret(PASSWORD)
    config = ClientConfig(basic_auth_username=USER, basic_auth_password=secret)
    for shown in (repr(secret), str(secret), f"{secret}", repr(config)):
        assert PASSWORD not in shown
    assert secret.reveal() == PASSWORD


# --- no secret ever shows -------------------------------------------------------------------


def _secrets(pki: Pki) -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [TOKEN, PASSWORD, HEADER_VALUE, basic, *pki.key_secrets()]


def _leaks(text: str, pki: Pki) -> list[str]:
    return [secret for secret in _secrets(pki) if secret in text]


def _secure_env(pki: Pki, tmp_path: Path, url: str, auth: str) -> dict[str, str]:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    env = {
        "METRIC_NAME": "secure_metric",
        "SCRAPE_URL": url,
        "THRESHOLD": ">1",
        "TLS_CA_FILE": str(pki.ca),
        "TLS_CERT_FILE": str(pki.client_cert),
        "TLS_KEY_FILE": str(pki.client_key),
        "HTTP_HEADERS": json.dumps({"X-Scope-OrgID": "tenant-1", "X-Api-Key": HEADER_VALUE}),
        "POLLING_INTERVAL": "100ms",
    }
    if auth == "bearer":
        env["BEARER_TOKEN_FILE"] = str(tmp_path / "token")
    elif auth == "basic-file":
        env |= {"BASIC_AUTH_USERNAME": USER, "BASIC_AUTH_PASSWORD_FILE": str(tmp_path / "password")}
    else:
        env |= {"BASIC_AUTH_USERNAME": USER, "BASIC_AUTH_PASSWORD": PASSWORD}
    return env


def _cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "LISTEN_ADDRESS": "off", **env}
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_shows_in_process_in_logs_status_metrics_or_errors(
    pki: Pki, mtls_endpoint: Endpoint, tmp_path: Path, fmt: str
) -> None:
    """A real service polls the mutual-TLS endpoint with a token and headers, plus an
    endpoint that refuses it (no client certificate wanted there: a TLS error) and one that
    is down; every log line at debug and every page it serves is searched."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = f"https://127.0.0.1:{probe.getsockname()[1]}/metrics"
    env = _secure_env(pki, tmp_path, mtls_endpoint.url, "bearer")
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'polling_interval = "100ms"\n'
        + "".join(
            f'[[rules]]\nname = "r{i}"\nmetric_name = "secure_metric"\n'
            f'scrape_url = "{url}"\nthreshold = ">1"\n'
            for i, url in enumerate((mtls_endpoint.url, down, mtls_endpoint.url + "?again"))
        )
    )
    env = {k: v for k, v in env.items() if k not in ("METRIC_NAME", "SCRAPE_URL", "THRESHOLD")}
    settings = load_settings({**env, "CONFIG_FILE": str(rules), "LOG_LEVEL": "debug"})
    log = StringIO()
    configure_logging("DEBUG", fmt, log)
    service = Service(settings, discover_plugins(None))
    pages: dict[str, str] = {}

    async def go() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(service.run)
            port = await group.start(serve_http, "127.0.0.1:0", service)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
                with anyio.fail_after(DEADLINE):
                    while not (
                        len(mtls_endpoint.seen) >= 2
                        and all(t.last_success or t.last_error for t in service.fetches)
                    ):
                        await anyio.sleep(0.05)
                for path in ("/api/status", "/metrics", "/", "/readyz", "/healthz"):
                    pages[path] = (await web.get(path)).text
            group.cancel_scope.cancel()

    try:
        anyio.run(go)
    finally:
        configure_logging()
    assert mtls_endpoint.seen[-1]["authorization"] == f"Bearer {TOKEN}"  # they were sent
    assert mtls_endpoint.seen[-1]["x-api-key"] == HEADER_VALUE
    status = json.loads(pages["/api/status"])
    errors = [t["last_error"] for t in status["targets"] if t["last_error"]]
    assert errors, status  # the down endpoint failed, and that was reported
    text = log.getvalue()
    assert "polled" in text  # debug lines were written
    everything = "\n".join([text, *pages.values(), repr(settings)])
    assert _leaks(everything, pki) == []


@pytest.mark.parametrize("auth", ["bearer", "basic-file", "basic-env"])
def test_no_secret_shows_in_check_output(
    pki: Pki, mtls_endpoint: Endpoint, tmp_path: Path, auth: str
) -> None:
    env = _secure_env(pki, tmp_path, mtls_endpoint.url, auth) | {"LOG_LEVEL": "debug"}
    result = _cli(["check"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert _leaks(result.stdout + result.stderr, pki) == []


def test_no_secret_shows_in_configuration_errors_from_the_cli(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "password").write_text(PASSWORD)
    bad = [
        {"HTTP_HEADERS": '{"X-Api-Key": "' + HEADER_VALUE + '"'},
        {"HTTP_HEADERS": '{"Host": "' + HEADER_VALUE + '"}'},
        {
            "BASIC_AUTH_USERNAME": USER,
            "BASIC_AUTH_PASSWORD": PASSWORD,
            "BASIC_AUTH_PASSWORD_FILE": str(tmp_path / "password"),
        },
        {"BASIC_AUTH_PASSWORD": PASSWORD},
        {"TLS_CERT_FILE": str(pki.client_cert), "TLS_KEY_FILE": str(pki.ca)},
        {"TLS_CA_FILE": str(pki.client_key)},
    ]
    for env in bad:
        result = _cli(["check"], {"METRIC_NAME": "m", "LOG_LEVEL": "debug", **env}, tmp_path)
        assert result.returncode == 2, (env, result.stderr)
        assert "configuration error" in result.stderr
        assert _leaks(result.stdout + result.stderr, pki) == [], result.stderr


@pytest.mark.parametrize("auth", ["bearer", "basic-env"])
def test_no_secret_shows_in_a_real_run_with_debug_json_logs(
    pki: Pki, mtls_endpoint: Endpoint, tmp_path: Path, auth: str
) -> None:
    """``python -m metric_reader`` with LOG_LEVEL=debug LOG_FORMAT=json: read its log until
    it has polled, read its endpoints, stop it with SIGTERM, search everything."""
    env = _secure_env(pki, tmp_path, mtls_endpoint.url, auth)
    env |= {
        "PATH": os.environ.get("PATH", ""),
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
        "LISTEN_ADDRESS": "127.0.0.1:0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "metric_reader"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    pages: list[str] = []
    killer = threading.Timer(DEADLINE * 2, process.kill)  # a hung run fails, never hangs
    killer.start()
    try:
        assert process.stderr is not None
        port = None
        polled = False
        for line in process.stderr:
            lines.append(line)
            record = json.loads(line)
            if "port" in record:
                port = record["port"]
            polled = polled or record["message"] == "polled"
            if port is not None and polled:
                break
        assert port is not None and polled, "".join(lines)
        for path in ("/api/status", "/metrics", "/", "/readyz"):
            pages.append(httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).text)
        process.terminate()
        out, err = process.communicate(timeout=DEADLINE)
    finally:
        killer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    lines.append(err)
    assert process.returncode == 0, "".join(lines)
    assert mtls_endpoint.seen and "authorization" in mtls_endpoint.seen[-1]
    everything = "".join(lines) + out + "\n".join(pages)
    assert '"level": "debug"' in everything
    assert _leaks(everything, pki) == []
