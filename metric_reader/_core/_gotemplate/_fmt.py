"""Go's ``fmt`` as templates print values: ``%v`` of every template value, and ``printf``.

Template values are Python stand-ins for Go's: ``str`` (string), ``float`` (float64), ``int``
(an untyped integer constant, Go's int), ``bool``, ``None`` (nil, printed ``<nil>``) and a
``Mapping[str, str]`` (map[string]string, printed ``map[a:b]`` with sorted keys).

What one call makes is bounded: widths and precisions are Go's (at most 10^6 from an
argument; a number in the format that grows past 10^6 ends the format with
``%!(NOVERB)``), and no text made here grows past ``MAX_TEXT`` characters
(``TextTooLong``), so no template can build a string larger than its readers can hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._record import record

MAX_TEXT = 1024 * 1024
"""Characters one template may produce, and any text it makes on the way: more than any
label or annotation needs, and more than one verb of Go's can print (10^6 wide)."""
_TOO_LARGE = 1_000_000
"""Go's ``tooLarge``: a width or precision past this is refused."""


class TextTooLong(ValueError):
    """A template made, or was about to make, a text longer than ``MAX_TEXT``."""

    def __init__(self) -> None:
        super().__init__(
            f"the text would be longer than {MAX_TEXT:,} characters, the most one template "
            "may produce"
        )


class BoundedText:
    """A text written in parts, refused (``TextTooLong``) as soon as it outgrows ``MAX_TEXT``
    (a plain class: cheaper to define than a dataclass, at every ``check`` and ``test``)."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_TEXT:
            raise TextTooLong()
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)


@record(frozen=True, slots=True)
class Struct:
    """A Go struct value: its type's text for errors, its fields by name, in order."""

    type_name: str
    fields: Mapping[str, Any]


def go_type(value: Any) -> str:
    """The Go type name of a template value, as ``%T`` and error messages print it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]string"
    if value is None:
        return "<nil>"
    if isinstance(value, Struct):
        return value.type_name
    return type(value).__name__


def format_float(value: float, verb: str = "g", precision: int = -1) -> str:
    """strconv.FormatFloat(value, verb, precision, 64) for verbs e, f, g (-1: shortest)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    negative = math.copysign(1.0, value) < 0
    if precision >= 0 and verb == "f":
        return f"{value:.{precision}f}"
    if precision >= 0 and verb == "e":
        return f"{value:.{precision}e}"
    if precision >= 0:  # 'g' rounds to that many digits, then drops trailing zeros
        return f"{value:.{max(precision, 1)}g}"
    digits, exp = _shortest_digits(value)
    if verb == "e" or (verb == "g" and (exp < -4 or exp >= 6)):
        return _e_form(negative, digits, exp)
    return _plain(negative, digits, exp)


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that read back as ``value`` and the exponent of the
    first digit (``1234.5`` → ``("12345", 3)``)."""
    if value == 0:
        return "0", 0
    text = repr(abs(value))
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        digits = mantissa.replace(".", "").rstrip("0") or "0"
        return digits, int(exponent)
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if whole != "0":
        digits = (whole + frac).rstrip("0") or "0"
        return digits, len(whole) - 1
    stripped = frac.lstrip("0")
    return stripped.rstrip("0") or "0", -(len(frac) - len(stripped)) - 1


def _e_form(negative: bool, digits: str, exp: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exp < 0 else "+"
    return f"{'-' if negative else ''}{mantissa}e{sign}{abs(exp):02d}"


def _plain(negative: bool, digits: str, exp: int) -> str:
    if exp < 0:
        text = "0." + "0" * (-exp - 1) + digits
    elif exp + 1 >= len(digits):
        text = digits + "0" * (exp + 1 - len(digits))
    else:
        text = digits[: exp + 1] + "." + digits[exp + 1 :]
    return ("-" if negative else "") + text


def format_value(value: Any) -> str:
    """fmt.Sprint of one value (``%v``)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _joined("map[", [(f"{k}:", value[k]) for k in sorted(value)], "]")
    if isinstance(value, Struct):
        return _joined("{", [("", v) for v in value.fields.values()], "}")
    return str(value)


def _joined(opening: str, items: Sequence[tuple[str, Any]], closing: str) -> str:
    out = BoundedText()
    out.write(opening)
    for i, (key, item) in enumerate(items):
        out.write(" " + key if i else key)
        out.write(format_value(item))
    out.write(closing)
    return out.text()


def sprint(args: Sequence[Any]) -> str:
    """fmt.Sprint: a space between two operands when neither is a string."""
    out = BoundedText()
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.write(" ")
        out.write(format_value(arg))
    return out.text()


def sprintln(args: Sequence[Any]) -> str:
    out = BoundedText()
    for i, arg in enumerate(args):
        out.write(" " if i else "")
        out.write(format_value(arg))
    out.write("\n")
    return out.text()


def sprintf(template: str, args: Sequence[Any]) -> str:
    """fmt.Sprintf for the verbs templates use, as Go's ``doPrintf`` reads the format; a
    wrong verb or argument prints as Go does (``%!d(string=x)``, ``%!s(MISSING)``,
    ``%!(EXTRA int=1)``, ``%!(BADWIDTH)``, ``%!(NOVERB)``)."""
    out = BoundedText()
    used = 0
    i = 0
    end = len(template)
    while i < end:
        start = template.find("%", i)
        if start < 0:
            out.write(template[i:])
            break
        out.write(template[i:start])
        i = start + 1
        flags = ""
        while i < end and template[i] in "#0+- ":
            flags += template[i]
            i += 1
        width: int | None = None
        if i < end and template[i] == "*":
            width, used = _int_argument(args, used)
            i += 1
            if width is None:
                out.write("%!(BADWIDTH)")
            elif width < 0:  # a negative width from an argument pads on the right
                width, flags = -width, flags + "-"
        else:
            width, i = _number(template, i)
        precision: int | None = None
        if i + 1 < end and template[i] == ".":
            i += 1
            if template[i] == "*":
                precision, used = _int_argument(args, used)
                i += 1
                if precision is None or precision < 0:
                    precision = None
                    out.write("%!(BADPREC)")
            else:
                precision, i = _number(template, i)
                precision = precision or 0
        if i >= end:
            out.write("%!(NOVERB)")
            break
        verb = template[i]
        i += 1
        if verb == "%":
            out.write("%")
            continue
        if used >= len(args):
            out.write(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        numeric = isinstance(arg, int | float) and not isinstance(arg, bool)
        if (width or 0) > MAX_TEXT or (numeric and (precision or 0) > MAX_TEXT):
            raise TextTooLong()  # (a precision only cuts a string: it never grows one)
        out.write(_pad(_format_verb(verb, flags, precision, arg), width, flags, arg))
    if used < len(args):
        out.write("%!(EXTRA ")
        for n, extra in enumerate(args[used:]):
            out.write(", " if n else "")
            out.write("<nil>" if extra is None else f"{go_type(extra)}=")
            out.write("" if extra is None else format_value(extra))
        out.write(")")
    return out.text()


def _number(template: str, i: int) -> tuple[int | None, int]:
    """Go's ``parsenum``: the decimal number at ``i`` (None when there is none) and where
    it ends. A number that grows past 10^6 is none, and the whole rest of the format is
    taken with it (Go: "crazy long number most likely")."""
    number: int | None = None
    while i < len(template) and "0" <= template[i] <= "9":
        if number is not None and number > _TOO_LARGE:
            return None, len(template)
        number = (number or 0) * 10 + ord(template[i]) - ord("0")
        i += 1
    return number, i


def _int_argument(args: Sequence[Any], used: int) -> tuple[int | None, int]:
    """Go's ``intFromArg``: the width or precision an argument gives (None when it is no
    integer, or larger than 10^6), and the arguments used (none when none is left)."""
    if used >= len(args):
        return None, used
    value = args[used]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _TOO_LARGE:
        return value, used + 1
    return None, used + 1


def _bad(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={format_value(arg)})"


def _format_verb(verb: str, flags: str, precision: int | None, arg: Any) -> str:
    if verb == "T":
        return go_type(arg)
    if verb == "v":
        if isinstance(arg, float) and precision is not None:
            return _sign(format_float(arg, "g", precision), flags)
        return (
            _sign(format_value(arg), flags) if isinstance(arg, int | float) else format_value(arg)
        )
    if isinstance(arg, bool):
        return format_value(arg) if verb == "t" else _bad(verb, arg)
    if isinstance(arg, int):
        return _format_int(verb, flags, precision, arg)
    if isinstance(arg, float):
        return _format_float_verb(verb, flags, precision, arg)
    if isinstance(arg, str):
        return _format_str(verb, flags, precision, arg)
    return _bad(verb, arg)


def _sign(text: str, flags: str) -> str:
    if text.startswith(("-", "+")):
        return text
    if "+" in flags:
        return "+" + text
    if " " in flags:
        return " " + text
    return text


def _format_int(verb: str, flags: str, precision: int | None, arg: int) -> str:
    table = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}
    if verb in table:
        text = format(abs(arg), table[verb])
        if precision is not None:
            text = text.zfill(precision)
        if "#" in flags and verb in "xX":
            text = ("0x" if verb == "x" else "0X") + text
        return _sign(("-" if arg < 0 else "") + text, flags)
    if verb == "c":
        return _rune(arg)
    if verb == "q":
        return _quote_rune(arg)
    if verb in "eEfFgG":
        return _bad(verb, arg)
    return _bad(verb, arg)


def _format_float_verb(verb: str, flags: str, precision: int | None, arg: float) -> str:
    lower = verb.lower()
    if lower not in "efg":
        return _bad(verb, arg)
    if precision is None:
        precision = -1 if lower == "g" else 6
    text = format_float(arg, lower, precision)
    if verb in "EG":
        text = text.upper().replace("INF", "Inf").replace("NAN", "NaN")
    return _sign(text, flags) if not math.isnan(arg) else text


def _format_str(verb: str, flags: str, precision: int | None, arg: str) -> str:
    if precision is not None and verb in "sq":
        arg = arg[:precision]
    if verb == "s":
        return arg
    if verb == "q":
        return "`" + arg + "`" if "#" in flags and "`" not in arg else quote(arg)
    if verb in "xX":
        text = arg.encode().hex()
        return text.upper() if verb == "X" else text
    return _bad(verb, arg)


def _pad(text: str, width: int | None, flags: str, arg: Any) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text + " " * (width - len(text))
    numeric = isinstance(arg, int | float) and not isinstance(arg, bool)
    if "0" in flags and numeric and not (isinstance(arg, float) and not math.isfinite(arg)):
        sign = text[0] if text[:1] in ("-", "+", " ") else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
_ESCAPES.update({"\v": r"\v", "\\": "\\\\", '"': '\\"'})


def quote(text: str) -> str:
    """strconv.Quote: Go's escapes, printable Unicode kept."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _rune(code: int) -> str:
    """Go's ``rune(code)`` as fmt prints it: U+FFFD when it is no Unicode character."""
    return chr(code) if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _quote_rune(code: int) -> str:
    char = _rune(code)
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + quote(char)[1:-1] + "'"
