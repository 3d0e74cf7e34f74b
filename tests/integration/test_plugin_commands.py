"""The plugin author's commands, ``plugins``, ``fire`` and ``check``, as real processes.

Each test runs ``python -m metric_reader ...`` from the repository root with a minimal
environment and a ``PLUGIN_DIR`` of its own, and checks what a user sees: stdout, stderr,
the exit code, and what the plugin itself received.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from metric_reader._actions import bundled_plugin_dir

from .conftest import REPO_ROOT, ScrapeServer, base_env

BUNDLED = ("alertmanager_action", "exec_action", "file_action", "http_action", "log_action")

# Records every argument it gets, with its type, as one JSON line in $FIRE_RECORD.
GOOD_PLUGIN = """
import json
import os


class Good:
    name = "good"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        record = {
            "metric_name": [type(metric_name).__name__, metric_name],
            "value": [type(value).__name__, value],
            "threshold": [type(threshold).__name__, threshold],
            "duration": [type(duration).__name__, duration.total_seconds()],
            "event": event.as_dict() if event is not None else None,
        }
        with open(os.environ["FIRE_RECORD"], "a") as out:
            out.write(json.dumps(record) + "\\n")


Plugin = Good()
"""

OVERRIDE_PLUGIN = """
class LogAction:
    name = "log_action"

    def execute(self, metric_name, value, threshold, duration):
        print("overridden log_action")


Plugin = LogAction()
"""

BROKEN_PLUGIN = """
class Broken:
    name = "broken"
    def execute(self, metric_name, value, threshold, duration)
        pass
"""

RAISING_PLUGIN = """
class Boom:
    name = "boom"

    async def execute(self, metric_name, value, threshold, duration):
        raise RuntimeError("ticket system answered 503")


Plugin = Boom()
"""

HELPER_USER_PLUGIN = """
import _helper


class UsesHelper:
    name = "uses_helper"

    def execute(self, metric_name, value, threshold, duration):
        _helper.run()


Plugin = UsesHelper()
"""

UNCONFIGURED_PLUGIN = """
import os


class Tickets:
    name = "tickets"

    def validate_config(self):
        if not os.environ.get("TICKETS_TOKEN"):
            raise ValueError("TICKETS_TOKEN is not set: give the API token")

    def execute(self, metric_name, value, threshold, duration):
        pass


Plugin = Tickets()
"""


def make_plugin_dir(root: Path, files: Mapping[str, str]) -> Path:
    """A PLUGIN_DIR with ``files``, with the modes a trusted plugin directory has."""
    plugin_dir = root / "plugins"
    plugin_dir.mkdir(mode=0o755)
    plugin_dir.chmod(0o755)
    for name, source in files.items():
        path = plugin_dir / name
        path.write_text(textwrap.dedent(source).lstrip())
        path.chmod(0o644)
    return plugin_dir


PLUGIN_FILES = {
    "good.py": GOOD_PLUGIN,
    "broken.py": BROKEN_PLUGIN,
    "boom.py": RAISING_PLUGIN,
    "uses_helper.py": HELPER_USER_PLUGIN,
    "_helper.py": "def run():\n    pass\n",
    "tickets.py": UNCONFIGURED_PLUGIN,
}


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """Good, raising, broken and unconfigured plugins, and a helper module."""
    return make_plugin_dir(tmp_path, PLUGIN_FILES)


@pytest.fixture
def overriding_plugin_dir(tmp_path: Path) -> Path:
    """The same, plus a ``log_action.py`` that replaces the bundled plugin."""
    return make_plugin_dir(tmp_path, {**PLUGIN_FILES, "log_action.py": OVERRIDE_PLUGIN})


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "metric_reader", *args],
            cwd=REPO_ROOT,
            env=base_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"metric-reader {' '.join(args)} did not finish in 60s: {exc.output!r}")


def describe(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def listed(stdout: str) -> dict[str, tuple[str, str, str]]:
    """``metric-reader plugins`` output as {name: (from, file, status)}; every line must parse."""
    header, *lines = stdout.splitlines()
    assert header.split() == ["NAME", "FROM", "FILE", "STATUS"], header
    rows: dict[str, tuple[str, str, str]] = {}
    for line in lines:
        match = re.fullmatch(
            r"(\S+) +(bundled|PLUGIN_DIR(?:, replaces bundled)?) +(\S+) +"
            r"(ok|invalid: .+|not configured: .+)",
            line,
        )
        assert match is not None, f"unexpected line in `plugins` output: {line!r}"
        name, origin, path, status = match.groups()
        assert name not in rows, f"{name} listed twice:\n{stdout}"
        rows[name] = (origin, path, status)
    return rows


def stderr_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


# --- plugins --------------------------------------------------------------------------------


def test_plugins_lists_the_bundled_plugins_with_their_file() -> None:
    done = run_cli("plugins", env={"EXEC_ACTION_COMMAND": "true"})

    assert done.returncode == 0, describe(done)
    rows = listed(done.stdout)
    assert sorted(rows) == sorted(BUNDLED), describe(done)
    for name in BUNDLED:
        assert rows[name] == ("bundled", str(bundled_plugin_dir() / f"{name}.py"), "ok"), describe(
            done
        )


def test_plugins_says_a_bundled_plugin_without_its_settings_is_not_configured() -> None:
    done = run_cli("plugins")

    assert done.returncode == 0, describe(done)
    origin, _, status = listed(done.stdout)["exec_action"]
    assert origin == "bundled"
    assert status.startswith(
        "not configured: validate_config() refused: ValueError: EXEC_ACTION_COMMAND is not set"
    )


def test_plugins_refuses_a_plugin_dir_that_does_not_exist(tmp_path: Path) -> None:
    done = run_cli("plugins", env={"PLUGIN_DIR": str(tmp_path / "nope")})

    assert done.returncode == 2, describe(done)
    [line] = stderr_lines(done)
    assert f"PLUGIN_DIR='{tmp_path / 'nope'}'" in line


def test_plugins_lists_plugin_dir_plugins_overrides_and_broken_files(
    overriding_plugin_dir: Path,
) -> None:
    plugin_dir = overriding_plugin_dir
    done = run_cli("plugins", env={"PLUGIN_DIR": str(plugin_dir), "EXEC_ACTION_COMMAND": "true"})

    assert done.returncode == 0, describe(done)
    rows = listed(done.stdout)
    assert sorted(rows) == sorted([*BUNDLED, "good", "broken", "boom", "uses_helper", "tickets"]), (
        describe(done)
    )
    # a plugin of PLUGIN_DIR, with its file
    assert rows["good"] == ("PLUGIN_DIR", str(plugin_dir / "good.py"), "ok")
    # the PLUGIN_DIR log_action replaces the bundled one: one line, the PLUGIN_DIR file
    assert rows["log_action"] == (
        "PLUGIN_DIR, replaces bundled",
        str(plugin_dir / "log_action.py"),
        "ok",
    )
    assert str(bundled_plugin_dir() / "log_action.py") not in done.stdout
    # the other bundled ones are still there
    for name in ("exec_action", "file_action", "http_action"):
        assert rows[name] == ("bundled", str(bundled_plugin_dir() / f"{name}.py"), "ok")
    # a syntax error names its line
    _, path, status = rows["broken"]
    assert path == str(plugin_dir / "broken.py")
    assert re.fullmatch(r"invalid: syntax error at line 3: .+", status), status
    # a helper module beside a plugin is neither listed nor importable
    assert "_helper" not in rows
    assert str(plugin_dir / "_helper.py") not in done.stdout
    _, path, status = rows["uses_helper"]
    assert path == str(plugin_dir / "uses_helper.py")
    assert "ModuleNotFoundError: No module named '_helper'" in status
    # a refusing validate_config gives its message
    assert rows["tickets"] == (
        "PLUGIN_DIR",
        str(plugin_dir / "tickets.py"),
        "not configured: validate_config() refused: ValueError: TICKETS_TOKEN is not set: "
        "give the API token",
    )
    assert "Traceback" not in done.stdout + done.stderr


# --- fire -----------------------------------------------------------------------------------


def test_fire_runs_execute_once_with_the_arguments_given(plugin_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    env = {"PLUGIN_DIR": str(plugin_dir), "FIRE_RECORD": str(record)}

    done = run_cli(
        "fire",
        "good",
        "--value",
        "95",
        "--threshold",
        ">80",
        "--metric",
        "m",
        "--duration",
        "30s",
        env=env,
    )

    assert done.returncode == 0, describe(done)
    assert re.fullmatch(
        rf"good: execute OK in \d+\.\d{{3}}s \({re.escape(str(plugin_dir / 'good.py'))}\)\n",
        done.stdout,
    ), describe(done)
    [line] = record.read_text().splitlines()
    received = json.loads(line)
    assert received["metric_name"] == ["str", "m"]
    assert received["value"] == ["float", 95.0]
    assert received["threshold"] == ["str", ">80"]
    assert received["duration"] == ["timedelta", 30.0]
    event = received["event"]
    assert (event["metric_name"], event["value"], event["threshold"]) == ("m", 95.0, ">80")
    assert (event["kind"], event["level"], event["fire_count"]) == ("fire", "base", 0)
    assert event["duration_seconds"] == 30.0
    assert event["labels"] == {}
    assert event["plugin"] == "good"


def test_fire_reports_a_plugin_that_raises_and_exits_1(plugin_dir: Path) -> None:
    done = run_cli(
        "fire", "boom", "--value", "95", "--threshold", ">80", env={"PLUGIN_DIR": str(plugin_dir)}
    )

    assert done.returncode == 1, describe(done)
    assert re.fullmatch(
        r"boom: execute FAILED after \d+\.\d{3}s: plugin 'boom' execute failed: "
        r"RuntimeError: ticket system answered 503\n",
        done.stdout,
    ), describe(done)
    assert "Traceback" not in done.stderr


def test_fire_on_an_unknown_plugin_is_one_line_and_exit_2(plugin_dir: Path) -> None:
    done = run_cli("fire", "no_such_plugin", env={"PLUGIN_DIR": str(plugin_dir)})

    assert done.returncode == 2, describe(done)
    assert done.stdout == ""
    [line] = stderr_lines(done)
    assert "'no_such_plugin'" in line
    assert "good" in line  # the plugins that do exist are named
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["\u0661\u0662", "1_0", "\uff11", "twelve"])
def test_fire_takes_a_value_only_as_go_reads_numbers(plugin_dir: Path, value: str) -> None:
    """``float()`` takes Arabic-Indic and full-width digits and ``1_0``; Go does not."""
    done = run_cli("fire", "good", "--value", value, env={"PLUGIN_DIR": str(plugin_dir)})

    assert done.returncode == 2, describe(done)
    [line] = stderr_lines(done)
    assert f"--value={value!r} is invalid: expected a number" in line, line


def test_fire_on_a_broken_plugin_is_one_line_naming_file_and_reason_exit_2(
    plugin_dir: Path,
) -> None:
    done = run_cli("fire", "broken", env={"PLUGIN_DIR": str(plugin_dir)})

    assert done.returncode == 2, describe(done)
    [line] = stderr_lines(done)
    assert str(plugin_dir / "broken.py") in line
    assert "syntax error at line 3" in line


# --- check ----------------------------------------------------------------------------------


def test_check_with_a_valid_configuration_prints_a_summary_and_exits_0(
    plugin_dir: Path, scrape_server: ScrapeServer
) -> None:
    env = {
        "PLUGIN_DIR": str(plugin_dir),
        "ACTION_PLUGIN": "good",
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "THRESHOLD_DURATION": "30s",
        "SCRAPE_URL": scrape_server.url,
        "EXEC_ACTION_COMMAND": "true",
    }

    done = run_cli("check", env=env)

    assert done.returncode == 0, describe(done)
    out = done.stdout
    assert out.startswith("configuration OK: 1 rule(s)\n"), describe(done)
    # the rule, what it reads, its threshold and its plugin
    [row] = [line for line in out.splitlines() if line.startswith("queue_depth ")]
    assert scrape_server.url in row, describe(done)
    assert re.search(r"(^|\s)>80 for 30s -> good(\s|$)", row), describe(done)
    assert f"plugin good: {plugin_dir / 'good.py'}" in out.splitlines(), describe(done)
    assert scrape_server.requests == 1  # check reads the source once, and changes nothing
    # the broken files it does not need are warned about, not fatal
    assert "broken.py" in done.stderr


def test_check_with_action_plugin_naming_a_broken_plugin_is_one_line_exit_2(
    plugin_dir: Path, scrape_server: ScrapeServer
) -> None:
    env = {
        "PLUGIN_DIR": str(plugin_dir),
        "ACTION_PLUGIN": "broken",
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "SCRAPE_URL": scrape_server.url,
    }

    done = run_cli("check", env=env)

    assert done.returncode == 2, describe(done)
    assert done.stdout == ""
    [line] = stderr_lines(done)
    assert "ACTION_PLUGIN='broken'" in line
    assert str(plugin_dir / "broken.py") in line
    assert "syntax error at line 3" in line
    assert scrape_server.requests == 0


def test_check_with_action_plugin_whose_validate_config_refuses_is_one_line_exit_2(
    plugin_dir: Path, scrape_server: ScrapeServer
) -> None:
    env = {
        "PLUGIN_DIR": str(plugin_dir),
        "ACTION_PLUGIN": "tickets",
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "SCRAPE_URL": scrape_server.url,
    }

    done = run_cli("check", env=env)

    assert done.returncode == 2, describe(done)
    [line] = stderr_lines(done)
    assert str(plugin_dir / "tickets.py") in line
    assert "TICKETS_TOKEN is not set: give the API token" in line


def test_a_load_error_is_one_line_even_when_plugin_dir_overrides_a_bundled_plugin(
    overriding_plugin_dir: Path, scrape_server: ScrapeServer
) -> None:
    env = {
        "PLUGIN_DIR": str(overriding_plugin_dir),
        "ACTION_PLUGIN": "broken",
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "SCRAPE_URL": scrape_server.url,
    }
    for args in (("check",), ("fire", "broken"), ("fire", "no_such_plugin")):
        done = run_cli(*args, env=env)
        assert done.returncode == 2, describe(done)
        assert len(stderr_lines(done)) == 1, describe(done)


def test_fire_passes_labels_kind_and_level_in_the_event(plugin_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    env = {"PLUGIN_DIR": str(plugin_dir), "FIRE_RECORD": str(record)}

    done = run_cli(
        "fire",
        "good",
        "--label",
        "namespace=prod",
        "--label",
        "pvc=data-0",
        "--kind",
        "repeat",
        "--level",
        "hard",
        env=env,
    )

    assert done.returncode == 0, describe(done)
    event = json.loads(record.read_text())["event"]
    assert event["labels"] == {"namespace": "prod", "pvc": "data-0"}
    assert (event["kind"], event["level"]) == ("repeat", "hard")


def test_fire_refuses_a_label_without_a_value(plugin_dir: Path) -> None:
    done = run_cli("fire", "good", "--label", "namespace", env={"PLUGIN_DIR": str(plugin_dir)})

    assert done.returncode == 2, describe(done)
    [line] = stderr_lines(done)
    assert "--label='namespace' is invalid: expected NAME=VALUE" in line


# --- fire as a rule file's alert (issue 23, point 11) ---------------------------------------


def test_fire_sends_an_alert_of_a_rule_file_with_its_annotations_rendered(
    plugin_dir: Path, tmp_path: Path
) -> None:
    """--alert: the rule and metric name are the alert's, alertname is a label, --threshold
    is its expr; each --annotation is rendered as Prometheus renders the rule file's."""
    record = tmp_path / "record.jsonl"
    env = {"PLUGIN_DIR": str(plugin_dir), "FIRE_RECORD": str(record)}

    done = run_cli(
        "fire",
        "good",
        "--alert",
        "HighLoad",
        "--threshold",
        'node_load1{job="node"} > 4',
        "--label",
        "instance=db-1:9100",
        "--label",
        "severity=page",
        "--value",
        "5.5",
        "--annotation",
        "summary={{ $labels.instance }} load is {{ $value | humanize }}",
        "--annotation",
        "runbook_url=https://runbooks/high-load",
        env=env,
    )

    assert done.returncode == 0, describe(done)
    event = json.loads(record.read_text())["event"]
    assert (event["rule"], event["metric_name"], event["threshold"]) == (
        "HighLoad",
        "HighLoad",
        'node_load1{job="node"} > 4',
    )
    assert event["labels"] == {
        "alertname": "HighLoad",
        "instance": "db-1:9100",
        "severity": "page",
    }
    assert event["annotations"] == {
        "summary": "db-1:9100 load is 5.5",
        "runbook_url": "https://runbooks/high-load",
    }


def test_fire_runs_a_plugin_made_of_exec_action_as_a_route_would(tmp_path: Path) -> None:
    """A [plugins.NAME] table with plugin = "exec_action" is listed and fired like any
    plugin; the command gets its args rendered and the alert in METRIC_READER_* and AMX_*."""
    out = tmp_path / "seen.json"
    script = (
        "import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, "
        "open(os.environ['SEEN'], 'w'))"
    )
    config = tmp_path / "rules.toml"
    config.write_text(
        "[plugins.reboot]\n"
        'plugin = "exec_action"\n'
        f"command = {json.dumps([sys.executable, '-c', script])}\n"
        'args = ["{{ $labels.instance }}", "{{ $annotations.summary }}"]\n'
    )
    env = {"CONFIG_FILE": str(config), "SEEN": str(out)}

    plugins = run_cli("plugins", env=env)
    done = run_cli(
        "fire",
        "reboot",
        "--alert",
        "HostDown",
        "--threshold",
        "up == 0",
        "--label",
        "instance=db-1:9100",
        "--annotation",
        "summary={{ $labels.instance }} is down",
        env=env,
    )

    assert plugins.returncode == 0, describe(plugins)
    [row] = [line for line in plugins.stdout.splitlines() if line.startswith("reboot ")]
    assert row.split()[1:5] == [
        "exec_action",
        "(bundled)",
        str(bundled_plugin_dir() / "exec_action.py"),
        "ok",
    ]
    assert done.returncode == 0, describe(done)
    assert done.stdout.startswith("reboot: execute OK in "), describe(done)
    seen = json.loads(out.read_text())
    assert seen["argv"] == ["db-1:9100", "db-1:9100 is down"]
    env_seen = seen["env"]
    assert (env_seen["AMX_RECEIVER"], env_seen["AMX_STATUS"]) == ("reboot", "firing")
    assert env_seen["AMX_LABEL_alertname"] == "HostDown"
    assert env_seen["AMX_ANNOTATION_summary"] == "db-1:9100 is down"
    assert env_seen["METRIC_READER_ANNOTATION_SUMMARY"] == "db-1:9100 is down"
    assert env_seen["METRIC_READER_THRESHOLD"] == "up == 0"


def test_a_plugin_made_of_another_that_fails_to_load_says_what_it_is_made_of(
    tmp_path: Path,
) -> None:
    """Listed as a loaded one is: FROM names its base and where that comes from."""
    config = tmp_path / "rules.toml"
    config.write_text('[plugins.reboot]\nplugin = "exec_action"\nargs = ["{{ $labels."]\n')
    done = run_cli("plugins", env={"CONFIG_FILE": str(config)})
    [row] = [line for line in done.stdout.splitlines() if line.startswith("reboot ")]
    assert row.split()[1:5] == [
        "exec_action",
        "(bundled)",
        str(bundled_plugin_dir() / "exec_action.py"),
        "not",
    ], describe(done)
    assert "configure() refused its [plugins.reboot] settings" in row, describe(done)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--annotation", "summary"),
            "--annotation='summary' is invalid: expected NAME=TEMPLATE with NAME a label name",
        ),
        (
            ("--alert", "A", "--annotation", "summary={{ $labels.x "),
            "--annotation summary='{{ $labels.x ' is invalid: template: __alert_A:1: "
            "unclosed action",
        ),
        (("--alert", "High Load"), "--alert='High Load' is invalid: an alert's name is a metric"),
        (("--alert", "A", "--metric", "m"), "--metric and --alert: an alert's metric name is"),
        (
            ("--alert", "A", "--label", "alertname=B"),
            "--label alertname='B' and --alert='A' disagree",
        ),
        (("--alert", "A", "--threshold", " "), "--threshold=' ' is invalid: with --alert"),
        (
            ("--threshold", "node_load1 > 4"),
            "--threshold='node_load1 > 4' is invalid: expected an operator (>, <, >=, <=, ==, "
            "!=) followed by a number, e.g. >80, <=0.5, !=0, >1e3 (an alert's expr: add "
            "--alert ALERTNAME)",
        ),
    ],
)
def test_fire_refuses_a_bad_alert_in_one_line(
    plugin_dir: Path, args: tuple[str, ...], message: str
) -> None:
    done = run_cli("fire", "good", *args, env={"PLUGIN_DIR": str(plugin_dir)})

    assert done.returncode == 2, describe(done)
    [line] = stderr_lines(done)
    assert line.startswith("metric-reader: configuration error: " + message), line


# --- a PLUGIN_DIR that cannot be used; plugin names with .py -------------------------------

RULE = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">1"}


def unusable_plugin_dirs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of PLUGIN_DIR that cannot be listed, with the OS error a user must see."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing")
    return {
        "missing": (tmp_path / "nope", "No such file or directory"),
        "a file": (a_file, "[Errno 20] Not a directory"),
        "dangling symlink": (
            dangling,
            f"a symlink to {tmp_path / 'missing'}, which does not exist",
        ),
    }


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("kind", ["missing", "a file", "dangling symlink"])
def test_a_plugin_dir_that_cannot_be_listed_is_one_line_with_the_os_error_and_exit_2(
    tmp_path: Path, kind: str, command: str
) -> None:
    """Even when the rule's plugin is a bundled one: PLUGIN_DIR is set, so it is meant."""
    directory, says = unusable_plugin_dirs(tmp_path)[kind]
    env = {**RULE, "PLUGIN_DIR": str(directory), "ACTION_PLUGIN": "log_action"}

    done = run_cli(command, env=env)

    assert done.returncode == 2, describe(done)
    [line] = [x for x in stderr_lines(done) if "configuration error" in x]
    assert f"PLUGIN_DIR='{directory}' is invalid: " in line, line
    assert says in line, line
    assert "no plugin of that name" not in done.stderr


def test_a_plugin_dir_without_read_permission_shows_permission_denied(tmp_path: Path) -> None:
    """Run as root without the capabilities that let root read anything (tests run as root)."""
    directory = tmp_path / "locked"
    directory.mkdir(mode=0o000)
    env = base_env({**RULE, "PLUGIN_DIR": str(directory), "ACTION_PLUGIN": "log_action"})
    argv = [sys.executable, "-m", "metric_reader", "check"]
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]
    try:
        done = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        pytest.skip("setpriv (util-linux) is needed to drop root's file capabilities")

    assert done.returncode == 2, describe(done)
    [line] = [x for x in stderr_lines(done) if "configuration error" in x]
    assert f"PLUGIN_DIR='{directory}' is invalid: cannot be listed " in line, line
    assert line.endswith("; fix it or unset PLUGIN_DIR"), line
    assert "[Errno 13] Permission denied" in line, line


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("good.py", "is invalid: it takes the plugin's name, without .py: 'good'"),
        ("log_action.py", "is invalid: it takes the plugin's name, without .py: 'log_action'"),
        (
            "nope.py",
            "is invalid: it takes the plugin's name, without .py: 'nope'; no plugin of that "
            "name (available: ",
        ),
    ],
)
def test_a_plugin_named_with_py_is_refused_with_the_name_to_use_everywhere(
    plugin_dir: Path, tmp_path: Path, name: str, says: str
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "r"\nscrape_url = "http://127.0.0.1:9/metrics"\n'
        f'metric_name = "m"\nthreshold = ">1"\naction_plugin = "{name}"\n'
    )
    runs = {
        "ACTION_PLUGIN": run_cli(
            "check", env={**RULE, "PLUGIN_DIR": str(plugin_dir), "ACTION_PLUGIN": name}
        ),
        "rule file": run_cli(
            "check", env={"CONFIG_FILE": str(rules), "PLUGIN_DIR": str(plugin_dir)}
        ),
        "fire": run_cli("fire", name, env={"PLUGIN_DIR": str(plugin_dir)}),
    }
    for how, done in runs.items():
        assert done.returncode == 2, f"{how}: {describe(done)}"
        [line] = stderr_lines(done)
        assert f"{name!r} {says}" in line, f"{how}: {line}"
        assert ".py.py" not in line, line
    if name == "nope.py":  # where to put the file: its name once, with .py once
        assert f"add nope.py to PLUGIN_DIR ({plugin_dir})" in stderr_lines(runs["fire"])[0]
