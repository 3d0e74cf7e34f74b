"""``metric-reader silence``, ``pause`` and ``resume`` against the real HTTP server on a
``FakeView`` (the commands run in a worker thread, as a second process would): amtool-like
output, and one clear line when the service cannot be reached or refuses."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable

import anyio
import pytest
from _fake_view import FakeView

from metric_reader._cli import main
from metric_reader._surface._web import serve_http


def said(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The commands' lines on stderr (not the server's log)."""
    return [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("metric-reader:")
    ]


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def commands(view: FakeView, enable_lifecycle: bool, *argvs: list[str]) -> list[int]:
    """Run each command line with ``--url`` of a server over ``view``; their exit codes."""

    async def test() -> list[int]:
        async with anyio.create_task_group() as group:
            serve = functools.partial(serve_http, enable_lifecycle=enable_lifecycle)
            port = await group.start(serve, "127.0.0.1:0", view)
            codes = []
            for argv in argvs:
                call: Callable[[], int] = functools.partial(
                    main, [*argv, "--url", f"http://127.0.0.1:{port}"], {}
                )
                with anyio.fail_after(15):
                    codes.append(await anyio.to_thread.run_sync(call))
            group.cancel_scope.cancel()
        return codes

    return anyio.run(test)


def test_silences_and_the_pause_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    view = FakeView()
    add = ["silence", "add", "DiskFull", 'instance=~"db.*"', "-c", "migration", "-a", "ann"]
    assert commands(view, True, add) == [0]
    silence_id = capsys.readouterr().out.strip()
    assert UUID.fullmatch(silence_id)
    assert commands(view, True, ["silence", "query"], ["silence", "query", "a=b"]) == [0, 0]
    header, row, empty_header = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "Matchers", "Ends", "At", "Created", "By", "Comment"]
    assert empty_header == "ID  Matchers  Ends At  Created By  Comment"  # none: a=b is not one
    assert row.startswith(f'{silence_id}  alertname="DiskFull" instance=~"db.*"  ')
    assert re.search(r"UTC  ann +migration$", row), row
    assert commands(
        view, True, ["silence", "expire", silence_id], ["silence", "query", "--expired", "-q"]
    ) == [0, 0]
    assert capsys.readouterr().out == f"{silence_id}\n"

    assert commands(view, True, ["pause", "--for", "2h", "--reason", "failover"]) == [0]
    assert re.fullmatch(
        r"paused until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: no plugin is called\n",
        capsys.readouterr().out,
    )
    pause = view.governor.paused(time.time())
    assert pause is not None and pause.reason == "failover"
    assert commands(view, True, ["resume"], ["resume"]) == [0, 0]
    assert capsys.readouterr().out.splitlines() == [
        "resumed: owed calls run at their next evaluation",
        "was not paused",
    ]


def test_a_refusal_or_an_unreachable_service_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    view = FakeView()
    assert commands(view, False, ["silence", "add", "a=b"], ["pause", "--reason", "x"]) == [1, 1]
    refused = said(capsys)
    assert len(refused) == 2 and all(
        "403" in line and "ENABLE_LIFECYCLE" in line for line in refused
    )
    assert commands(
        view, True, ["silence", "add", "a=~("], ["pause", "--for", "x", "--reason", "y"]
    ) == [2, 2]
    assert len(said(capsys)) == 2
    assert main(["resume", "--url", "http://127.0.0.1:1"], {}) == 1
    [line] = said(capsys)
    assert line.startswith("metric-reader: cannot reach the service at http://127.0.0.1:1")
    assert len(view.governor.silences) == 0
