"""A rule's fingerprint is what ties saved state to its rule: the same configuration must
hash the same in every version, or an upgrade would drop the state it should restore.

Versions that sent a resolve to the plugin configured at the time wrote a fingerprint that
held the plugins (``with_plugins``): a restore still accepts it."""

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
            ("b969cc26be2fdc66", "97db090f86b94bde"),
        ),
        (
            {
                "QUERY": "sum(rate(errors_total[5m]))",
                "THRESHOLD": ">1",
                "HARD_THRESHOLD": ">5",
                "BACKOFF_DELAY": "5m",
            },
            ("82811afdc4c4ff46", "1e1f5f8b830de61a"),
        ),
        (
            {
                "METRIC_NAME": "jobs",
                "SCRAPE_URL": "http://app:8080/metrics",
                "THRESHOLD": "<3",
                "CLEAR_THRESHOLD": "<4",
                "ACTION_PLUGIN": "log_action",
            },
            ("24f7da53c027cd99", "d968d8fbdb201954"),
        ),
    ],
    ids=["selector", "query", "scrape"],
)
def test_the_fingerprint_of_a_configuration_never_changes(
    env: dict[str, str], expected: tuple[str, str]
) -> None:
    [rule] = load_settings(env).rules
    assert (fingerprint(rule), fingerprint(rule, with_plugins=True)) == expected
