"""Go's text/template execution (Go 1.19) with ``missingkey=zero``, on Python stand-ins for
Go values (see ``_gofmt``), and Go's built-in functions.

An execution error is raised as ``ExecError`` with Go's text:
``template: NAME:1:104: executing "NAME" at <humanize "x">: error calling humanize: ...``.

One execution is bounded, where Go's is not: its output and every text it makes are at
most ``MAX_TEXT`` characters, it takes at most ``MAX_STEPS`` steps (a range nested in a
range over the same labels multiplies) and its function calls read and make at most
``MAX_WORK`` characters in all. Past any of them it fails with an ``ExecError``, as any
failing template does.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._record import record
from ._fmt import (
    MAX_TEXT,
    BoundedText,
    Struct,
    TextTooLong,
    format_value,
    go_type,
    sprint,
    sprintf,
    sprintln,
)
from ._nodes import (
    Action,
    Branch,
    Chain,
    Command,
    Field,
    Identifier,
    Literal,
    LoopControl,
    Node,
    Operand,
    Pipe,
    Text,
    Variable,
)


class ExecError(ValueError):
    """A template that fails while it runs; the message is Go's."""


class FuncError(Exception):
    """Raised by a template function: Go's ``error calling NAME: <message>``."""


class _Missing:
    """No value (Go's invalid reflect.Value): printed ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()
_NO_FINAL: Any = object()
MAX_STEPS = 1_000_000
"""Actions, texts, commands and range iterations one execution may run: a template of a
label or an annotation takes a few dozen."""
MAX_WORK = 16 * MAX_TEXT
"""Characters the function calls of one execution may be given and return, in all: each
function's time is linear in them, so this bounds the time of the calls."""


@record(frozen=True, slots=True)
class Func:
    """A template function. ``params`` are Go types: "string", "float64", "any" (interface{}:
    constants take their default type), "value" (reflect.Value, as the built-ins take)."""

    params: tuple[str, ...]
    call: Callable[..., Any]
    variadic: str | None = None


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def is_true(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, str | Mapping | list | tuple):
        return len(value) > 0
    if isinstance(value, bool | int | float):
        return value != 0
    return True


class Executor:
    """One execution: ``Executor(text, name, funcs).run(nodes, data)``."""

    def __init__(self, text: str, name: str, funcs: Mapping[str, Func]) -> None:
        self.text = text
        self.name = name
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = []
        self.node: Any = None
        self.out = BoundedText()
        self.steps = 0
        self.work = 0

    def run(self, nodes: Sequence[Node], data: Any) -> str:
        self.vars = [("$", data)]
        try:
            self.walk_list(data, nodes)
        except TextTooLong as exc:
            raise self.error(str(exc)) from None
        return self.out.text()

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.error(f"more than {MAX_STEPS:,} steps: a template must not loop that long")

    def charge(self, values: Sequence[Any]) -> None:
        """Count the text a call is given or returns against ``MAX_WORK``."""
        self.work += sum(len(value) for value in values if isinstance(value, str))
        if self.work > MAX_WORK:
            raise self.error(
                f"more than {MAX_WORK:,} characters through its functions: a template must "
                "not work that hard"
            )

    # -- errors

    def at(self, node: Any) -> None:
        self.node = node

    def error(self, message: str) -> ExecError:
        if self.node is None:
            return ExecError(f"template: {self.name}: {message}")
        pos = self.node.pos
        before = self.text[:pos]
        newline = before.rfind("\n")
        column = pos if newline < 0 else pos - (newline + 1)
        line = 1 + before.count("\n")
        context = str(self.node)
        return ExecError(
            f'template: {self.name}:{line}:{column}: executing "{self.name}" at <{context}>: '
            f"{message}"
        )

    # -- statements

    def walk_list(self, dot: Any, nodes: Sequence[Node]) -> None:
        for node in nodes:
            self.walk(dot, node)

    def walk(self, dot: Any, node: Node) -> None:
        self.step()
        if isinstance(node, Text):  # (no error names a text: the last action stays the place)
            self.out.write(node.text)
            return
        self.at(node)
        if isinstance(node, Action):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.out.write("<no value>" if value is MISSING else format_value(value))
        elif isinstance(node, Branch):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, LoopControl):
            raise _Break() if node.kind == "break" else _Continue()

    def walk_if_or_with(self, dot: Any, node: Branch) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.walk_list(value if node.kind == "with" else dot, node.body)
            elif node.otherwise is not None:
                self.walk_list(dot, node.otherwise)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: Branch) -> None:
        self.at(node)
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if isinstance(value, Mapping):
                items: list[tuple[Any, Any]] = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, list | tuple):
                items = list(enumerate(value))
            elif value is MISSING or value is None:
                items = []
            else:
                raise self.error(f"range can't iterate over {format_value(value)}")
            inner = len(self.vars)
            for key, element in items:
                self.at(node)
                self.step()
                if node.pipe.decl:
                    self.set_top(1, element)
                if len(node.pipe.decl) > 1:
                    self.set_top(2, key)
                try:
                    self.walk_list(element, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[inner:]
            if not items and node.otherwise is not None:
                self.walk_list(dot, node.otherwise)
        finally:
            del self.vars[mark:]

    # -- variables

    def set_top(self, depth: int, value: Any) -> None:
        name, _ = self.vars[-depth]
        self.vars[-depth] = (name, value)

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        raise self.error(f"undefined variable: {name}")

    # -- pipelines

    def eval_pipeline(self, dot: Any, pipe: Pipe) -> Any:
        self.at(pipe)
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for name in pipe.decl:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def eval_command(self, dot: Any, cmd: Command, final: Any) -> Any:
        self.step()
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, Chain):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, Variable):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if first.kind == "nil":
            raise self.error("nil is not a command")
        if first.kind == "dot":
            return dot
        return first.value

    def not_a_function(self, args: Sequence[Operand], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def eval_field_node(self, dot: Any, node: Field, args: Sequence[Operand], final: Any) -> Any:
        self.at(node)
        return self.eval_field_chain(dot, dot, node, node.names, args, final)

    def eval_chain(self, dot: Any, node: Chain, args: Sequence[Operand], final: Any) -> Any:
        self.at(node)
        receiver = self.eval_arg(dot, "value", node.node)
        return self.eval_field_chain(dot, receiver, node, node.names, args, final)

    def eval_variable(self, dot: Any, node: Variable, args: Sequence[Operand], final: Any) -> Any:
        self.at(node)
        value = self.var_value(node.names[0])
        if len(node.names) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.names[1:], args, final)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: Any,
        names: Sequence[str],
        args: Sequence[Operand],
        final: Any,
    ) -> Any:
        for name in names[:-1]:
            receiver = self.eval_field(name, receiver, [], _NO_FINAL)
        return self.eval_field(names[-1], receiver, args, final)

    def eval_field(self, name: str, receiver: Any, args: Sequence[Operand], final: Any) -> Any:
        if receiver is MISSING:
            return MISSING
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, Struct) and name in receiver.fields:
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function")
            return receiver.fields[name]
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            return receiver.get(name, "")
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        type_name = receiver.type_name if isinstance(receiver, Struct) else go_type(receiver)
        raise self.error(f"can't evaluate field {name} in type {type_name}")

    # -- calls

    def eval_function(
        self, dot: Any, node: Identifier, cmd: Any, args: Sequence[Operand] | None, final: Any
    ) -> Any:
        self.at(node)
        function = self.funcs[node.name]
        return self.eval_call(dot, function, node.name, cmd, args, final)

    def eval_call(
        self,
        dot: Any,
        function: Func,
        name: str,
        node: Any,
        args: Sequence[Operand] | None,
        final: Any,
    ) -> Any:
        operands = list(args[1:]) if args else []
        count = len(operands) + (0 if final is _NO_FINAL else 1)
        fixed = len(function.params)
        if function.variadic is not None:
            if count < fixed:
                raise self.error(
                    f"wrong number of args for {name}: want at least {fixed} got {count}"
                )
        elif count != fixed:
            raise self.error(f"wrong number of args for {name}: want {fixed} got {count}")
        if name in ("and", "or"):  # they stop at the first value that decides
            value: Any = MISSING
            for operand in operands:
                value = self.eval_arg(dot, "value", operand)
                if is_true(value) == (name == "or"):
                    return value
            if final is not _NO_FINAL:
                value = final
            return value
        values: list[Any] = []
        for i, operand in enumerate(operands):
            kind = function.params[i] if i < fixed else function.variadic
            assert kind is not None
            values.append(self.eval_arg(dot, kind, operand))
        if final is not _NO_FINAL:
            i = len(operands)
            kind = function.params[i] if i < fixed else function.variadic
            assert kind is not None
            values.append(self.validate(final, kind))
        self.at(node)
        self.charge(values)
        try:
            result = function.call(*values)
        except (FuncError, TextTooLong) as exc:
            self.at(node)
            raise self.error(f"error calling {name}: {exc}") from None
        self.charge((result,))
        return result

    def eval_arg(self, dot: Any, kind: str, node: Operand) -> Any:
        self.at(node)
        if isinstance(node, Literal):
            if node.kind == "dot":
                return self.validate(dot, kind)
            if node.kind == "nil":
                if kind in ("any", "value"):
                    return None
                raise self.error(f"cannot assign nil to {kind}")
            if kind in ("any", "value"):
                return node.value
            if kind == "string":
                if node.kind != "string":
                    raise self.error(f"expected string; found {node}")
                return node.value
            if kind == "float64":
                if node.kind != "number" or isinstance(node.value, bool):
                    raise self.error(f"expected float; found {node}")
                return float(node.value)  # type: ignore[arg-type]
            if kind == "int":
                if node.kind != "number" or not isinstance(node.value, int):
                    raise self.error(f"expected integer; found {node}")
                return node.value
            raise self.error(f"can't handle {node} for arg of type {kind}")
        if isinstance(node, Field):
            value = self.eval_field_node(dot, node, [node], _NO_FINAL)
        elif isinstance(node, Variable):
            value = self.eval_variable(dot, node, [], _NO_FINAL)
        elif isinstance(node, Pipe):
            value = self.eval_pipeline(dot, node)
        elif isinstance(node, Identifier):
            value = self.eval_function(dot, node, node, None, _NO_FINAL)
        else:
            value = self.eval_chain(dot, node, [], _NO_FINAL)
        return self.validate(value, kind)

    def validate(self, value: Any, kind: str) -> Any:
        if kind in ("any", "value"):
            return None if value is MISSING else value
        if value is MISSING:
            raise self.error(f"invalid value; expected {kind}")
        expected = {"string": str, "float64": float, "int": int}[kind]
        if type(value) is not expected:
            raise self.error(
                f"wrong type for value; expected {kind}; got {go_type(value) or 'interface {}'}"
            )
        return value


# --------------------------------------------------------------------------------------------
# Go's built-in template functions


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "invalid"


def _eq(first: Any, *others: Any) -> bool:
    if isinstance(first, Mapping):
        raise FuncError(f"uncomparable type map[string]string: {format_value(first)}")
    if not others:
        raise FuncError("missing argument for comparison")
    for other in others:
        if isinstance(other, Mapping):
            raise FuncError(f"uncomparable type map[string]string: {format_value(other)}")
        if _kind(first) != _kind(other):
            if first is not None and other is not None:
                raise FuncError("incompatible types for comparison")
            continue
        if first == other:
            return True
    return False


def _lt(first: Any, second: Any) -> bool:
    k1, k2 = _kind(first), _kind(second)
    if k1 == "invalid" or k2 == "invalid":
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise FuncError("invalid type for comparison")
    return bool(first < second)


def _le(first: Any, second: Any) -> bool:
    return _lt(first, second) or _eq(first, second)


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, Mapping | list | tuple):
        return len(item)
    if item is None:
        raise FuncError("len of nil pointer")
    raise FuncError(f"len of type {go_type(item)}")


def _index(item: Any, *indexes: Any) -> Any:
    for index in indexes:
        if item is None:
            raise FuncError("index of untyped nil")
        if isinstance(item, Mapping):
            if not isinstance(index, str):
                if index is None:
                    raise FuncError("value is nil; should be of type string")
                raise FuncError(f"value has type {go_type(index)}; should be string")
            item = item.get(index, "")
        elif isinstance(item, str):
            if isinstance(index, bool) or not isinstance(index, int):
                raise FuncError(f"cannot index slice/array with type {go_type(index)}")
            data = item.encode()
            if not 0 <= index < len(data):
                raise FuncError(f"index out of range: {index}")
            item = data[index]
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _text_of(args: Sequence[Any]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(args)


def _html(*args: Any) -> str:
    import html  # here: with its entity tables, ~1 ms of every rule test's start

    text = html.escape(_text_of(args), quote=False)
    return text.replace('"', "&#34;").replace("'", "&#39;").replace("\0", "\ufffd")


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E"}
_JS_ESCAPES.update({"&": "\\u0026", "=": "\\u003D"})


def _js(*args: Any) -> str:
    out: list[str] = []
    for char in _text_of(args):
        if char in _JS_ESCAPES:
            out.append(_JS_ESCAPES[char])
        elif ord(char) < 0x20 or (ord(char) >= 0x80 and not char.isprintable()):
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_text_of(args), safe="-_.~")


def _not(value: Any) -> bool:
    return not is_true(value)


def _printf(template: str, *args: Any) -> str:
    return sprintf(template, args)


BUILTINS: Mapping[str, Func] = {
    "and": Func(("value",), lambda *a: None, variadic="value"),
    "or": Func(("value",), lambda *a: None, variadic="value"),
    "not": Func(("value",), _not),
    "len": Func(("value",), _len),
    "index": Func(("value",), _index, variadic="value"),
    "print": Func((), lambda *a: sprint(a), variadic="any"),
    "printf": Func(("string",), _printf, variadic="any"),
    "println": Func((), lambda *a: sprintln(a), variadic="any"),
    "html": Func((), _html, variadic="any"),
    "js": Func((), _js, variadic="any"),
    "urlquery": Func((), _urlquery, variadic="any"),
    "eq": Func(("value",), _eq, variadic="value"),
    "ne": Func(("value", "value"), lambda a, b: not _eq(a, b)),
    "lt": Func(("value", "value"), _lt),
    "le": Func(("value", "value"), _le),
    "gt": Func(("value", "value"), lambda a, b: not _le(a, b)),
    "ge": Func(("value", "value"), lambda a, b: not _lt(a, b)),
}
