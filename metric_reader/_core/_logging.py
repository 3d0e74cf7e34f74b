"""Logging with loguru: readable text for people, one JSON object a line for pipelines.

Code logs with ``logger.bind(field=value, ...).info("message")``; the bound fields are
appended as ``key=value`` in text and become keys of the JSON object.

Text from outside reaches log lines (a Prometheus error, a label value, a plugin's exception
message, an HTTP reason phrase), so in text format no message or field can start a new
line or carry a control character: they are escaped (``\\n``, ``\\x1b``). A traceback keeps
its lines, each indented, so none of them can pass for a record of its own.

No record carries a secret the service knows (``_secrets``), whoever logged it (a plugin
too) and wherever the text came from: a patcher redacts the message and the bound fields
of every record before any sink sees it, and the sinks redact a traceback's text.

loguru itself (with asyncio, which it imports: tens of milliseconds) is imported when a
record is first logged: ``logger`` here stands for it, and :func:`configure_logging` takes
effect then. ``check --no-read`` with nothing to say, a developer's inner loop and a CI
step, never imports it. Code of this package logs through ``logger`` (tests/test_layers.py
holds every other module to it); code that imports loguru itself (a plugin) is loaded after
:func:`ensure_logging`, so that its records go where the configuration says.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, cast

from ._secrets import redact
from ._text import valid_text

if TYPE_CHECKING:
    from loguru import Logger


class _Logger:
    """loguru's logger, imported (and the logging configured) at the first use of any of
    its attributes."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(ensure_logging(), name)


logger = cast("Logger", _Logger())
"""What this package logs with: ``logger.bind(field=value).info("message")``."""
_pending: list[Callable[[Logger], None]] = []
"""The configuration to apply when loguru is imported (one at most)."""
_configuring = threading.Lock()


def ensure_logging() -> Logger:
    """loguru's logger, imported if it was not, configured as :func:`configure_logging`
    was last told."""
    from loguru import logger as loguru_logger

    if _pending:
        with _configuring:
            if _pending:
                _pending.pop()(loguru_logger)
    return loguru_logger


def logs_debug() -> bool:
    """Whether a DEBUG record would reach any sink now: a line logged at every poll is
    then worth binding its fields for. (loguru's own level check comes after ``bind``.)"""
    core = getattr(ensure_logging(), "_core", None)
    return core is None or bool(core.min_level <= _DEBUG)


_DEBUG = 10
"""loguru's number for DEBUG."""


_PLAIN = re.compile(r"[\w.:/+@-]+")
# C0 and C1 controls, DEL, and what else splits lines (Unicode line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_controls(text: str) -> str:
    """``text`` on one line, its control characters written as escapes."""

    def escaped(match: re.Match[str]) -> str:
        char = match[0]
        return _NAMED_ESCAPES.get(char) or (
            f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
        )

    return _CONTROL.sub(escaped, text)


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
    if _PLAIN.fullmatch(text):
        return text
    return _escape_controls(json.dumps(text, ensure_ascii=False))  # JSON leaves U+2028 as is


def _redacted(value: Any) -> Any:
    """A bound field's value with its text redacted, in containers too; any other object
    that would be written with a secret in its text is written as that text, redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_redacted(item) for item in value)
    text = str(value)
    shown = redact(text)
    return value if shown == text else shown


def _redact_record(record: Any) -> None:
    """The patcher: a record's message and bound fields, redacted before any sink."""
    record["message"] = redact(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        extra[key] = _redacted(value)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr when called) in
    ``fmt``: at once when loguru is imported, else when it is (``ensure_logging``)."""
    out = _ValidText(stream or sys.stderr)
    _pending[:] = [functools.partial(_configure, level, fmt, out)]
    if "loguru" in sys.modules:
        ensure_logging()


def _configure(level: str, fmt: str, out: _ValidText, logger: Logger) -> None:
    logger.remove()
    logger.configure(patcher=_redact_record)

    def text_sink(message: Any) -> None:
        record = message.record
        fields = " ".join(
            f"{_escape_controls(str(k))}={_text_value(v)}" for k, v in record["extra"].items()
        )
        stamp = record["time"].astimezone().isoformat(timespec="milliseconds")
        line = f"{stamp} {record['level'].name:<7} {_escape_controls(record['message'])}"
        if fields:
            line += "  " + fields
        if record["exception"] is not None:
            trace = redact("".join(_format_exception(record["exception"])))
            line += "".join(f"\n    {_escape_controls(part)}" for part in trace.splitlines())
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
            obj["exception"] = redact("".join(_format_exception(record["exception"])))
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
