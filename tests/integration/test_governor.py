"""The governor end to end against a real Prometheus: values pushed to a Pushgateway,
scraped by Prometheus, read by ``python -m metric_reader``, acted on by recording plugins,
and every owed call read back with ``metric-reader history --format json``.

Each test uses its own metric name, so tests never see each other's series.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    PrometheusStack,
    RecordingPlugins,
    Service,
    ServiceFactory,
    _http_get,
    base_env,
    free_port,
)

FLAKY = '''\
"""Fails every call, and notes each in $RECORDER_FILE first."""
import json, os, time

class Flaky:
    name = "flaky"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        with open(os.environ["RECORDER_FILE"], "a") as out:
            out.write(json.dumps({"plugin": "flaky", "kind": event.kind, "t": time.monotonic(),
                                  "labels": dict(event.labels)}) + "\\n")
        raise RuntimeError("the volume API said no")

Plugin = Flaky()
'''


def _config(
    tmp_path: Path, prometheus: PrometheusStack, metric: str, rule: str = "", top: str = ""
) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(
        f'prometheus_endpoint = "{prometheus.prometheus_url}"\n'
        'polling_interval = "250ms"\n'
        f"{top}\n"
        "[[rules]]\n"
        f'name = "{metric}"\n'
        f'metric_name = "{metric}"\n'
        'threshold = ">90"\n'
        'backoff_delay = "1h"\n'
        'action_plugin = "recorder"\n'
        f"{rule}\n"
    )
    return path


def _start(
    service: ServiceFactory, plugins: RecordingPlugins, config: Path, **env: str
) -> tuple[Service, dict[str, str]]:
    full = {
        "CONFIG_FILE": str(config),
        "HISTORY_FILE": str(config.parent / "history.sqlite"),
        **plugins.env,
        **env,
    }
    svc = service(full)
    svc.extra_diagnostics = [plugins.describe]
    return svc, full


def _push(prometheus: PrometheusStack, metric: str, values: dict[str, float]) -> None:
    prometheus.push_many(metric, [(metric, {"disk": name}, v) for name, v in values.items()])


def _visible(prometheus: PrometheusStack, metric: str, breached: int) -> None:
    prometheus.wait_visible(f"count({metric} > 90) or vector(0)", float(breached))


def _calls(plugins: RecordingPlugins, plugin: str = "recorder") -> list[dict[str, Any]]:
    return [record for record in plugins.records() if record["plugin"] == plugin]


def _wait_calls(
    svc: Service, plugins: RecordingPlugins, count: int, plugin: str = "recorder"
) -> list[dict[str, Any]]:
    svc.wait_until(
        lambda: len(_calls(plugins, plugin)) >= count,
        EVENT_TIMEOUT,
        lambda: f"{count} call(s) of {plugin}, got {len(_calls(plugins, plugin))}",
    )
    return _calls(plugins, plugin)


def _history(env: dict[str, str]) -> list[dict[str, Any]]:
    if not Path(env["HISTORY_FILE"]).exists():
        return []  # the service has not opened it yet
    done = subprocess.run(
        [sys.executable, "-m", "metric_reader", "history", "--format", "json", "--limit", "1000"],
        env=base_env(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows[::-1]  # oldest first


def _rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03}Z"


def _backtest(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "metric_reader", "backtest", "--format", "json", *args],
        env=base_env(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _rows(env: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(series, kind, outcome, reason) of every history row, oldest first."""
    return [
        (row["series"].get("disk", "*"), row["kind"], row["outcome"], row["reason"])
        for row in _history(env)
    ]


def _wait_rows(svc: Service, env: dict[str, str], count: int) -> list[tuple[str, str, str, str]]:
    svc.wait_until(lambda: len(_rows(env)) >= count, EVENT_TIMEOUT, f"{count} history rows")
    return _rows(env)


def _disks(n: int, value: float = 95.0, first: int = 0) -> dict[str, float]:
    return {f"d{i:02}": value for i in range(first, first + n)}


def test_a_storm_makes_one_storm_call_and_per_series_calls_resume_after_it(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    metric = "gov_storm_used"
    _push(prometheus_stack, metric, _disks(12))
    _visible(prometheus_stack, metric, 12)
    config = _config(
        tmp_path, prometheus_stack, metric, 'max_breaching = 5\nstorm_plugin = "recorder_hard"'
    )
    svc, env = _start(service, recording_plugin_dir, config)
    [storm] = _wait_calls(svc, recording_plugin_dir, 1, "recorder_hard")
    assert storm["kind"] == "storm" and storm["value"] == 12.0
    rows = _wait_rows(svc, env, 13)
    assert sorted(rows) == [("*", "storm", "executed", "")] + [
        (f"d{i:02}", "fire", "suppressed", "storm") for i in range(12)
    ]
    assert _calls(recording_plugin_dir) == []  # no per-series call in the storm

    _push(prometheus_stack, metric, {**_disks(8, 10.0, first=4), **_disks(4)})  # 8 recover
    fires = _wait_calls(svc, recording_plugin_dir, 4)
    assert sorted(call["labels"]["disk"] for call in fires) == ["d00", "d01", "d02", "d03"]
    assert len(_calls(recording_plugin_dir, "recorder_hard")) == 1  # once per storm
    rows = _wait_rows(svc, env, 17)
    assert sorted(rows[13:]) == [(f"d{i:02}", "fire", "executed", "") for i in range(4)]


def test_a_global_budget_lets_three_act_and_the_others_when_the_window_frees(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    metric = "gov_budget_used"
    _push(prometheus_stack, metric, _disks(10))
    _visible(prometheus_stack, metric, 10)
    config = _config(
        tmp_path, prometheus_stack, metric, top='[limits]\nmax_actions = 3\nper = "3s"'
    )
    began = time.time()
    svc, env = _start(service, recording_plugin_dir, config)
    first = _wait_calls(svc, recording_plugin_dir, 3)
    rows = _wait_rows(svc, env, 10)
    assert sorted(r for r in rows if r[2] == "suppressed") == [
        (f"d{i:02}", "fire", "suppressed", "budget")
        for i in range(10)
        if f"d{i:02}" not in {c["labels"]["disk"] for c in first}
    ]
    fires = _wait_calls(svc, recording_plugin_dir, 10)
    assert sorted(call["labels"]["disk"] for call in fires) == sorted(_disks(10))
    times = sorted(call["t"] for call in fires)
    crowded = [i for i in range(len(times) - 3) if times[i + 3] - times[i] < 3.0 - 0.05]
    assert crowded == [], f"4 calls within 3 s: {times}"  # never more than the budget
    assert sorted(r[2] for r in _rows(env)).count("executed") == 10

    # A backtest of the same window decides as the service did: 7 stopped by the budget.
    report = _backtest(env, "--from", _rfc3339(began), "--to", _rfc3339(time.time()))
    [rule] = report["rules"]
    held = [(s["labels"]["disk"], h["reason"]) for s in rule["series"] for h in s["suppressed"]]
    assert sorted(reason for _, reason in held) == ["budget"] * 7, report
    assert "7 stopped by the global budget" in report["summary"]


def test_a_failing_plugin_opens_its_breaker_and_after_the_cooldown_one_trial_runs(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    metric = "gov_breaker_used"
    (recording_plugin_dir.plugin_dir / "flaky.py").write_text(FLAKY)
    _push(prometheus_stack, metric, _disks(1))
    _visible(prometheus_stack, metric, 1)
    breaker = (
        '[plugins.flaky]\nbreaker_failures = 3\nbreaker_window = "1m"\nbreaker_cooldown = "4s"'
    )
    config = _config(tmp_path, prometheus_stack, metric, top=breaker)
    config.write_text(config.read_text().replace('"recorder"', '"flaky"'))
    listen = f"127.0.0.1:{free_port()}"
    svc, env = _start(service, recording_plugin_dir, config, LISTEN_ADDRESS=listen)
    tries = _wait_calls(svc, recording_plugin_dir, 3, "flaky")  # retries at 0.25, 0.5, 1 s
    opened = tries[2]["t"]
    trial = _wait_calls(svc, recording_plugin_dir, 4, "flaky")[3]
    assert trial["t"] - opened >= 4.0 - 0.3, "called during the cooldown"
    rows = _wait_rows(svc, env, 5)
    assert rows[:5] == [
        ("d00", "fire", "failed", ""),
        ("d00", "fire", "failed", ""),
        ("d00", "fire", "failed", ""),
        ("d00", "fire", "suppressed", "breaker"),
        ("d00", "fire", "failed", ""),  # the trial
    ]
    _, page = _http_get(f"http://{listen}/metrics")
    assert 'metric_reader_breaker_open{plugin="flaky"} 1.0' in page.decode()


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.fail("libfaketime not found: .ci/run installs Debian's faketime", pytrace=False)
    return found[0]


def test_a_mute_window_covering_now_holds_the_fire_until_it_ends(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    """The service's wall clock is set (libfaketime) to 5 s before the end of a minute, and
    the mute window is that minute: the fire comes when the window ends, not before."""
    metric = "gov_mute_used"
    now = time.time()
    offset = (55 - now % 60) % 60  # the service's clock then reads hh:mm:55
    minute = time.gmtime(now + offset)
    start = f"{minute.tm_hour:02}:{minute.tm_min:02}"
    end_minute = minute.tm_hour * 60 + minute.tm_min + 1
    end = f"{end_minute // 60:02}:{end_minute % 60:02}"
    clock = tmp_path / "faketime.txt"
    clock.write_text(f"{offset:+.3f}\n")
    _push(prometheus_stack, metric, _disks(1))
    _visible(prometheus_stack, metric, 1)
    window = (
        '[[time_intervals]]\nname = "maintenance"\n[[time_intervals.time_intervals]]\n'
        f'times = [{{start_time = "{start}", end_time = "{end}"}}]\n'
    )
    config = _config(
        tmp_path, prometheus_stack, metric, 'mute_time_intervals = ["maintenance"]', top=window
    )
    started = time.monotonic()
    svc, env = _start(
        service,
        recording_plugin_dir,
        config,
        LD_PRELOAD=_libfaketime(),
        FAKETIME_TIMESTAMP_FILE=str(clock),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )
    assert _wait_rows(svc, env, 1) == [("d00", "fire", "suppressed", "muted")]
    [fire] = _wait_calls(svc, recording_plugin_dir, 1)
    ends = started + (60 - (now + offset) % 60)
    assert fire["t"] >= ends - 0.5, "called inside the mute window"
    assert _wait_rows(svc, env, 2)[1] == ("d00", "fire", "executed", "")


def test_shadow_mode_records_every_call_and_never_makes_one(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    metric = "gov_shadow_used"
    _push(prometheus_stack, metric, _disks(2))
    _visible(prometheus_stack, metric, 2)
    config = _config(tmp_path, prometheus_stack, metric, 'mode = "shadow"')
    svc, env = _start(service, recording_plugin_dir, config)
    assert sorted(_wait_rows(svc, env, 2)) == [
        ("d00", "fire", "shadow", ""),
        ("d01", "fire", "shadow", ""),
    ]
    _push(prometheus_stack, metric, _disks(2, 10.0))
    assert sorted(_wait_rows(svc, env, 4)[2:]) == [
        ("d00", "resolve", "shadow", ""),
        ("d01", "resolve", "shadow", ""),
    ]
    assert recording_plugin_dir.records() == []
    row = _history(env)[0]
    assert (row["plugin"], row["threshold"], row["value"]) == ("recorder", ">90", 95.0)
    assert len(row["idempotency_key"]) == 32
