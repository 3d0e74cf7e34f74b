"""Alert templates (``labels`` and ``annotations``) rendered as Prometheus renders them.

No maintained pure-Python Go text/template exists that we could depend on (PyPI has CGo
wrappers needing a Go toolchain, and ``gotpl`` 0.1.0, a pre-1.0 first release), so this is
the subset alert templates use, written after Go 1.19's text/template (Prometheus 2.42's Go)
and Prometheus' template/template.go and rules/alerting.go. Not available: ``query`` and the
functions that only work on its results (``first``, ``label``, ``value``, ``strvalue``,
``sortByLabel``), ``graphLink``/``tableLink``, ``safeHtml``, ``toTime``, ``parseDuration``,
and ``define``/``template``/``block``: a template calling them parses (as in Prometheus) and
expands to the error text."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .._regex import go_regex_error
from ._exec import BUILTINS, ExecError, Executor, Func, FuncError
from ._fmt import BoundedText, Struct, format_float, go_type
from ._nodes import Node
from ._parse import ParseError, Parser

_DEFS = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
_DATA_TYPE = (
    "struct { Labels map[string]string; ExternalLabels map[string]string; "
    "ExternalURL string; Value float64 }"
)


class TemplateError(ValueError):
    """A template Go's parser refuses: ``template: __alert_X:1: unexpected "}" in operand``."""


def check_template(text: str, name: str) -> None:
    """Parse only, with the alert variables defined, as Prometheus does when it loads a rule
    file; raise ``TemplateError`` with its message."""
    try:
        _parse(_DEFS + text, name)
    except ParseError as exc:
        raise TemplateError(str(exc)) from None


def expand_alert_template(
    text: str,
    name: str,
    *,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] = {},
    external_url: str = "",
) -> str:
    """What Prometheus' rules/alerting.go makes of a label or annotation template: ``$labels``,
    ``$externalLabels``, ``$externalURL`` and ``$value`` defined, and on any error the text
    ``<error expanding template: ...>``. ``name`` is ``"__alert_" + alertname``."""
    full = _DEFS + text
    try:
        nodes = _parse(full, name)
    except ParseError as exc:
        return f"<error expanding template: error parsing template {name}: {exc}>"
    data = Struct(
        _DATA_TYPE,
        {
            "Labels": dict(labels),
            "ExternalLabels": dict(external_labels),
            "ExternalURL": external_url,
            "Value": float(value),
        },
    )
    try:
        return Executor(full, name, _functions(external_url)).run(nodes, data)
    except ExecError as exc:
        return f"<error expanding template: error executing template {name}: {exc}>"
    except RecursionError:
        return f"<error expanding template: panic expanding template {name}: too deep>"


_PLUGIN_DEFS = "{{$labels := .Labels}}{{$annotations := .Annotations}}{{$value := .Value}}"
_PLUGIN_DATA_TYPE = (
    "struct { Labels map[string]string; Annotations map[string]string; Value float64 }"
)


class AlertTemplate:
    """A template of an alert's event, for plugins: Go's text/template with Prometheus'
    functions, as alert annotations are written, and ``$labels``, ``$annotations`` and
    ``$value`` (also ``.Labels``, ``.Annotations``, ``.Value``) defined.

    ``AlertTemplate(text)`` parses it and raises ``ValueError`` saying why it cannot be;
    ``render`` expands it, and raises ``ValueError`` where Prometheus would write
    ``<error expanding template: ...>`` into an annotation: a plugin acting on what it
    renders must not act on an error's text.
    """

    def __init__(self, text: str, name: str = "template") -> None:
        if not isinstance(text, str):
            raise TypeError(f"a template is a string, not {type(text).__name__}")
        self.text = text
        self.name = name
        try:
            self._nodes = _parse(_PLUGIN_DEFS + text, name)
        except ParseError as exc:
            raise TemplateError(str(exc)) from None

    def render(
        self,
        *,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        value: float = math.nan,
    ) -> str:
        """The text for an event's ``labels``, ``annotations`` and ``value``."""
        if "{{" not in self.text:
            return self.text
        data = Struct(
            _PLUGIN_DATA_TYPE,
            {
                "Labels": dict(labels),
                "Annotations": dict(annotations or {}),
                "Value": float(value),
            },
        )
        try:
            return Executor(_PLUGIN_DEFS + self.text, self.name, _functions("")).run(
                self._nodes, data
            )
        except ExecError as exc:
            raise TemplateError(self._without_defs(str(exc))) from None
        except RecursionError:
            raise TemplateError(f"template: {self.name}: too deep") from None

    def _without_defs(self, message: str) -> str:
        """Go's message, its column on line 1 counted from the template's own start (not
        from the variables' definitions put before it)."""
        head = f"template: {self.name}:1:"
        if not message.startswith(head):
            return message
        column, colon, rest = message[len(head) :].partition(":")
        if not column.isdigit() or not colon:
            return message
        return f"{head}{max(int(column) - len(_PLUGIN_DEFS), 0)}:{rest}"

    def __repr__(self) -> str:
        return f"AlertTemplate({self.text!r})"


@lru_cache(maxsize=4096)
def _parse(text: str, name: str) -> list[Node]:
    return Parser(text, name, _FUNCTION_NAMES).parse()


# --------------------------------------------------------------------------------------------
# Prometheus' functions


def _to_float(value: Any) -> float:
    """convertToFloat: float64, int or a string strconv.ParseFloat reads."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FuncError(f"can't convert {go_type(value)} to float")
    if isinstance(value, str):
        return _parse_float(value)
    return float(value)


def _parse_float(text: str) -> float:
    body = text.replace("_", "") if "_" in text and text[:2].lower() == "0x" else text
    lowered = body.lower().lstrip("+-")
    if lowered in ("inf", "infinity", "nan"):
        return float(body)
    ok = body.strip() == body and body != "" and "_" not in body and lowered[:1] not in ("",)
    try:
        if ok and lowered.startswith("0x"):
            return float.fromhex(body)
        if ok and all(c in "0123456789.e+-" for c in lowered):
            return float(body)
    except (ValueError, OverflowError):
        pass
    raise FuncError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')


def _g4(value: float) -> str:
    return format_float(value, "g", 4)


def _scaled(value: float, prefixes: str | tuple[str, ...], step: float, up: bool) -> str:
    prefix = ""
    for candidate in prefixes:
        if (abs(value) < step) if up else (abs(value) >= 1):
            break
        prefix = candidate
        value = value / step if up else value * step
    return _g4(value) + prefix


_BIG = ("k", "M", "G", "T", "P", "E", "Z", "Y")
_SMALL = ("m", "u", "n", "p", "f", "a", "z", "y")


def _humanize(arg: Any) -> str:
    value = _to_float(arg)
    if value == 0 or not math.isfinite(value):
        return _g4(value)
    if abs(value) >= 1:
        return _scaled(value, _BIG, 1000, up=True)
    return _scaled(value, _SMALL, 1000, up=False)


def _humanize1024(arg: Any) -> str:
    value = _to_float(arg)
    if abs(value) <= 1 or not math.isfinite(value):
        return _g4(value)
    return _scaled(value, ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"), 1024, up=True)


def _humanize_duration(arg: Any) -> str:
    value = _to_float(arg)
    if not math.isfinite(value):
        return _g4(value)
    if value == 0:
        return _g4(value) + "s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        # Go's int64(v): out of range it is the minimum int64 (on amd64); / and % truncate.
        whole = int(value) if value < 2**63 else -(2**63)
        seconds, minutes = _rem(whole, 60), _rem(_quo(whole, 60), 60)
        hours, days = _rem(_quo(whole, 3600), 24), _quo(whole, 86400)
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(value)}s"
    return _scaled(value, _SMALL, 1000, up=False) + "s"


def _quo(a: int, b: int) -> int:
    quotient = abs(a) // b
    return -quotient if a < 0 else quotient


def _rem(a: int, b: int) -> int:
    return a - _quo(a, b) * b


def _humanize_timestamp(arg: Any) -> str:
    """Go's ``time.Time.String()`` of the Unix time ``arg`` (whole milliseconds, UTC):
    ``1970-01-03 02:05:00 +0000 UTC``, ``... 00:00:01.5 +0000 UTC``."""
    value = _to_float(arg)
    if not math.isfinite(value):
        return _g4(value)
    nanos = value * 1e9
    if not -(2.0**63) <= nanos < 2.0**63:
        raise FuncError(
            f"{format_float(value)} cannot be represented as a nanoseconds timestamp "
            "since it overflows int64"
        )
    millis = _quo(int(nanos), 1_000_000)  # model.TimeFromUnixNano: truncated to milliseconds
    seconds, fraction = _quo(millis, 1000), _rem(millis, 1000)
    if fraction < 0:
        seconds, fraction = seconds - 1, fraction + 1000
    import datetime

    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if fraction:
        text += f".{fraction:03d}".rstrip("0")
    return text + " +0000 UTC"


def _humanize_percentage(arg: Any) -> str:
    return _g4(_to_float(arg) * 100) + "%"


def _is_separator(char: str) -> bool:
    """strings.Title's word boundary."""
    if char.isascii():
        return not (char.isalnum() or char == "_")
    if char.isalpha() or char.isdigit():
        return False
    return char.isspace()


def _title(text: str) -> str:
    out: list[str] = []
    previous = " "
    for char in text:
        out.append(_rune_map(char, str.title) if _is_separator(previous) else char)
        previous = char
    return "".join(out)


def _rune_map(char: str, case: Any) -> str:
    """Go maps case one rune to one rune: ``ß`` stays ``ß`` where Python makes ``SS``."""
    mapped = case(char)
    return mapped if len(mapped) == 1 else char


def _to_upper(text: str) -> str:
    return "".join(_rune_map(c, str.upper) for c in text)


def _to_lower(text: str) -> str:
    return "".join(_rune_map(c, str.lower) for c in text)


def _compile(pattern: str) -> Any:
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        message = f"regexp: Compile({_backquote(pattern)}): {go_regex_error(reason)}"
        raise FuncError(message) from None
    return compiled


def _backquote(text: str) -> str:
    return "`" + text + "`" if "`" not in text else repr(text)


def _expansion(template: str, group_index: Mapping[str, int], groups: int) -> list[str | int]:
    """Go's Regexp.Expand template (``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``) read
    once: its texts, and the numbers of the groups that go between them."""
    parts: list[str | int] = []
    text: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$" or i + 1 >= len(template):
            text.append(char)
            i += 1
            continue
        if template[i + 1] == "$":
            text.append("$")
            i += 2
            continue
        if template[i + 1] == "{":
            close = template.find("}", i + 2)
            name = template[i + 2 : close] if close > 0 else ""
            end = close + 1
        else:
            end = i + 1
            while end < len(template) and (template[end].isalnum() or template[end] == "_"):
                end += 1
            name = template[i + 1 : end]
        if not name or not all(c.isalnum() or c == "_" for c in name):
            text.append("$")
            i += 1
            continue
        number = int(name) if name.isdigit() else group_index.get(name, -1)
        if 0 <= number <= groups:
            parts += ["".join(text), number]
            text = []
        i = end
    parts.append("".join(text))
    return parts


def _re_replace_all(pattern: str, replacement: str, text: str) -> str:
    regex = _compile(pattern)
    expansion = _expansion(replacement, regex.groupindex, regex.groups)
    out = BoundedText()
    last = 0
    previous_end = -1
    for match in regex.finditer(text):
        start, end = match.start(), match.end()
        if start == end and start == previous_end:
            continue  # Go skips an empty match right after a match
        out.write(text[last:start])
        for part in expansion:
            out.write(part if isinstance(part, str) else match.group(part) or "")
        last = previous_end = end
    out.write(text[last:])
    return out.text()


def _match(pattern: str, text: str) -> bool:
    return _compile(pattern).search(text) is not None


def _strip_port(host_port: str) -> str:
    host, ok = _split_host_port(host_port)
    return host if ok else host_port


def _split_host_port(host_port: str) -> tuple[str, bool]:
    if host_port.startswith("["):
        close = host_port.find("]")
        if close < 0 or not host_port[close + 1 :].startswith(":"):
            return "", False
        if ":" in host_port[close + 2 :]:
            return "", False
        return host_port[1:close], True
    if host_port.count(":") != 1:
        return "", False
    return host_port.split(":")[0], True


def _unavailable(name: str) -> Func:
    def call(*_: Any) -> Any:
        raise FuncError(f"function {name!r} is not available in metric-reader")

    return Func((), call, variadic="any")


def _functions(external_url: str) -> Mapping[str, Func]:
    funcs = dict(_STATIC)
    funcs["externalURL"] = Func((), lambda: external_url)
    funcs["pathPrefix"] = Func((), lambda: _path_of(external_url))
    return funcs


def _path_of(url: str) -> str:
    import urllib.parse

    return urllib.parse.urlsplit(url).path


_STATIC: dict[str, Func] = {
    **BUILTINS,
    "humanize": Func(("any",), _humanize),
    "humanize1024": Func(("any",), _humanize1024),
    "humanizeDuration": Func(("any",), _humanize_duration),
    "humanizePercentage": Func(("any",), _humanize_percentage),
    "humanizeTimestamp": Func(("any",), _humanize_timestamp),
    "title": Func(("string",), _title),
    "toUpper": Func(("string",), _to_upper),
    "toLower": Func(("string",), _to_lower),
    "reReplaceAll": Func(("string", "string", "string"), _re_replace_all),
    "match": Func(("string", "string"), _match),
    "stripPort": Func(("string",), _strip_port),
    "args": Func((), lambda *a: {f"arg{i}": v for i, v in enumerate(a)}, variadic="any"),
}
for _name in (
    "query", "first", "label", "value", "strvalue", "sortByLabel", "graphLink", "tableLink",
    "safeHtml", "stripDomain", "toTime", "parseDuration",
):  # fmt: skip
    _STATIC[_name] = _unavailable(_name)

_FUNCTION_NAMES = frozenset([*_STATIC, "externalURL", "pathPrefix"])
