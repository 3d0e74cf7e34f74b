"""Plugins of installed packages: which one of a name is used, and broken entry points.

Each distribution here is real as ``importlib.metadata`` sees it: a ``*.dist-info``
directory (``METADATA``, ``entry_points.txt``) beside its module, in a directory put on
``PYTHONPATH`` of a ``python -m metric_reader`` subprocess, so nothing leaks into this
process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from metric_reader._actions import LoadedPlugin, PluginCatalog, PluginProblem, bundled_plugin_dir
from metric_reader._actions._result import EntryPointOrigin

# Each plugin appends "<who> <method>" to the file $MARK: which plugin ran is what counts.
ALPHA = """
import os


def _mark(text):
    with open(os.environ["MARK"], "a") as out:
        out.write(text + "\\n")


class LogAction:
    def execute(self, metric_name, value, threshold, duration):
        _mark("alpha log_action")


class Tickets:
    name = "tickets"

    def execute(self, metric_name, value, threshold, duration):
        _mark("alpha tickets")


class Shared:
    def execute(self, metric_name, value, threshold, duration):
        _mark("alpha shared")


instance = Shared()
"""

BETA = """
raise RuntimeError("mr-beta's module must not be imported: mr-alpha gives its name")
"""

BROKEN = """
import requests_not_installed_anywhere
"""

ODD = """
class Renamed:
    name = "another_name"

    def execute(self, metric_name, value, threshold, duration):
        pass


class NoExecute:
    pass


class NeedsArguments:
    def __init__(self, token):
        self.token = token

    def execute(self, metric_name, value, threshold, duration):
        pass
"""

EXITING = """
import sys

sys.exit("leaving at import")
"""

PLUGIN_FILE = """
import os


class {cls}:
    name = "{name}"

    def execute(self, metric_name, value, threshold, duration):
        with open(os.environ["MARK"], "a") as out:
            out.write("PLUGIN_DIR {name}\\n")


Plugin = {cls}()
"""


def distribution(
    site: Path, name: str, version: str, entry_points: Mapping[str, str], module: str, source: str
) -> None:
    """A distribution ``name`` ``version`` installed in ``site``: its module and metadata."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source).lstrip())
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[metric_reader.plugins]\n{lines}")


def plugin_dir(root: Path, names: Mapping[str, str]) -> Path:
    """A trusted PLUGIN_DIR with one plugin file per ``{name: class}``."""
    directory = root / "plugins"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    for name, cls in names.items():
        path = directory / f"{name}.py"
        path.write_text(textwrap.dedent(PLUGIN_FILE.format(name=name, cls=cls)).lstrip())
        path.chmod(0o644)
    return directory


def run_cli(
    tmp_path: Path, sites: list[Path], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": os.pathsep.join(str(site) for site in sites),
        "LISTEN_ADDRESS": "off",
        "MARK": str(tmp_path / "mark.txt"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", *args],
        cwd=tmp_path,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def describe(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def table(done: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str, str]]:
    """``plugins`` output as {name: (from, file, status)}."""
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["NAME", "FROM", "FILE", "STATUS"], describe(done)
    starts = [header.index(column) for column in ("FROM", "FILE", "STATUS")]
    rows = {}
    for line in lines:
        name = line[: starts[0]].strip()
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        assert name not in rows, describe(done)
        rows[name] = (cells[0], cells[1], cells[2])
    return rows


def marks(tmp_path: Path) -> list[str]:
    return (tmp_path / "mark.txt").read_text().splitlines()


@pytest.fixture
def sites(tmp_path: Path) -> list[Path]:
    """mr-beta 2.0 (first on the path) and mr-alpha 1.0, both giving ``shared``."""
    first, second = tmp_path / "site-1", tmp_path / "site-2"
    distribution(first, "mr-beta", "2.0", {"shared": "mr_beta:Shared"}, "mr_beta", BETA)
    distribution(
        second,
        "mr-alpha",
        "1.0",
        {
            "log_action": "mr_alpha:LogAction",
            "tickets": "mr_alpha:Tickets",
            "shared": "mr_alpha:instance",
        },
        "mr_alpha",
        ALPHA,
    )
    return [first, second]


# --- precedence: PLUGIN_DIR file > entry point > bundled --------------------------------------


def test_an_entry_point_replaces_the_bundled_plugin_of_its_name(
    tmp_path: Path, sites: list[Path]
) -> None:
    listed = run_cli(tmp_path, sites, "plugins")
    fired = run_cli(tmp_path, sites, "fire", "log_action")

    assert listed.returncode == 0, describe(listed)
    rows = table(listed)
    assert rows["log_action"] == (
        "entry point mr-alpha 1.0, replaces bundled",
        str(sites[1] / "mr_alpha.py"),
        "ok",
    )
    assert str(bundled_plugin_dir() / "log_action.py") not in listed.stdout
    assert rows["file_action"][0] == "bundled"  # the others stay
    assert fired.returncode == 0, describe(fired)
    assert marks(tmp_path) == ["alpha log_action"]


def test_two_distributions_giving_one_name_the_first_by_distribution_name_is_used(
    tmp_path: Path, sites: list[Path]
) -> None:
    """mr-beta comes first on the path; mr-alpha sorts first, and wins. mr-beta's module,
    which raises at import, is never imported."""
    listed = run_cli(tmp_path, sites, "plugins")
    fired = run_cli(tmp_path, sites, "fire", "shared")

    assert listed.returncode == 0, describe(listed)
    assert table(listed)["shared"] == (
        "entry point mr-alpha 1.0, replaces entry point mr-beta 2.0",
        str(sites[1] / "mr_alpha.py"),
        "ok",
    )
    assert "mr_beta" not in listed.stdout + listed.stderr
    assert fired.returncode == 0, describe(fired)
    assert marks(tmp_path) == ["alpha shared"]


def test_a_plugin_dir_file_replaces_an_entry_point_and_the_bundled_plugin(
    tmp_path: Path, sites: list[Path]
) -> None:
    directory = plugin_dir(tmp_path, {"tickets": "Tickets", "log_action": "LogAction"})
    env = {"PLUGIN_DIR": str(directory)}

    listed = run_cli(tmp_path, sites, "plugins", **env)
    fired = [run_cli(tmp_path, sites, "fire", name, **env) for name in ("tickets", "log_action")]

    assert listed.returncode == 0, describe(listed)
    rows = table(listed)
    assert rows["tickets"] == (
        "PLUGIN_DIR, replaces entry point mr-alpha 1.0",
        str(directory / "tickets.py"),
        "ok",
    )
    assert rows["log_action"] == (
        "PLUGIN_DIR, replaces entry point mr-alpha 1.0 and bundled",
        str(directory / "log_action.py"),
        "ok",
    )
    assert [done.returncode for done in fired] == [0, 0], [describe(done) for done in fired]
    assert marks(tmp_path) == ["PLUGIN_DIR tickets", "PLUGIN_DIR log_action"]


def test_check_names_the_entry_point_and_logs_each_replacement(
    tmp_path: Path, sites: list[Path]
) -> None:
    rule = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">1"}

    done = run_cli(tmp_path, sites, "check", "--no-read", ACTION_PLUGIN="shared", **rule)

    assert done.returncode == 0, describe(done)
    assert (
        'plugin shared: entry point "shared = mr_alpha:instance" of mr-alpha 1.0, '
        f"{sites[1] / 'mr_alpha.py'}"
    ) in done.stdout.splitlines(), describe(done)
    for said in (
        "plugin shared from entry point mr-alpha 1.0 replaces entry point mr-beta 2.0",
        "plugin log_action from entry point mr-alpha 1.0 replaces the bundled one",
    ):
        assert said in done.stderr, describe(done)


# --- broken entry points --------------------------------------------------------------------


@pytest.fixture
def broken_sites(tmp_path: Path) -> list[Path]:
    site = tmp_path / "site"
    distribution(
        site,
        "mr-broken",
        "0.3",
        {"pager": "mr_broken:Plugin", "file_action": "mr_broken:Plugin"},
        "mr_broken",
        BROKEN,
    )
    distribution(
        site,
        "mr-odd",
        "1.1",
        {
            "renamed": "mr_odd:Renamed",
            "no_execute": "mr_odd:NoExecute",
            "needs_arguments": "mr_odd:NeedsArguments",
            "missing": "mr_odd:Missing",
            "whole_module": "mr_odd",
        },
        "mr_odd",
        ODD,
    )
    distribution(site, "mr-exiting", "9", {"exiting": "mr_exiting:Plugin"}, "mr_exiting", EXITING)
    return [site]


def test_plugins_shows_each_broken_entry_point_invalid_with_its_distribution(
    tmp_path: Path, broken_sites: list[Path]
) -> None:
    done = run_cli(tmp_path, broken_sites, "plugins")

    assert done.returncode == 0, describe(done)
    rows = table(done)
    missing_module = "invalid: import failed: ModuleNotFoundError: No module named "
    missing_module += "'requests_not_installed_anywhere'"
    assert rows["pager"] == ("entry point mr-broken 0.3", "mr_broken:Plugin", missing_module)
    assert rows["exiting"] == (
        "entry point mr-exiting 9",
        "mr_exiting:Plugin",
        "invalid: raised SystemExit: leaving at import while being imported",
    )
    odd = {name: status for name, (origin, _, status) in rows.items() if "mr-odd" in origin}
    assert odd == {
        "renamed": "invalid: the plugin's own name 'another_name' differs from the entry "
        "point's name 'renamed': a package's plugin is named by its entry point; make them "
        "equal or drop `name`",
        "no_execute": "invalid: `mr_odd:NoExecute` has no `execute` method",
        "needs_arguments": "invalid: `mr_odd:NeedsArguments` is a class and creating it with "
        "no arguments failed: TypeError: NeedsArguments.__init__() missing 1 required "
        "positional argument: 'token'",
        "missing": "invalid: mr_odd has no attribute 'Missing'",
        "whole_module": "invalid: it names the module mr_odd, not an object in it: write "
        '"whole_module = mr_odd:Plugin" (the class or object)',
    }
    assert "Traceback" not in done.stdout + done.stderr


def test_a_broken_entry_point_hides_the_bundled_plugin_it_would_replace(
    tmp_path: Path, broken_sites: list[Path]
) -> None:
    listed = run_cli(tmp_path, broken_sites, "plugins")
    fired = run_cli(tmp_path, broken_sites, "fire", "file_action")

    assert table(listed)["file_action"][0] == "entry point mr-broken 0.3", describe(listed)
    assert fired.returncode == 2, describe(fired)
    [line] = fired.stderr.splitlines()
    assert (
        "plugin 'file_action' cannot be loaded: entry point \"file_action = mr_broken:Plugin\" "
        "of mr-broken 0.3: import failed: ModuleNotFoundError"
    ) in line, line


def test_a_rule_naming_a_broken_entry_point_refuses_to_start_naming_the_distribution(
    tmp_path: Path, broken_sites: list[Path]
) -> None:
    rule = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">1"}

    for command in ("check", "run"):
        done = run_cli(tmp_path, broken_sites, command, ACTION_PLUGIN="pager", **rule)

        assert done.returncode == 2, describe(done)
        [line] = done.stderr.splitlines()
        assert line == (
            "metric-reader: configuration error: ACTION_PLUGIN='pager' cannot be loaded: "
            'entry point "pager = mr_broken:Plugin" of mr-broken 0.3: import failed: '
            "ModuleNotFoundError: No module named 'requests_not_installed_anywhere'"
        ), line


def test_a_broken_entry_point_no_rule_needs_is_a_warning_naming_it(
    tmp_path: Path, broken_sites: list[Path]
) -> None:
    rule = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">1"}

    done = run_cli(tmp_path, broken_sites, "check", "--no-read", ACTION_PLUGIN="log_action", **rule)

    assert done.returncode == 0, describe(done)
    warnings = [line for line in done.stderr.splitlines() if "plugin not loaded" in line]
    assert any(
        'entry point "pager = mr_broken:Plugin" of mr-broken 0.3: import failed' in line
        for line in warnings
    ), describe(done)
    assert re.search(r"WARN", "\n".join(warnings)), describe(done)


# --- the catalog's answers about entry point plugins (no entry point installed here) ----------


def test_problem_for_and_explain_missing_name_the_entry_point() -> None:
    origin = EntryPointOrigin("slack", "mr_slack:Plugin", "mr-slack", "1.2.0")
    problem = PluginProblem(
        None,
        "import failed: ModuleNotFoundError: No module named 'requests'",
        "slack",
        entry_point=origin,
    )
    catalog = PluginCatalog({}, [problem])

    assert catalog.problem_for("slack") is problem
    assert catalog.problem_for("other") is None
    assert catalog.explain_missing("slack") == (
        'cannot be loaded: entry point "slack = mr_slack:Plugin" of mr-slack 1.2.0: '
        "import failed: ModuleNotFoundError: No module named 'requests'"
    )


def test_replaced_lists_what_the_plugin_in_use_shadows() -> None:
    def plugin(name: str, origin: EntryPointOrigin | None, bundled: bool = False) -> LoadedPlugin:
        from metric_reader._actions._callers import PluginMethod

        def execute(*args: object) -> None:
            pass

        return LoadedPlugin(
            name=name,
            path=Path(f"/x/{name}.py"),
            bundled=bundled,
            obj=object(),  # type: ignore[arg-type]
            execute=PluginMethod(execute, False, False),
            resolve=None,
            entry_point=origin,
        )

    a = EntryPointOrigin("n", "a:P", "mr-a", "1")
    catalog = PluginCatalog(
        {"n": plugin("n", a), "m": plugin("m", None), "b": plugin("b", None, bundled=True)},
        [],
        providers={"n": ["entry point mr-a 1", "entry point mr-b 2", "bundled"], "m": ["bundled"]},
    )

    assert catalog.replaced("n") == ["entry point mr-b 2", "bundled"]
    assert catalog.replaced("m") == ["bundled"]  # a PLUGIN_DIR file replaces every other
    assert catalog.replaced("b") == []


# --- a reload reads the entry points again -----------------------------------------------------

NEWER = """
import os


class LogAction:
    def execute(self, metric_name, value, threshold, duration):
        with open(os.environ["MARK"], "a") as out:
            out.write("aaa log_action\\n")
"""


def wait_for_mark(tmp_path: Path, service: subprocess.Popen[str], line: str) -> None:
    deadline = time.monotonic() + 30
    mark = tmp_path / "mark.txt"
    while not (mark.exists() and line in mark.read_text().splitlines()):
        assert service.poll() is None, "the service ended early"
        assert time.monotonic() < deadline, f"no {line!r} in {mark} within 30 s"
        time.sleep(0.05)


def test_a_reload_reads_the_entry_points_again(
    tmp_path: Path, sites: list[Path], page_server: tuple[str, list[float]]
) -> None:
    """The configuration does not change; a package installed since gives ``log_action``
    too, and sorts before mr-alpha: after SIGHUP its plugin takes the repeated calls."""
    url, _ = page_server
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": os.pathsep.join(str(site) for site in sites),
        "LISTEN_ADDRESS": "off",
        "MARK": str(tmp_path / "mark.txt"),
        "SCRAPE_URL": url,
        "METRIC_NAME": "slow_queue",
        "THRESHOLD": ">50",
        "POLLING_INTERVAL": "100ms",
        "BACKOFF_DELAY": "100ms",
        "ACTION_PLUGIN": "log_action",
    }
    service = subprocess.Popen(
        [sys.executable, "-m", "metric_reader"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_mark(tmp_path, service, "alpha log_action")
        distribution(sites[1], "mr-aaa", "0.1", {"log_action": "mr_aaa:LogAction"}, "mr_aaa", NEWER)
        service.send_signal(signal.SIGHUP)
        wait_for_mark(tmp_path, service, "aaa log_action")
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
        log, _ = service.communicate(timeout=10)
    assert code == 0, log
    assert "the installed packages' plugins changed and are used from now on" in log, log


def test_an_entry_point_whose_import_hangs_is_skipped_at_plugin_timeout(tmp_path: Path) -> None:
    site = tmp_path / "site"
    slow = "import time\n\ntime.sleep(60)\n"
    distribution(site, "mr-slow", "1.0", {"slow": "mr_slow:Plugin"}, "mr_slow", slow)

    started = time.monotonic()
    done = run_cli(tmp_path, [site], "plugins", PLUGIN_TIMEOUT="1s")

    assert done.returncode == 0, describe(done)
    assert time.monotonic() - started < 30, "the hung import held the command up"
    origin, where, status = table(done)["slow"]
    assert (origin, where) == ("entry point mr-slow 1.0", "mr_slow:Plugin")
    assert status.startswith("invalid: import did not finish within 1s; skipped"), status
    assert table(done)["log_action"][2] == "ok"  # the others loaded as usual
