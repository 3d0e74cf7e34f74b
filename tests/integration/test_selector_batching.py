"""Batched reads of selector rules, checked against each rule's own query to a real Prometheus.

A fixed universe of series (seeded: metric names with ``:`` and ``_``, label sets where a
label is missing on some series or pushed empty, label values full of regex metacharacters,
a newline, unicode) is pushed through the Pushgateway and scraped by Prometheus. Rule files
of selector rules over it are written as a user writes them (``metric_name`` and
``label_filters`` in a ``CONFIG_FILE``), by hypothesis or from a seed: metric names that
exist or not, 0 to 4 matchers with every operator, label names that exist or not, values
that exist or not, regexes built from them.

Every rule must get from the read of its target exactly what its own instant query gets
from Prometheus: the same series (labels without ``__name__``) with the same values.

A rule whose own query Prometheus refuses must fail to read too. A ``__name__`` matcher
next to the metric name is one (``m{__name__...}``: "metric name must not be set twice"),
and a batch filtering locally would answer it: such a rule is refused when the file loads.

Which ``.`` Prometheus means depends on its version: 2.x lets ``.`` stop at a newline, 3.x
matches label regexes as ``(?s:...)``. The universe holds label values with newlines; a rule
whose regex meets one is read with its own query (``_sources._batch``).

The rule sets are valid configuration: the regexes built here are ones Prometheus accepts.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from metric_reader._config import PrometheusSelector, RuleConfig, Settings, load_settings
from metric_reader._core._exceptions import ConfigError, FetchError
from metric_reader._core._samples import Sample, labels_of
from metric_reader._core._selector import LabelMatcher, MatchOp, quote
from metric_reader._http import make_client
from metric_reader._sources._batch import MAX_NAMES
from metric_reader._sources._groups import build_fetches
from metric_reader._sources._prometheus import instant_query

from .conftest import EVENT_TIMEOUT, PrometheusStack, wait_until

JOB = "selector_batching"
READ_TIMEOUT = 10.0

# --------------------------------------------------------------------------------------------
# The universe of series


@dataclass(frozen=True)
class Series:
    name: str
    labels: tuple[tuple[str, str], ...]
    """As pushed: an empty value is in the exposition and missing in Prometheus."""
    value: float


LABEL_NAMES = ("env", "path", "code", "zone_9", "_hidden", "Shard", "le")
LABEL_VALUES = (
    "prod",
    "production",
    "prod-eu",
    "a",
    "ab",
    "b",
    "a.b",
    "a|b",
    "(x)",
    "x+y",
    "back\\slash",
    "cost$5",
    "^caret",
    "[br]",
    "{1,2}",
    "star*",
    "q?",
    " ",
    '"quoted"',
    "null",
    "0",
    "200",
    "2xx",
    "ünïcödé",
    "日本語",
    "🙂",
    "a\nb",
    "\n",
    "line\nbreak",
    "trailing\n",
    "tab\there",
    "/api/v1",
    "",
)
NUMBERS = (0.0, 1.0, -1.0, 0.5, 42.0, 3.14159, 1e-9, -2.5e10, 1e300, math.nan, math.inf, -math.inf)
NAME_WORDS = ("http", "requests", "queue", "depth", "total", "rate5m", "errors", "seconds", "bytes")

TRAPS = "selbatch:traps_total"
"""A metric made for the classic traps: ``l`` missing, empty, a prefix of another value,
holding a newline or metacharacters; ``m`` only where ``l`` is pushed empty."""
TRAP_SERIES = (
    Series(TRAPS, (), 1.0),
    Series(TRAPS, (("l", "a"),), 2.0),
    Series(TRAPS, (("l", "ab"),), 3.0),
    Series(TRAPS, (("l", "a\nb"),), 4.0),
    Series(TRAPS, (("l", " "),), 5.0),
    Series(TRAPS, (("l", ""), ("m", "x")), 6.0),
    Series(TRAPS, (("l", "a.b|c(d)\\e+"),), 7.0),
    Series(TRAPS, (("l", "ä"),), math.nan),
)
ABSENT_NAMES = ("selbatch:absent_total", "selbatch_absent")


def _stored_key(name: str, labels: tuple[tuple[str, str], ...]) -> tuple[str, tuple[str, ...]]:
    return name, tuple(sorted(f"{k}={v}" for k, v in labels if v))


def make_universe(seed: int = 14, metrics: int = 30) -> tuple[Series, ...]:
    rng = random.Random(seed)
    names = [":selbatch_leading_colon"]
    while len(names) < metrics - 1:
        words = rng.sample(NAME_WORDS, rng.randint(1, 3))
        name = "selbatch" + "".join(rng.choice("_:") + word for word in words)
        if name not in names:
            names.append(name)
    universe = list(TRAP_SERIES)
    seen = {_stored_key(s.name, s.labels) for s in universe}
    for name in names:
        for _ in range(rng.randint(1, 5)):
            chosen = rng.sample(LABEL_NAMES, rng.randint(0, 3))
            labels = tuple(sorted((label, rng.choice(LABEL_VALUES)) for label in chosen))
            key = _stored_key(name, labels)
            if key not in seen:  # labels pushed empty must not make two series one
                seen.add(key)
                universe.append(Series(name, labels, rng.choice(NUMBERS)))
    return tuple(universe)


UNIVERSE = make_universe()
METRIC_NAMES = tuple(sorted({s.name for s in UNIVERSE}))
VALUES_BY_LABEL: dict[str, tuple[str, ...]] = {
    "job": (JOB, "pushgateway", "other"),
    "instance": ("", "127.0.0.1:9091"),
    "absent_label": ("", "x"),
    "__name__": METRIC_NAMES + ABSENT_NAMES,
}
for _series in UNIVERSE:
    for _label, _value in _series.labels:
        known = VALUES_BY_LABEL.get(_label, ())
        if _value not in known:
            VALUES_BY_LABEL[_label] = (*known, _value)
ALL_VALUES = tuple(sorted({v for values in VALUES_BY_LABEL.values() for v in values}))


def stored_labels(series: Series) -> tuple[tuple[str, str], ...]:
    """The labels Prometheus keeps for a pushed series: the job added, empty ones gone."""
    return labels_of({**{k: v for k, v in series.labels if v}, "job": JOB})


def push_universe(stack: PrometheusStack) -> None:
    for series in UNIVERSE:
        stack.push(series.name, series.value, dict(series.labels), job=JOB)
    expected = {(s.name, stored_labels(s)) for s in UNIVERSE}
    names = "|".join(escape_regex(name) for name in METRIC_NAMES)

    def seen() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        found = stack.values(f'{{__name__=~"{names}",job="{JOB}"}}')
        return {(labels["__name__"], labels_of(labels)) for labels, _ in found}

    wait_until(
        lambda: seen() == expected,
        EVENT_TIMEOUT,
        lambda: f"Prometheus to hold the {len(expected)} series; differences: {seen() ^ expected}",
        interval=0.1,
    )


# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    quoting: str = '"'
    """How ``label_filters`` writes the value: ``"``, ``'`` or a raw ````` string."""

    def text(self) -> str:
        if self.quoting == "'":
            inner = "".join(
                "\\'" if c == "'" else '"' if c == '"' else quote(c)[1:-1] for c in self.value
            )
            return f"{self.label}{self.op}'{inner}'"
        if self.quoting == "`" and "`" not in self.value:
            return f"{self.label}{self.op}`{self.value}`"
        return f"{self.label}{self.op}{quote(self.value)}"


@dataclass(frozen=True)
class RuleSpec:
    metric: str
    matchers: tuple[Matcher, ...] = ()


def m(label: str, op: str, value: str, quoting: str = '"') -> Matcher:
    return Matcher(label, op, value, quoting)


_REGEX_META = frozenset("\\.+*?()|[]{}^$")


def escape_regex(text: str) -> str:
    """``text`` as a regex matching only itself (Go's and RE2's syntax)."""
    return "".join(
        "\\n" if c == "\n" else "\\t" if c == "\t" else f"\\{c}" if c in _REGEX_META else c
        for c in text
    )


def _class_member(c: str) -> str:
    if c == "\n":
        return "\\n"
    return f"\\{c}" if c.isascii() and not c.isalnum() else c


T = TypeVar("T")


class Pick(Protocol):
    """Where the choices come from: hypothesis (shrinks) or a seeded ``random.Random``."""

    def one(self, options: Sequence[T]) -> T: ...

    def number(self, low: int, high: int) -> int: ...


class DrawPick:
    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def one(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def number(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))


class RandomPick:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def one(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def number(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


MATCHER_LABELS = (*LABEL_NAMES, "l", "m", "job", "instance", "absent_label")
REGEX_SHAPES = (
    "literal",
    "prefix",
    "suffix",
    "infix",
    "alternation",
    "class",
    "negated_class",
    "dot",
    "dotall",
    "anchors",
    "case",
    "optional",
    ".*",
    ".+",
    "",
)


def draw_literal(pick: Pick, known: Sequence[str]) -> str:
    source = pick.one(("known", "any", "empty", "fragment"))
    if source == "empty":
        return ""
    value = pick.one(known if source == "known" else ALL_VALUES)
    return value[: pick.number(0, len(value))] if source == "fragment" else value


def draw_regex(pick: Pick, known: Sequence[str]) -> str:
    shape = pick.one(REGEX_SHAPES)
    if shape in (".*", ".+", ""):
        return shape
    value, other = pick.one(known), pick.one(ALL_VALUES)
    cut = pick.number(0, len(value))
    head, tail = escape_regex(value[:cut]), escape_regex(value[cut:])
    members = "".join(_class_member(c) for c in value[:3]) or "a"
    regexes = {
        "literal": escape_regex(value),
        "prefix": head + ".*",
        "suffix": ".*" + tail,
        "infix": ".*" + escape_regex(value[cut : cut + 2]) + ".*",
        "alternation": escape_regex(value) + "|" + escape_regex(other),
        "class": f"[{members}]" + pick.one(("", "*", "+", ".*")),
        "negated_class": f"[^{members}]*",
        "dot": head + "." + escape_regex(value[cut + 1 :]),
        "dotall": "(?s)" + head + "." + escape_regex(value[cut + 1 :]),
        "anchors": f"^{escape_regex(value)}$|{escape_regex(other)}",
        "case": "(?i)" + escape_regex(value.upper()),
        "optional": f"({escape_regex(value)})?",
    }
    return regexes[shape]


def draw_matcher(pick: Pick) -> Matcher:
    label = pick.one(MATCHER_LABELS)
    op = pick.one(("=", "!=", "=~", "!~"))
    known = VALUES_BY_LABEL.get(label) or ALL_VALUES
    value = draw_literal(pick, known) if op in ("=", "!=") else draw_regex(pick, known)
    return Matcher(label, op, value, pick.one(('"', "'", "`")))


def draw_rule(pick: Pick) -> RuleSpec:
    metric = pick.one(METRIC_NAMES + ABSENT_NAMES)
    return RuleSpec(metric, tuple(draw_matcher(pick) for _ in range(pick.number(0, 4))))


@st.composite
def rule_specs(draw: st.DrawFn) -> RuleSpec:
    return draw_rule(DrawPick(draw))


def rule_file(endpoint: str, specs: Sequence[RuleSpec], top: Mapping[str, object]) -> str:
    """A ``CONFIG_FILE`` with rule ``rule-<i>`` for ``specs[i]``.

    JSON strings are TOML basic strings for the text here (no DEL or lone surrogates)."""
    lines = [f"prometheus_endpoint = {json.dumps(endpoint)}", 'polling_interval = "15s"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in top.items()]
    for index, spec in enumerate(specs):
        lines += [
            "",
            "[[rules]]",
            f'name = "rule-{index}"',
            f"metric_name = {json.dumps(spec.metric)}",
        ]
        if spec.matchers:
            filters = ", ".join(matcher.text() for matcher in spec.matchers)
            lines.append(f"label_filters = {json.dumps(filters, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def load_rules(
    endpoint: str, specs: Sequence[RuleSpec], top: Mapping[str, object] | None = None
) -> Settings:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rules.toml"
        path.write_text(rule_file(endpoint, specs, top or {}), encoding="utf-8")
        loaded = load_settings({"CONFIG_FILE": str(path)})
    for index, (spec, rule) in enumerate(zip(specs, loaded.rules, strict=True)):
        assert rule.name == f"rule-{index}"
        source = rule.source
        assert isinstance(source, PrometheusSelector) and source.selector.metric_name == spec.metric
        written = tuple(LabelMatcher(x.label, MatchOp(x.op), x.value) for x in spec.matchers)
        assert source.selector.matchers == written, f"label_filters of {rule.name} read wrongly"
    return loaded


# --------------------------------------------------------------------------------------------
# Reading both ways and comparing

Outcome = list[Sample] | FetchError


async def own_queries(
    client: httpx.AsyncClient, rules: Sequence[RuleConfig], max_bytes: int
) -> dict[str, Outcome]:
    """Each rule's own instant query: what it would get read alone."""
    out: dict[str, Outcome] = {}
    slots = anyio.CapacityLimiter(8)

    async def one(rule: RuleConfig) -> None:
        try:
            result = await instant_query(
                client, rule.source.where, rule.source.expression, READ_TIMEOUT, max_bytes, slots
            )
        except FetchError as exc:
            out[rule.name] = exc
        else:
            out[rule.name] = result.samples

    async with anyio.create_task_group() as group:
        for rule in rules:
            group.start_soon(one, rule)
    return out


async def batched_reads(client: httpx.AsyncClient, loaded: Settings) -> dict[str, Outcome]:
    """Every target read once, all at a time, as the service reads them in one interval."""
    targets = build_fetches(loaded.rules, loaded.max_concurrent_queries, loaded.max_response_bytes)
    held = Counter(rule.name for target in targets for rule in target.rules)
    assert held == Counter(rule.name for rule in loaded.rules), "each rule in exactly one target"
    names = {rule.metric_name for rule in loaded.rules}
    assert len(targets) == -(-len(names) // MAX_NAMES), "one query per 256 metric names"
    out: dict[str, Outcome] = {}

    async def one(target_index: int) -> None:
        target = targets[target_index]
        try:
            reading = await target.perform(client, READ_TIMEOUT)
        except FetchError as exc:
            out.update((rule.name, exc) for rule in target.rules)
        else:
            out.update(
                (rule.name, reading.failed.get(rule.name) or reading.samples[rule.name])
                for rule in target.rules
            )

    async with anyio.create_task_group() as group:
        for index in range(len(targets)):
            group.start_soon(one, index)
    return out


def _same(expected: Outcome, got: Outcome) -> bool:
    if isinstance(expected, FetchError) or isinstance(got, FetchError):
        return isinstance(expected, FetchError) and isinstance(got, FetchError)
    if len(expected) != len(got):
        return False
    for want, have in zip(sorted(expected, key=_labels), sorted(got, key=_labels), strict=True):
        if want.labels != have.labels:
            return False
        both_nan = math.isnan(want.value) and math.isnan(have.value)
        if not (want.value == have.value or both_nan):
            return False
    return True


def _labels(sample: Sample) -> tuple[tuple[str, str], ...]:
    return sample.labels


def _describe(outcome: Outcome) -> str:
    if isinstance(outcome, FetchError):
        return f"failed: {outcome}"
    return repr(sorted(((s.labels, s.value) for s in outcome), key=lambda pair: pair[0]))


def assert_batched_reads_match(
    endpoint: str, specs: Sequence[RuleSpec], top: Mapping[str, object] | None = None
) -> dict[str, Outcome]:
    """Read ``specs`` batched and one by one; fail naming every rule that differs. Return
    what the rules' own queries got."""
    loaded = load_rules(endpoint, specs, top)

    async def both() -> tuple[dict[str, Outcome], dict[str, Outcome]]:
        async with make_client() as client:
            own = await own_queries(client, loaded.rules, loaded.max_response_bytes)
            return own, await batched_reads(client, loaded)

    own, batched = anyio.run(both)
    differences = [
        f"{rule.name}: {rule.source.expression}\n  own query: {_describe(own[rule.name])}\n"
        f"  batched:   {_describe(batched[rule.name])}"
        for rule in loaded.rules
        if not _same(own[rule.name], batched[rule.name])
    ]
    assert not differences, (
        f"{len(differences)} of {len(specs)} rules read differently:\n" + "\n".join(differences)
    )
    return own


# --------------------------------------------------------------------------------------------
# The tests


@pytest.fixture(scope="module")
def endpoint(prometheus_stack: PrometheusStack) -> str:
    push_universe(prometheus_stack)
    return prometheus_stack.prometheus_url


EMPTY_MATCHES_MISSING = [
    RuleSpec(TRAPS, (m("l", "=", ""),)),
    RuleSpec(TRAPS, (m("l", "!=", ""),)),
    RuleSpec(TRAPS, (m("l", "=~", ""),)),
    RuleSpec(TRAPS, (m("l", "=~", ".*"),)),
    RuleSpec(TRAPS, (m("l", "!~", ".+"),)),
    RuleSpec(TRAPS, (m("m", "=", ""), m("l", "!~", "a.*"))),
    RuleSpec(TRAPS, (m("absent_label", "=", ""),)),
    RuleSpec(TRAPS, (m("absent_label", "!=", ""),)),
    RuleSpec(TRAPS, (m("instance", "=", ""),)),
]
ANCHORING = [
    RuleSpec(TRAPS, (m("l", "=~", "a"),)),
    RuleSpec(TRAPS, (m("l", "=~", "b"),)),
    RuleSpec(TRAPS, (m("l", "!~", "a"),)),
    RuleSpec(TRAPS, (m("l", "=~", "a.*"),)),
    RuleSpec(TRAPS, (m("l", "=~", ".*b"),)),
    RuleSpec(TRAPS, (m("l", "=~", "a|ab"),)),
    RuleSpec(TRAPS, (m("l", "=~", "x|^a$"),)),
    RuleSpec(TRAPS, (m("l", "=~", "(?i)Ä"),)),
]
NEWLINE_AND_METACHARACTERS = [
    RuleSpec(TRAPS, (m("l", "=~", "a.b"),)),
    RuleSpec(TRAPS, (m("l", "!~", "a.b"),)),
    RuleSpec(TRAPS, (m("l", "=~", "a\\nb", "`"),)),
    RuleSpec(TRAPS, (m("l", "=", "a\nb", "'"),)),
    RuleSpec(TRAPS, (m("l", "=~", ".*"),)),
    RuleSpec(TRAPS, (m("l", "=", "a.b|c(d)\\e+"),)),
    RuleSpec(TRAPS, (m("l", "=~", escape_regex("a.b|c(d)\\e+"), "`"),)),
    RuleSpec(TRAPS, (m("l", "=~", "a.b|c.*"),)),
]
SAME_METRIC_MANY_RULES = [
    RuleSpec(TRAPS),
    RuleSpec(TRAPS, (m("l", "=", "a"),)),
    RuleSpec(TRAPS, (m("job", "=", JOB), m("l", "!=", "a"))),
    RuleSpec(METRIC_NAMES[0], (m("job", "=", JOB),)),
    RuleSpec(ABSENT_NAMES[0], (m("job", "=", JOB),)),
]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(rule_specs(), min_size=1, max_size=40))
@example(specs=EMPTY_MATCHES_MISSING)
@example(specs=ANCHORING)
@example(specs=NEWLINE_AND_METACHARACTERS)
@example(specs=SAME_METRIC_MANY_RULES)
def test_every_rule_gets_what_its_own_query_gets(endpoint: str, specs: list[RuleSpec]) -> None:
    own = assert_batched_reads_match(endpoint, specs)
    for got in own.values():
        event(f"a rule that {_kind(got)}")  # --hypothesis-show-statistics: how many examples


def _kind(outcome: Outcome) -> str:
    if isinstance(outcome, FetchError):
        return "Prometheus refuses"
    return "reads series" if outcome else "reads nothing"


def dot_matches_newline(endpoint: str) -> bool:
    """Prometheus 3 matches label regexes as ``(?s:...)``; 2.x lets ``.`` stop at a newline."""
    response = httpx.get(f"{endpoint}/api/v1/status/buildinfo", timeout=READ_TIMEOUT)
    return int(response.json()["data"]["version"].split(".")[0]) >= 3


def test_the_classic_traps_read_what_prometheus_answers(endpoint: str) -> None:
    """Prometheus' answers to the traps, pinned: the explicit examples above prove something
    only while the universe holds them. Values: 1 no ``l``; 2 ``a``; 3 ``ab``; 4 ``a\\nb``;
    5 ``" "``; 6 ``l`` pushed empty; 7 metacharacters; NaN ``ä`` (left out below)."""
    newline = [4.0] if dot_matches_newline(endpoint) else []
    expected: list[tuple[Matcher, list[float] | str]] = [
        (m("l", "=", ""), [1.0, 6.0]),
        (m("l", "!=", ""), [2.0, 3.0, 4.0, 5.0, 7.0]),
        (m("l", "=~", ""), [1.0, 6.0]),
        (m("l", "=~", ".*"), sorted([1.0, 2.0, 3.0, 5.0, 6.0, 7.0, *newline])),
        (m("l", "!~", ".+"), sorted([1.0, 6.0, *([] if newline else [4.0])])),
        (m("l", "=~", "a"), [2.0]),
        (m("l", "!~", "a"), [1.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        (m("l", "=~", "a.b"), newline),
        (m("l", "=~", "(?s)a.b"), [4.0]),
        (m("l", "=~", "a\\nb"), [4.0]),
        (m("l", "=", "a.b|c(d)\\e+"), [7.0]),
        (m("l", "=~", escape_regex("a.b|c(d)\\e+")), [7.0]),
        (m("l", "=~", "a.b|c.*"), newline),
    ]
    own = assert_batched_reads_match(endpoint, [RuleSpec(TRAPS, (x,)) for x, _ in expected])
    for index, (matcher, want) in enumerate(expected):
        got = own[f"rule-{index}"]
        if isinstance(want, str):
            assert isinstance(got, FetchError) and want in str(got), (matcher, got)
        else:
            assert not isinstance(got, FetchError), (matcher, got)
            assert sorted(s.value for s in got if not math.isnan(s.value)) == want, matcher


@pytest.mark.parametrize("op", ["=", "!=", "=~", "!~"])
def test_a_name_matcher_next_to_a_metric_name_is_refused_as_prometheus_refuses_it(
    endpoint: str, op: str
) -> None:
    """``m{__name__...}`` is refused by Prometheus ("metric name must not be set twice");
    a batch would have answered it, so the rule is refused when the file is loaded."""
    spec = RuleSpec(TRAPS, (m("__name__", op, TRAPS),))
    own = anyio.run(_own_query_of, endpoint, f'{TRAPS}{{__name__{op}"{TRAPS}"}}')
    assert isinstance(own, FetchError) and "metric name must not be set twice" in str(own)
    with pytest.raises(ConfigError, match="cannot match __name__"):
        load_rules(endpoint, [spec])


async def _own_query_of(endpoint: str, promql: str) -> Outcome:
    async with make_client() as client:
        try:
            return (await instant_query(client, endpoint, promql, READ_TIMEOUT)).samples
        except FetchError as exc:
            return exc


def test_five_hundred_rules_in_one_read(endpoint: str) -> None:
    pick = RandomPick(500)
    specs = [draw_rule(pick) for _ in range(500)]
    own = assert_batched_reads_match(endpoint, specs)
    kinds = Counter(_kind(got) for got in own.values())
    assert kinds["reads series"] > 125, f"too few rules read a series to prove much: {kinds}"


def test_answers_that_together_exceed_max_response_bytes(endpoint: str) -> None:
    """Every rule's own answer fits the limit; all of them together are several times over
    it, so a batch holding every rule cannot be one query."""
    whole_metrics = [RuleSpec(name) for name in METRIC_NAMES]
    pick = RandomPick(7)
    specs = whole_metrics + [draw_rule(pick) for _ in range(40)]
    loaded = load_rules(endpoint, specs)

    async def answer_sizes() -> list[int]:
        async with httpx.AsyncClient() as client:
            sizes = []
            for rule in loaded.rules:
                response = await client.get(
                    f"{endpoint}/api/v1/query", params={"query": rule.source.expression}
                )
                sizes.append(len(response.content))
            return sizes

    sizes = anyio.run(answer_sizes)
    limit = 2 * max(sizes)
    assert sum(sizes[: len(whole_metrics)]) > 4 * limit
    own = assert_batched_reads_match(endpoint, specs, {"max_response_bytes": limit})
    over = [n for n, got in own.items() if isinstance(got, FetchError) and "BYTES" in str(got)]
    assert not over, f"own queries over the limit: {over}"
