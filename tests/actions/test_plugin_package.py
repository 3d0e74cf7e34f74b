"""``examples/plugin-package/``, pip-installed beside metric-reader in a fresh virtual
environment, offline: its plugin is found through its entry point alone, and ``plugins``,
``fire`` and the service use it.

The fresh environment has no pip of its own; a ``.pth`` file makes this checkout's
``.venv`` site-packages (pip, the build backends, metric-reader's dependencies) visible
after its own. ``pip install --no-index --no-build-isolation --no-deps`` then builds and
installs metric-reader (non-editable) and the example into it, in a network namespace of
its own when ``unshare -rn`` works (so a download would fail, not silently succeed).
Nothing sets ``PLUGIN_DIR``, and the commands run outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin-package"
DISTRIBUTION = "metric-reader-example-plugin 0.1.0"


def _offline() -> list[str]:
    """``unshare -rn`` (no network at all) where this machine allows it."""
    try:
        usable = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["unshare", "-rn"] if usable.returncode == 0 else []


def _pip_env() -> dict[str, str]:
    """No pip configuration (this machine's may name local indexes): --no-index alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh venv with metric-reader and the example installed."""
    root = tmp_path_factory.mktemp("plugin-package")
    # setuptools builds in the source tree (build/, *.egg-info): a copy of its own keeps the
    # checkout clean and the test workers that build it at once apart.
    example = shutil.copytree(
        EXAMPLE, root / "example", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site_dir) / "_dev_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    done = subprocess.run(
        [
            *_offline(),
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-build-isolation",
            "--no-deps",
            str(REPO),
            str(example),
        ],
        cwd=root,
        env=_pip_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    return env_dir / "bin"


def run(bin_dir: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "metric-reader"), *args],
        cwd=cwd,
        env=_service_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _service_env(extra: Mapping[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONUNBUFFERED": "1",
        "LISTEN_ADDRESS": "off",
        **extra,
    }


def describe(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def test_the_installed_package_is_not_metric_readers_source_tree(fresh_venv: Path) -> None:
    """The premise of the tests below: both come from the fresh venv's site-packages."""
    done = subprocess.run(
        [
            str(fresh_venv / "python"),
            "-c",
            "import metric_reader, mr_example_plugin, sys;"
            "print(metric_reader.__file__); print(mr_example_plugin.__file__); print(sys.prefix)",
        ],
        cwd="/",
        env=_service_env({}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, describe(done)
    package, plugin, prefix = done.stdout.split()
    site = f"{prefix}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    assert package == f"{site}/metric_reader/__init__.py"
    assert plugin == f"{site}/mr_example_plugin.py"


def test_plugins_lists_the_entry_point_plugin_with_its_distribution_and_version(
    fresh_venv: Path, tmp_path: Path
) -> None:
    done = run(fresh_venv, tmp_path, "plugins", JSONL_EVENTS_FILE=str(tmp_path / "e.jsonl"))

    assert done.returncode == 0, describe(done)
    [row] = [line for line in done.stdout.splitlines() if line.startswith("jsonl_events ")]
    _, rest = row.split(maxsplit=1)
    assert rest.startswith(f"entry point {DISTRIBUTION} "), row
    file, status = rest.removeprefix(f"entry point {DISTRIBUTION}").split()
    assert file.endswith("/site-packages/mr_example_plugin.py"), row
    assert file.startswith(str(fresh_venv.parent)), row
    assert status == "ok", row
    assert "PLUGIN_DIR" not in done.stdout


def test_plugins_shows_the_entry_point_plugin_not_configured_without_its_file(
    fresh_venv: Path, tmp_path: Path
) -> None:
    done = run(fresh_venv, tmp_path, "plugins")

    assert done.returncode == 0, describe(done)
    [row] = [line for line in done.stdout.splitlines() if line.startswith("jsonl_events ")]
    assert f"entry point {DISTRIBUTION}" in row
    assert row.endswith(
        "not configured: validate_config() refused: ValueError: no file to write to: set "
        "JSONL_EVENTS_FILE or path in [plugins.jsonl_events]"
    ), row


def test_fire_runs_the_entry_point_plugin(fresh_venv: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"

    done = run(
        fresh_venv,
        tmp_path,
        "fire",
        "jsonl_events",
        "--metric",
        "queue_depth",
        "--value",
        "95",
        "--threshold",
        ">80",
        "--label",
        "queue=orders",
        JSONL_EVENTS_FILE=str(out),
    )

    assert done.returncode == 0, describe(done)
    assert done.stdout.startswith("jsonl_events: execute OK in "), describe(done)
    assert (
        '(entry point "jsonl_events = mr_example_plugin:JsonLinesPlugin" of '
        f"{DISTRIBUTION}, {fresh_venv.parent}/"
    ) in done.stdout, describe(done)
    [line] = out.read_text().splitlines()
    event = json.loads(line)
    assert (event["metric_name"], event["value"], event["threshold"]) == ("queue_depth", 95, ">80")
    assert (event["labels"], event["plugin"], event["kind"]) == (
        {"queue": "orders"},
        "jsonl_events",
        "fire",
    )


def test_the_service_runs_the_entry_point_plugin_with_its_settings_table(
    fresh_venv: Path, tmp_path: Path, page_server: tuple[str, list[float]]
) -> None:
    """A rule file names the plugin and gives it ``[plugins.jsonl_events]``; the page says
    ``slow_queue{q="a"} 100``, over the threshold from the first read."""
    url, _ = page_server
    out = tmp_path / "events.jsonl"
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'polling_interval = "200ms"\n'
        "[[rules]]\n"
        'name = "slow"\n'
        f'scrape_url = "{url}"\n'
        'metric_name = "slow_queue"\n'
        'threshold = ">50"\n'
        'action_plugin = "jsonl_events"\n'
        "[plugins.jsonl_events]\n"
        f'path = "{out}"\n'
    )
    service = subprocess.Popen(
        [str(fresh_venv / "metric-reader")],
        cwd=tmp_path,
        env=_service_env({"CONFIG_FILE": str(rules)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and out.read_text().endswith("\n")):
            assert service.poll() is None, "the service ended early"
            assert time.monotonic() < deadline, "no event written within 30 s"
            time.sleep(0.05)
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
        log, _ = service.communicate(timeout=10)
    assert code == 0, log
    event = json.loads(out.read_text().splitlines()[0])
    assert (event["rule"], event["labels"], event["value"]) == ("slow", {"q": "a"}, 100)
    assert "plugin not loaded" not in log, log
