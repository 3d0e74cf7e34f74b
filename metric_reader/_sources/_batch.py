"""Selector rules answered together: one instant query for the selectors of many rules.

A selector rule reads ``metric_name{label filters}``. The rules of a group that read the
same Prometheus are answered by ``{__name__=~"name1|name2|…", <matchers all of them share>}``
and each rule takes the series of its metric name that its own filters match, tested here
with Prometheus' matcher semantics (``_core._selector``: fully anchored RE2, a missing label
is the empty string, ``__name__`` is a label like any other). A rule gets exactly the series
and values its own query would return: the same instant, the same lookback, the same
labels (tests/integration/test_selector_batching.py checks it against a real Prometheus).

One difference between Prometheus versions cannot be settled here: whether ``.`` in a label
regex matches a newline (Prometheus 3 and RE2 with ``s``: yes; Prometheus 2: no). A rule
whose own regex meets a label value with a newline is therefore "unsure" and is read with
its own query; label values with newlines are rare, so this costs nothing in practice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .._config import PrometheusSelector, RuleConfig
from .._core import (
    LabelMatcher,
    Labels,
    MatchOp,
    Sample,
    Selector,
    format_selector,
    labels_of,
    quote,
)

MAX_NAMES = 256
"""Metric names per query. Prometheus looks an alternation of up to 256 literals up as a
set (``labels.maxSetMatches``); a longer one is run as a regex over every metric name."""

_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """``text`` as a regex that matches it literally (Go's ``regexp.QuoteMeta``)."""
    return "".join(f"\\{ch}" if ch in _REGEX_SPECIAL else ch for ch in text)


@dataclass(frozen=True, slots=True)
class _Reader:
    """One rule of a batch: the matchers of its selector that Prometheus did not apply."""

    name: str
    metric_name: str
    own: tuple[LabelMatcher, ...]
    regex_labels: tuple[str, ...]
    """The labels its own regex matchers test (see "unsure" in the module docstring)."""


@dataclass(frozen=True)
class SelectorBatch:
    """The selector rules of one group (one Prometheus, one interval) answered by one query."""

    rules: tuple[RuleConfig, ...]
    names: tuple[str, ...] = field(init=False)
    """The metric names the rules read, sorted."""
    shared: tuple[LabelMatcher, ...] = field(init=False)
    """Matchers every rule has: Prometheus applies them, so the answer is smaller."""
    promql: str = field(init=False)
    """The query: the one selector, or ``{__name__=~"a|b|…", <shared matchers>}``."""
    _readers: tuple[_Reader, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        selectors = [_selector_of(rule) for rule in self.rules]
        names = sorted({selector.metric_name for selector in selectors})
        common = set(selectors[0].matchers)
        for selector in selectors[1:]:
            common &= set(selector.matchers)
        shared = tuple(m for m in selectors[0].matchers if m in common and m.name != "__name__")
        readers = []
        for rule, selector in zip(self.rules, selectors, strict=True):
            own = tuple(m for m in selector.matchers if m not in shared)
            regex_labels = tuple(m.name for m in own if m.op in (MatchOp.RE, MatchOp.NRE))
            readers.append(_Reader(rule.name, selector.metric_name, own, regex_labels))
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "shared", shared)
        object.__setattr__(self, "_readers", tuple(readers))
        object.__setattr__(self, "promql", self._query())

    def _query(self) -> str:
        if len(self.names) == 1:
            return format_selector(self.names[0], self.shared)
        alternatives = "|".join(quote_meta(name) for name in self.names)
        matchers = [f"__name__=~{quote(alternatives)}", *(str(m) for m in self.shared)]
        return "{" + ",".join(matchers) + "}"

    def samples(
        self, series: Iterable[tuple[Mapping[str, str], float]]
    ) -> tuple[dict[str, list[Sample]], list[RuleConfig]]:
        """Each rule's samples in the answer ``series`` (full label sets, ``__name__``
        included), by rule name; and the rules that must be read with their own query
        instead (regex against a newline: see the module docstring)."""
        by_name: dict[str, list[tuple[Mapping[str, str], float]]] = {}
        for metric, value in series:
            by_name.setdefault(metric.get("__name__", ""), []).append((metric, value))
        labels: dict[int, Labels] = {}  # each series' labels made once, however many rules
        out: dict[str, list[Sample]] = {}
        unsure: list[RuleConfig] = []
        for rule, reader in zip(self.rules, self._readers, strict=True):
            taken = []
            own = reader.own
            for metric, value in by_name.get(reader.metric_name, ()):
                if reader.regex_labels and any(
                    "\n" in metric.get(label, "") for label in reader.regex_labels
                ):
                    unsure.append(rule)
                    break
                if own and not all(m.matches(metric) for m in own):
                    continue
                key = id(metric)
                made = labels.get(key)
                if made is None:
                    made = labels[key] = labels_of(metric)
                taken.append(Sample(made, value))
            out[reader.name] = taken
        return out, unsure

    def halves(self) -> tuple[SelectorBatch, SelectorBatch] | None:
        """The batch split in two by metric name (None for one name): what is read when
        its answer was larger than ``MAX_RESPONSE_BYTES``."""
        if len(self.names) < 2:
            return None
        first = set(self.names[: len(self.names) // 2])
        low = tuple(r for r in self.rules if _selector_of(r).metric_name in first)
        high = tuple(r for r in self.rules if _selector_of(r).metric_name not in first)
        return SelectorBatch(low), SelectorBatch(high)


def plan_batches(rules: Sequence[RuleConfig], max_names: int = MAX_NAMES) -> list[SelectorBatch]:
    """The selector ``rules`` of one group as batches of at most ``max_names`` metric names,
    rules of one metric name always in the same batch."""
    by_name: dict[str, list[RuleConfig]] = {}
    for rule in rules:
        by_name.setdefault(_selector_of(rule).metric_name, []).append(rule)
    names = sorted(by_name)
    return [
        SelectorBatch(tuple(rule for name in names[i : i + max_names] for rule in by_name[name]))
        for i in range(0, len(names), max_names)
    ]


def _selector_of(rule: RuleConfig) -> Selector:
    source = rule.source
    assert isinstance(source, PrometheusSelector), "only selector rules are batched"
    return source.selector
