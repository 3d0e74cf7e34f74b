"""The status page says how many plugin calls are in flight, and how many of them wait for a
plugin thread, while there are any (``plugin_calls`` in ``/api/status``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from metric_reader._surface._status_page import render_status_page

EXPECTED = Path(__file__).with_name("status_documents.json")


def _document(**plugin_calls: int) -> Any:
    document = json.loads(EXPECTED.read_text())["status_page"]
    if plugin_calls:
        document["plugin_calls"] = {"queue_limit": 10_000, "threads": 32, **plugin_calls}
    return document


def test_the_header_counts_the_calls_in_flight_and_those_waiting_for_a_thread() -> None:
    page = render_status_page(_document(in_flight=80, queued=48))
    assert (
        '<b>80</b> plugin calls in flight (<span class="error">48 waiting for a thread</span>)'
        in page
    )
    assert "<b>1</b> plugin call in flight &middot;" in render_status_page(
        _document(in_flight=1, queued=0)
    )


def test_nothing_is_said_while_no_call_is_in_flight() -> None:
    for document in (_document(), _document(in_flight=0, queued=0)):
        assert "plugin call" not in render_status_page(document)
