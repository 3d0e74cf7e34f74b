"""CPU per poll of the whole service on the scrape source, plain and gzip-encoded.

The 100,000-series page of ``benchmarks.scrape`` is served by a separate process
(``benchmarks._page_server``, which counts the pages it serves). ``python -m metric_reader``
runs in a subprocess with three rules on that page (one per watched metric, so one fetch
per poll); its utime + stime from ``/proc/PID/stat`` between two samples after a warm-up,
divided by the pages served in between, is the CPU per poll. The yardstick is one full
``prometheus_client`` parse of the page (measured in ``benchmarks.scrape``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from ._page_server import Served, serve
from ._proc import cpu_seconds, stop, wait_until
from .scrape import WATCHED, make_page

INTERVAL = 0.25
POLLS = 30
WARM_UP = 1.0
ROOT = Path(__file__).parent.parent


def service_cpu_per_poll(served: Served, polls: int = POLLS) -> tuple[float, int]:
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp, "rules.toml")
        rules.write_text(
            f'polling_interval = "{INTERVAL * 1000:g}ms"\nscrape_url = "{served.url}"\n'
            + "".join(
                f'[[rules]]\nname = "{name}"\nmetric_name = "{name}"\nthreshold = ">1e12"\n'
                for name in WATCHED
            )
        )
        env = {k: v for k, v in os.environ.items() if k == "PATH" or k.startswith("LC_")}
        env.update(CONFIG_FILE=str(rules), LOG_LEVEL="warning", PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "metric_reader"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            start = served.count()[0]
            wait_until(lambda: served.count()[0] >= start + 3, 30, "the first scrapes")
            time.sleep(WARM_UP)
            cpu0, n0 = cpu_seconds(proc.pid), served.count()[0]
            time.sleep(polls * INTERVAL)
            cpu1, n1 = cpu_seconds(proc.pid), served.count()[0]
            if proc.poll() is not None:
                raise RuntimeError("the service exited")
        finally:
            stop(proc)
    return (cpu1 - cpu0) / max(n1 - n0, 1), n1 - n0


def run(full_parse: float) -> list[dict[str, object]]:
    """``full_parse``: CPU seconds of one prometheus_client parse of the page."""
    page = make_page()
    with serve(page) as served:
        plain, plain_polls = service_cpu_per_poll(served)
    with serve(page, gzipped=True) as served:
        gz, gz_polls = service_cpu_per_poll(served)
    import gzip

    size = len(gzip.compress(page, compresslevel=6))
    return [
        {
            "name": "scrape: service CPU per poll, 10.9 MB page, 3 rules",
            "value": plain * 1e3,
            "unit": "ms",
            "note": f"{plain_polls} polls at {INTERVAL * 1000:g}ms, /proc utime+stime",
        },
        {
            "name": "scrape: service poll / one full prometheus_client parse",
            "value": plain / full_parse,
            "unit": "x",
            "target": 1 / 50,
        },
        {
            "name": "scrape: service CPU per poll, gzip-encoded page",
            "value": gz * 1e3,
            "unit": "ms",
            "note": f"{size / 1e6:.1f} MB on the wire; {gz_polls} polls; "
            f"{(gz - plain) * 1e3:+.1f} ms for gzip",
        },
    ]
