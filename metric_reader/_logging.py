"""Logging with loguru: readable text for people, one JSON object a line for pipelines.

Code logs with ``logger.bind(field=value, ...).info("message")``; the bound fields are
appended as ``key=value`` in text and become keys of the JSON object.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, TextIO

from loguru import logger

from ._text import valid_text

_PLAIN = re.compile(r"[\w.:/+@-]+")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Inf
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _text_value(value: Any) -> str:
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``fmt``."""
    out = _ValidText(stream or sys.stderr)
    logger.remove()

    def text_sink(message: Any) -> None:
        record = message.record
        fields = " ".join(f"{k}={_text_value(v)}" for k, v in record["extra"].items())
        stamp = record["time"].astimezone().isoformat(timespec="milliseconds")
        line = f"{stamp} {record['level'].name:<7} {record['message']}"
        if fields:
            line += "  " + fields
        if record["exception"] is not None:
            line += "\n" + "".join(_format_exception(record["exception"]))
        out.write(line.rstrip("\n") + "\n")
        out.flush()

    def json_sink(message: Any) -> None:
        record = message.record
        obj: dict[str, Any] = {
            "time": record["time"].astimezone().isoformat(timespec="milliseconds"),
            "level": record["level"].name.lower(),
            "message": record["message"],
        }
        for key, value in record["extra"].items():
            obj.setdefault(key, _jsonable(value))
        if record["exception"] is not None:
            obj["exception"] = "".join(_format_exception(record["exception"]))
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        out.flush()

    logger.add(
        json_sink if fmt == "json" else text_sink,
        level=level,
        format="{message}",
        backtrace=False,
        diagnose=False,
        enqueue=False,
    )


class _ValidText:
    """Writes to ``stream`` with lone surrogates (from a label value, an environment
    variable that is not UTF-8, ...) as U+FFFD: a log line can always be written and read."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write(valid_text(text))

    def flush(self) -> None:
        self.stream.flush()


def _format_exception(exception: Any) -> list[str]:
    import traceback

    return traceback.format_exception(exception.type, exception.value, exception.traceback)
