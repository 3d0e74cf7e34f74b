"""The secrets the service knows are masked in every text it makes: errors, log lines
(text and JSON, messages, bound fields, tracebacks) and excerpts of answers, in whatever
escaping the text went through; credentials in URLs are read as RFC 3986 reads them."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from loguru import logger

from metric_reader._actions import PluginProblem
from metric_reader._core import (
    FetchError,
    KubeError,
    PluginFailure,
    configure_logging,
    redact,
    redacted_excerpt,
    remember_secret,
    remember_url_credentials,
    without_url_credentials,
)
from metric_reader._core._secrets import KEPT_PER_SOURCE, MAX_SECRETS, MIN_SECRET_LENGTH

TOKEN = 'tok-ECHO"ED\\BEARER-5f6g7h'
"""Printable ASCII, as a token file allows: a quote and a backslash, which JSON and ``repr``
escape."""


def _leaked(text: str, secret: str = TOKEN) -> bool:
    """Whether any 6 characters in a row of ``secret`` (in any escaping) show in ``text``."""
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], html.escape(secret)}
    return any(form[i : i + 6] in text for form in forms for i in range(len(form) - 5))


def test_a_remembered_secret_is_masked_however_it_was_escaped() -> None:
    remember_secret(TOKEN)
    for written in (
        TOKEN,
        json.dumps(TOKEN),
        json.dumps({"auth": f"Bearer {TOKEN}"}),
        repr(TOKEN),
        repr(f"Bearer {TOKEN}"),
        html.escape(TOKEN),
        quote(TOKEN, safe=""),
    ):
        shown = redact(f"proxy said: {written}.")
        assert not _leaked(shown), shown
        assert shown.startswith("proxy said: ") and "***" in shown


def test_text_without_a_secret_is_left_alone() -> None:
    remember_secret(TOKEN)
    text = 'HTTP 500, query failed: internal: "a\\b" 1.5 <b> http://host:9090/x?q=@a'
    assert redact(text) == text


def test_values_too_short_to_be_secrets_are_not_searched_for() -> None:
    remember_secret("x" * (MIN_SECRET_LENGTH - 1))
    remember_secret("2024")
    assert redact("2024-01-01 xxxxx") == "2024-01-01 xxxxx"


def test_the_longer_of_two_overlapping_secrets_is_masked_whole() -> None:
    remember_secret("abcdef")
    remember_secret("abcdef-and-more")
    assert redact("[abcdef-and-more]") == "[***]"


def test_a_rotating_credential_keeps_only_its_last_values() -> None:
    remember_secret("header-value-1")
    for i in range(10):
        remember_secret(f"rotated-token-{i}", source="BEARER_TOKEN_FILE /token")
    shown = [redact(f"rotated-token-{i}") for i in range(10)]
    assert (
        shown
        == [f"rotated-token-{i}" for i in range(10 - KEPT_PER_SOURCE)] + ["***"] * KEPT_PER_SOURCE
    )
    assert redact("header-value-1") == "***"  # a value of the configuration stays


def test_the_oldest_values_of_the_configuration_are_forgotten_beyond_the_bound() -> None:
    for i in range(MAX_SECRETS + 1):
        remember_secret(f"header-value-{i:05d}")
    assert redact("header-value-00000") == "header-value-00000"
    assert redact(f"header-value-{MAX_SECRETS:05d}") == "***"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:p@ss@tPa55@host:9090/", "http://admin:***@host:9090/"),
        ("https://alice:s3cret@prom.example:9090", "https://alice:***@prom.example:9090"),
        ("https://TOKEN@host/x", "https://***@host/x"),
        ("http://host/path@not-userinfo", "http://host/path@not-userinfo"),
        ("http://host?q=a@b", "http://host?q=a@b"),
        ("http://host:9090", "http://host:9090"),
    ],
)
def test_credentials_in_a_url_end_at_the_last_at_sign_of_the_authority(
    url: str, shown: str
) -> None:
    assert without_url_credentials(url) == shown
    assert redact(f"GET {url} failed") == f"GET {shown} failed"


def test_a_url_password_is_remembered_percent_encoded_and_decoded() -> None:
    remember_url_credentials("http://admin:p%40ss%2Fw0rd!@host/")
    assert redact("echo: p@ss/w0rd! and p%40ss%2Fw0rd!") == "echo: *** and ***"


def test_an_excerpt_never_shows_part_of_a_secret_cut_at_its_end() -> None:
    remember_secret(TOKEN)
    for start in range(100, 125):
        body = ("x" * start + f"Authorization: Bearer {TOKEN} and more").encode()
        excerpt = redacted_excerpt(body, 120)
        assert len(excerpt) <= 120
        assert not _leaked(excerpt), (start, excerpt)
    assert redacted_excerpt(b"short body", 120) == "short body"
    assert redacted_excerpt("x" * 300, 120) == "x" * 120


def test_errors_are_redacted_as_they_are_made() -> None:
    remember_secret(TOKEN)
    for error in (
        FetchError(f"HTTP 401, not JSON: {TOKEN!r}"),
        KubeError(401, f"GET lease: HTTP 401 Unauthorized: {TOKEN}"),
        PluginFailure(f"POST answered 401: {TOKEN}", plugin="p", method="execute"),
    ):
        assert not _leaked(str(error)) and "***" in str(error), error


def test_a_plugin_problem_quoting_a_secret_is_redacted() -> None:
    remember_secret(TOKEN)
    problem = PluginProblem(Path("p.py"), f"validate_config() refused: ValueError: {TOKEN}")
    assert not _leaked(problem.reason) and not _leaked(str(problem))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_log_line_carries_a_secret(fmt: str) -> None:
    remember_secret(TOKEN)
    out = io.StringIO()
    configure_logging("DEBUG", fmt, stream=out)
    try:
        log = logger.bind(
            error=f"HTTP 401: Bearer {TOKEN}",
            fields={"said": [TOKEN, (TOKEN,)]},
            url="http://admin:p@ss@tPa55@host/",
            thing=ValueError(TOKEN),
        )
        log.warning("poll failed: {}", f"Authorization: Bearer {TOKEN}")
        try:
            raise RuntimeError(f"the proxy said {TOKEN}")
        except RuntimeError:
            logger.exception("unexpected")
    finally:
        configure_logging()
    text = out.getvalue()
    assert "poll failed" in text and "unexpected" in text and "RuntimeError" in text
    assert not _leaked(text), text
    assert "tPa55" not in text and "p@ss" not in text
