"""A rule's fingerprint is what ties saved state to its rule: the same configuration must
hash the same in every version, or an upgrade would drop the state it should restore."""

from __future__ import annotations

import pytest

from metric_reader._cluster._persist import fingerprint
from metric_reader._config import load_settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {
                "METRIC_NAME": "queue_depth",
                "LABEL_FILTERS": 'queue="orders"',
                "THRESHOLD": ">80",
                "PROMETHEUS_ENDPOINT": "http://prom:9090/",
            },
            "97db090f86b94bde",
        ),
        (
            {
                "QUERY": "sum(rate(errors_total[5m]))",
                "THRESHOLD": ">1",
                "HARD_THRESHOLD": ">5",
                "BACKOFF_DELAY": "5m",
            },
            "1e1f5f8b830de61a",
        ),
        (
            {
                "METRIC_NAME": "jobs",
                "SCRAPE_URL": "http://app:8080/metrics",
                "THRESHOLD": "<3",
                "CLEAR_THRESHOLD": "<4",
                "ACTION_PLUGIN": "log_action",
            },
            "d968d8fbdb201954",
        ),
    ],
    ids=["selector", "query", "scrape"],
)
def test_the_fingerprint_of_a_configuration_never_changes(
    env: dict[str, str], expected: str
) -> None:
    [rule] = load_settings(env).rules
    assert fingerprint(rule) == expected
