"""Text with lone surrogates (``_text``): decoded from JSON as Go does, logged as valid UTF-8."""

from __future__ import annotations

import io

import pytest
from loguru import logger

from metric_reader._core._logging import configure_logging
from metric_reader._sources._prometheus import decode_query_response


def test_a_lone_surrogate_escape_in_a_query_answer_becomes_u_fffd_and_a_pair_is_kept() -> None:
    body = (
        b'{"status":"success","data":{"resultType":"vector","result":['
        b'{"metric":{"a":"\\udcff-\\uD800x","b":"\\ud83d\\ude00"},"value":[1,"5"]}]}}'
    )
    (sample,) = decode_query_response(200, body).samples
    assert sample.labels == (("a", "\ufffd-\ufffdx"), ("b", "\U0001f600"))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_log_line_holding_a_lone_surrogate_is_written_as_valid_utf8(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("INFO", fmt, out)
    try:
        logger.bind(rule="r\udcff").info("read {}", "q\ud800")
    finally:
        configure_logging()
    line = out.getvalue()
    line.encode("utf-8")  # would raise on a lone surrogate
    assert "\ufffd" in line and "\udcff" not in line
