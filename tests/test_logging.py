"""LOG_FORMAT=json gives one JSON object a line with the event fields as keys."""

from __future__ import annotations

import io
import json
import math

from loguru import logger

from metric_reader._logging import configure_logging


def test_json_lines_carry_the_fields_as_keys() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logger.bind(rule="disk", value=math.nan, labels={"a": "b"}).warning("firing: {}", "x")
    logger.debug("hidden at info level")
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "firing: x"
    assert record["level"] == "warning"
    assert record["rule"] == "disk"
    assert record["value"] == "nan"  # JSON has no NaN
    assert record["labels"] == {"a": "b"}
    assert "time" in record


def test_text_lines_show_fields_as_key_value() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "text", stream=out)
    logger.bind(series='q{a="b c"}', value=95.0).info("firing")
    [line] = out.getvalue().splitlines()
    assert " INFO " in line and "firing" in line
    assert 'series="q{a=\\"b c\\"}"' in line
    assert "value=95.0" in line


def test_an_exception_stays_inside_one_json_record() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("fatal error")
    [line] = out.getvalue().splitlines()
    assert "RuntimeError: boom" in json.loads(line)["exception"]
