"""Source kinds: every type of rule source is read by a kind, and the kinds describe their
fetches and histories in the words logs, metrics and reports have always used."""

from __future__ import annotations

import typing

from metric_reader._config import RuleSource, load_settings
from metric_reader._sources._kinds import kind_of
from metric_reader._sources._prometheus_kind import PROMETHEUS
from metric_reader._sources._scrape_kind import SCRAPE


def test_every_type_of_source_is_built_and_has_a_kind() -> None:
    envs = [
        {"METRIC_NAME": "up"},
        {"QUERY": "up == 0"},
        {"METRIC_NAME": "up", "SCRAPE_URL": "http://a/metrics"},
    ]
    sources = [load_settings(env).rules[0].source for env in envs]
    assert {type(source) for source in sources} == set(typing.get_args(RuleSource))
    assert [kind_of(source) for source in sources] == [PROMETHEUS, PROMETHEUS, SCRAPE]
    assert [source.kind for source in sources] == ["prometheus", "prometheus", "scrape"]


def test_the_histories_say_what_is_read_and_where() -> None:
    [query] = load_settings({"QUERY": "up == 0", "PROMETHEUS_ENDPOINT": "http://p:9090"}).rules
    history = kind_of(query.source).history(query.source, "http://elsewhere:9090")
    assert (history.description, history.skipped) == ("up == 0 at http://p:9090", None)
    [page] = load_settings({"METRIC_NAME": "jobs", "SCRAPE_URL": "http://a:8080/metrics"}).rules
    alone = kind_of(page.source).history(page.source, None)
    assert alone.description == "jobs on http://a:8080/metrics" and alone.read is None
    assert alone.skipped is not None and alone.skipped.startswith("reads http://a:8080/metrics")
    through = kind_of(page.source).history(page.source, "http://p:9090")
    assert (through.description, through.skipped) == ("jobs at http://p:9090", None)
