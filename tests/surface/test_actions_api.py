"""``GET /api/actions`` and the status page's "recent actions", over real HTTP, on a
``FakeView`` holding a real (in-memory) action history."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from _fake_view import FakeView

from metric_reader._core import HistoryEntry
from metric_reader._surface._web import serve_http

XSS = "<script>alert(1)</script>"


@asynccontextmanager
async def serving(view: FakeView) -> AsyncIterator[httpx.AsyncClient]:
    async with anyio.create_task_group() as group:
        port = await group.start(functools.partial(serve_http, "127.0.0.1:0", view))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


def test_actions_are_served_newest_first_filtered_and_shown_on_the_status_page() -> None:
    now = time.time()
    view = FakeView()
    old = HistoryEntry(
        now - 7200, "disk_full", {"instance": "db-1"}, "restart_pod", "fire", "executed"
    )
    budget = HistoryEntry(
        now - 60,
        "disk_full",
        {"instance": XSS},
        "restart_pod",
        "fire",
        "suppressed",
        "budget",
        "budget of plugin restart_pod: 3 per 1h",
    )
    failed = HistoryEntry(now - 30, "queue", {"q": "mail"}, "page_me", "repeat", "failed",
                          detail="HTTP 500 from the pager", attempt=2)  # fmt: skip
    for entry in (old, budget, failed):
        view.actions.record(entry)

    async def test() -> None:
        async with serving(view) as client:
            with anyio.fail_after(15):
                every = await client.get("/api/actions")
                assert every.status_code == 200
                assert every.headers["content-type"] == "application/json"
                assert every.json() == {"actions": [failed.as_dict(), budget.as_dict(),
                                                    old.as_dict()]}  # fmt: skip
                since = await client.get(
                    "/api/actions", params={"since": "1h", "rule": "disk_full"}
                )
                assert since.json()["actions"] == [budget.as_dict()]
                one = await client.get("/api/actions?outcome=failed&limit=5")
                assert one.json()["actions"] == [failed.as_dict()]
                for query, line in [
                    ("since=yesterday", "since 'yesterday': expected a duration back from now"),
                    ("outcome=done", "outcome 'done': expected one of executed, failed,"),
                    ("limit=0", "limit must be a whole number from 1, got '0'"),
                    ("offset=3", "unknown parameter 'offset': use since, rule, outcome and"),
                ]:
                    bad = await client.get(f"/api/actions?{query}")
                    assert bad.status_code == 400 and bad.text.count("\n") == 1, bad.text
                    assert bad.text.startswith(line), bad.text
                page = (await client.get("/")).text
        section = page[page.index('<section id="recent-actions">') :]
        section = section[: section.index("</section>")]
        assert section.count("<tr>") == 4  # the header and the three, newest first
        assert section.index("page_me") < section.index("budget of plugin restart_pod")
        assert "HTTP 500 from the pager" in section and XSS not in page

    anyio.run(test)
