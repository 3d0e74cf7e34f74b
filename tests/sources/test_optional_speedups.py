"""The optional JSON decoder (orjson, the ``fast`` extra) changes speed, never behaviour:
without it the standard library path is used and gives the same answers.

uvloop is measured by ``make bench`` but not used: under uvloop a refused connection could
surface inside anyio/httpcore as an AttributeError instead of a connection error, which is
not robust enough for a service that must ride out endpoints going down."""

from __future__ import annotations

import json

import pytest

from metric_reader._core._exceptions import FetchError
from metric_reader._sources import _prometheus
from metric_reader._sources._prometheus import decode_query_response

ANSWERS = [
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},'
    b'"value":[1.5,"42"]},{"metric":{},"value":[1.5,"NaN"]}]}}',
    b'{"status":"success","data":{"resultType":"scalar","result":[1,"1e400"]}}',
    b'{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[]}}',
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"\\ud800"},'
    b'"value":[1,"1"]}]}}',  # a lone surrogate: orjson refuses, json accepts
    json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}).encode(
        "utf-16"
    ),  # json detects UTF-16; orjson is UTF-8 only
]
BAD = [b"not json", b"[" * 100_000, b'{"status":"error","errorType":"bad_data","error":"x"}']


def _outcome(body: bytes) -> object:
    try:
        result = decode_query_response(200, body)
    except FetchError as exc:
        return ("error", str(exc))
    return [(s.labels, repr(s.value)) for s in result.samples], result.warnings


@pytest.mark.parametrize("body", ANSWERS + BAD)
def test_the_fast_decoder_and_the_stdlib_agree(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _outcome(body)
    monkeypatch.setattr(_prometheus, "_fast_loads", None)
    assert _outcome(body) == fast
