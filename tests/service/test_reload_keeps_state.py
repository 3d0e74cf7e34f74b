"""A reload keeps a rule's series state whenever the rule's identity is unchanged (for an
alert of a rule file: its group, alert name and labels; for any other rule: its name), as
Prometheus' ``Group.CopyState`` does: an edited annotation, route or threshold resolves
nothing by itself, and the rule is judged by its new settings from its next evaluation.
Only a changed identity (or a removed rule) resolves.

A real service, in process, on its own groups and fetches (each rebuilt by the reload as
it plans them), whose reads are answered here; reloaded by ``_apply``, what ``reload()``
runs once the new configuration has been read and checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx

from metric_reader._actions import discover_plugins
from metric_reader._config import Settings, load_settings
from metric_reader._core import Sample
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched

RECORDER = """
class Recorder:
    name = "recorder"
    calls = []

    def execute(self, metric_name, value, threshold, duration, event=None):
        self.calls.append(("execute", event.rule, dict(event.labels), event.annotations,
                           event.threshold, event.idempotency_key))

    def resolve(self, metric_name, value, threshold, duration, event=None):
        self.calls.append(("resolve", event.rule, dict(event.labels), event.annotations,
                           event.threshold, event.idempotency_key))


Plugin = Recorder()
"""
ALERTS = """\
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        labels: {{severity: {severity}}}
        annotations: {{summary: '{summary} {{{{ $labels.queue }}}}'}}
"""
ROUTED = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"
plugin_dir = "{plugins}"
rule_files = ["alerts.yml"]

[[routes]]
matchers = ['{matcher}']
action_plugin = "{plugin}"
"""
PLAIN = """\
scrape_url = "http://127.0.0.1:9/metrics"
polling_interval = "1s"
plugin_dir = "{plugins}"
action_plugin = "recorder"

[[rules]]
name = "queue"
metric_name = "queue_depth"
threshold = "{threshold}"
"""
MAIL = (("queue", "mail"),)


class Harness:
    """A service reading ``value`` for the series ``MAIL`` of every rule (None: no series),
    whose configuration file is rewritten and applied by ``reload``; each of ``recorders``
    is a plugin that records its calls."""

    def __init__(self, tmp_path: Path, config: str, recorders: tuple[str, ...] = ()) -> None:
        plugins = tmp_path / "plugins"
        plugins.mkdir()
        self.recorders = ["recorder", *recorders]
        for name in self.recorders:
            source = RECORDER.replace('name = "recorder"', f'name = "{name}"')
            (plugins / f"{name}.py").write_text(source)
        plugins.chmod(0o755)
        self.file = tmp_path / "rules.toml"
        self.file.write_text(config)
        settings = self._read()
        self.service = Service(settings, discover_plugins(settings.plugin_dir))
        self.value: float | None = 95.0

    @property
    def calls(self) -> list[tuple[Any, ...]]:
        return self.calls_of("recorder")

    def calls_of(self, plugin: str) -> list[tuple[Any, ...]]:
        return list(self.service.catalog.plugins[plugin].obj.calls)  # type: ignore[attr-defined]

    def _recorded(self) -> int:
        return sum(len(self.calls_of(name)) for name in self.recorders)

    def _read(self) -> Settings:
        return load_settings({"CONFIG_FILE": str(self.file)})

    def reload(self, config: str) -> None:
        self.file.write_text(config)
        self.service._apply(self._read(), self.service.catalog)

    async def poll(self, client: httpx.AsyncClient, calls: Any, expect: int) -> None:
        """One read of every fetch the service plans; wait until the plugins have
        ``expect`` calls in all."""
        samples = [] if self.value is None else [Sample(MAIL, self.value)]

        def answer(fetch: Fetch) -> Any:
            async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
                return Fetched({config.name: samples for config in fetch.rules})

            return read

        for fetch in self.service.fetches:
            fetch.perform = answer(fetch)
            assert await self.service.poll_once(client, fetch, 5.0, calls) is None
        with anyio.fail_after(5):
            while self._recorded() < expect:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # nothing more comes
        assert self._recorded() == expect, [self.calls_of(name) for name in self.recorders]


def _run(harness: Harness, script: Any) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            harness.service.runner.calls = calls
            await script(client, calls)
            calls.cancel_scope.cancel()

    anyio.run(main)


def _alerts(tmp_path: Path, severity: str = "page", summary: str = "first") -> None:
    (tmp_path / "alerts.yml").write_text(ALERTS.format(severity=severity, summary=summary))


def test_an_edited_annotation_and_route_keep_a_firing_alert_firing(tmp_path: Path) -> None:
    _alerts(tmp_path, summary="first")
    routed = ROUTED.format(
        plugins=tmp_path / "plugins", matcher='severity="page"', plugin="recorder"
    )
    harness = Harness(tmp_path, routed)

    async def script(client: httpx.AsyncClient, calls: Any) -> None:
        await harness.poll(client, calls, expect=1)
        [(kind, _, _, annotations, _, _)] = harness.calls
        assert (kind, annotations) == ("execute", {"summary": "first mail"})

        _alerts(tmp_path, summary="edited")
        harness.reload(routed.replace('severity="page"', 'severity=~"page|critical"'))
        await harness.poll(client, calls, expect=1)  # no resolve, no second execute
        await harness.poll(client, calls, expect=1)

        harness.value = None  # the breach ends: the resolve carries the new annotation
        await harness.poll(client, calls, expect=2)
        kind, _, _, annotations, _, _ = harness.calls[1]
        assert (kind, annotations) == ("resolve", {"summary": "edited mail"})

    _run(harness, script)


def test_changed_alert_labels_are_another_alert_the_old_one_resolves(tmp_path: Path) -> None:
    _alerts(tmp_path, severity="page")
    routed = ROUTED.format(
        plugins=tmp_path / "plugins", matcher='severity=~"page|critical"', plugin="recorder"
    )
    harness = Harness(tmp_path, routed)

    async def script(client: httpx.AsyncClient, calls: Any) -> None:
        await harness.poll(client, calls, expect=1)
        _alerts(tmp_path, severity="critical")
        harness.reload(routed)
        with anyio.fail_after(5):  # the old alert resolves at the reload
            while len(harness.calls) < 2:
                await anyio.sleep(0.01)
        await harness.poll(client, calls, expect=3)  # the new one fires
        got = [(kind, labels["severity"]) for kind, _, labels, *_ in harness.calls]
        assert got == [("execute", "page"), ("resolve", "page"), ("execute", "critical")]
        assert harness.calls[2][-1] != harness.calls[0][-1]  # another rule: another key

    _run(harness, script)


def test_a_changed_threshold_is_judged_at_the_next_tick_not_resolved(tmp_path: Path) -> None:
    plain = PLAIN.format(plugins=tmp_path / "plugins", threshold="{threshold}")
    harness = Harness(tmp_path, plain.format(threshold=">50"))

    async def script(client: httpx.AsyncClient, calls: Any) -> None:
        await harness.poll(client, calls, expect=1)  # 95 > 50: fires
        harness.reload(plain.format(threshold=">60"))
        await harness.poll(client, calls, expect=1)  # 95 > 60: still firing, no resolve
        harness.reload(plain.format(threshold=">100"))
        assert len(harness.calls) == 1  # the reload itself resolves nothing
        await harness.poll(client, calls, expect=2)  # 95 <= 100, judged at the next tick
        got = [(kind, threshold) for kind, _, _, _, threshold, _ in harness.calls]
        assert got == [("execute", ">50"), ("resolve", ">100")]

    _run(harness, script)


def test_a_resolve_goes_to_the_plugin_that_fired_whatever_the_routes_say_by_then(
    tmp_path: Path,
) -> None:
    """A route changed while an alert fires: its resolve goes to the plugin that executed
    it, not to the plugin routed now; and the route restored, that plugin is never executed
    twice without a resolve between."""
    _alerts(tmp_path)
    plugins = tmp_path / "plugins"
    remediate = ROUTED.format(plugins=plugins, matcher='severity="page"', plugin="remediate")
    relay = remediate.replace('"remediate"', '"relay"')
    harness = Harness(tmp_path, remediate, recorders=("remediate", "relay"))

    async def script(client: httpx.AsyncClient, calls: Any) -> None:
        await harness.poll(client, calls, expect=1)  # fires at "remediate"
        harness.reload(relay)
        await harness.poll(client, calls, expect=1)  # still firing: nothing runs
        harness.value = None
        await harness.poll(client, calls, expect=2)  # the breach ends
        harness.reload(remediate)
        harness.value = 95.0
        await harness.poll(client, calls, expect=3)  # a new breach
        got = [kind for kind, *_ in harness.calls_of("remediate")]
        assert got == ["execute", "resolve", "execute"]
        assert harness.calls_of("relay") == []

    _run(harness, script)


def test_alert_labels_written_in_another_order_are_the_same_alert(tmp_path: Path) -> None:
    """Prometheus compares an alert's labels as a set: reordering them in the file is an
    edit like any other, not another alert."""
    ordered = ALERTS.replace("labels: {{severity: {severity}}}", "labels: {{{labels}}}")
    (tmp_path / "alerts.yml").write_text(
        ordered.format(labels="severity: page, team: mail", summary="depth")
    )
    routed = ROUTED.format(plugins=tmp_path / "plugins", matcher="severity=page", plugin="recorder")
    harness = Harness(tmp_path, routed)

    async def script(client: httpx.AsyncClient, calls: Any) -> None:
        await harness.poll(client, calls, expect=1)
        (tmp_path / "alerts.yml").write_text(
            ordered.format(labels="team: mail, severity: page", summary="depth")
        )
        harness.reload(routed)
        await harness.poll(client, calls, expect=1)  # kept: no resolve, no second execute
        assert [kind for kind, *_ in harness.calls] == ["execute"]

    _run(harness, script)
