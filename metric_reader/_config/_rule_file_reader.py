"""One Prometheus rule file checked as ``promtool check rules`` 2.42 checks it
(``rulefmt.Validate``), alerting and recording rules alike, with two additions of Prometheus
3 to groups (``labels`` and ``query_offset``). Names are Prometheus 2.42's: a label or
annotation name is ``[a-zA-Z_][a-zA-Z0-9_]*``, a recording rule's name a metric name
(``[a-zA-Z_:][a-zA-Z0-9_:]*``); an alert's name is free text. An alert given twice in a
group with the same labels is not a problem here: promtool only lints it
(``duplicate_alert_warnings`` of ``_alert_rules``). Every problem is one line,
``FILE:LINE:COL: message``, and all of a file's are reported, not just the first.

Each ``expr`` is parsed as PromQL (``_promql``: ``could not parse expression: 1:7: parse
error: ...`` at the place of the ``expr``, as promtool says it); its type is not checked,
as promtool 2.42 does not (``expr: 1`` loads). The templates of an alerting rule's labels
and annotations are checked when a ``TemplateCheck`` is given (a recording rule's labels
are no templates).
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .._core import is_label_name
from ._near_miss import slip_of
from ._prom_duration import go_quoted, parse_prometheus_duration
from ._promql import promql_problem
from ._regular_file import read_regular_file
from ._rule_defs import AlertRuleDef, RecordingRuleDef, RuleGroupDef, TemplateCheck
from ._yaml_nodes import YamlSyntaxError, compose, entries, is_null, kind, place, scalar_text

if TYPE_CHECKING:
    from yaml.nodes import Node

_FILE_KEYS = ("groups",)
_GROUP_KEYS = ("name", "interval", "query_offset", "limit", "rules", "labels")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
_NODES = dict[str, tuple["Node", "Node"]]
_TEXTS = dict[str, tuple[str, "Node"]]
"""Names to their text and the node it was written at."""


def _texts(found: _TEXTS) -> dict[str, str]:
    return {name: text for name, (text, _) in found.items()}


def read_rule_file(
    path: Path, check_templates: TemplateCheck | None
) -> tuple[list[RuleGroupDef], list[str]]:
    """The groups of the file at ``path``, and its problems (none: the groups are all there)."""
    reader = RuleFileReader(path, check_templates)
    return reader.read(), reader.problems


def _within(node: Node, outer: Node) -> bool:
    return outer.start_mark.index <= node.start_mark.index <= outer.end_mark.index


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


"""Prometheus 2.42's ``model.LabelName.IsValid`` (Prometheus 3 takes any UTF-8 text)."""
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
"""Prometheus 2.42's ``model.IsValidMetricName``: what a recording rule's name must be."""


_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
"""yaml.v3's plain float (``yamlStyleFloat``)."""
_INT64 = 1 << 63


def _go_int(text: str) -> int | None:
    """A plain YAML scalar as yaml.v3 decodes it into a Go ``int`` (a group's ``limit``), or
    None when it refuses: Go's integer syntax (``0x10``, ``017``, ``0o17``, ``0b11``, ``_``
    anywhere), or a float cut towards zero (``1.5`` is 1, ``1e3`` is 1000, ``-.inf`` the
    lowest int), as promtool 2.42 reads it."""
    plain = text.replace("_", "")
    sign, digits = (plain[0], plain[1:]) if plain[:1] in "+-" else ("", plain)
    base = 8 if len(digits) > 1 and digits[0] == "0" and digits[1:].isdigit() else 0
    try:
        number = int(sign + (digits[1:] if base == 8 else digits), base)
    except ValueError:
        number = None
    if number is not None and digits.isascii():
        return number if number < _INT64 else None
    if plain in ("-.inf", "-.Inf", "-.INF"):
        return -_INT64
    if _YAML_FLOAT.fullmatch(plain) is None:
        return None
    value = float(plain)
    if value > _INT64:
        return None
    return -_INT64 if value == _INT64 else int(value)


class RuleFileReader:
    def __init__(self, path: Path, check_templates: TemplateCheck | None) -> None:
        self.path = path
        self.check_templates = check_templates
        self.problems: list[str] = []
        self._rule_node: Node | None = None
        """The rule being read, if any."""

    def report(self, node: Node, message: str) -> None:
        rule = self._rule_node
        if rule is not None and not _within(node, rule):
            # Merged (``<<: *base``) from outside the rule: placed at the anchor, every rule
            # that merges it would be reported at one line; the rule's own place tells them
            # apart.
            message = f"{message} (merged from line {place(node)[0]})"
            node = rule
        line, column = place(node)
        self.problems.append(f"{self.path}:{line}:{column}: {message}")

    def read(self) -> list[RuleGroupDef]:
        text = self._text()
        if text is None:
            return []
        try:
            root = compose(text)
        except YamlSyntaxError as exc:
            self.problems.append(f"{self.path}:{exc.line}:{exc.column}: {exc.message}")
            return []
        top = self._fields(root, "a rule file", _FILE_KEYS)
        if top is None or "groups" not in top:
            return []
        groups_node = top["groups"][1]
        if is_null(groups_node):
            return []
        from yaml.nodes import SequenceNode

        if not isinstance(groups_node, SequenceNode):
            self.report(groups_node, f"groups: expected a list, got {kind(groups_node)}")
            return []
        seen: dict[str, int] = {}
        groups = [self._group(node, seen) for node in groups_node.value]
        return [group for group in groups if group is not None]

    def _text(self) -> str | None:
        try:
            data = read_regular_file(self.path)
        except OSError as exc:
            self.problems.append(f"{self.path}: cannot be read: {exc.strerror or exc}")
            return None
        encoding = "utf-8-sig"
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problems.append(f"{self.path}:{line}:{column}: invalid {encoding[:6]} text")
            return None

    def _fields(self, node: Node | None, what: str, known: tuple[str, ...]) -> _NODES | None:
        """A mapping's entries with unknown keys noted (yaml.v3 ``KnownFields``)."""
        found = entries(node, self.report, what)
        if found is None:
            return None
        for name, (key, _) in found.items():
            if name not in known:
                slip = slip_of(name, known)
                hint = f'did you mean "{slip}"?' if slip else f"known: {', '.join(known)}"
                self.report(key, f"unknown field {go_quoted(name)} in {what} ({hint})")
        return {name: entry for name, entry in found.items() if name in known}

    def _text_of(self, fields: _NODES, key: str, what: str) -> str:
        node = fields.get(key, (None, None))[1]
        return scalar_text(node, self.report, what) or ""

    def _duration(self, fields: _NODES, key: str, prefix: str) -> float | None:
        """A Prometheus duration; None when absent or invalid (then noted)."""
        node = fields.get(key, (None, None))[1]
        if node is None or is_null(node):
            return None
        text = scalar_text(node, self.report, f"{prefix}{key}")
        if text is None:
            return None
        try:
            return parse_prometheus_duration(text)
        except ValueError as exc:
            self.report(node, f"{prefix}{key}: {exc}")
            return None

    def _group(self, node: Node, seen: dict[str, int]) -> RuleGroupDef | None:
        fields = self._fields(node, "a group", _GROUP_KEYS)
        if fields is None:
            return None
        name = self._text_of(fields, "name", "name")
        prefix = f"group {go_quoted(name)}: "
        line = place(node)[0]
        if name == "":
            self.report(node, "group name must not be empty")
        elif name in seen:
            self.report(
                node,
                f"group name {go_quoted(name)} is repeated in the same file "
                f"(first at line {seen[name]})",
            )
        else:
            seen[name] = line
        interval = self._duration(fields, "interval", prefix)
        query_offset = self._duration(fields, "query_offset", prefix)
        limit = self._limit(fields, prefix)
        labels = _texts(self._labels(fields, "labels", prefix, names_of="label"))
        rules: list[AlertRuleDef | RecordingRuleDef] = []
        for number, rule_node in enumerate(self._rule_nodes(fields, prefix), start=1):
            rule = self._rule(rule_node, name, number)
            if rule is not None:
                rules.append(rule)
        return RuleGroupDef(
            name=name,
            file=self.path,
            interval=interval or None,
            limit=max(limit, 0),
            labels=labels,
            rules=tuple(rules),
            query_offset=query_offset,
        )

    def _limit(self, fields: _NODES, prefix: str) -> int:
        node = fields.get("limit", (None, None))[1]
        if node is None or is_null(node):
            return 0
        from yaml.nodes import ScalarNode

        plain = isinstance(node, ScalarNode) and not node.style
        limit = _go_int(str(node.value)) if plain else None
        if limit is None:
            self.report(node, f"{prefix}limit: expected a whole number, got {kind(node)}")
            return 0
        return limit

    def _rule_nodes(self, fields: _NODES, prefix: str) -> list[Node]:
        node = fields.get("rules", (None, None))[1]
        if node is None or is_null(node):
            return []
        from yaml.nodes import SequenceNode

        if not isinstance(node, SequenceNode):
            self.report(node, f"{prefix}rules: expected a list, got {kind(node)}")
            return []
        return list(node.value)

    def _labels(self, fields: _NODES, key: str, prefix: str, names_of: str) -> _TEXTS:
        """A mapping of names to text (labels, annotations), bad names and values noted."""
        node = fields.get(key, (None, None))[1]
        found = entries(node, self.report, f"{prefix}{key}") or {}
        result: _TEXTS = {}
        for name, (name_node, value_node) in found.items():
            value = scalar_text(value_node, self.report, f"{prefix}{key}.{name}")
            if not is_label_name(name) or (names_of == "label" and name == "__name__"):
                self.report(name_node, f"{prefix}invalid {names_of} name: {name}")
            elif value is not None and not _valid_utf8(value):
                self.report(value_node, f"{prefix}invalid {names_of} value: {value!r}")
            elif value is not None:
                result[name] = (value, value_node)
        return result

    def _rule(self, node: Node, group: str, number: int) -> AlertRuleDef | RecordingRuleDef | None:
        self._rule_node = node
        try:
            return self._rule_of(node, group, number)
        finally:
            self._rule_node = None

    def _rule_of(
        self, node: Node, group: str, number: int
    ) -> AlertRuleDef | RecordingRuleDef | None:
        fields = self._fields(node, "a rule", _RULE_KEYS)
        if fields is None:
            return None
        count = len(self.problems)
        record = self._text_of(fields, "record", "record")
        alert = self._text_of(fields, "alert", "alert")
        prefix = f"group {go_quoted(group)}, rule {number}, {go_quoted(alert or record)}: "

        def at(key: str) -> Node:
            return fields[key][1] if key in fields else node

        if record and alert:
            self.report(at("record"), f"{prefix}only one of 'record' and 'alert' must be set")
        elif not record and not alert:
            self.report(node, f"{prefix}one of 'record' or 'alert' must be set")
        expr_node = fields.get("expr", (None, None))[1]
        expr = scalar_text(expr_node, self.report, f"{prefix}expr")
        if expr is not None and not expr.strip():
            self.report(at("expr"), f"{prefix}field 'expr' must be set in rule")
        elif expr is not None:
            problem = promql_problem(expr)
            if problem is not None:
                self.report(at("expr"), f"{prefix}could not parse expression: {problem}")
        for_ = self._duration(fields, "for", prefix) or 0.0
        keep_firing_for = self._duration(fields, "keep_firing_for", prefix) or 0.0
        labels = self._labels(fields, "labels", prefix, names_of="label")
        annotations = self._labels(fields, "annotations", prefix, names_of="annotation")
        if record and not alert:
            self._check_recording(record, at("record"), prefix, annotations, for_, keep_firing_for)
        if alert and not record:
            self._check_templates(prefix, labels, annotations)
        if len(self.problems) > count:
            return None
        if record:
            line = place(at("record"))[0]
            return RecordingRuleDef(record, expr or "", self.path, line, group, _texts(labels))
        return AlertRuleDef(
            name=alert,
            expr=expr or "",
            for_=for_,
            keep_firing_for=keep_firing_for,
            labels=_texts(labels),
            annotations=_texts(annotations),
            file=self.path,
            line=place(at("alert"))[0],
            group=group,
        )

    def _check_recording(
        self,
        record: str,
        name_node: Node,
        prefix: str,
        annotations: _TEXTS,
        for_: float,
        keep_firing_for: float,
    ) -> None:
        if annotations:
            self.report(name_node, f"{prefix}invalid field 'annotations' in recording rule")
        if for_:
            self.report(name_node, f"{prefix}invalid field 'for' in recording rule")
        if keep_firing_for:
            self.report(name_node, f"{prefix}invalid field 'keep_firing_for' in recording rule")
        if _METRIC_NAME.fullmatch(record) is None:
            self.report(name_node, f"{prefix}invalid recording rule name: {record}")

    def _check_templates(self, prefix: str, labels: _TEXTS, annotations: _TEXTS) -> None:
        if self.check_templates is None:
            return
        for what, found in (("label", labels), ("annotation", annotations)):
            for name, (template, node) in found.items():
                problem = self.check_templates(template)
                if problem is not None:
                    self.report(node, f"{prefix}{what} {go_quoted(name)}: {problem}")
