"""Batched reads of expression rules (``QUERY`` and the alerts of rule files), checked against
each rule's own query to a real Prometheus.

A small universe of series (a label missing on some, NaN and infinite values, two series that
differ only in a label an expression drops) is pushed through the Pushgateway and scraped.
Expressions over it are drawn by hypothesis from a grammar: selectors with ``offset`` and
``@``, aggregations, ``on``/``ignoring``/``group_left`` matching (which Prometheus may refuse:
many-to-many), ``or``/``and``/``unless``, ``absent``, ``vector``, scalars, subqueries,
``sort``, ``label_replace`` making label clashes (refused: the same label set twice) and a
``__mr_rule`` label of their own, a function Prometheus 2 does not know, a ``#`` comment.

Every rule must get from the batched reads exactly what its own instant query gets: the
same series (labels without ``__name__``) with the same values, or an error when its own
query fails. The universe is constant, so two reads a moment apart answer alike.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metric_reader._config import RuleConfig, Settings, load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._core._samples import Sample
from metric_reader._http import make_client
from metric_reader._sources._groups import build_fetches
from metric_reader._sources._prometheus import instant_query

from .conftest import EVENT_TIMEOUT, PrometheusStack, wait_until

JOB = "expression_batching"
READ_TIMEOUT = 10.0
UNIVERSE = (
    ("exb_a", {"l": "a", "k": "x"}, 1.0),
    ("exb_a", {"l": "b", "k": "x"}, 2.0),
    ("exb_a", {"l": "b", "k": "y"}, math.nan),
    ("exb_a", {"k": "y"}, math.inf),
    ("exb_b", {"l": "a"}, -3.5),
    ("exb_b", {"l": "c"}, 0.0),
    ("exb_c", {"l": "a", "k": "x"}, 5.0),
    ("exb_c", {"l": "a", "k": "y"}, 6.0),
)
AT = "@AT"
"""Stands for a time at which the universe was there (known once it is pushed)."""

LEAVES = (
    "exb_a",
    'exb_a{l="b"}',
    "exb_b",
    "exb_c",
    "exb_missing",
    "exb_a offset 1s",
    f"exb_b {AT}",
    '{__name__=~"exb_a|exb_c"}',
)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    one = inner.map
    two = st.tuples(inner, inner)
    return st.one_of(
        one(lambda v: f"sum by (l) ({v})"),
        one(lambda v: f"max without (k) ({v})"),
        one(lambda v: f"count({v})"),
        one(lambda v: f"topk(1, {v})"),
        one(lambda v: f"-{v}"),
        one(lambda v: f"abs({v})"),
        one(lambda v: f"{v} > bool 1"),
        one(lambda v: f"{v} / 0"),
        one(lambda v: f"sort_desc({v})"),
        one(lambda v: f"max_over_time(({v})[2s:500ms])"),
        one(lambda v: f'label_replace({v}, "l", "same", "", "")'),
        one(lambda v: f'label_replace({v}, "__mr_rule", "own", "", "")'),
        one(lambda v: f'label_replace({v}, "__mr_rule", "3;x", "", "")'),
        two.map(lambda p: f"{p[0]} or {p[1]}"),
        two.map(lambda p: f"{p[0]} and ignoring(k) {p[1]}"),
        two.map(lambda p: f"{p[0]} unless on(l) {p[1]}"),
        two.map(lambda p: f"{p[0]} + on(l) group_left {p[1]}"),
        two.map(lambda p: f"{p[0]} * {p[1]}"),
    )


VECTORS = st.recursive(st.sampled_from(LEAVES), _extend, max_leaves=3)
OTHERS = st.one_of(
    st.sampled_from(
        (
            "vector(1)",
            "vector(NaN)",
            'absent(exb_missing{l="a"})',
            "absent(exb_a)",
            "avg_over_time(exb_a[2s])",
            'sort_by_label(exb_a, "l")',  # Prometheus 3's: 2.x refuses it, batched or not
            "1",
            "-Inf",
            '"a string"',
            "exb_a[2s:500ms]",  # a range vector: refused alone too
        )
    ),
    VECTORS.map(lambda v: f"scalar({v})"),
)
EXPRESSIONS = st.one_of(VECTORS, VECTORS, OTHERS, VECTORS.map(lambda v: f"{v} # a comment"))


def load_rules(endpoint: str, exprs: Sequence[str], alerts: Sequence[str] = ()) -> Settings:
    """``QUERY`` rules ``q<i>`` for ``exprs`` and a rule file of ``alerts``, in a
    ``CONFIG_FILE``; JSON strings are TOML and YAML strings here."""
    lines = [f"prometheus_endpoint = {json.dumps(endpoint)}", 'polling_interval = "15s"']
    with tempfile.TemporaryDirectory() as directory:
        if alerts:
            rules = "".join(
                f"      - alert: A{i}\n        expr: {json.dumps(e)}\n"
                for i, e in enumerate(alerts)
            )
            (Path(directory) / "alerts.yml").write_text(
                f"groups:\n  - name: g\n    rules:\n{rules}"
            )
            lines.append('rule_files = ["alerts.yml"]')
        for i, expr in enumerate(exprs):
            lines += ["[[rules]]", f'name = "q{i}"', f"query = {json.dumps(expr)}"]
        path = Path(directory) / "rules.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return load_settings({"CONFIG_FILE": str(path)})


Outcome = list[Sample] | FetchError


async def read_both(
    loaded: Settings,
) -> tuple[dict[str, Outcome], dict[str, Outcome], list[str]]:
    """Each rule's own query, and every read the service makes, all at once; and the
    descriptions of those reads."""
    fetches = build_fetches(loaded.rules, loaded.max_concurrent_queries)
    own: dict[str, Outcome] = {}
    batched: dict[str, Outcome] = {}

    async def alone(client: httpx.AsyncClient, rule: RuleConfig) -> None:
        try:
            result = await instant_query(
                client, rule.source.where, rule.source.expression, READ_TIMEOUT
            )
        except FetchError as exc:
            own[rule.name] = exc
        else:
            own[rule.name] = result.samples

    async def read(client: httpx.AsyncClient, index: int) -> None:
        fetch = fetches[index]
        try:
            fetched = await fetch.perform(client, READ_TIMEOUT)
        except FetchError as exc:
            batched.update((rule.name, exc) for rule in fetch.rules)
            return
        for rule in fetch.rules:
            batched[rule.name] = fetched.failed.get(rule.name) or fetched.samples[rule.name]

    async with make_client() as client, anyio.create_task_group() as group:
        for rule in loaded.rules:
            group.start_soon(alone, client, rule)
        for index in range(len(fetches)):
            group.start_soon(read, client, index)
    return own, batched, [fetch.description for fetch in fetches]


def _key(sample: Sample) -> tuple[object, ...]:
    return (sample.labels, repr(sample.value))


def _shown(outcome: Outcome) -> str:
    if isinstance(outcome, FetchError):
        return f"failed: {outcome}"
    return repr(sorted(_key(s) for s in outcome))


def _same(own: Outcome, batched: Outcome) -> bool:
    """Both failed (an error the rule's own query gets is what it gets batched: that
    expression is read alone), or the same series and values."""
    if isinstance(own, FetchError) or isinstance(batched, FetchError):
        return isinstance(own, FetchError) and isinstance(batched, FetchError)
    return _shown(own) == _shown(batched)


def assert_batched_reads_match(
    endpoint: str, at: int, exprs: Sequence[str], alerts: Sequence[str] = ()
) -> list[str]:
    """Fail naming every rule read differently batched; return the reads' descriptions."""
    exprs = [e.replace(AT, f"@ {at}") for e in exprs]
    loaded = load_rules(endpoint, exprs, [e.replace(AT, f"@ {at}") for e in alerts])
    own, batched, reads = anyio.run(read_both, loaded)
    differences = [
        f"{rule.name}: {rule.source.expression!r}\n  own query: {_shown(own[rule.name])}\n"
        f"  batched:   {_shown(batched[rule.name])}"
        for rule in loaded.rules
        if not _same(own[rule.name], batched[rule.name])
    ]
    assert not differences, "\n".join(differences)
    return reads


@pytest.fixture(scope="module")
def universe(prometheus_stack: PrometheusStack) -> tuple[str, int]:
    """The endpoint, and a time at which the universe was there."""
    prometheus_stack.push_many(JOB, [(name, labels, value) for name, labels, value in UNIVERSE])

    def there(offset: str) -> bool:
        found = prometheus_stack.values(f'{{__name__=~"exb_.*",job="{JOB}"}}{offset}')
        return len(found) == len(UNIVERSE)

    wait_until(lambda: there(" offset 2s"), EVENT_TIMEOUT, "the universe, 2 s old", interval=0.1)
    return prometheus_stack.prometheus_url, int(time.time()) - 1


CLASSICS = [
    "exb_a",
    "exb_c",
    'label_replace(exb_c, "k", "same", "", "")',  # the same label set twice: refused
    "vector(1)",
    "vector(NaN)",
    'absent(exb_missing{l="a"})',
    'label_replace(exb_a, "__mr_rule", "3;x", "", "")',
    'sort_by_label(exb_a, "l")',
    "scalar(exb_b)",
    f"exb_b {AT} offset 1s",
    "max_over_time(exb_a[2s:500ms])",
    "exb_a / 0",
    "exb_a + on(l) group_left exb_b",
    "exb_a # the rest is a comment",
]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs=st.lists(EXPRESSIONS, min_size=2, max_size=12))
@example(exprs=CLASSICS)
def test_every_expression_rule_gets_what_its_own_query_gets(
    universe: tuple[str, int], exprs: list[str]
) -> None:
    endpoint, at = universe
    reads = assert_batched_reads_match(endpoint, at, exprs)
    if exprs == CLASSICS:  # the batch was used: one query serves most rules
        assert any(r.startswith("expressions of 13 rules ") for r in reads), reads


def test_alerts_of_rule_files_share_the_batch_of_the_query_rules(
    universe: tuple[str, int],
) -> None:
    endpoint, at = universe
    reads = assert_batched_reads_match(
        endpoint, at, ["exb_a > 1", "exb_b"], alerts=["exb_a > 1", "exb_c > 5", "absent(exb_b)"]
    )
    assert reads == [f"expressions of 5 rules (q0 to A2) in one query at {endpoint}"]
