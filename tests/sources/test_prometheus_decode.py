"""Decoding Prometheus /api/v1/query answers: every shape a server may send."""

from __future__ import annotations

import json
import math

import pytest

from metric_reader._core._exceptions import FetchError
from metric_reader._sources._prometheus import decode_query_response


def answer(result_type: str, result: object, **extra: object) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": result_type, "result": result}, **extra}
    ).encode()


def test_vector_gives_one_sample_per_series_without_the_name() -> None:
    body = answer(
        "vector",
        [
            {"metric": {"__name__": "up", "job": "a"}, "value": [1700000000.1, "1"]},
            {"metric": {"__name__": "up", "job": "b"}, "value": [1700000000.1, "0"]},
        ],
    )
    result = decode_query_response(200, body)
    assert [(s.labels, s.value) for s in result.samples] == [
        ((("job", "a"),), 1.0),
        ((("job", "b"),), 0.0),
    ]


def test_scalar_gives_one_sample_with_no_labels() -> None:
    result = decode_query_response(200, answer("scalar", [1700000000, "42.5"]))
    assert [(s.labels, s.value) for s in result.samples] == [((), 42.5)]


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("NaN", math.isnan),
        ("+Inf", lambda v: v == math.inf),
        ("-Inf", lambda v: v == -math.inf),
    ],
)
def test_special_values(text: str, check) -> None:
    [sample] = decode_query_response(200, answer("scalar", [1, text])).samples
    assert check(sample.value)


def test_empty_vector() -> None:
    assert decode_query_response(200, answer("vector", [])).samples == []


def test_warnings_are_kept_with_the_data() -> None:
    result = decode_query_response(200, answer("vector", [], warnings=["partial response"]))
    assert result.warnings == ("partial response",)


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (
            400,
            json.dumps(
                {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}
            ).encode(),
            "bad_data: parse error",
        ),
        (503, b"Service Unavailable", "HTTP 503, not JSON"),
        (200, b"<html>oops</html>", "not JSON"),
        (200, b"\xff\xfe\x00garbage", "not JSON"),
        (200, b"[1, 2]", "not a JSON object"),
        (200, json.dumps({"status": "success"}).encode(), "no data"),
        (200, answer("matrix", []), "instant vector or a scalar"),
        (200, answer("string", [1, "x"]), "instant vector or a scalar"),
        (200, answer("vector", [{"value": [1, "1"]}]), "without metric labels"),
        (200, answer("vector", [{"metric": {}, "value": [1, 2]}]), "timestamp"),
        (200, answer("vector", [{"metric": {}, "value": [1, "abc"]}]), "not a number"),
        (200, answer("vector", [{"metric": {"a": 1}, "value": [1, "1"]}]), "strings"),
        (200, answer("scalar", None), "timestamp"),
        (502, answer("vector", []), "HTTP 502"),
    ],
)
def test_failures_are_fetch_errors_that_say_why(status: int, body: bytes, fragment: str) -> None:
    with pytest.raises(FetchError) as error:
        decode_query_response(status, body)
    assert fragment in str(error.value)
