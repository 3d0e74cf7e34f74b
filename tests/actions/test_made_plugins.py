"""Plugins made of another (issue 23, point 11): ``[plugins.NAME]`` with ``plugin = "BASE"``
is a plugin named ``NAME``, ``BASE``'s code with ``NAME``'s settings, so that each route of
a rule file can name a command of its own.

In-process catalogs over the real bundled plugins and real ``PLUGIN_DIR`` files; the
commands are real processes.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from _events import make_event

from metric_reader._actions import PluginCatalog, bundled_plugin_dir, discover_plugins

WRITE_ARGV = "import json, sys; open(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')"

COUNTER = """
CALLS = []


class Counter:
    name = "counter"

    def configure(self, settings):
        self.label = settings["label"]

    def execute(self, metric_name, value, threshold, duration):
        CALLS.append(self.label)
        with open({record!r}, "a") as out:
            out.write(f"{{self.label}} {{len(CALLS)}}\\n")


Plugin = Counter()
"""


def command(out: Path, *words: str) -> list[str]:
    return [sys.executable, "-c", WRITE_ARGV, str(out), *words]


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def no_exec_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXEC_ACTION_COMMAND", raising=False)
    monkeypatch.delenv("EXEC_ACTION_RESOLVE_COMMAND", raising=False)


def call(catalog: PluginCatalog, name: str, **event: Any) -> None:
    plugin = catalog.plugins[name]
    anyio.run(plugin.call, "execute", make_event(plugin=name, **event), 10.0)


def test_each_made_plugin_runs_its_own_command_and_the_base_keeps_its_own(
    tmp_path: Path,
) -> None:
    out = tmp_path / "argv.jsonl"
    catalog = discover_plugins(
        None,
        settings={
            "exec_action": {"command": command(out, "base")},
            "reboot": {"command": command(out, "reboot"), "args": ["{{ $labels.instance }}"]},
            "page": {"command": command(out, "page")},
        },
        bases={"reboot": "exec_action", "page": "exec_action"},
    )

    for name in ("reboot", "exec_action", "page"):
        call(catalog, name, labels={"instance": "db-1"})

    assert lines(out) == [["reboot", "db-1"], ["base"], ["page"]]
    reboot = catalog.plugins["reboot"]
    assert (reboot.made_of, reboot.origin, reboot.path) == (
        "exec_action",
        "exec_action (bundled)",
        bundled_plugin_dir() / "exec_action.py",
    )
    assert reboot.obj is not catalog.plugins["exec_action"].obj
    assert [p for p in catalog.problems if p.key in ("reboot", "page")] == []


def test_a_plugin_is_made_of_a_base_that_lacks_settings_of_its_own(tmp_path: Path) -> None:
    """exec_action without EXEC_ACTION_COMMAND is not configured: the usual base."""
    out = tmp_path / "argv.jsonl"
    catalog = discover_plugins(
        None, settings={"reboot": {"command": command(out, "r")}}, bases={"reboot": "exec_action"}
    )

    assert "exec_action" not in catalog.plugins
    assert catalog.problem_for("exec_action") is not None
    call(catalog, "reboot")
    assert lines(out) == [["r"]]


def test_what_cannot_be_made_is_a_problem_and_takes_its_name_out_of_use() -> None:
    catalog = discover_plugins(
        None,
        settings={
            "reboot": {"command": ["true"], "comand": "x"},
            "log_action": {"command": ["true"]},
        },
        bases={"reboot": "exec_action", "pager": "exec_actoin", "log_action": "exec_action"},
    )

    for name in ("reboot", "pager", "log_action"):
        assert name not in catalog.plugins
    reboot, pager, log_action = (catalog.problem_for(n) for n in ("reboot", "pager", "log_action"))
    assert reboot is not None and reboot.unconfigured
    assert str(reboot) == (
        f"{bundled_plugin_dir() / 'exec_action.py'}: configure() refused its [plugins.reboot] "
        "settings: ValueError: unknown key 'comand' (did you mean 'command'?); allowed: "
        "command, resolve_command, args"
    )
    assert str(pager) == (
        "[plugins.pager]: plugin = 'exec_actoin': no plugin of that name is loaded "
        "(available: alertmanager_action, file_action, http_action, log_action)"
    )
    assert str(log_action) == (
        "[plugins.log_action]: plugin = 'exec_action': log_action is already the name of a "
        f"plugin ({bundled_plugin_dir() / 'log_action.py'}); give the one made of it another "
        "name"
    )
    assert "cannot be loaded: [plugins.pager]: plugin = 'exec_actoin'" in (
        catalog.explain_missing("pager")
    )


@pytest.mark.anyio
async def test_a_plugin_made_of_a_plugin_dir_file_has_its_own_module_and_outlives_a_watch(
    tmp_path: Path,
) -> None:
    """Its own module (module-level state not shared with the base), made of the file as it
    was loaded; a look at PLUGIN_DIR that finds a change leaves it in service, as it is."""
    directory = tmp_path / "plugins"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    record = tmp_path / "calls.txt"
    counter = directory / "counter.py"
    counter.write_text(textwrap.dedent(COUNTER.format(record=str(record))))
    counter.chmod(0o644)
    catalog = discover_plugins(
        directory,
        settings={"counter": {"label": "base"}, "twin": {"label": "twin"}},
        bases={"twin": "counter"},
    )
    twin = catalog.plugins["twin"]
    assert twin.origin == "counter (PLUGIN_DIR)" and not twin.from_plugin_dir

    for name in ("counter", "twin", "twin"):
        await catalog.plugins[name].call("execute", make_event(plugin=name), 10.0)
    assert record.read_text().splitlines() == ["base 1", "twin 1", "twin 2"]

    added = directory / "other.py"
    added.write_text(counter.read_text().replace('"counter"', '"other"'))
    added.chmod(0o644)
    assert await catalog.reload_changed()
    assert "other" in catalog.plugins
    assert catalog.plugins["twin"] is twin
