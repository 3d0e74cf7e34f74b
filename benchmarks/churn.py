"""Memory stays flat while series come and go: 10,000 polls whose label values change
every poll, fed to one rule's state machine in a child process on a fake clock.

Each poll holds ``SERIES`` series with labels never seen before, half of them breached (so
PENDING and FIRING machines, actions and their finishing are exercised too). The clock
advances ``STEP`` seconds per poll, so a series absent for 10 minutes of that clock is
forgotten after a few polls. Resident memory is taken after a warm-up of ``WARM_UP`` polls
and at the end; the growth is the figure.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

POLLS = 10_000
WARM_UP = 500
SERIES = 20
STEP = 60.0


def _child() -> dict[str, float]:
    from metric_reader._config import load_settings
    from metric_reader._core._logging import configure_logging
    from metric_reader._core._samples import Sample, labels_of
    from metric_reader._engine import make_rule

    from ._proc import rss_kb

    configure_logging("ERROR")
    settings = load_settings(
        {
            "METRIC_NAME": "churn",
            "SCRAPE_URL": "http://127.0.0.1:1/metrics",
            "THRESHOLD": ">50",
            "THRESHOLD_DURATION": "0s",
            "POLLING_INTERVAL": "1m",
        }
    )
    rule = make_rule(settings.rules[0])
    now = 0.0
    start_kb = 0
    live = 0
    for poll in range(POLLS):
        if poll == WARM_UP:
            gc.collect()
            start_kb = rss_kb()
        samples = [
            Sample(labels_of({"pod": f"pod-{poll}-{i}", "job": "churn"}), float(i * 5))
            for i in range(SERIES)
        ]
        for action in rule.evaluate(now, samples):
            rule.finish(now, action, True)
        now += STEP
        live = max(live, len(rule.series))
    gc.collect()
    return {"start_kb": start_kb, "end_kb": rss_kb(), "live": live}


def run() -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.churn", "--child"],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    result = json.loads(out.stdout)
    growth = (result["end_kb"] - result["start_kb"]) / 1024
    return [
        {
            "name": f"memory: RSS growth over {POLLS:,} polls of churning series",
            "value": growth,
            "unit": "MB",
            "target": 1.0,
            "note": f"{SERIES} new series a poll, fake clock +{STEP:g}s a poll, "
            f"at most {result['live']:.0f} series held",
        }
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child()))
    else:
        print(run())
