"""Planning batched reads of expression rules, and handing an answer out. (That each rule gets
what its own query gets from a real Prometheus is
tests/integration/test_expression_batching.py.) The reads' failures are answered here by an
HTTP stand-in for Prometheus that fails what a real one cannot be made to, on demand: a
batched query that times out."""

from __future__ import annotations

import json
import math
import urllib.parse
from pathlib import Path

import anyio
import httpx

from metric_reader._config import RuleConfig, load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._core._samples import Sample
from metric_reader._sources._expression_batch import (
    TAG,
    ExpressionBatch,
    batchable,
    plan_expression_batches,
)
from metric_reader._sources._expression_reader import ExpressionReader
from metric_reader._sources._fetches import EndpointLimit
from metric_reader._sources._groups import build_groups


def rules(tmp_path: Path, *queries: str, **top: str) -> tuple[RuleConfig, ...]:
    """``QUERY`` rules ``r0``, ``r1``, ... of a rule file, as a user writes them."""
    lines = [f'{k} = "{v}"' for k, v in top.items()] + ['prometheus_endpoint = "http://p:9090"']
    for i, query in enumerate(queries):
        lines += ["[[rules]]", f'name = "r{i}"', f"query = '''{query}'''"]
    path = tmp_path / "rules.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_settings({"CONFIG_FILE": str(path)}).rules


def reads(tmp_path: Path, *queries: str, **top: str) -> list[tuple[str, list[str]]]:
    loaded = rules(tmp_path, *queries, **top)
    off = top.get("batch_expressions") == "false"
    [group] = build_groups(loaded, batch_expressions=not off)
    return [(f.description, [r.name for r in f.rules]) for f in group.fetches]


def test_instant_vector_expressions_share_one_query_the_others_are_read_alone(
    tmp_path: Path,
) -> None:
    queries = (
        "up",  # r0
        "sum by (job) (rate(http_requests_total[5m])) > 0",  # r1
        "1",  # r2: a scalar
        "scalar(up)",  # r3: a scalar
        'absent(up{job="x"})',  # r4
        "vector(1)",  # r5
        "up[5m:1m]",  # r6: a range vector, which fails alone too
        '"text"',  # r7: a string
        "up",  # r8: the same text as r0: one expression
        "-(up offset 5m @ 100)",  # r9
    )
    assert reads(tmp_path, *queries) == [
        (
            "expressions of 6 rules (r0 to r9) in one query at http://p:9090",
            ["r0", "r8", "r1", "r4", "r5", "r9"],
        ),
        ("query 1 at http://p:9090", ["r2"]),
        ("query scalar(up) at http://p:9090", ["r3"]),
        ("query up[5m:1m] at http://p:9090", ["r6"]),
        ('query "text" at http://p:9090', ["r7"]),
    ]
    assert reads(tmp_path, *queries[:2], batch_expressions="false") == [
        ("query up at http://p:9090", ["r0"]),
        ("query sum by (job) (rate(http_requests_total[5m])) > 0 at http://p:9090", ["r1"]),
    ]


def test_the_value_type_of_an_expression_decides() -> None:
    vectors = ["up", "sum(up)", "(up)", "-up", "up > bool 1", "1 + up", "sort(up)", "time() < up"]
    others = ["1", "-1", "(1)", "1 + 1", "time()", "scalar(up)", "up[5m]", "up[5m:1m]", '"a"']
    assert [e for e in vectors + others if batchable(e)] == vectors
    assert not batchable("up{")  # not parsed here: Prometheus judges it, alone


def test_batches_are_bounded_by_expressions_and_bytes() -> None:
    exprs = [f"metric_{i:04}" for i in range(300)]
    assert [len(b.expressions) for b in plan_expression_batches(exprs)] == [128, 128, 44]
    small = plan_expression_batches(exprs, max_bytes=1000)
    assert all(len(b.promql.encode()) <= 1000 for b in small)
    assert [e for b in small for e in b.expressions] == exprs  # in order, each once
    long = "x" * 2000
    assert [b.expressions for b in plan_expression_batches(["a", long, "b"], max_bytes=1000)] == [
        ("a",),
        (long,),
        ("b",),
    ]


def test_the_query_tags_each_expression_and_a_comment_cannot_swallow_the_tag() -> None:
    batch = ExpressionBatch(("up # all of it", "vector(1)"))
    assert batch.promql == (
        f'label_replace(up # all of it\n, "{TAG}", "0;$1", "{TAG}", "(?s)(.*)") or '
        f'label_replace(vector(1)\n, "{TAG}", "1;$1", "{TAG}", "(?s)(.*)")'
    )
    assert ExpressionBatch(("up",)).promql == "up"  # one expression: its own query


def test_an_answer_is_split_by_the_tag_which_no_rule_sees() -> None:
    batch = ExpressionBatch(("a", "b", "c"))
    answer = [
        ({"__name__": "a", "job": "x", TAG: "0;"}, 1.0),
        ({"job": "y", TAG: "2;"}, math.nan),
        ({"__name__": "a", "job": "z", TAG: "0;"}, 2.0),
        # the expression's own series had the label: given back as it was
        ({"job": "w", TAG: "2;17;x"}, 3.0),
    ]
    split = batch.split(answer)
    assert split["a"] == [Sample((("job", "x"),), 1.0), Sample((("job", "z"),), 2.0)]
    assert split["b"] == []
    assert [s.labels for s in split["c"]] == [(("job", "y"),), ((TAG, "17;x"), ("job", "w"))]
    assert math.isnan(split["c"][0].value) and split["c"][1].value == 3.0


class StandIn:
    """Answers ``/api/v1/query`` as Prometheus would for expressions ``e0``, ``e1``, ... of
    one series each (``{expr="eN"} N``); a query holding a ``slow`` expression and another
    times out (Prometheus' ``errorType: timeout``), one holding a ``bad`` one is refused."""

    def __init__(self, slow: set[str] = frozenset(), bad: set[str] = frozenset()) -> None:
        self.slow, self.bad = slow, bad
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read().decode() or request.url.query.decode()
        query = urllib.parse.parse_qs(body)["query"][0]
        self.queries.append(query)
        parts = query.split(" or ")
        exprs = [p.removeprefix("label_replace(").split("\n", 1)[0] for p in parts]
        if any(e in self.bad for e in exprs):
            return self._error(
                422, "execution", "vector cannot contain metrics with the same labelset"
            )
        if len(exprs) > 1 and any(e in self.slow for e in exprs):
            return self._error(503, "timeout", "query timed out in expression evaluation")
        result = []
        for i, expr in enumerate(exprs):
            metric = {"expr": expr}
            if len(exprs) > 1:
                metric[TAG] = f"{i};"
            result.append({"metric": metric, "value": [1.0, expr.removeprefix("e")]})
        document = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return httpx.Response(200, stream=httpx.ByteStream(json.dumps(document).encode()))

    @staticmethod
    def _error(status: int, kind: str, message: str) -> httpx.Response:
        document = {"status": "error", "errorType": kind, "error": message}
        return httpx.Response(status, stream=httpx.ByteStream(json.dumps(document).encode()))


def poll(reader: ExpressionReader, stand_in: StandIn) -> tuple[dict[str, object], int]:
    """One poll: each rule's values or error, and the requests it took."""

    async def once() -> dict[str, object]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(stand_in)) as client:
            try:
                fetched = await reader.perform(client, 5.0)
            except FetchError as exc:  # every rule's read failed
                return {rule.name: str(exc) for rules in reader.rules.values() for rule in rules}
        out: dict[str, object] = {n: [s.value for s in v] for n, v in fetched.samples.items()}
        out.update((n, str(e)) for n, e in fetched.failed.items())
        return out

    before = len(stand_in.queries)
    got = anyio.run(once)
    return got, len(stand_in.queries) - before


def reader_of(tmp_path: Path, count: int) -> ExpressionReader:
    loaded = rules(tmp_path, *(f"e{i}" for i in range(count)))
    by_expr = {rule.source.expression: [rule] for rule in loaded}
    batch = ExpressionBatch(tuple(by_expr))
    return ExpressionReader("http://p:9090", batch, by_expr, EndpointLimit(8), 1 << 20)


def test_a_refused_expression_is_found_by_bisection_and_read_alone_from_then_on(
    tmp_path: Path,
) -> None:
    reader = reader_of(tmp_path, 8)
    stand_in = StandIn(bad={"e5"})
    got, requests = poll(reader, stand_in)
    assert "same labelset" in str(got.pop("r5"))
    assert got == {f"r{i}": [float(i)] for i in range(8) if i != 5}  # in the same poll
    assert requests == 7  # 8, 4, 2 and 1 of 4 + 4 + 2 + 2 (1 each of the last two alone)
    assert ("e5",) in [p.expressions for p in reader.parts]
    again, requests = poll(reader, stand_in)
    assert "same labelset" in str(again.pop("r5")) and again == got
    assert requests == len(reader.parts) == 4


def test_a_batch_that_times_out_is_split_until_the_slow_expression_is_alone(
    tmp_path: Path,
) -> None:
    reader = reader_of(tmp_path, 8)
    stand_in = StandIn(slow={"e2"})
    polls = [poll(reader, stand_in)[0] for _ in range(4)]
    assert all("timed out" in str(polls[0][f"r{i}"]) for i in range(8))  # as a slow query
    assert ("e2",) in [p.expressions for p in reader.parts]
    assert polls[-1] == {f"r{i}": [float(i)] for i in range(8)}
    assert len(reader.parts) == 4  # 4 expressions, 2, and the slow one and its neighbour
