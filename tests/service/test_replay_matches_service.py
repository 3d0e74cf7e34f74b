"""The replay (backtests, rule tests) acts exactly as the live service does.

Hypothesis draws a rule (duration, backoff, keep_firing_for, clear threshold, a hard level,
missing values) and what its reads return tick after tick (series that come and go, values
on both sides of the thresholds, failed reads) and which plugin calls fail. The live
service runs over those reads on a virtual clock with a real plugin file that records every
call; the replay runs over the same reads. Both must make the same calls, at the same
times, with the same arguments, in the same order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
from _virtual_clock import VirtualClockLoop
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._core._samples import Sample
from metric_reader._engine import Observation, replay
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched
from metric_reader._sources._groups import Group

RECORDER = """
import json

DIR = {directory!r}

class Recorder:
    name = "recorder"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        self.record(event)

    async def resolve(self, metric_name, value, threshold, duration, event=None):
        self.record(event)

    def record(self, event):
        failing = json.loads(open(DIR + "/failing").read())
        tick = float(open(DIR + "/tick").read())
        with open(DIR + "/calls", "a") as calls:
            fields = event.as_dict()
            fields["at"] = tick
            calls.write(json.dumps(fields) + "\\n")
        if [self.name, round(tick)] in failing:
            raise RuntimeError("scripted failure")

Plugin = Recorder()
"""

INTERVAL = 1.0
SERIES = [(("queue", "mail"),), (("queue", "sms"),)]
COMPARED = (
    "at",
    "plugin",
    "kind",
    "level",
    "labels",
    "value",
    "duration_seconds",
    "fire_count",
    "annotations",
)

ticks = st.one_of(
    st.none(),  # the read failed
    st.lists(
        st.one_of(st.none(), st.sampled_from([5.0, 40.0, 60.0, 75.0, 120.0])),
        min_size=len(SERIES),
        max_size=len(SERIES),
    ),
)
durations = st.sampled_from(["0s", "1s", "2s", "3s", "5s"])
rules = st.fixed_dictionaries(
    {
        "THRESHOLD": st.just(">50"),
        "THRESHOLD_DURATION": durations,
        "BACKOFF_DELAY": st.sampled_from(["0s", "2s", "3s"]),
        "KEEP_FIRING_FOR": st.sampled_from(["0s", "2s"]),
        "MISSING_VALUE_BEHAVIOR": st.sampled_from(
            ["skip", "last_value", "zero", "assume_breached", "resolve"]
        ),
    },
    optional={"CLEAR_THRESHOLD": st.just("<30")},
)
failures = st.sets(
    st.tuples(st.sampled_from(["recorder", "second"]), st.integers(0, 30)), max_size=6
)
"""Which plugin's calls fail at which tick: the same in the service, whose actions of one
tick run side by side (their calls interleave), and in the replay."""
hard_levels = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"HARD_THRESHOLD": st.just(">100"), "HARD_THRESHOLD_DURATION": durations}
    ),
)


def _live(env: dict[str, str], reads: list[list[Sample] | None], tmp: Path) -> list[Any]:
    settings_ = load_settings(env)
    service = Service(settings_, discover_plugins(settings_.plugin_dir))
    [rule] = service.rules
    done = 0

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        nonlocal done
        # Plugins run on threads of their own: wait for the calls of the last tick, so that
        # every call is recorded with the tick that made it (the replay's calls take no time).
        while service._in_flight:
            await anyio.sleep(0)
        if done >= len(reads):
            finished.set()
            raise FetchError("the test is over")
        samples = reads[done]
        (tmp / "tick").write_text(str(done * INTERVAL))
        done += 1
        if samples is None:
            raise FetchError("scripted: the read failed")
        return Fetched({rule.name: samples})

    group = Group("virtual", INTERVAL, [Fetch("virtual", INTERVAL, read, [rule.config])])
    group.offset = 0.0
    service.groups = [group]

    finished = anyio.Event()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(service.run)
            await finished.wait()
            tasks.cancel_scope.cancel()

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    lines = (tmp / "calls").read_text().splitlines()
    return [_compared(json.loads(line)) for line in lines]


def _compared(fields: dict[str, Any]) -> list[Any]:
    return [repr(fields[key]) if key == "value" else fields[key] for key in COMPARED]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rule=rules,
    hard=hard_levels,
    drawn=st.lists(ticks, min_size=5, max_size=30),
    failing=failures,
)
def test_the_replay_makes_the_calls_the_live_service_makes(
    tmp_path_factory: Any,
    rule: dict[str, str],
    hard: dict[str, str],
    drawn: list[Any],
    failing: set[tuple[str, int]],
) -> None:
    tmp = tmp_path_factory.mktemp("replay")
    plugins = tmp / "plugins"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(RECORDER.format(directory=str(tmp)))
    plugins.chmod(0o755)
    (tmp / "calls").write_text("")
    (tmp / "failing").write_text(json.dumps(sorted(failing)))
    env = {
        "SCRAPE_URL": "http://127.0.0.1:9/metrics",
        "METRIC_NAME": "queue_depth",
        "POLLING_INTERVAL": "1s",
        "PLUGIN_DIR": str(plugins),
        "ACTION_PLUGIN": "recorder",
        **rule,
        **hard,
    }
    if hard:
        env["HARD_ACTION_PLUGIN"] = "recorder"
    _assert_same_calls(env, drawn, failing, tmp)


ALERTS = """
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        for: {duration}
        keep_firing_for: {keep}
        labels: {{severity: page, where: '{{{{ $labels.queue }}}}'}}
        annotations: {{summary: '{{{{ $labels.queue }}}} holds {{{{ $value }}}}'}}
"""
ROUTED = """
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"
plugin_dir = "{plugins}"
rule_files = ["alerts.yml"]

[[routes]]
matchers = ['severity="page"']
action_plugin = "recorder"
backoff_delay = "{backoff}"
continue = true

[[routes]]
matchers = ['where="mail"']
action_plugin = "second"
"""


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    duration=st.sampled_from(["0s", "2s", "3s"]),
    keep=st.sampled_from(["0s", "2s"]),
    backoff=st.sampled_from(["0s", "3s"]),
    drawn=st.lists(ticks, min_size=5, max_size=25),
    failing=failures,
)
@example(  # found by CI: two series fire at once, one call of three fails
    duration="0s",
    keep="0s",
    backoff="0s",
    drawn=[None, None, None, [5.0, 5.0], [None, None]],
    failing={("recorder", 3)},
)
def test_an_alert_of_a_rule_file_reaches_its_routes_in_the_replay_as_live(
    tmp_path_factory: Any,
    duration: str,
    keep: str,
    backoff: str,
    drawn: list[Any],
    failing: set[tuple[str, int]],
) -> None:
    """Routes, templated labels and annotations, keep_firing_for and a call that reaches two
    plugins, one of which fails: the replay retries what the live service retries."""
    tmp = tmp_path_factory.mktemp("routed")
    plugins = tmp / "plugins"
    plugins.mkdir()
    for name in ("recorder", "second"):
        source = RECORDER.format(directory=str(tmp)).replace(
            'name = "recorder"', f'name = "{name}"'
        )
        (plugins / f"{name}.py").write_text(source)
    plugins.chmod(0o755)
    (tmp / "calls").write_text("")
    (tmp / "failing").write_text(json.dumps(sorted(failing)))
    (tmp / "alerts.yml").write_text(ALERTS.format(duration=duration, keep=keep))
    (tmp / "rules.toml").write_text(ROUTED.format(plugins=plugins, backoff=backoff))
    _assert_same_calls({"CONFIG_FILE": str(tmp / "rules.toml")}, drawn, failing, tmp)


def _assert_same_calls(
    env: dict[str, str], drawn: list[Any], failing: set[tuple[str, int]], tmp: Path
) -> None:
    reads = [
        None
        if tick is None
        else [Sample(labels, v) for labels, v in zip(SERIES, tick, strict=True) if v is not None]
        for tick in drawn
    ]
    live = _live(env, reads, tmp)

    def succeeds(plugin: str | None, at: float) -> bool:
        return (plugin, round(at)) not in failing

    configured = load_settings(env)
    replayed = replay(
        configured.rules[0],
        [Observation(k * INTERVAL, samples) for k, samples in enumerate(reads)],
        configured.routes,
        succeeds,
    )
    got = [_compared({**call.event.as_dict(), "at": call.at}) for call in replayed.calls]
    # The service runs the actions of one tick side by side: the calls of two series may
    # interleave. Per series (and tick), the calls and their order must be the same.
    assert _by_tick_and_series(got) == _by_tick_and_series(live)


def _by_tick_and_series(calls: list[list[Any]]) -> list[list[Any]]:
    """Stable: the order of the calls of one series at one tick is kept."""
    at, labels = COMPARED.index("at"), COMPARED.index("labels")
    return sorted(calls, key=lambda call: (call[at], sorted(call[labels].items())))
