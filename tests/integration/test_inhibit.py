"""Inhibition end to end against a real Prometheus (issue 26, point 3): while a node's
alert fires, the pod restarts on that node are held back (``inhibited`` in the history) and
those on other nodes run; once the node's alert stops firing, the held restart runs."""

from __future__ import annotations

from pathlib import Path

from .conftest import EVENT_TIMEOUT, PrometheusStack, RecordingPlugins, ServiceFactory
from .test_governor import _history, _start

NODE, POD = "inhibit_node_not_ready", "inhibit_pod_restarts"


def test_an_inhibit_rule_holds_a_target_while_its_source_fires_and_lets_it_act_after(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    def push(node_down: float) -> None:
        prometheus_stack.push_many(
            NODE,
            [
                (NODE, {"node": "n1"}, node_down),
                (POD, {"node": "n1", "pod": "p1"}, 5.0),
                (POD, {"node": "n2", "pod": "p2"}, 5.0),
            ],
        )

    push(1.0)
    prometheus_stack.wait_visible(f"count({POD} > 3) + sum({NODE})", 3.0)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"\n'
        'polling_interval = "250ms"\n'
        f'[[rules]]\nname = "NodeNotReady"\nmetric_name = "{NODE}"\nthreshold = ">0"\n'
        f'[[rules]]\nname = "PodCrashLooping"\nmetric_name = "{POD}"\nthreshold = ">3"\n'
        'threshold_duration = "500ms"\nbackoff_delay = "1h"\naction_plugin = "recorder"\n'
        "[[inhibit_rules]]\n"
        "source_matchers = ['alertname=\"NodeNotReady\"']\n"
        "target_matchers = ['alertname=\"PodCrashLooping\"']\n"
        'equal = ["node"]\n'
    )
    svc, env = _start(service, recording_plugin_dir, config)

    def pods() -> list[tuple[str, str, str, str]]:
        return [
            (row["series"]["pod"], row["kind"], row["outcome"], row["reason"])
            for row in _history(env)
            if row["rule"] == "PodCrashLooping"
        ]

    def called() -> list[str]:
        return [record["labels"]["pod"] for record in recording_plugin_dir.records()]

    svc.wait_until(lambda: len(pods()) >= 2, EVENT_TIMEOUT, "2 history rows of the pods")
    assert sorted(pods()) == [
        ("p1", "fire", "suppressed", "inhibited"),
        ("p2", "fire", "executed", ""),
    ]
    assert called() == ["p2"]
    [held] = [row for row in _history(env) if row["reason"] == "inhibited"]
    assert held["detail"] == (
        'inhibited by firing alert {alertname="NodeNotReady", job="inhibit_node_not_ready", '
        'node="n1"} (inhibit_rules[0])'
    )

    push(0.0)  # the node is back: p1's restart, owed all along, runs
    svc.wait_until(lambda: len(called()) >= 2, EVENT_TIMEOUT, "p1's restart")
    assert called() == ["p2", "p1"]
    assert sorted(pods()) == [
        ("p1", "fire", "executed", ""),
        ("p1", "fire", "suppressed", "inhibited"),
        ("p2", "fire", "executed", ""),
    ]
