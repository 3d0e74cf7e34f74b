"""YAML composed into nodes that know their line and column, as Go's yaml.v3 gives Prometheus
(so errors can say ``FILE:LINE:COL``). PyYAML is imported on first use only: a service
without rule files never loads it.

Mappings are read the way yaml.v3 decodes them: a key given twice is an error, and merge
keys (``<<: *defaults``) are applied, the mapping's own keys winning. A document whose
aliases expand it out of proportion (a "billion laughs" of a few hundred bytes) is refused
by yaml.v3's rule before anything walks it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._prom_duration import go_quoted

if TYPE_CHECKING:
    from yaml.nodes import MappingNode, Node

_NULL = "tag:yaml.org,2002:null"
_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000
"""yaml.v3's bounds (decode.go): up to 400,000 nodes a document may be 99% aliases, from
4,000,000 10%, and in between the share falls linearly."""
_MERGE = "tag:yaml.org,2002:merge"

Report = Callable[["Node", str], None]
"""Notes a problem at a node."""


class YamlSyntaxError(Exception):
    """Text that is not YAML, or holds more than one document: one line, 1-based place."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


def compose(text: str) -> Node | None:
    """The document's root node (None when empty); ``YamlSyntaxError`` otherwise."""
    import yaml

    # libyaml when PyYAML was built with it: several times faster on large files.
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node: Node | None = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        raise _one_line(exc) from None
    except yaml.reader.ReaderError as exc:
        line, column = _place_of_offset(text, exc.position, in_bytes=loader is not yaml.SafeLoader)
        raise YamlSyntaxError(line, column, f"invalid character: {exc.reason}") from None
    if node is not None:
        _check_aliasing(node)
    return node


def _allowed_alias_ratio(nodes: int) -> float:
    if nodes <= _ALIAS_RATIO_LOW:
        return 0.99
    if nodes >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (nodes - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _check_aliasing(root: Node) -> None:
    """``YamlSyntaxError`` when the document, its aliases expanded, holds too many nodes that
    come from aliases (yaml.v3's rule, so what Prometheus refuses is refused), or an anchor
    holds an alias to itself.

    PyYAML composes an alias as the very node its anchor names, so a bomb costs nothing
    until something walks it, as the readers here do (a merge key walks what it merges).
    This walk sees each node once: the expanded size of an anchored node is kept, and each
    later alias to it counts that many nodes at once, as yaml.v3 counts them one by one.
    """
    from yaml.nodes import MappingNode, SequenceNode

    def children(node: Node) -> list[Node]:
        if isinstance(node, MappingNode):
            return [part for pair in node.value for part in pair]
        return list(node.value) if isinstance(node, SequenceNode) else []

    expanded: dict[int, int] = {}  # by id: how many nodes a complete node stands for
    walking = {id(root)}
    nodes, aliased = 1, 0
    stack: list[tuple[Node, list[Node]]] = [(root, children(root)[::-1])]
    sizes = [1]  # the expanded size so far of each node on the stack
    while stack:
        node, pending = stack[-1]
        if not pending:
            stack.pop()
            walking.discard(id(node))
            expanded[id(node)] = size = sizes.pop()
            if sizes:
                sizes[-1] += size
            continue
        child = pending.pop()
        if id(child) in walking:
            line, column = place(child)
            raise YamlSyntaxError(line, column, "an anchor's value contains an alias to itself")
        if id(child) in expanded:  # an alias: the alias and all its anchor holds, once more
            nodes += 1 + expanded[id(child)]
            aliased += expanded[id(child)]
            sizes[-1] += 1 + expanded[id(child)]
            if aliased > 100 and nodes > 1000 and aliased / nodes > _allowed_alias_ratio(nodes):
                line, column = place(node)
                raise YamlSyntaxError(
                    line,
                    column,
                    f"document contains excessive aliasing: {nodes:,} nodes once the aliases "
                    "up to here are expanded (Prometheus refuses it too)",
                )
            continue
        nodes += 1
        walking.add(id(child))
        stack.append((child, children(child)[::-1]))
        sizes.append(1)


def _one_line(exc: Any) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = str(exc.problem or exc.context or "invalid YAML")
    if problem == "but found another document":
        return YamlSyntaxError(
            line,
            column,
            "a second YAML document: a rule file holds one (Prometheus reads only the first)",
        )
    if exc.context and exc.problem and exc.context_mark:
        problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return YamlSyntaxError(line, column, problem)


def _place_of_offset(text: str, offset: int, *, in_bytes: bool) -> tuple[int, int]:
    # libyaml counts bytes of the UTF-8 text, PyYAML's own reader characters.
    if in_bytes:
        before = text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "replace")
    else:
        before = text[:offset]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def place(node: Node) -> tuple[int, int]:
    """The 1-based line and column where ``node`` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def is_null(node: Node | None) -> bool:
    from yaml.nodes import ScalarNode

    return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL)


def kind(node: Node) -> str:
    """How a message names what was found: ``a list``, ``a mapping``, ``"abc"``."""
    from yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "null" if is_null(node) else go_quoted(str(node.value))


def scalar_text(node: Node | None, report: Report, what: str) -> str | None:
    """The text of a scalar as written (``5`` and ``true`` are text too, as yaml.v3 decodes
    them into a Go string); ``""`` for null or absent; None (noted) for a list or mapping."""
    from yaml.nodes import ScalarNode

    if is_null(node):
        return ""
    assert node is not None
    if not isinstance(node, ScalarNode):
        report(node, f"{what}: expected a string, got {kind(node)}")
        return None
    return str(node.value)


def entries(node: Node | None, report: Report, what: str) -> dict[str, tuple[Node, Node]] | None:
    """A mapping's entries by key: ``{}`` for null or absent, None (noted) when ``node`` is not
    a mapping. Keys given twice are noted; merge keys are applied."""
    from yaml.nodes import MappingNode

    if is_null(node):
        return {}
    assert node is not None
    if not isinstance(node, MappingNode):
        report(node, f"{what}: expected a mapping, got {kind(node)}")
        return None
    return _entries(node, report, what, depth=0)


def _entries(
    node: MappingNode, report: Report, what: str, depth: int
) -> dict[str, tuple[Node, Node]]:
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    merged: dict[str, tuple[Node, Node]] = {}
    own: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if key.tag == _MERGE:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if not isinstance(source, MappingNode) or depth > 20:
                    report(source, f"{what}: a merge (<<) takes a mapping or a list of them")
                    continue
                for name, entry in _entries(source, report, what, depth + 1).items():
                    merged.setdefault(name, entry)
            continue
        if not isinstance(key, ScalarNode):
            report(key, f"{what}: a key must be a string, got {kind(key)}")
            continue
        name = "" if is_null(key) else str(key.value)
        if name in own:
            first_line = place(own[name][0])[0]
            report(key, f"mapping key {go_quoted(name)} already defined at line {first_line}")
            continue
        own[name] = (key, value)
    return merged | own
