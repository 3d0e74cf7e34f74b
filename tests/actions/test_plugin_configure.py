"""The bundled plugins' ``configure(settings)``: the rule file's ``[plugins.NAME]`` tables.

Each plugin is loaded as the service loads it, with a table, and called as the service calls
it: ``http_action`` against a real HTTP server on 127.0.0.1, ``exec_action`` running real
commands. A table beats the environment; keys it does not give fall back to it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _events import make_event as _make_event
from loguru import logger

from metric_reader import Event
from metric_reader._actions import (
    LoadedPlugin,
    PluginFailure,
    PluginProblem,
    bundled_plugin_dir,
    load_plugin_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PY = shlex.quote(sys.executable)
TIMEOUT = 10.0
PLUGIN_VARIABLES = (
    "FILE_ACTION_DIR",
    "FILE_ACTION_SIZE",
    "HTTP_PLUGIN_ENDPOINT",
    "HTTP_PLUGIN_HEADERS",
    "HTTP_PLUGIN_TIMEOUT",
    "EXEC_ACTION_COMMAND",
    "EXEC_ACTION_RESOLVE_COMMAND",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No plugin setting, nor proxy, from the environment running the tests."""
    for name in (*PLUGIN_VARIABLES, *PROXY_VARIABLES, "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def load(name: str, table: dict[str, Any]) -> LoadedPlugin | PluginProblem:
    return load_plugin_file(
        bundled_plugin_dir() / f"{name}.py", bundled=True, settings={name: table}
    )


def loaded(name: str, table: dict[str, Any]) -> LoadedPlugin:
    plugin = load(name, table)
    assert isinstance(plugin, LoadedPlugin), plugin
    assert plugin.name == name and plugin.bundled
    return plugin


def refused(name: str, table: dict[str, Any]) -> str:
    """Why the plugin is refused with ``table``: one line, its name known."""
    problem = load(name, table)
    assert isinstance(problem, PluginProblem), f"{name} loaded but should have been refused"
    assert problem.name == name
    assert problem.unconfigured
    assert "\n" not in problem.reason
    return problem.reason


def configure_refused(name: str, table: dict[str, Any]) -> str:
    """The message of ``configure`` refusing ``table``."""
    reason = refused(name, table)
    prefix = f"configure() refused its [plugins.{name}] settings: ValueError: "
    assert reason.startswith(prefix), reason
    return reason.removeprefix(prefix)


def make_event(**changes: Any) -> Event:
    return _make_event(**{"plugin": "test", **changes})


# --- any plugin -------------------------------------------------------------------------


def test_a_plugin_without_configure_given_a_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.py"
    path.write_text(
        "class Plain:\n"
        "    name = 'plain'\n"
        "    def execute(self, metric_name, value, threshold, duration):\n"
        "        pass\n\n\n"
        "Plugin = Plain()\n"
    )
    assert isinstance(load_plugin_file(path), LoadedPlugin)  # fine without a table

    problem = load_plugin_file(path, settings={"plain": {"dir": "/tmp"}})

    assert isinstance(problem, PluginProblem)
    assert problem.name == "plain"
    assert "[plugins.plain]" in problem.reason
    assert "configure(settings)" in problem.reason
    assert "\n" not in problem.reason


@pytest.mark.parametrize(
    "name", ["log_action", "file_action", "http_action", "exec_action", "alertmanager_action"]
)
def test_every_bundled_plugin_refuses_an_unknown_key_with_a_suggestion_only_when_close(
    name: str, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("EXEC_ACTION_COMMAND", "true")

    message = configure_refused(name, {"colour": "blue"})

    assert message.startswith("unknown key 'colour'; allowed: ")
    assert "did you mean" not in message
    assert "blue" not in message


def test_every_unknown_key_is_named_in_one_line() -> None:
    message = configure_refused("file_action", {"sise": 1, "dri": "/tmp", "size": 1})
    assert message == (
        "unknown keys 'sise' (did you mean 'size'?), 'dri' (did you mean 'dir'?); "
        "allowed: dir, size"
    )


# --- log_action -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("table", "fire_level"),
    [({}, "WARNING"), ({"level": "warning"}, "WARNING"), ({"level": "info"}, "INFO")],
)
async def test_log_action_logs_fires_at_the_configured_level(
    log_records: list[dict[str, Any]], table: dict[str, Any], fire_level: str
) -> None:
    plugin = loaded("log_action", table)

    await plugin.call("execute", make_event(), TIMEOUT)
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)

    levels = [r["level"].name for r in log_records if r["message"].startswith("log_action:")]
    assert levels == [fire_level, "INFO"]


def test_log_action_refuses_a_misspelt_key_and_an_unknown_level() -> None:
    assert configure_refused("log_action", {"levle": "info"}) == (
        "unknown key 'levle' (did you mean 'level'?); allowed: level"
    )
    for level in ("debug", 3, ""):
        message = configure_refused("log_action", {"level": level})
        assert message == f'level={level!r} is not a log level; expected "warning" or "info"'


# --- file_action ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("size", [0, 5, "7", 1048576 + 3])
async def test_file_action_writes_size_bytes_into_dir(tmp_path: Path, size: int | str) -> None:
    directory = tmp_path / "from table" / "nested"  # does not exist yet
    plugin = loaded("file_action", {"dir": str(directory), "size": size})

    await plugin.call("execute", make_event(), TIMEOUT)

    [created] = list(directory.iterdir())
    assert created.stat().st_size == int(size)


@pytest.mark.anyio
async def test_file_action_table_beats_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    env_dir, table_dir = tmp_path / "env", tmp_path / "table"
    clean_env.setenv("FILE_ACTION_DIR", str(env_dir))
    clean_env.setenv("FILE_ACTION_SIZE", "not a size")  # would refuse the plugin if read
    plugin = loaded("file_action", {"dir": str(table_dir), "size": 3})

    await plugin.call("execute", make_event(), TIMEOUT)

    assert [p.stat().st_size for p in table_dir.iterdir()] == [3]
    assert not env_dir.exists()


@pytest.mark.anyio
async def test_file_action_keys_not_given_come_from_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("FILE_ACTION_DIR", str(tmp_path / "env"))
    clean_env.setenv("FILE_ACTION_SIZE", "9")

    await loaded("file_action", {"size": 2}).call("execute", make_event(), TIMEOUT)
    await loaded("file_action", {"dir": str(tmp_path / "table")}).call(
        "execute", make_event(), TIMEOUT
    )
    await loaded("file_action", {}).call("execute", make_event(), TIMEOUT)

    assert sorted(p.stat().st_size for p in (tmp_path / "env").iterdir()) == [2, 9]
    assert [p.stat().st_size for p in (tmp_path / "table").iterdir()] == [9]


def test_file_action_refuses_misspelt_keys_and_environment_names() -> None:
    assert configure_refused("file_action", {"sizes": 1}) == (
        "unknown key 'sizes' (did you mean 'size'?); allowed: dir, size"
    )
    assert configure_refused("file_action", {"FILE_ACTION_DIR": "/tmp"}) == (
        "unknown key 'FILE_ACTION_DIR' (did you mean 'dir'?); allowed: dir, size"
    )


@pytest.mark.parametrize("size", [-1, 1.5, True, "12k", "", "-3", [1]])
def test_file_action_refuses_a_size_that_is_not_a_byte_count(size: object) -> None:
    message = configure_refused("file_action", {"size": size})
    assert message.startswith(f"size={size!r} is not a size: expected a whole number of bytes")


@pytest.mark.parametrize("directory", [5, "", "  ", "a\0b", ["/tmp"]])
def test_file_action_refuses_a_dir_that_is_not_a_path(directory: object) -> None:
    message = configure_refused("file_action", {"dir": directory})
    assert message.startswith(f"dir={directory!r} is not a directory path: expected a non-empty")


def test_file_action_validates_the_table_dir(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")

    reason = refused("file_action", {"dir": str(a_file)})

    assert reason == (
        "validate_config() refused: ValueError: "
        f"[plugins.file_action] dir={str(a_file)!r} exists but is not a directory"
    )


@pytest.mark.anyio
async def test_file_action_names_the_table_size_when_it_does_not_fit(tmp_path: Path) -> None:
    too_big = shutil.disk_usage(tmp_path).free + 1024**4
    plugin = loaded("file_action", {"dir": str(tmp_path), "size": too_big})

    with pytest.raises(PluginFailure, match=rf"\[plugins.file_action\] size={too_big} bytes"):
        await plugin.call("execute", make_event(), TIMEOUT)
    assert list(tmp_path.iterdir()) == []


# --- http_action ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    url: str
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def server() -> Iterator[Server]:
    """A real threaded HTTP server on 127.0.0.1 answering 200 to every POST."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.requests.append(Received(self.path, headers, json.loads(body)))
            if recorder.delay:
                recorder.release.wait(recorder.delay)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    recorder = Server(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recorder
    recorder.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.mark.anyio
async def test_http_action_posts_to_the_table_endpoint_with_its_headers(server: Server) -> None:
    plugin = loaded(
        "http_action",
        {
            "endpoint": f"{server.url}/hooks/alert",
            "headers": {"Authorization": "Bearer t0ken", "X-Team": "ops"},
            "timeout": "5s",
        },
    )

    await plugin.call("execute", make_event(), TIMEOUT)
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)

    assert [(r.path, r.body["kind"]) for r in server.requests] == [
        ("/hooks/alert", "fire"),
        ("/hooks/alert", "resolve"),
    ]
    for request in server.requests:
        assert request.headers["authorization"] == "Bearer t0ken"
        assert request.headers["x-team"] == "ops"
        assert request.headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_http_action_table_beats_the_environment(
    server: Server, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HTTP_PLUGIN_ENDPOINT", f"{server.url}/from-env")
    clean_env.setenv("HTTP_PLUGIN_HEADERS", "not JSON")  # would refuse the plugin if read
    clean_env.setenv("HTTP_PLUGIN_TIMEOUT", "never")
    plugin = loaded(
        "http_action",
        {"endpoint": f"{server.url}/from-table", "headers": {"X-From": "table"}, "timeout": "5s"},
    )

    await plugin.call("execute", make_event(), TIMEOUT)

    [request] = server.requests
    assert (request.path, request.headers["x-from"]) == ("/from-table", "table")


@pytest.mark.anyio
async def test_http_action_keys_not_given_come_from_the_environment(
    server: Server, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HTTP_PLUGIN_ENDPOINT", f"{server.url}/from-env")
    clean_env.setenv("HTTP_PLUGIN_HEADERS", '{"X-From": "env"}')

    await loaded("http_action", {"headers": {}}).call("execute", make_event(), TIMEOUT)
    await loaded("http_action", {"endpoint": f"{server.url}/t"}).call(
        "execute", make_event(), TIMEOUT
    )

    first, second = server.requests
    assert first.path == "/from-env" and "x-from" not in first.headers  # {} replaces env's
    assert (second.path, second.headers["x-from"]) == ("/t", "env")


@pytest.mark.anyio
async def test_http_action_gives_up_after_the_table_timeout(server: Server) -> None:
    server.delay = 5.0
    plugin = loaded("http_action", {"endpoint": server.url, "timeout": "200ms"})

    with pytest.raises(PluginFailure) as caught:
        await plugin.call("execute", make_event(), TIMEOUT)

    assert f"POST {server.url} got no answer within 200ms ([plugins.http_action] timeout)" in str(
        caught.value
    )


def test_http_action_refuses_misspelt_keys() -> None:
    allowed = "allowed: endpoint, headers, timeout"
    assert configure_refused("http_action", {"endpont": "http://x"}) == (
        f"unknown key 'endpont' (did you mean 'endpoint'?); {allowed}"
    )
    assert configure_refused("http_action", {"header": {}}) == (
        f"unknown key 'header' (did you mean 'headers'?); {allowed}"
    )
    assert configure_refused("http_action", {"HTTP_PLUGIN_TIMEOUT": "5s"}) == (
        f"unknown key 'HTTP_PLUGIN_TIMEOUT' (did you mean 'timeout'?); {allowed}"
    )


@pytest.mark.parametrize(
    ("endpoint", "start"),
    [
        ("ftp://files.example/x", "endpoint='ftp://files.example/x': expected an http://"),
        ("localhost:8080", "endpoint='localhost:8080': expected an http://"),
        ("https://user:pa55@", "endpoint='https://***@': expected an http://"),
        (8080, "endpoint is an integer, not a string; expected an http://"),
    ],
)
def test_http_action_refuses_an_endpoint_that_is_not_an_http_url(
    endpoint: object, start: str
) -> None:
    message = configure_refused("http_action", {"endpoint": endpoint})
    assert message.startswith(start)
    assert "pa55" not in message


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Bearer s3cret", "is a string, not a table"),
        (["s3cret"], "is an array, not a table"),
        ({"X-Retries": 3}, "gives header 'X-Retries' an integer, not a string"),
        ({"X-A": {"b": "s3cret"}}, "gives header 'X-A' a table, not a string"),
        ({"Bad Name": "s3cret"}, "has an invalid header name 'Bad Name'"),
        ({"": "s3cret"}, "has an invalid header name ''"),
        ({"X-A": "s3cret\r\nX-Injected: 1"}, "gives header 'X-A' a value with a line break"),
        ({"X-A": "s3cret-\u00e9"}, "gives header 'X-A' a value with a line break"),
        ({"Transfer-Encoding": "s3cret"}, "sets 'Transfer-Encoding'"),
        ({"X-A": "s3cret", "x-a": "s3cret"}, "names header 'x-a' twice"),
    ],
)
def test_http_action_refuses_malformed_headers_without_showing_their_values(
    headers: object, reason: str
) -> None:
    message = configure_refused("http_action", {"headers": headers})

    assert message.startswith(f"headers {reason}")
    assert "expected a table of strings" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("timeout", ["5", "abc", "0s", "-1s", "1d", 5, 1.5])
def test_http_action_refuses_a_timeout_that_is_not_a_positive_go_duration(
    timeout: object,
) -> None:
    message = configure_refused("http_action", {"timeout": timeout})
    assert message.startswith(f"timeout={timeout!r} is not a Go duration above 0 such as")
    assert '"5s"' in message


# --- exec_action ------------------------------------------------------------------------

WRITE_KIND = "import os, sys; open(sys.argv[1], 'w').write(os.environ['METRIC_READER_KIND'])"


@pytest.mark.anyio
async def test_exec_action_runs_a_command_given_as_a_list_as_it_is(tmp_path: Path) -> None:
    out = tmp_path / "seen $HOME 'kind'.txt"  # a space, $ and quotes: one argument, no shell
    plugin = loaded("exec_action", {"command": [sys.executable, "-c", WRITE_KIND, str(out)]})

    await plugin.call("execute", make_event(), TIMEOUT)
    assert out.read_text() == "fire"
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)
    assert out.read_text() == "resolve"


@pytest.mark.anyio
async def test_exec_action_runs_a_command_given_as_a_string_split_like_a_shell(
    tmp_path: Path,
) -> None:
    out = tmp_path / "seen kind.txt"
    command = f"{PY} -c {shlex.quote(WRITE_KIND)} {shlex.quote(str(out))}"
    plugin = loaded("exec_action", {"command": command})

    await plugin.call("execute", make_event(), TIMEOUT)

    assert out.read_text() == "fire"


@pytest.mark.anyio
async def test_exec_action_resolve_runs_the_table_resolve_command(tmp_path: Path) -> None:
    fired, resolved = tmp_path / "fired", tmp_path / "resolved"
    plugin = loaded(
        "exec_action",
        {
            "command": [sys.executable, "-c", WRITE_KIND, str(fired)],
            "resolve_command": f"{PY} -c {shlex.quote(WRITE_KIND)} {shlex.quote(str(resolved))}",
        },
    )

    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)

    assert resolved.read_text() == "resolve"
    assert not fired.exists()


@pytest.mark.anyio
async def test_exec_action_table_beats_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("EXEC_ACTION_COMMAND", "no-such-program-4711")  # would refuse if read
    clean_env.setenv("EXEC_ACTION_RESOLVE_COMMAND", "'not closed")
    out = tmp_path / "kind"
    command = [sys.executable, "-c", WRITE_KIND, str(out)]
    plugin = loaded("exec_action", {"command": command, "resolve_command": command})

    await plugin.call("execute", make_event(), TIMEOUT)
    assert out.read_text() == "fire"
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)
    assert out.read_text() == "resolve"


@pytest.mark.anyio
async def test_exec_action_keys_not_given_come_from_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    fired, resolved = tmp_path / "fired", tmp_path / "resolved"
    clean_env.setenv("EXEC_ACTION_RESOLVE_COMMAND", f"{PY} -c {shlex.quote(WRITE_KIND)} {resolved}")
    plugin = loaded("exec_action", {"command": [sys.executable, "-c", WRITE_KIND, str(fired)]})

    await plugin.call("execute", make_event(), TIMEOUT)
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)

    assert (fired.read_text(), resolved.read_text()) == ("fire", "resolve")


def test_exec_action_needs_a_command_from_the_table_or_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    loaded("exec_action", {"command": ["true"]})  # no EXEC_ACTION_COMMAND needed
    assert refused("exec_action", {}) == (
        "validate_config() refused: ValueError: EXEC_ACTION_COMMAND is not set: give the "
        "command to run, e.g. EXEC_ACTION_COMMAND='/usr/local/bin/notify --team ops'"
    )
    assert "EXEC_ACTION_COMMAND is not set" in refused("exec_action", {"resolve_command": "true"})
    clean_env.setenv("EXEC_ACTION_COMMAND", "true")
    loaded("exec_action", {})


def test_exec_action_refuses_misspelt_keys() -> None:
    allowed = "allowed: command, resolve_command, args"
    assert configure_refused("exec_action", {"comand": "true"}) == (
        f"unknown key 'comand' (did you mean 'command'?); {allowed}"
    )
    assert configure_refused("exec_action", {"command": "true", "resolve": "true"}) == (
        f"unknown key 'resolve' (did you mean 'resolve_command'?); {allowed}"
    )
    assert configure_refused("exec_action", {"EXEC_ACTION_COMMAND": "true"}) == (
        f"unknown key 'EXEC_ACTION_COMMAND' (did you mean 'command'?); {allowed}"
    )


@pytest.mark.parametrize("key", ["command", "resolve_command"])
@pytest.mark.parametrize(
    ("value", "start"),
    [
        (5, "{key} is an integer; expected a command as a string"),
        ({"argv": "true"}, "{key} is a table; expected a command as a string"),
        ([], "{key}=[] has no program to run"),
        ("", "{key}='' has no program to run"),
        (["", "x"], "{key}=['', 'x'] has no program to run"),
        (["true", 1], "{key}[1] is an integer, not a string; expected a command as a string"),
        ("echo 'not closed", '{key}="echo \'not closed" cannot be split into words'),
        (["true", "a\0b"], "{key}=['true', 'a\\x00b'] contains a NUL character"),
        (
            ["no-such-program-4711", "--now"],
            "{key}=['no-such-program-4711', '--now']: program 'no-such-program-4711' is not "
            "found on PATH",
        ),
        (
            "/no/such/notify --now",
            "{key}='/no/such/notify --now': program '/no/such/notify' does not exist",
        ),
    ],
)
def test_exec_action_refuses_a_bad_command(key: str, value: object, start: str) -> None:
    table = {"command": "true", key: value}
    assert configure_refused("exec_action", table).startswith(start.format(key=key))


# --- exec_action's args: templates of the event (issue 23, point 11) ---------------------

WRITE_ARGV = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"


@pytest.mark.anyio
async def test_exec_action_args_are_rendered_from_the_event_and_appended(tmp_path: Path) -> None:
    """As an annotation is rendered: $labels, $annotations, $value and Prometheus'
    functions; each template one argument, whatever spaces or quotes it renders."""
    out = tmp_path / "argv.json"
    plugin = loaded(
        "exec_action",
        {
            "command": [sys.executable, "-c", WRITE_ARGV, str(out), "--reboot"],
            "args": [
                "{{ $labels.instance }}",
                "{{ $annotations.summary }}",
                "{{ $value | humanize }}",
                '{{ .Labels.job }}-{{ if eq $labels.job "node" }}host{{ end }}',
                "literal $HOME; rm -rf /",
            ],
        },
    )
    event = make_event(
        labels={"instance": "db-1:9100", "job": "node"},
        annotations={"summary": "load is 'high' on db-1"},
        value=12345.0,
    )

    await plugin.call("execute", event, TIMEOUT)
    assert json.loads(out.read_text()) == [
        "--reboot",
        "db-1:9100",
        "load is 'high' on db-1",
        "12.35k",
        "node-host",
        "literal $HOME; rm -rf /",
    ]
    await plugin.call("resolve", make_event(kind="resolve", labels={"instance": "b"}), TIMEOUT)
    assert json.loads(out.read_text())[:2] == ["--reboot", "b"]


@pytest.mark.anyio
async def test_exec_action_fails_a_call_whose_args_cannot_be_rendered(tmp_path: Path) -> None:
    """Prometheus writes an error into the annotation; a command must not run with it."""
    out = tmp_path / "argv.json"
    plugin = loaded(
        "exec_action",
        {
            "command": [sys.executable, "-c", WRITE_ARGV, str(out)],
            "args": ["{{ humanize $labels.instance }}"],
        },
    )

    with pytest.raises(PluginFailure) as caught:
        await plugin.call("execute", make_event(labels={"instance": "db-1"}), TIMEOUT)

    assert not out.exists()
    assert str(caught.value) == (
        "plugin 'exec_action' execute failed: TemplateError: template: args[0]:1:3: executing "
        '"args[0]" at <humanize $labels.instance>: error calling humanize: '
        'strconv.ParseFloat: parsing "db-1": invalid syntax'
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("{{ $labels.instance }}", "args is a string; expected a list of strings, each a template"),
        (["ok", 5], "args[1] is an integer, not a string"),
        (
            ["{{ $labels.instance"],
            "args[0]='{{ $labels.instance' is not a template: template: args[0]:1: unclosed action",
        ),
        (
            ["{{ $nope }}"],
            "args[0]='{{ $nope }}' is not a template: template: args[0]:1: undefined "
            'variable "$nope"',
        ),
    ],
)
def test_exec_action_refuses_args_that_are_not_templates(args: object, message: str) -> None:
    assert configure_refused("exec_action", {"command": "true", "args": args}).startswith(message)


# --- through the real command -----------------------------------------------------------


def check(tmp_path: Path, plugins_table: str) -> subprocess.CompletedProcess[str]:
    """``python -m metric_reader check`` with a rule file using exec_action."""
    config = tmp_path / "rules.toml"
    config.write_text(
        '[[rules]]\nname = "queue"\nmetric_name = "queue_depth"\nthreshold = ">80"\n'
        'action_plugin = "exec_action"\n\n'
        f"[plugins.exec_action]\n{plugins_table}\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "CONFIG_FILE": str(config),
    }
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_accepts_a_command_from_the_rule_file(tmp_path: Path) -> None:
    result = check(tmp_path, 'command = ["true"]')

    assert result.returncode == 0, result.stderr
    assert "-> exec_action" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_refuses_a_misspelt_key_in_the_rule_file(tmp_path: Path) -> None:
    result = check(tmp_path, 'comand = "true"')

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("metric-reader: configuration error: ")
    assert str(bundled_plugin_dir() / "exec_action.py") in line
    assert "[plugins.exec_action]" in line
    assert "unknown key 'comand' (did you mean 'command'?)" in line
