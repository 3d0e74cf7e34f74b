"""LOG_FORMAT=json gives one JSON object a line with the event fields as keys."""

from __future__ import annotations

import io
import json
import math

from loguru import logger

from metric_reader._core._logging import configure_logging


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


FORGED = "\n2026-01-01T00:00:00.000+00:00 ERROR   forged"


def test_text_from_outside_cannot_start_a_line_in_text_format() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=out)
    hostile = f"bad{FORGED}\r\x1b[31m\x00\x85\u2028end"
    logger.bind(error=hostile, **{"odd\nkey": 1}).error("poll failed: {}", hostile)
    try:
        raise RuntimeError(f"boom{FORGED}")
    except RuntimeError:
        logger.exception("plugin crashed: {}", f"x{FORGED}")
    lines = out.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")], lines
    escaped = "bad\\n2026-01-01T00:00:00.000+00:00 ERROR   forged\\r\\x1b[31m\\x00\\x85\\u2028end"
    assert f"ERROR   poll failed: {escaped}  " in lines[0]
    assert "odd\\nkey=1" in lines[0]
    assert "\\u001b[31m\\u0000\\x85\\u2028end" in lines[0]  # the field: JSON, then the rest
    assert "plugin crashed: x\\n2026-01-01" in lines[1]
    assert all(line.startswith("    ") for line in lines[2:])  # the traceback, indented
    # The exception's own message keeps its lines, indented under the record like the rest.
    assert lines[-2:] == ["    RuntimeError: boom", "    " + FORGED.strip()]
    assert out.getvalue().count("\n") == len(lines)
