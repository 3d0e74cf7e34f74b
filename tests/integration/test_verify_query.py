"""``verify_query`` end to end against a real Prometheus: the service reads the query on
the rule's endpoint while a fix waits for it, and a fix that shows elsewhere (the
deployment available again) is recorded verified while the rule's own series (the
worker's age) still breaches; a backtest of the same minute, reading the query with
``query_range``, says the same."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from metric_reader._config import load_settings
from metric_reader._replay._backtest import Window, backtest

from .conftest import (
    EVENT_TIMEOUT,
    PrometheusStack,
    RecordingPlugins,
    ServiceFactory,
    _http_get,
    free_port,
)
from .test_verify import _calls, _history

AGE = "vq_worker_age_seconds"
UNAVAILABLE = "vq_replicas_unavailable"
JOB = "verify_query"


def test_a_fix_judged_by_the_verify_query_holds_while_the_rules_series_still_breaches(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    prometheus_stack.push_many(
        JOB,
        [
            (AGE, {"deployment": "x"}, 900.0),
            (UNAVAILABLE, {"deployment": "x"}, 1.0),
            (UNAVAILABLE, {"deployment": "y"}, 1.0),  # another deployment's: not x's alert
        ],
    )
    prometheus_stack.wait_visible(f"count({UNAVAILABLE} > 0) + count({AGE})", 3.0)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"\n'
        'polling_interval = "250ms"\n'
        "[[rules]]\n"
        'name = "stuck"\n'
        f'metric_name = "{AGE}"\n'
        'threshold = ">600"\n'
        'backoff_delay = "1m"\n'
        'action_plugin = "recorder"\n'
        'verify_within = "30s"\n'
        f"verify_query = '{UNAVAILABLE} > 0'\n"
        'escalate_plugin = "recorder_hard"\n'
    )
    listen = f"127.0.0.1:{free_port()}"
    env = {
        "LISTEN_ADDRESS": listen,
        "CONFIG_FILE": str(config),
        "HISTORY_FILE": str(tmp_path / "history.sqlite"),
        **recording_plugin_dir.env,
    }
    svc = service(env)
    svc.extra_diagnostics = [recording_plugin_dir.describe]
    plugins = recording_plugin_dir
    svc.wait_until(lambda: _calls(plugins, "stuck"), EVENT_TIMEOUT, "the fire of stuck")

    # The deployment is available again; the worker's age is still 900.
    prometheus_stack.push_many(JOB, [(UNAVAILABLE, {"deployment": "x"}, 0.0)])
    svc.wait_until(
        lambda: any(r["verified"] for r in _history(env)),
        EVENT_TIMEOUT,
        lambda: f"the fix verified; history {_history(env)}",
    )
    rows = [(r["plugin"], r["kind"], r["outcome"], r["verified"]) for r in _history(env)]
    assert rows == [("recorder", "fire", "executed", True)]
    assert _calls(plugins, "stuck") == [("recorder", "fire")]  # no resolve: still breached
    _, page = _http_get(f"http://{listen}/metrics")
    assert (
        'metric_reader_fixes_total{plugin="recorder",result="verified",rule="stuck"} 1.0'
        in page.decode()
    )

    # The backtest of what just happened reads the query over the window and agrees.
    settings = load_settings({"CONFIG_FILE": str(config)})
    now = time.time()
    # All of it happened within the last few seconds: a step finer than the scrapes.
    [result] = anyio.run(backtest, settings, settings.rules, Window(now - 20, now), 0.1)
    assert result.replayed is not None, result.skipped
    calls = [(c.plugin, c.event.kind, c.verified) for c in result.replayed.calls]
    assert calls == [("recorder", "fire", True)]
