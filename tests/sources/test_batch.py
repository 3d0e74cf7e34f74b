"""Planning batched reads: which rules share a query, what the query says, and how an
answer is handed out. (That each rule gets what its own query gets from a real Prometheus is
tests/integration/test_selector_batching.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from loguru import logger

from metric_reader._config import RuleConfig, load_settings
from metric_reader._core._samples import Sample
from metric_reader._service import MissedEvaluations
from metric_reader._sources._batch import MAX_NAMES, plan_batches, quote_meta
from metric_reader._sources._groups import build_groups, group_offset


def rules(tmp_path: Path, *specs: tuple[str, str], **top: str) -> tuple[RuleConfig, ...]:
    """Selector rules ``(metric_name, label_filters)`` of a rule file, as a user writes them."""
    lines = [f'{k} = "{v}"' for k, v in top.items()] + ['prometheus_endpoint = "http://p:9090"']
    for i, (metric, filters) in enumerate(specs):
        lines += ["[[rules]]", f'name = "r{i}"', f'metric_name = "{metric}"']
        if filters:
            lines.append(f"label_filters = '{filters}'")
    path = tmp_path / "rules.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_settings({"CONFIG_FILE": str(path)}).rules


def test_one_query_serves_up_to_256_metric_names(tmp_path: Path) -> None:
    specs = [(f"m{i:04}", 'job="app"') for i in range(600)] + [("m0001", 'job="app",x="1"')]
    batches = plan_batches(rules(tmp_path, *specs))
    assert [len(b.names) for b in batches] == [MAX_NAMES, MAX_NAMES, 600 - 2 * MAX_NAMES]
    # Both rules of m0001 are in the first batch: rules of one metric are never apart.
    assert [r.name for r in batches[0].rules if r.metric_name == "m0001"] == ["r1", "r600"]


def test_the_query_names_the_metrics_and_the_matchers_every_rule_shares(tmp_path: Path) -> None:
    [batch] = plan_batches(
        rules(
            tmp_path,
            ("http_requests_total", 'job="api",code=~"5.."'),
            ("node:load1", 'job="api"'),
            ("apdex", 'job="api",code!="200"'),
        )
    )
    assert batch.promql == '{__name__=~"apdex|http_requests_total|node:load1",job="api"}'
    [single] = plan_batches(rules(tmp_path, ("up", 'job="api",x=~"a|b"')))
    assert single.promql == 'up{job="api",x=~"a|b"}'  # one rule: exactly its own selector


def test_quote_meta_escapes_what_go_regexp_quotemeta_escapes() -> None:
    assert quote_meta("a.b+c*d?e(f)g|h[i]j{k}l^m$n\\o:p_q-r") == (
        "a\\.b\\+c\\*d\\?e\\(f\\)g\\|h\\[i\\]j\\{k\\}l\\^m\\$n\\\\o:p_q-r"
    )


def test_an_answer_is_handed_out_by_metric_name_and_each_rules_own_filters(
    tmp_path: Path,
) -> None:
    [batch] = plan_batches(
        rules(
            tmp_path,
            ("disk", 'job="n",device=~"sd.*"'),
            ("disk", 'job="n",device=""'),  # a missing label is the empty string
            ("load", 'job="n"'),
        )
    )
    answer = [
        ({"__name__": "disk", "job": "n", "device": "sda"}, 1.0),
        ({"__name__": "disk", "job": "n", "device": "xsda"}, 2.0),  # anchored: not sd.*
        ({"__name__": "disk", "job": "n"}, 3.0),
        ({"__name__": "load", "job": "n"}, math.inf),
    ]
    samples, unsure = batch.samples(answer)
    assert unsure == []
    assert samples == {
        "r0": [Sample((("device", "sda"), ("job", "n")), 1.0)],
        "r1": [Sample((("job", "n"),), 3.0)],
        "r2": [Sample((("job", "n"),), math.inf)],
    }


def test_a_rule_whose_regex_meets_a_newline_is_read_with_its_own_query(tmp_path: Path) -> None:
    """Prometheus 2 lets ``.`` stop at a newline, Prometheus 3 does not: not ours to guess."""
    [batch] = plan_batches(rules(tmp_path, ("m", 'path=~"a.b"'), ("m", 'path!="x"')))
    samples, unsure = batch.samples([({"__name__": "m", "path": "a\nb"}, 1.0)])
    assert [rule.name for rule in unsure] == ["r0"]
    assert samples["r1"] == [Sample((("path", "a\nb"),), 1.0)]


def test_a_batch_splits_in_two_by_metric_name_and_one_name_does_not_split(
    tmp_path: Path,
) -> None:
    [batch] = plan_batches(rules(tmp_path, ("a", ""), ("b", 'x="1"'), ("b", ""), ("c", "")))
    halves = batch.halves()
    assert halves is not None
    low, high = halves
    assert (low.names, high.names) == (("a",), ("b", "c"))
    assert [r.name for r in high.rules] == ["r1", "r2", "r3"]
    assert low.halves() is None


def test_groups_are_one_per_source_and_interval_with_batches_then_queries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'prometheus_endpoint = "http://p:9090"\n'
        '[[rules]]\nname = "a"\nmetric_name = "up"\n'
        '[[rules]]\nname = "b"\nmetric_name = "load"\n'
        '[[rules]]\nname = "c"\nquery = "sum(up)"\n'
        '[[rules]]\nname = "d"\nquery = "sum(up)"\n'
        '[[rules]]\nname = "e"\nmetric_name = "up"\npolling_interval = "10s"\n'
        '[[rules]]\nname = "f"\nmetric_name = "up"\nscrape_url = "http://app/metrics"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(path)})
    groups = build_groups(settings.rules)
    assert [(g.name, [t.description for t in g.fetches]) for g in groups] == [
        (
            "prometheus http://p:9090 every 1s",
            [
                "selectors of 2 metrics (load to up) at http://p:9090",
                "query sum(up) at http://p:9090",
            ],
        ),
        ("prometheus http://p:9090 every 10s", ["query up at http://p:9090"]),
        ("scrape http://app/metrics every 1s", ["scrape http://app/metrics"]),
    ]
    unbatched = build_groups(settings.rules, batch_selectors=False)
    assert len(unbatched[0].fetches) == 3  # up, load, sum(up)


def test_group_offsets_are_stable_spread_and_under_a_tenth_of_a_second() -> None:
    offsets = [group_offset(f"prometheus http://p{i}:9090 every 1m", 60.0) for i in range(200)]
    assert offsets == [
        group_offset(f"prometheus http://p{i}:9090 every 1m", 60.0) for i in range(200)
    ]
    assert all(0 <= o < 0.1 for o in offsets)
    # Spread over the tenth of a second: every sixth of it holds some groups.
    assert {int(o * 60) for o in offsets} == set(range(6))
    # An interval shorter than that: inside the interval.
    assert all(0 <= group_offset(f"g{i}", 0.02) < 0.02 for i in range(100))


@pytest.fixture
def warnings() -> list[str]:
    seen: list[str] = []
    handler = logger.add(lambda m: seen.append(m.record["message"]), level="INFO")
    yield seen
    logger.remove(handler)


def test_missed_evaluations_are_said_once_a_minute_with_the_count_of_the_last_minute(
    warnings: list[str],
) -> None:
    missed = MissedEvaluations("g", "raise its polling_interval")
    missed.add(100.0, 5, "3 reads found no free request slot")
    for second in range(101, 160):  # a miss every second for the rest of the minute
        missed.add(float(second), 2, "3 reads found no free request slot")
    assert warnings == [
        "5 evaluations missed in the last minute: 3 reads found no free request slot; "
        "raise its polling_interval"
    ]
    missed.add(160.0, 2, "a tick was skipped")
    assert warnings[-1].startswith("120 evaluations missed in the last minute: a tick was")
    assert missed.total == 5 + 59 * 2 + 2
    missed.on_time(200.0)  # 40 s after the last miss: not yet
    assert len(warnings) == 2 and missed.in_last_minute(200.0) == 20 * 2  # 141 to 160
    missed.on_time(220.0)
    assert warnings[-1] == "evaluations on time again"
    missed.on_time(221.0)
    assert len(warnings) == 3
