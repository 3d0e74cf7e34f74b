"""The governor's endpoints over real HTTP on a ``FakeView`` holding a real ``Governor``:
Alertmanager's API v2 for silences (the shapes ``amtool`` reads), ``/api/pause`` and
``/api/resume``; writes only with ``ENABLE_LIFECYCLE`` and never cross-site; bad input is
``400`` with one line; the status page, ``/api/status`` and ``/metrics`` show the pause."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
from _fake_view import FakeView

from metric_reader._surface._web import serve_http

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@asynccontextmanager
async def serving(view: FakeView, enable_lifecycle: bool) -> AsyncIterator[httpx.AsyncClient]:
    async with anyio.create_task_group() as group:
        serve = functools.partial(serve_http, enable_lifecycle=enable_lifecycle)
        port = await group.start(serve, "127.0.0.1:0", view)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


def run(
    view: FakeView, test: Callable[[httpx.AsyncClient], Awaitable[None]], lifecycle: bool = True
) -> None:
    async def main() -> None:
        async with serving(view, lifecycle) as client:
            with anyio.fail_after(15):
                await test(client)

    anyio.run(main)


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def silence(**changes: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "matchers": [
            {"name": "alertname", "value": "DiskFull", "isRegex": False, "isEqual": True},
            {"name": "instance", "value": "db.*", "isRegex": True},
        ],
        "startsAt": stamp(now - 60),
        "endsAt": stamp(now + 3600),
        "createdBy": "alice",
        "comment": "disk migration",
        **changes,
    }


def test_writes_are_refused_unless_enabled_and_never_cross_site_while_reads_work() -> None:
    view = FakeView()
    writes = [
        ("POST", "/api/v2/silences", {"json": silence()}),
        ("DELETE", "/api/v2/silence/0b6f", {}),
        ("POST", "/api/pause", {"data": {"for": "1h", "reason": "x"}}),
        ("POST", "/api/resume", {}),
    ]

    async def off(client: httpx.AsyncClient) -> None:
        for method, path, body in writes:
            response = await client.request(method, path, **body)
            assert response.status_code == 403, (path, response.text)
            assert response.text.count("\n") == 1 and "ENABLE_LIFECYCLE" in response.text
        assert (await client.get("/api/v2/silences")).json() == []
        assert (await client.get("/api/pause")).json() == {"paused": False}
        status = (await client.get("/api/v2/status")).json()
        assert status["cluster"] == {"status": "disabled", "peers": []}
        assert set(status["versionInfo"]) == {
            "version", "revision", "branch", "buildUser", "buildDate", "goVersion"
        }  # fmt: skip
        assert status["config"] == {"original": ""} and RFC3339_MS.fullmatch(status["uptime"])

    async def cross_site(client: httpx.AsyncClient) -> None:
        for method, path, body in writes:
            response = await client.request(
                method, path, headers={"Origin": "http://evil.example"}, **body
            )
            assert response.status_code == 403 and "cross-site" in response.text, path

    run(view, off, lifecycle=False)
    run(view, cross_site)
    assert (
        len(view.governor.silences),
        view.governor.paused(time.time()),
        view.governor_saves,
    ) == (
        0,
        None,
        0,
    )


def test_silences_as_alertmanager_serves_them() -> None:
    view = FakeView()

    async def test(client: httpx.AsyncClient) -> None:
        created = await client.post("/api/v2/silences", json=silence())
        assert created.status_code == 200, created.text
        silence_id = created.json()["silenceID"]
        listed = (await client.get("/api/v2/silences")).json()
        [one] = listed
        assert one == (await client.get(f"/api/v2/silence/{silence_id}")).json()
        assert one["id"] == silence_id and one["status"] == {"state": "active"}
        assert one["matchers"] == [
            {"isEqual": True, "isRegex": False, "name": "alertname", "value": "DiskFull"},
            {"isEqual": True, "isRegex": True, "name": "instance", "value": "db.*"},
        ]
        assert (one["createdBy"], one["comment"]) == ("alice", "disk migration")
        for key in ("startsAt", "endsAt", "updatedAt"):
            assert RFC3339_MS.fullmatch(one[key]), one
        assert one["startsAt"] >= stamp(time.time() - 30)  # a start in the past is now
        # Filters name a silence's own matchers (Alertmanager's), not labels it matches.
        for wanted, found in (('alertname="DiskFull"', 1), ("instance=~db.*", 1), ("a=b", 0)):
            got = await client.get("/api/v2/silences", params={"filter": wanted})
            assert len(got.json()) == found, wanted
        # Changed in place: same matchers, same start, a later end.
        later = silence(startsAt=one["startsAt"], endsAt=stamp(time.time() + 7200), id=silence_id)
        changed = await client.post("/api/v2/silences", json=later)
        assert changed.json() == {"silenceID": silence_id}
        # Other matchers: the old one expires, a new one takes its place.
        other = silence(matchers=[{"name": "job", "value": "db", "isRegex": False}], id=silence_id)
        replaced = (await client.post("/api/v2/silences", json=other)).json()["silenceID"]
        assert replaced != silence_id
        old = (await client.get(f"/api/v2/silence/{silence_id}")).json()
        assert old["status"] == {"state": "expired"}
        deleted = await client.delete(f"/api/v2/silence/{replaced}")
        assert (deleted.status_code, deleted.content) == (200, b"")
        again = await client.delete(f"/api/v2/silence/{replaced}")
        assert again.status_code == 500 and "already expired" in again.json()
        assert (await client.delete("/api/v2/silence/nope")).status_code == 404
        assert (await client.get("/api/v2/silence/nope")).status_code == 404
        unknown = await client.post("/api/v2/silences", json=silence(id="nope"))
        assert unknown.status_code == 404
        states = [s["status"]["state"] for s in (await client.get("/api/v2/silences")).json()]
        assert states == ["expired", "expired"]
        active = await client.get("/api/v2/silences", params={"expired": "false"})
        assert active.json() == []

    run(view, test)
    assert view.governor_saves == 4  # created, changed, replaced, expired


def test_bad_input_is_400_with_one_line() -> None:
    view = FakeView()
    now = time.time()
    bad_silences = [
        b"{not json",
        b'["a list"]',
        silence(comment=None),
        {k: v for k, v in silence().items() if k != "createdBy"},
        silence(matchers=[]),
        silence(matchers=[{"name": "a", "value": "(", "isRegex": True}]),
        silence(matchers=[{"name": "a", "value": "", "isRegex": False}]),
        silence(startsAt=stamp(now + 60), endsAt=stamp(now + 30)),
        silence(endsAt=stamp(now - 30), startsAt=stamp(now - 90)),
        silence(endsAt="tomorrow"),
        silence(endsAt="2030-01-01T00:00:00"),
    ]

    async def test(client: httpx.AsyncClient) -> None:
        for body in bad_silences:
            if isinstance(body, bytes):
                response = await client.post("/api/v2/silences", content=body)
            else:
                response = await client.post("/api/v2/silences", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.text.count("\n") == 1 and isinstance(response.json(), str)
        response = await client.get("/api/v2/silences", params={"filter": "a=~("})
        assert response.status_code == 400 and response.text.count("\n") == 1
        for form in ({"for": "soon"}, {"for": "0s"}, {"until": "1h"}):
            response = await client.post("/api/pause", data=form)
            assert response.status_code == 400 and response.text.count("\n") == 1, form
        response = await client.post("/api/pause", json={"for": 3600})
        assert response.status_code == 400 and response.text.count("\n") == 1
        huge = await client.post("/api/pause", content=b"x" * 100_000)
        assert huge.status_code == 413

    run(view, test)
    assert (len(view.governor.silences), view.governor_saves) == (0, 0)
    assert view.governor.paused(time.time()) is None


def test_pause_and_resume_show_on_the_page_the_status_and_the_metrics() -> None:
    view = FakeView()

    async def test(client: httpx.AsyncClient) -> None:
        paused = await client.post("/api/pause", data={"for": "1h", "reason": "db <failover>"})
        assert paused.status_code == 200, paused.text
        doc = paused.json()
        assert doc["paused"] is True and doc["reason"] == "db <failover>"
        assert doc == (await client.get("/api/pause")).json()
        assert doc["until"] > doc["since"]
        governor = (await client.get("/api/status")).json()["governor"]
        assert governor["paused"] == {k: doc[k] for k in ("since", "until", "reason", "by")}
        page = (await client.get("/")).text
        assert "Paused: no plugin is called" in page and "db &lt;failover&gt;" in page
        assert "metric_reader_paused 1.0" in (await client.get("/metrics")).text
        # JSON too, and without a duration: until resumed.
        forever = await client.post("/api/pause", json={"reason": "incident", "by": "bob"})
        assert forever.json()["until"] is None and forever.json()["by"] == "bob"
        resumed = await client.post("/api/resume")
        assert resumed.json() == {"paused": False, "resumed": True}
        assert "Paused" not in (await client.get("/", params={"limit": "5"})).text
        assert "metric_reader_paused 0.0" in (await client.get("/metrics")).text

    run(view, test)
    assert view.governor_saves == 3


def test_a_spent_budget_and_a_storm_show_on_the_page_and_in_the_status() -> None:
    from metric_reader._config import BudgetConfig

    view = FakeView()
    view.governor.configure(BudgetConfig(2, 3600.0, "global"), {}, [], {})
    now = time.time()
    assert view.governor.limits is not None
    view.governor.limits.spend(now - 10)
    view.governor.limits.spend(now - 5)
    view.governor.storms["disk"] = 12

    async def test(client: httpx.AsyncClient) -> None:
        governor = (await client.get("/api/status")).json()["governor"]
        [budget] = governor["budgets"]
        assert (budget["name"], budget["used"], budget["max_actions"]) == ("global", 2, 2)
        assert budget["frees_at"] == stamp_ms(now - 10 + 3600)
        assert governor["storms"] == [{"rule": "disk", "breached": 12}]
        page = (await client.get("/")).text
        assert "budget of global: 2 of 2 calls spent, calls suppressed until" in page
        assert "storm, 12 series breached at once" in page

    run(view, test)


def stamp_ms(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
