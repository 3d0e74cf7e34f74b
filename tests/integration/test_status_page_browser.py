"""The status page in a real browser: a ``python -m metric_reader`` process with
``LISTEN_ADDRESS``, its page loaded by headless Chromium (Debian package ``chromium``).

A label value carries ``<script>document.title='pwned'</script>``: the browser must show it
as text and never run it.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _browser import BROWSER_TIMEOUT, browse

from .conftest import (
    EVENT_TIMEOUT,
    STARTUP_TIMEOUT,
    RecordingPlugins,
    ScrapeServer,
    ServiceFactory,
    free_port,
)

INJECTED = "<script>document.title='pwned'</script>"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


class _Page(HTMLParser):
    """The DOM as the browser left it: its title, its elements, its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)


# Two chromium runs of up to BROWSER_TIMEOUT each, and the service's start-up.
@pytest.mark.timeout(2 * BROWSER_TIMEOUT + 60)
def test_status_page_shows_rules_and_series_and_runs_no_injected_script(
    service: ServiceFactory,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    tmp_path: Path,
) -> None:
    scrape_server.set_value("web_queue", 95, {"queue": INJECTED, "team": 'a "quoted" team'})
    scrape_server.set_value("web_queue", 3, {"queue": "calm"})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    svc = service(
        {
            "SCRAPE_URL": scrape_server.url,
            "METRIC_NAME": "web_queue",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "250ms",
            "ACTION_PLUGIN": "recorder",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            **recording_plugin_dir.env,
        }
    )
    svc.extra_diagnostics = [recording_plugin_dir.describe]
    svc.wait_until(lambda: get(f"{base}/readyz")[0] == 200, STARTUP_TIMEOUT, "/readyz 200")

    def fired() -> dict[str, Any] | None:
        code, body = get(f"{base}/api/status")
        if code != 200:
            return None
        status: dict[str, Any] = json.loads(body)
        for series in status["rules"][0]["series"]:
            if series["labels"].get("queue") == INJECTED and series["base"]["last_action"]:
                return status
        return None

    status = svc.wait_until(fired, EVENT_TIMEOUT, "the breached series' action to finish")
    rule = status["rules"][0]["name"]

    dom = browse(tmp_path, "--dump-dom", f"{base}/").stdout
    page = _Page()
    page.feed(dom)
    assert page.title != "pwned", "the label's script ran in the browser"
    assert page.title == "1 firing, 0 pending - metric-reader"
    assert "script" not in page.tags, "the label value became a <script> element"
    text = "".join(page.text)
    assert rule in text
    assert f'queue="{INJECTED}"' in text  # shown as text, the way Prometheus writes it
    assert 'team="a \\"quoted\\" team"' in text
    assert 'queue="calm"' in text
    words = " ".join(" ".join(page.text).split())
    assert "firing" in words and "ok" in words and ">50" in words
    assert "fire success" in words  # the last action and its result
    assert "recorder" in words

    screenshot = tmp_path / "status-page.png"
    browse(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,800", f"{base}/")
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 800)
    assert len(data) > 20_000, "the screenshot looks empty"


def test_a_rule_that_reads_nothing_shows_no_data_in_the_browser_not_a_green_row(
    service: ServiceFactory, scrape_server: ScrapeServer, tmp_path: Path
) -> None:
    scrape_server.set_value("web_queue", 3, {"queue": "calm"})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    svc = service(
        {
            "SCRAPE_URL": scrape_server.url,
            "METRIC_NAME": "web_queu",  # misspelled: the page has web_queue
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "250ms",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
        }
    )

    def no_data() -> bool:
        code, body = get(f"{base}/api/status")
        return code == 200 and json.loads(body)["rules"][0]["no_data"]["active"]

    svc.wait_until(no_data, STARTUP_TIMEOUT, "the rule to be in no data")
    assert get(f"{base}/readyz")[0] == 200  # no data is not unreadiness

    dom = browse(tmp_path, "--dump-dom", f"{base}/").stdout
    page = _Page()
    page.feed(dom)
    words = " ".join(" ".join(page.text).split())
    assert "1 with no data" in words
    assert "no data the last" in words and "returned no series" in words
    assert "check the metric name, label filters or query" in words
    assert '<span class="state ok">' not in dom and '<tr class="ok">' not in dom
    assert '<tr class="nodata">' in dom
    svc.wait_until(
        lambda: "no data: the first read returns no series" in svc.stderr(),
        EVENT_TIMEOUT,
        "the no-data warning in the log",
    )
