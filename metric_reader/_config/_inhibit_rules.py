"""``[[inhibit_rules]]``: while a source alert fires, calls for target alerts are held back.

Alertmanager's ``inhibit_rules`` (config/common/inhibitrule.go), in TOML:
``source_matchers`` and ``target_matchers`` are lists of matchers, one per string, as a
route's ``matchers``; ``equal`` lists the label names whose values must be the same on the
source and the target. What Alertmanager refuses is refused: a label name that is not one
(in ``equal``, ``source_match`` or ``target_match``), a regex that does not compile. The
deprecated ``source_match``/``target_match`` (label to value) and
``source_match_re``/``target_match_re`` (label to regex) are read as Alertmanager reads them:
each becomes an equality or regex matcher, before the ``*_matchers``. ``name`` is optional.

The semantics are the engine's (``_engine/_inhibit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._core import LabelMatcher, MatchOp, is_label_name, record
from ._problems import Problems
from ._routes import _matchers

INHIBIT_RULE_KEYS = (
    "name",
    "source_matchers",
    "target_matchers",
    "equal",
    "source_match",
    "source_match_re",
    "target_match",
    "target_match_re",
)


@record(frozen=True, slots=True)
class InhibitRule:
    source_matchers: tuple[LabelMatcher, ...]
    target_matchers: tuple[LabelMatcher, ...]
    equal: tuple[str, ...]
    where: str
    """``rules.toml:40: inhibit_rules[0]``, for messages."""
    name: str = ""

    def is_source(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.source_matchers)

    def is_target(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.target_matchers)

    def same(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        """Whether the ``equal`` labels have the same values on both (a label missing on
        both sides counts as equal, as an empty one: Alertmanager's ``LabelSet[name]``)."""
        return all(source.get(name, "") == target.get(name, "") for name in self.equal)

    def label(self) -> str:
        """How messages name it: its ``name``, else where it is."""
        return self.name or self.where.rsplit(": ", 1)[-1]

    def __str__(self) -> str:
        source = ", ".join(str(m) for m in self.source_matchers)
        target = ", ".join(str(m) for m in self.target_matchers)
        equal = f" with equal {', '.join(self.equal)}" if self.equal else ""
        return f"{{{source}}} inhibits {{{target}}}{equal}"


def read_inhibit_rules(value: Any, where: str, problems: Problems) -> tuple[InhibitRule, ...]:
    """The ``[[inhibit_rules]]`` tables of the rule file (``where`` names them)."""
    if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
        problems.add(f"{where}: expected [[inhibit_rules]] tables")
        return ()
    rules = []
    for index, table in enumerate(value):
        at = f"{where}[{index}]"
        before = len(problems.lines)
        for key in table:
            if key not in INHIBIT_RULE_KEYS:
                problems.add(
                    f"{at}.{key}: unknown key; an inhibit rule takes source_matchers, "
                    "target_matchers, equal and name"
                )
        name = table.get("name", "")
        if not isinstance(name, str):
            problems.add(f"{at}.name={name!r} is invalid: expected a string")
        sides = []
        for side in ("source", "target"):
            matchers = _deprecated(table, f"{side}_match", MatchOp.EQ, at, problems)
            matchers += _deprecated(table, f"{side}_match_re", MatchOp.RE, at, problems)
            if f"{side}_matchers" in table:
                matchers += _matchers(table[f"{side}_matchers"], f"{at}.{side}_matchers", problems)
            sides.append(tuple(matchers))
        equal = _equal(table.get("equal", []), f"{at}.equal", problems)
        if len(problems.lines) == before:
            rules.append(InhibitRule(sides[0], sides[1], equal, at, str(name)))
    return tuple(rules)


def _deprecated(
    table: Mapping[str, Any], key: str, op: MatchOp, at: str, problems: Problems
) -> list[LabelMatcher]:
    """``source_match = { alertname = "NodeDown" }`` (and ``_re``): Alertmanager's
    deprecated form, a matcher per label, in the order given."""
    if key not in table:
        return []
    value = table[key]
    what = "regex" if op is MatchOp.RE else "value"
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.add(
            f"{at}.{key}: expected a table of label = {what} (better: "
            f"{key.split('_match')[0]}_matchers = ['alertname=\"NodeDown\"'])"
        )
        return []
    matchers = []
    for label, text in value.items():
        if not is_label_name(label):
            problems.add(f"{at}.{key}: invalid label name {label!r}")
            continue
        try:
            matchers.append(LabelMatcher(label, op, text))
        except ValueError as exc:
            problems.add(f"{at}.{key}: {exc}")
    return matchers


def _equal(value: Any, at: str, problems: Problems) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.add(f"{at}: expected a list of label names, e.g. ['node']")
        return ()
    bad = [name for name in value if not is_label_name(name)]
    for name in bad:
        problems.add(f"{at}: invalid label name {name!r} in equal list")
    return tuple(value)
