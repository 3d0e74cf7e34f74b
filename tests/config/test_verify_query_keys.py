"""``verify_query`` on a rule, the rule file's defaults and a route: parsed at load as
``query`` is, so a bad expression, or one a ``scrape_url`` rule could not read, is a
one-line configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest

from metric_reader._config import load_settings
from metric_reader._core import ConfigError

FILE = """\
prometheus_endpoint = "http://127.0.0.1:9"
verify_within = "5m"
verify_query = 'kube_deployment_status_replicas_unavailable > 0'

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"

[[rules]]
name = "queue"
metric_name = "queue_depth"
threshold = ">90"
verify_query = 'up == 0'

[[routes]]
matchers = ['severity="page"']
action_plugin = "log_action"
verify_query = 'probe_success == 0'
"""


def _errors(path: Path, text: str) -> list[str]:
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings({"CONFIG_FILE": str(path)})
    return str(raised.value).splitlines()


def test_verify_query_is_read_on_rules_defaults_and_routes_and_refused_when_wrong(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(FILE)
    settings = load_settings({"CONFIG_FILE": str(path)})
    assert [rule.verify.query for rule in settings.rules] == [
        "kube_deployment_status_replicas_unavailable > 0",  # the file's default
        "up == 0",
    ]
    assert [route.verify.query for route in settings.routes] == ["probe_success == 0"]

    bad = FILE.replace("'up == 0'", "'sum(up'").replace("'probe_success == 0'", "'up{'")
    assert _errors(path, bad) == [
        f"{path}: routes[0].verify_query='up{{' is invalid: could not parse expression: "
        "1:4: parse error: unexpected end of input inside braces",
        f"{path}:14: rules[1].verify_query='sum(up' is invalid: could not parse expression: "
        "1:7: parse error: unclosed left parenthesis",
    ]

    scraped = FILE.replace(
        'threshold = ">90"\n\n', 'threshold = ">90"\nscrape_url = "http://127.0.0.1:9/m"\n\n', 1
    )
    assert _errors(path, scraped) == [
        f"{path}:5: rules[0]: scrape_url is set, so {path}:3: verify_query cannot be read: "
        "a scrape runs no query; read the metric from Prometheus, or drop verify_query "
        "(the rule's own condition then judges its fixes)"
    ]
