"""A restart with ``STATE_FILE`` keeps what a reload keeps: an alert of a rule file whose
annotation, expression, ``for`` and route backoff were edited while the service was down
is the same alert (its group, name and labels), still firing, and is not executed again.
Other labels make another alert, which starts afresh.

The real service, run (``Service.run``) and stopped twice on a virtual clock with the same
state file; its queries are answered here (every alert's expression returns one series at
95), and the bundled ``log_action`` plugin takes the calls, counted by the service's own
``metric_reader_plugin_calls_total``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
from _virtual_clock import VirtualClockLoop

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._core import Sample
from metric_reader._engine import State
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched

ALERTS = """\
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > {above}
        for: {for_}
        labels: {{severity: {severity}}}
        annotations: {{summary: '{summary} {{{{ $labels.queue }}}}'}}
"""
CONFIG = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "10s"
rule_files = ["alerts.yml"]
state_file = "state.json"

[[routes]]
matchers = ['severity=~"page|critical"']
action_plugin = "log_action"
backoff_delay = "{backoff}"
"""
MAIL = (("queue", "mail"),)


def _run(
    tmp_path: Path, seconds: float, *, above: int, for_: str, backoff: str, severity: str = "page"
) -> Service:
    """Write the files, start a service on them, run it ``seconds`` (virtual), stop it."""
    summary = f"above {above}"
    (tmp_path / "alerts.yml").write_text(
        ALERTS.format(above=above, for_=for_, severity=severity, summary=summary)
    )
    (tmp_path / "rules.toml").write_text(CONFIG.format(backoff=backoff))
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    service = Service(settings, discover_plugins(None))

    def answer(fetch: Fetch) -> Any:
        async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
            return Fetched({config.name: [Sample(MAIL, 95.0)] for config in fetch.rules})

        return read

    for fetch in service.fetches:
        fetch.perform = answer(fetch)

    async def main() -> None:
        with anyio.move_on_after(seconds):
            await service.run()

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    return service


def _executed(service: Service) -> float:
    value = service.metrics.registry.get_sample_value(
        "metric_reader_plugin_calls_total",
        {"plugin": "log_action", "method": "execute", "result": "success"},
    )
    return value or 0.0


def _state(service: Service) -> State:
    [rule] = service.rules
    return rule.series[MAIL].base.state


def test_an_alert_edited_while_the_service_was_down_is_not_executed_again(
    tmp_path: Path,
) -> None:
    first = _run(tmp_path, 45.0, above=50, for_="30s", backoff="1h")
    assert _executed(first) == 1 and _state(first) is State.FIRING
    # The annotation, the expression's threshold, ``for`` and the route's backoff edited;
    # a fresh alert would be pending for 2 minutes, then executed.
    second = _run(tmp_path, 150.0, above=60, for_="2m", backoff="2h")
    assert _executed(second) == 0
    assert _state(second) is State.FIRING


def test_other_labels_over_a_restart_are_another_alert_which_starts_afresh(
    tmp_path: Path,
) -> None:
    first = _run(tmp_path, 15.0, above=50, for_="0s", backoff="1h")
    assert _executed(first) == 1
    second = _run(tmp_path, 15.0, above=50, for_="0s", backoff="1h", severity="critical")
    assert _executed(second) == 1  # the new alert fires
    [rule] = second.rules
    assert rule.alert_labels(MAIL, "base", 95.0)["severity"] == "critical"
