"""``ALERTS`` and ``ALERTS_FOR_STATE`` on ``/metrics``, in Prometheus' own shape: every
pending or firing series level of every rule, so dashboards and meta-alerts written for
Prometheus' alerts work when Prometheus scrapes metric-reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from surface.test_service_surface import serving

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._service import Service

PAGE = b'disk_used{mount="/"} 95\ndisk_used{mount="/var"} 85\ndisk_used{mount="/tmp"} 10\n'


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def test_alerts_show_every_pending_and_firing_series_level(page_url: str, tmp_path: Path) -> None:
    """``/`` at 95 is past the hard threshold (firing on both levels), ``/var`` at 85 is
    firing on the base level only, ``/tmp`` is fine: no alert. A second rule is pending."""
    config = tmp_path / "rules.toml"
    config.write_text(
        f'scrape_url = "{page_url}"\npolling_interval = "100ms"\n'
        '[[rules]]\nname = "disk-full"\nmetric_name = "disk_used"\nthreshold = ">80"\n'
        'hard.threshold = ">90"\n'
        '[[rules]]\nname = "disk-slow"\nmetric_name = "disk_used"\nthreshold = ">90"\n'
        'threshold_duration = "1h"\n'
    )
    service = Service(load_settings({"CONFIG_FILE": str(config)}), discover_plugins(None))
    started = time.time()

    async def scrape() -> str:
        async with serving(service, "127.0.0.1:0") as port, httpx.AsyncClient() as client:
            with anyio.fail_after(15):
                while True:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    if 'breach_level="hard"' in text:
                        return text
                    await anyio.sleep(0.05)

    text = anyio.run(scrape)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    alerts = sorted(
        (
            s.labels["alertname"],
            s.labels["mount"],
            s.labels.get("breach_level", ""),
            s.labels["alertstate"],
            s.value,
        )
        for s in families["ALERTS"].samples
    )
    assert alerts == [
        ("disk-full", "/", "", "firing", 1.0),
        ("disk-full", "/", "hard", "firing", 1.0),
        ("disk-full", "/var", "", "firing", 1.0),
        ("disk-slow", "/", "", "pending", 1.0),
    ]
    for_state = {
        (s.labels["alertname"], s.labels["mount"], s.labels.get("breach_level", "")): s.value
        for s in families["ALERTS_FOR_STATE"].samples
    }
    assert len(for_state) == 4 and "alertstate" not in str(families["ALERTS_FOR_STATE"].samples)
    assert all(started - 1 <= since <= time.time() for since in for_state.values())
