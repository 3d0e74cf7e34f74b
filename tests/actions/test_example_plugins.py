"""The example plugins in ``examples/plugins``, the code of the plugin guide and the README's.

Each example is loaded the way the service loads it and called through
``LoadedPlugin.call``, as the service calls it; the HTTP one against a real local server.
The plugin guide's (``plugin_dir/README.md``) code blocks marked ``<!-- guide-file: PATH
-->`` and the README's quick-start plugin (``<!-- readme-file: PATH -->``) are extracted and
run as written, so the documents cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _events import make_event as _make_event
from loguru import logger
from test_docs import readme_files

from metric_reader import Event
from metric_reader._actions import (
    LoadedPlugin,
    PluginFailure,
    PluginProblem,
    discover_plugins,
    load_plugin_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "plugins"
GUIDE = REPO_ROOT / "plugin_dir" / "README.md"

EXAMPLE_NAMES = {
    "http_plugin.py": "http_plugin",
    "labels_plugin.py": "labels_plugin",
    "sync_plugin.py": "sync_plugin",
    "resolve_plugin.py": "resolve_plugin",
}

TIMEOUT = 10.0


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def make_event(**changes: Any) -> Event:
    defaults = {
        "rule": "volumes",
        "metric_name": "kubelet_volume_stats_available_bytes",
        "labels": {"namespace": "shop", "persistentvolumeclaim": "data-db-0"},
        "value": 1.5e9,
        "threshold": "<5e9",
        "breach_started": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
        "duration": timedelta(seconds=120),
        "plugin": "",
    }
    return _make_event(**{**defaults, **changes})


def example(name: str) -> LoadedPlugin:
    """The example plugin ``name``, loaded as the service loads it (its settings as set now)."""
    loaded = load_plugin_file(EXAMPLES / f"{name}.py")
    assert isinstance(loaded, LoadedPlugin), loaded
    assert loaded.name == name
    return loaded


# --- all examples ---------------------------------------------------------------------------


def test_every_example_loads_from_examples_plugins_without_problems() -> None:
    catalog = discover_plugins(EXAMPLES)

    problems = [
        str(p) for p in catalog.problems if EXAMPLES in (p.path.resolve(), p.path.resolve().parent)
    ]
    assert problems == []
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXAMPLE_NAMES)
    for filename, name in EXAMPLE_NAMES.items():
        plugin = catalog.plugins[name]
        assert plugin.path.resolve() == EXAMPLES / filename
        assert not plugin.bundled


@pytest.mark.parametrize("filename", sorted(EXAMPLE_NAMES))
def test_every_example_documents_itself_and_its_settings(filename: str) -> None:
    source = (EXAMPLES / filename).read_text()
    docstring = inspect.cleandoc(re.match(r'"""(.*?)"""', source, re.S).group(1))  # type: ignore[union-attr]
    assert docstring.startswith(f"Example plugin ``{EXAMPLE_NAMES[filename]}``:")
    assert "Settings" in docstring
    for variable in set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', source)):
        assert f"``{variable}``" in docstring, f"{filename} does not document {variable}"


# --- http_plugin ----------------------------------------------------------------------------


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "body": json.loads(body),
                }
            )
            status = self.server.status
        answer = b"ok" if status < 300 else b"ticket system down"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", server.url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.anyio
async def test_http_plugin_posts_the_breach_as_json(http_server: _Recorder) -> None:
    plugin = example("http_plugin")
    event = make_event(labels={"queue": "orders"}, metric_name="queue_depth", value=95.0)

    await plugin.call("execute", event, TIMEOUT)

    [request] = http_server.requests
    assert request["path"] == "/hook"
    assert request["content_type"] == "application/json"
    body = request["body"]
    assert body["metric_name"] == "queue_depth"
    assert body["value"] == 95.0
    assert body["threshold"] == "<5e9"
    assert body["duration_seconds"] == 120.0
    assert body["kind"] == "fire"
    assert body["labels"] == {"queue": "orders"}
    assert body["rule"] == "volumes"
    assert body["level"] == "base"
    assert body["breach_started"] == "2024-05-01T12:00:00+00:00"
    assert body["fire_count"] == 0


@pytest.mark.anyio
async def test_http_plugin_posts_the_end_of_a_breach_from_resolve(http_server: _Recorder) -> None:
    await example("http_plugin").call("resolve", make_event(kind="resolve"), TIMEOUT)

    [request] = http_server.requests
    assert request["body"]["kind"] == "resolve"


@pytest.mark.anyio
async def test_http_plugin_sends_nan_as_a_string_json_can_carry(http_server: _Recorder) -> None:
    await example("http_plugin").call("execute", make_event(value=float("nan")), TIMEOUT)

    assert http_server.requests[0]["body"]["value"] == "NaN"


@pytest.mark.anyio
async def test_http_plugin_fails_on_a_non_2xx_answer(http_server: _Recorder) -> None:
    http_server.status = 503

    with pytest.raises(PluginFailure, match=r"answered 503 .*ticket system down") as failure:
        await example("http_plugin").call("execute", make_event(), TIMEOUT)
    assert len(http_server.requests) == 1
    assert "/hook" not in str(failure.value)


@pytest.mark.anyio
async def test_http_plugin_fails_when_nothing_listens(
    http_server: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", http_server.url)
    plugin = example("http_plugin")
    http_server.shutdown()
    http_server.server_close()

    with pytest.raises(PluginFailure, match="ConnectError") as failure:
        await plugin.call("execute", make_event(), TIMEOUT)
    assert f"POST http://127.0.0.1:{http_server.server_address[1]} failed" in str(failure.value)
    assert "/hook" not in str(failure.value)  # the URL's path may hold a secret


def test_http_plugin_refuses_an_endpoint_that_is_not_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", "ftp://files.example/hook")

    problem = load_plugin_file(EXAMPLES / "http_plugin.py")

    assert isinstance(problem, PluginProblem)
    assert problem.name == "http_plugin"
    assert "HTTP_PLUGIN_ENDPOINT='ftp://files.example/hook'" in problem.reason


def test_http_plugin_reads_its_endpoint_at_every_call_not_at_import(
    http_server: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", "http://127.0.0.1:1/never")
    plugin = example("http_plugin")
    monkeypatch.setenv("HTTP_PLUGIN_ENDPOINT", http_server.url)

    asyncio.run(plugin.call("execute", make_event(), TIMEOUT))

    assert len(http_server.requests) == 1


# --- labels_plugin --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_labels_plugin_decides_the_pvc_from_the_series_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    plan_file = tmp_path / "plan.jsonl"
    monkeypatch.setenv("LABELS_PLUGIN_PLAN_FILE", str(plan_file))
    labels = {"namespace": "shop", "persistentvolumeclaim": "data-db-0", "node": "n1"}

    await example("labels_plugin").call("execute", make_event(labels=labels), TIMEOUT)

    [line] = plan_file.read_text().splitlines()
    plan = json.loads(line)
    assert plan["action"] == "expand"
    assert plan["namespace"] == "shop"
    assert plan["persistentvolumeclaim"] == "data-db-0"
    assert plan["metric_name"] == "kubelet_volume_stats_available_bytes"
    assert plan["value"] == 1.5e9
    assert plan["threshold"] == "<5e9"
    assert (plan["kind"], plan["level"], plan["rule"]) == ("fire", "base", "volumes")
    assert plan["labels"] == labels
    messages = [r["message"] for r in log_records]
    assert any("would expand PVC shop/data-db-0" in m for m in messages), messages


@pytest.mark.anyio
async def test_labels_plugin_only_logs_without_a_plan_file(
    monkeypatch: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    monkeypatch.delenv("LABELS_PLUGIN_PLAN_FILE", raising=False)

    await example("labels_plugin").call("execute", make_event(), TIMEOUT)

    assert any("would expand PVC shop/data-db-0" in r["message"] for r in log_records)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"namespace": "shop"}, "series has no 'persistentvolumeclaim' label"),
        ({"persistentvolumeclaim": "data"}, "series has no 'namespace' label"),
        ({}, "series has no 'namespace' label"),
        (
            {"namespace": "shop", "persistentvolumeclaim": "../../etc"},
            "persistentvolumeclaim='../../etc' is not a valid Kubernetes name",
        ),
        (
            {"namespace": "Shop; rm -rf /", "persistentvolumeclaim": "data"},
            "is not a valid Kubernetes name",
        ),
    ],
)
async def test_labels_plugin_fails_without_usable_labels_and_decides_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labels: dict[str, str], reason: str
) -> None:
    plan_file = tmp_path / "plan.jsonl"
    monkeypatch.setenv("LABELS_PLUGIN_PLAN_FILE", str(plan_file))

    with pytest.raises(PluginFailure, match=re.escape(reason)):
        await example("labels_plugin").call("execute", make_event(labels=labels), TIMEOUT)
    assert not plan_file.exists()


# --- sync_plugin ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sync_plugin_is_plain_def_and_runs_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_PLUGIN_FILE", str(tmp_path / "breaches.log"))
    plugin = example("sync_plugin")
    assert not inspect.iscoroutinefunction(plugin.obj.execute)  # type: ignore[attr-defined]
    assert not inspect.iscoroutinefunction(plugin.obj.resolve)  # type: ignore[attr-defined]
    module_globals = plugin.obj.execute.__func__.__globals__  # type: ignore[attr-defined]
    append = module_globals["_append"]
    threads: list[threading.Thread] = []

    def recording_append(*args: Any) -> None:
        threads.append(threading.current_thread())
        append(*args)

    monkeypatch.setitem(module_globals, "_append", recording_append)

    await plugin.call("execute", make_event(), TIMEOUT)

    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()


@pytest.mark.anyio
async def test_sync_plugin_appends_one_line_per_call_with_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "new" / "dir" / "breaches.log"
    monkeypatch.setenv("SYNC_PLUGIN_FILE", str(log_file))
    plugin = example("sync_plugin")
    labels = {"queue": 'or"ders\nx'}

    await plugin.call("execute", make_event(metric_name="queue_depth", labels=labels), TIMEOUT)
    await plugin.call(
        "execute",
        make_event(metric_name="queue_depth", labels=labels, kind="repeat", level="hard"),
        TIMEOUT,
    )
    await plugin.call(
        "resolve",
        make_event(metric_name="queue_depth", labels=labels, kind="resolve", value=3.0),
        TIMEOUT,
    )

    lines = log_file.read_text().splitlines()
    assert len(lines) == 3
    series = 'queue_depth{queue="or\\"ders\\nx"}'
    expected = [
        f"fire base rule=volumes {series} = 1.5e+09 (<5e9) for 120s",
        f"repeat hard rule=volumes {series} = 1.5e+09 (<5e9) for 120s",
        f"resolve base rule=volumes {series} = 3 (<5e9) for 120s",
    ]
    for line, rest in zip(lines, expected, strict=True):
        stamp, _, text = line.partition(" ")
        assert datetime.fromisoformat(stamp).tzinfo is not None
        assert text == rest


def test_sync_plugin_refuses_a_directory_as_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_PLUGIN_FILE", str(tmp_path))

    problem = load_plugin_file(EXAMPLES / "sync_plugin.py")

    assert isinstance(problem, PluginProblem)
    assert "is a directory" in problem.reason


# --- resolve_plugin -------------------------------------------------------------------------


def _incidents(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("incident-*.json"))}


@pytest.mark.anyio
async def test_resolve_plugin_opens_one_incident_per_series_and_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "incidents"
    monkeypatch.setenv("RESOLVE_PLUGIN_DIR", str(directory))
    plugin = example("resolve_plugin")
    db0 = {"namespace": "shop", "persistentvolumeclaim": "data-db-0"}
    db1 = {"namespace": "shop", "persistentvolumeclaim": "data-db-1"}

    await plugin.call("execute", make_event(labels=db0, value=4e9), TIMEOUT)
    [(name, incident)] = _incidents(directory).items()
    assert incident["status"] == "open"
    assert incident["labels"] == db0
    assert (incident["rule"], incident["level"]) == ("volumes", "base")
    assert incident["metric_name"] == "kubelet_volume_stats_available_bytes"
    assert incident["threshold"] == "<5e9"
    assert incident["breach_started"] == "2024-05-01T12:00:00+00:00"
    assert (incident["first_value"], incident["last_value"], incident["fire_count"]) == (
        4e9,
        4e9,
        1,
    )
    opened_at = incident["opened_at"]

    # a repeat updates the open incident, never opens a second one
    await plugin.call("execute", make_event(labels=db0, value=3e9, kind="repeat", fire_count=1), 5)
    # ... and so does a retry of that call (same fire_count): idempotent
    await plugin.call("execute", make_event(labels=db0, value=3e9, kind="repeat", fire_count=1), 5)
    incident = _incidents(directory)[name]
    assert incident["status"] == "open"
    assert incident["opened_at"] == opened_at
    assert (incident["first_value"], incident["last_value"], incident["fire_count"]) == (
        4e9,
        3e9,
        2,
    )

    # another series, and the hard level of the same series, are incidents of their own
    await plugin.call("execute", make_event(labels=db1), TIMEOUT)
    await plugin.call("execute", make_event(labels=db0, level="hard", threshold="<1e9"), 5)
    incidents = _incidents(directory)
    assert len(incidents) == 3
    assert all(i["status"] == "open" for i in incidents.values())

    await plugin.call("resolve", make_event(labels=db0, value=8e9, kind="resolve"), TIMEOUT)
    incidents = _incidents(directory)
    assert incidents[name]["status"] == "resolved"
    assert incidents[name]["last_value"] == 8e9
    assert "resolved_at" in incidents[name]
    assert sorted(i["status"] for i in incidents.values()) == ["open", "open", "resolved"]
    assert list(directory.glob(".incident-*")) == []  # no temporary file left behind

    # the next breach of that series opens a new incident
    await plugin.call("execute", make_event(labels=db0, value=4e9), TIMEOUT)
    incident = _incidents(directory)[name]
    assert incident["status"] == "open"
    assert "resolved_at" not in incident
    assert incident["opened_at"] != opened_at
    assert incident["fire_count"] == 1


@pytest.mark.anyio
async def test_resolve_plugin_resolving_an_unknown_incident_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_records: list[dict[str, Any]]
) -> None:
    directory = tmp_path / "incidents"
    monkeypatch.setenv("RESOLVE_PLUGIN_DIR", str(directory))

    await example("resolve_plugin").call("resolve", make_event(kind="resolve"), TIMEOUT)

    assert _incidents(directory) == {}
    assert any("no open incident" in r["message"] for r in log_records)


def test_resolve_plugin_refuses_a_file_as_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    monkeypatch.setenv("RESOLVE_PLUGIN_DIR", str(a_file))

    problem = load_plugin_file(EXAMPLES / "resolve_plugin.py")

    assert isinstance(problem, PluginProblem)
    assert "is not a directory" in problem.reason


# --- the plugin guide -----------------------------------------------------------------------


def guide_files() -> dict[str, str]:
    """The guide's code blocks marked ``<!-- guide-file: PATH -->``, by PATH."""
    text = GUIDE.read_text()
    blocks = re.findall(r"<!-- guide-file: (\S+) -->\n```[a-z]*\n(.*?)^```", text, re.S | re.M)
    return dict(blocks)


def write_guide_files(root: Path) -> dict[str, Path]:
    """The guide's files written under ``root`` with modes a plugin directory must have."""
    written = {}
    root.mkdir(mode=0o755, exist_ok=True)
    root.chmod(0o755)
    for relative, source in guide_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        path.write_text(source)
        path.chmod(0o644)
        written[relative] = path
    return written


def test_the_guide_marks_its_complete_files() -> None:
    assert sorted(guide_files()) == [
        "deploy/metric-reader.yaml",
        "plugins/my_plugin.py",
        "plugins/notify.py",
        "tests/test_my_plugin.py",
    ]


def test_the_guides_plugins_load_without_problems(tmp_path: Path) -> None:
    write_guide_files(tmp_path)

    catalog = discover_plugins(tmp_path / "plugins")

    assert [str(p) for p in catalog.problems if p.path.parent == tmp_path / "plugins"] == []
    assert catalog.plugins["my_plugin"].path == tmp_path / "plugins" / "my_plugin.py"
    assert catalog.plugins["notify"].path == tmp_path / "plugins" / "notify.py"


@pytest.mark.anyio
async def test_the_guides_plugin_works_when_the_service_calls_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_guide_files(tmp_path / "project")
    monkeypatch.setenv("MY_PLUGIN_MARKER_DIR", str(tmp_path))
    plugin = load_plugin_file(files["plugins/my_plugin.py"])
    assert isinstance(plugin, LoadedPlugin)
    event = make_event(metric_name="queue_depth", value=95.0, threshold=">80")

    await plugin.call("execute", event, TIMEOUT)
    marker = tmp_path / "my_plugin.breached"
    assert marker.read_text() == "queue_depth = 95.0 (>80) for 0:02:00\n"
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)
    assert not marker.exists()


@pytest.mark.anyio
async def test_the_guides_event_example_gets_the_event_both_ways(tmp_path: Path) -> None:
    files = write_guide_files(tmp_path)
    plugin = load_plugin_file(files["plugins/notify.py"])
    assert isinstance(plugin, LoadedPlugin)

    await plugin.call("execute", make_event(), TIMEOUT)
    await plugin.call("resolve", make_event(kind="resolve"), TIMEOUT)  # kwargs["event"]


@pytest.mark.anyio
async def test_the_guides_configmap_holds_a_working_plugin(tmp_path: Path) -> None:
    manifest = guide_files()["deploy/metric-reader.yaml"]
    match = re.search(r"^  my_plugin\.py: \|\n((?:    .*\n|\n)+)", manifest, re.M)
    assert match is not None
    source = "\n".join(line[4:] for line in match.group(1).splitlines()) + "\n"
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(mode=0o755)
    (plugin_dir / "my_plugin.py").write_text(source)
    (plugin_dir / "my_plugin.py").chmod(0o444)

    plugin = discover_plugins(plugin_dir).plugins["my_plugin"]
    await plugin.call("execute", make_event(), TIMEOUT)

    for needed in (
        "kind: ConfigMap",
        "defaultMode: 0444",
        "mountPath: /etc/metric-reader/plugins",
        "readOnly: true",
        "- name: PLUGIN_DIR\n              value: /etc/metric-reader/plugins",
        "- name: ACTION_PLUGIN\n              value: my_plugin",
    ):
        assert needed in manifest


def test_the_guides_pytest_example_passes_as_written(tmp_path: Path) -> None:
    write_guide_files(tmp_path)

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_my_plugin.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


# The guide's pytest example, as a test of this suite too (PLUGIN_FILE is the guide's
# plugin, written out by a fixture); ``load_plugin`` must stay the guide's, word for word.


def load_plugin(path: Path):  # type: ignore[no-untyped-def]
    """Import a plugin file as metric-reader does (under a private name) and return Plugin."""
    spec = importlib.util.spec_from_file_location(f"plugin_under_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    plugin = module.Plugin
    return plugin() if isinstance(plugin, type) else plugin


@pytest.fixture
def guide_plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_guide_files(tmp_path_factory.mktemp("guide"))["plugins/my_plugin.py"]


def test_load_plugin_here_is_the_guides(guide_plugin_file: Path) -> None:
    ours = re.sub(r"  # type: ignore\[[^]]*\]", "", inspect.getsource(load_plugin))
    assert ours in guide_files()["tests/test_my_plugin.py"]


def test_execute_writes_the_marker_and_resolve_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guide_plugin_file: Path
) -> None:
    monkeypatch.setenv("MY_PLUGIN_MARKER_DIR", str(tmp_path))
    plugin = load_plugin(guide_plugin_file)
    assert plugin.name == "my_plugin"
    plugin.validate_config()

    asyncio.run(plugin.execute("queue_depth", 95.0, ">80", timedelta(seconds=30)))
    marker = tmp_path / "my_plugin.breached"
    assert marker.read_text() == "queue_depth = 95.0 (>80) for 0:00:30\n"

    asyncio.run(plugin.resolve("queue_depth", 70.0, ">80", timedelta(seconds=45)))
    assert not marker.exists()


def test_a_missing_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guide_plugin_file: Path
) -> None:
    monkeypatch.setenv("MY_PLUGIN_MARKER_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="not a directory"):
        load_plugin(guide_plugin_file).validate_config()


# --- the README's quick start ---------------------------------------------------------------


@pytest.mark.anyio
async def test_the_readmes_quick_start_plugin_writes_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(relative, source)] = readme_files().items()
    path = tmp_path / relative
    path.parent.mkdir(mode=0o755)
    path.write_text(source)
    path.chmod(0o644)
    monkeypatch.chdir(tmp_path)  # the plugin writes breaches.log where the service runs

    catalog = discover_plugins(path.parent)
    plugin = catalog.plugins["breach_log"]
    assert [str(p) for p in catalog.problems if p.path.parent == path.parent] == []
    for value in (91.85, 95.0):
        await plugin.call("execute", make_event(metric_name="queue_depth", value=value), TIMEOUT)

    assert (tmp_path / "breaches.log").read_text().splitlines() == [
        "queue_depth = 91.85 (<5e9) for 120s",
        "queue_depth = 95.0 (<5e9) for 120s",
    ]
