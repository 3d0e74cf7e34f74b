"""``/api/approvals`` over real HTTP on a ``FakeView`` holding a real ``Governor``: answers
need ``ENABLE_LIFECYCLE``, ``APPROVAL_TOKEN_FILE`` and its bearer token, never come
cross-site, and two approvals sent at once run the call once."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from _fake_view import FakeView

from metric_reader._cli import main
from metric_reader._config import load_settings
from metric_reader._core import Sample
from metric_reader._engine import Call, EvaluationStep, Observation, make_rule
from metric_reader._surface._web import serve_http

RULE = """\
prometheus_endpoint = "http://127.0.0.1:9"

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
action_plugin = "grow"
mode = "approve"
"""


class Breach:
    """A rule in approve mode over one breached series, evaluated on the wall clock."""

    def __init__(self, tmp_path: Path, view: FakeView) -> None:
        (tmp_path / "rules.toml").write_text(RULE)
        settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
        self.rule = make_rule(settings.rules[0])
        self.rule.quiet = True
        view.governor.configure(None, {}, [self.rule], {})
        self.step = EvaluationStep((), view.governor)
        self.called: list[tuple[str | None, str]] = []

    def evaluate(self) -> None:
        handed: list[Call] = []
        at = time.time()
        self.step.evaluate(self.rule, Observation(at, [Sample((), 95.0)]), handed.append)
        for call in handed:
            for plugin in call.plugins():
                self.called.append((plugin, call.event(plugin, at).kind))
                call.report(plugin, True)
            call.settle(at)


@asynccontextmanager
async def serving(
    view: FakeView, lifecycle: bool, token_file: Path | None
) -> AsyncIterator[httpx.AsyncClient]:
    async with anyio.create_task_group() as group:
        serve = functools.partial(
            serve_http, enable_lifecycle=lifecycle, approval_token_file=token_file
        )
        port = await group.start(serve, "127.0.0.1:0", view)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


def run(
    view: FakeView,
    test: Callable[[httpx.AsyncClient], Awaitable[None]],
    lifecycle: bool = True,
    token_file: Path | None = None,
) -> None:
    async def main() -> None:
        async with serving(view, lifecycle, token_file) as client:
            with anyio.fail_after(15):
                await test(client)

    anyio.run(main)


def test_answers_need_lifecycle_the_token_file_and_its_token_never_cross_site(
    tmp_path: Path,
) -> None:
    view = FakeView()
    breach = Breach(tmp_path, view)
    breach.evaluate()
    [request] = list(view.governor.approvals)
    approve = f"/api/approvals/{request.id}/approve"
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    good = {"Authorization": "Bearer s3cret-token"}

    async def lifecycle_off(client: httpx.AsyncClient) -> None:
        response = await client.post(approve, headers=good)
        assert response.status_code == 403 and "ENABLE_LIFECYCLE" in response.text
        listed = (await client.get("/api/approvals")).json()
        assert [r["id"] for r in listed["pending"]] == [request.id]
        assert listed["pending"][0]["rule"] == "disk" and listed["recent"] == []
        [shown] = (await client.get("/api/status")).json()["governor"]["approvals"]
        assert (shown["id"], shown["kind"], shown["plugin"]) == (request.id, "fire", "grow")
        page = (await client.get("/")).text
        assert "1 approval request pending" in page
        assert f'<tr id="approval-{request.id}">' in page
        assert f"metric-reader approve {request.id}" in page

    async def no_token_file(client: httpx.AsyncClient) -> None:
        response = await client.post(approve, headers=good)
        assert response.status_code == 403 and "APPROVAL_TOKEN_FILE" in response.text

    async def bad_tokens(client: httpx.AsyncClient) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
            response = await client.post(approve, headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        cross = await client.post(approve, headers={**good, "Origin": "http://evil.example"})
        assert cross.status_code == 403 and "cross-site" in cross.text
        unknown = await client.post("/api/approvals/0123456789abcdef/deny", headers=good)
        assert unknown.status_code == 404

    run(view, lifecycle_off, lifecycle=False, token_file=token)
    run(view, no_token_file)
    run(view, bad_tokens, token_file=token)
    assert request.state == "pending" and view.governor_saves == 0
    breach.evaluate()
    assert [kind for _, kind in breach.called] == ["approval_request"]


def test_two_approvals_sent_at_once_run_the_call_once(tmp_path: Path) -> None:
    view = FakeView()
    breach = Breach(tmp_path, view)
    breach.evaluate()
    [request] = list(view.governor.approvals)
    token = tmp_path / "token"
    token.write_text("s3cret-token")
    statuses: list[int] = []

    async def twice(client: httpx.AsyncClient) -> None:
        async def approve(by: str) -> None:
            response = await client.post(
                f"/api/approvals/{request.id}/approve",
                headers={"Authorization": "Bearer s3cret-token"},
                data={"by": by},
            )
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            group.start_soon(approve, "alice")
            group.start_soon(approve, "bob")
        listed = (await client.get("/api/approvals")).json()
        assert listed["pending"] == [] and listed["recent"][0]["state"] == "approved"
        assert "approval request" not in (await client.get("/")).text

    run(view, twice, token_file=token)
    assert sorted(statuses) == [200, 409]
    assert view.governor_saves == 1
    for _ in range(3):
        breach.evaluate()
    assert breach.called == [(None, "approval_request"), ("grow", "fire")]


def test_approve_and_deny_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    view = FakeView()
    breach = Breach(tmp_path, view)
    breach.evaluate()
    [request] = list(view.governor.approvals)
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("guess\n")

    async def commands() -> list[int]:
        async with anyio.create_task_group() as group:
            serve = functools.partial(serve_http, enable_lifecycle=True, approval_token_file=token)
            port = await group.start(serve, "127.0.0.1:0", view)
            url = f"http://127.0.0.1:{port}"
            codes = []
            for argv, env in (
                (["approve", request.id, "--token-file", str(wrong)], {}),
                (["approve", request.id], {}),  # no token file anywhere
                (["approve", request.id], {"APPROVAL_TOKEN_FILE": str(token)}),
                (["deny", request.id, "--token-file", str(token)], {}),
            ):
                call = functools.partial(main, [*argv, "--url", url], env)
                with anyio.fail_after(15):
                    codes.append(await anyio.to_thread.run_sync(call))
            group.cancel_scope.cancel()
        return codes

    assert anyio.run(commands) == [1, 2, 0, 1]
    out, err = capsys.readouterr()
    assert (
        out == "fire of rule disk to plugin grow approved: it runs at the series' next evaluation\n"
    )
    refusals = [line for line in err.splitlines() if line.startswith("metric-reader:")]
    assert "401 wrong bearer token" in refusals[0]
    assert "give --token-file or set APPROVAL_TOKEN_FILE" in refusals[1]
    assert f"409 approval {request.id} is approved, not pending" in refusals[2]
