"""The PLUGIN_DIR trust check: plugin files others could change are refused, like sshd keys.

Real files, directories, modes, owners and symlinks in tmp_path; the Kubernetes ConfigMap
case is built the way kubelet's atomic writer builds it, and mounted read-only the way the
kubelet mounts it (in a private mount namespace, when the test may create one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from metric_reader._actions import PluginCatalog, PluginProblem, discover_plugins
from metric_reader._config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
IS_ROOT = os.geteuid() == 0
TIMESTAMPED = "..2024_01_01_10_00_00.123456789"


def plugin_source(name: str) -> str:
    return textwrap.dedent(
        f"""
        class P:
            name = {name!r}

            async def execute(self, metric_name, value, threshold, duration):
                pass

        Plugin = P()
        """
    ).lstrip()


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """An empty PLUGIN_DIR as an operator would make it: ours, mode 0755."""
    directory = tmp_path / "plugins"
    directory.mkdir()
    directory.chmod(0o755)
    return directory


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def add_plugin(directory: Path, name: str, mode: int = 0o644) -> Path:
    path = directory / f"{name}.py"
    path.write_text(plugin_source(name))
    path.chmod(mode)
    return path


def user_problems(catalog: PluginCatalog, directory: Path) -> list[PluginProblem]:
    """Problems of PLUGIN_DIR files (the bundled ones may have their own, e.g. a missing env)."""
    return [p for p in catalog.problems if p.path == directory or directory in p.path.parents]


def refusal(catalog: PluginCatalog, name: str) -> str:
    assert name not in catalog.plugins, f"{name} was loaded: {catalog.plugins[name]!r}"
    problem = catalog.problem_for(name)
    assert problem is not None, f"no problem reported for {name}: {catalog.problems}"
    assert problem.reason.startswith("refused: "), problem.reason
    assert "PLUGIN_DIR_INSECURE=true" in problem.reason  # says how to get past it
    return str(problem)


def make_configmap(root: Path, files: dict[str, str], *, file_mode: int = 0o644) -> Path:
    """The layout kubelet's atomic writer makes in a ConfigMap volume: a timestamped 0755
    directory with the files (``defaultMode``), ``..data`` -> it, ``name`` -> ``..data/name``."""
    data = root / TIMESTAMPED
    data.mkdir()
    data.chmod(0o755)
    for filename, text in files.items():
        (data / filename).write_text(text)
        (data / filename).chmod(file_mode)
    (root / "..data").symlink_to(TIMESTAMPED)
    for filename in files:
        (root / filename).symlink_to(f"..data/{filename}")
    return data


# --- file and directory modes -------------------------------------------------------------


def test_an_owner_only_writable_plugin_dir_loads(plugin_dir: Path) -> None:
    add_plugin(plugin_dir, "tidy", 0o644)
    add_plugin(plugin_dir, "strict", 0o600)

    catalog = discover_plugins(plugin_dir)

    assert {"tidy", "strict"} <= set(catalog.plugins)
    assert user_problems(catalog, plugin_dir) == []


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        (0o664, "group-writable (mode 0664)"),
        (0o646, "world-writable (mode 0646)"),
        (0o666, "group- and world-writable (mode 0666)"),
    ],
)
def test_a_plugin_file_others_can_write_is_refused_naming_it(
    plugin_dir: Path, mode: int, words: str
) -> None:
    path = add_plugin(plugin_dir, "loose", mode)
    add_plugin(plugin_dir, "tidy")

    catalog = discover_plugins(plugin_dir)

    text = refusal(catalog, "loose")
    assert text.startswith(f"{path}: refused: the file is {words}")
    assert "tidy" in catalog.plugins  # one loose file does not take the others down


def test_a_world_writable_plugin_dir_refuses_every_plugin_in_it(plugin_dir: Path) -> None:
    add_plugin(plugin_dir, "one")
    add_plugin(plugin_dir, "two")
    plugin_dir.chmod(0o777)

    catalog = discover_plugins(plugin_dir)

    for name in ("one", "two"):
        assert f"PLUGIN_DIR {plugin_dir} is group- and world-writable (mode 0777)" in refusal(
            catalog, name
        )
    assert any(p.path == plugin_dir for p in catalog.problems)  # the directory itself too
    assert "log_action" in catalog.plugins  # bundled plugins are not affected


def test_a_sticky_world_writable_plugin_dir_is_refused_too(plugin_dir: Path) -> None:
    # Like /tmp: others cannot replace our files, but they can add plugins of their own.
    add_plugin(plugin_dir, "one")
    plugin_dir.chmod(0o1777)

    catalog = discover_plugins(plugin_dir)

    assert "world-writable (mode 1777)" in refusal(catalog, "one")


def test_an_insecure_empty_plugin_dir_is_still_reported(plugin_dir: Path) -> None:
    plugin_dir.chmod(0o775)

    catalog = discover_plugins(plugin_dir)

    [problem] = user_problems(catalog, plugin_dir)
    assert problem.path == plugin_dir
    assert "group-writable (mode 0775)" in problem.reason


def test_a_plugin_dir_given_as_a_symlink_is_checked_where_it_leads(tmp_path: Path) -> None:
    real = tmp_path / "real-plugins"
    real.mkdir()
    real.chmod(0o777)
    add_plugin(real, "one")
    link = tmp_path / "plugins"
    link.symlink_to(real)

    catalog = discover_plugins(link)

    assert f"PLUGIN_DIR {link} (really {real}) is group- and world-writable" in refusal(
        catalog, "one"
    )


@pytest.mark.skipif(not IS_ROOT, reason="needs root to chown a file to another user (nobody)")
def test_a_plugin_file_owned_by_another_user_is_refused(plugin_dir: Path) -> None:
    path = add_plugin(plugin_dir, "theirs")
    os.chown(path, NOBODY, NOBODY)
    add_plugin(plugin_dir, "ours")

    catalog = discover_plugins(plugin_dir)

    text = refusal(catalog, "theirs")
    assert text.startswith(f"{path}: refused: the file is owned by uid {NOBODY}")
    assert "not by root" in text
    assert "ours" in catalog.plugins


@pytest.mark.skipif(not IS_ROOT, reason="needs root to chown a directory to another user")
def test_a_plugin_dir_owned_by_another_user_is_refused(plugin_dir: Path) -> None:
    add_plugin(plugin_dir, "one")
    os.chown(plugin_dir, NOBODY, NOBODY)

    catalog = discover_plugins(plugin_dir)

    assert f"PLUGIN_DIR {plugin_dir} is owned by uid {NOBODY}" in refusal(catalog, "one")


def test_a_loose_file_replacing_a_bundled_plugin_hides_it(plugin_dir: Path) -> None:
    # As with any broken replacement: the operator meant their file, not the default.
    (plugin_dir / "log_action.py").write_text(plugin_source("log_action"))
    (plugin_dir / "log_action.py").chmod(0o666)

    catalog = discover_plugins(plugin_dir)

    assert "world-writable" in refusal(catalog, "log_action")


# --- symlinks -----------------------------------------------------------------------------


def test_a_symlink_to_a_world_writable_file_is_refused_naming_the_real_file(
    plugin_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    real = add_plugin(elsewhere, "linked", 0o666)
    (plugin_dir / "linked.py").symlink_to(real)

    catalog = discover_plugins(plugin_dir)

    text = refusal(catalog, "linked")
    assert f"the file {real} (where linked.py leads) is group- and world-writable" in text


def test_a_symlink_into_a_world_writable_directory_is_refused_naming_it(
    plugin_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir()
    real = add_plugin(elsewhere, "linked", 0o644)
    elsewhere.chmod(0o777)  # anyone could replace linked.py there
    (plugin_dir / "linked.py").symlink_to(real)

    catalog = discover_plugins(plugin_dir)

    assert f"the directory {elsewhere} holding linked.py is group- and world-writable" in (
        refusal(catalog, "linked")
    )


def test_a_symlink_to_a_well_kept_file_elsewhere_loads(plugin_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "opt-plugins"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    real = add_plugin(elsewhere, "linked")
    (plugin_dir / "linked.py").symlink_to(real)

    catalog = discover_plugins(plugin_dir)

    assert catalog.plugins["linked"].path == plugin_dir / "linked.py"


def test_a_configmap_style_layout_loads(plugin_dir: Path) -> None:
    # The ConfigMap layout in a directory only its owner can write (git-sync makes the same
    # kind of symlink-swapped layout): root-owned 0755 directories and 0644 files.
    make_configmap(plugin_dir, {"notify.py": plugin_source("notify")})

    catalog = discover_plugins(plugin_dir)

    assert catalog.plugins["notify"].path == plugin_dir / "notify.py"
    assert user_problems(catalog, plugin_dir) == []


def test_a_configmap_file_made_world_writable_is_refused(plugin_dir: Path) -> None:
    # defaultMode: 0666 on a file system that can be written
    data = make_configmap(plugin_dir, {"notify.py": plugin_source("notify")}, file_mode=0o666)

    catalog = discover_plugins(plugin_dir)

    assert f"the file {data / 'notify.py'} (where notify.py leads) is group- and world-" in (
        refusal(catalog, "notify")
    )


def test_a_configmap_layout_in_a_writable_0777_volume_root_is_refused(plugin_dir: Path) -> None:
    # kubelet makes the volume root 0777; writable, anyone could re-point ..data.
    make_configmap(plugin_dir, {"notify.py": plugin_source("notify")})
    plugin_dir.chmod(0o777)

    catalog = discover_plugins(plugin_dir)

    assert f"PLUGIN_DIR {plugin_dir} is group- and world-writable" in refusal(catalog, "notify")


def _can_make_mount_namespace() -> str | None:
    """None when ``unshare --mount`` and ``mount`` work here; otherwise why not."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("mount") is None:
        return "unshare(1) or mount(8) is not installed"
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot create a mount namespace here: {probe.stderr.strip()}"
    return None


_DISCOVER_SCRIPT = """
import json, sys
from pathlib import Path
from metric_reader._actions import discover_plugins
directory = Path(sys.argv[1])
catalog = discover_plugins(directory)
print(json.dumps({
    "plugins": {n: str(p.path) for n, p in catalog.plugins.items() if not p.bundled},
    "problems": [str(p) for p in catalog.problems
                 if p.path == directory or directory in p.path.parents],
}))
"""


def test_a_real_configmap_volume_mounted_read_only_loads(tmp_path: Path) -> None:
    """The kubelet way: the volume root is 0777 (an emptyDir), filled by the atomic writer,
    then bind-mounted read-only into the container. Nobody can write it there, so it loads."""
    why_not = _can_make_mount_namespace()
    if why_not is not None:
        pytest.skip(f"needs a private mount namespace for a read-only bind mount: {why_not}")
    volume = tmp_path / "volume"  # on the node
    volume.mkdir()
    volume.chmod(0o777)
    make_configmap(volume, {"notify.py": plugin_source("notify")})
    mounted = tmp_path / "mounted"  # in the container
    mounted.mkdir()
    script = (
        f'mount --bind "{volume}" "{mounted}" && mount -o remount,bind,ro "{mounted}" && '
        f'exec "{sys.executable}" -c "$0" "{mounted}"'
    )

    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, _DISCOVER_SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"plugins": {"notify": str(mounted / "notify.py")}, "problems": []}
    # The same volume, writable (as on the node), is refused: the check did look at it.
    assert "notify" not in discover_plugins(volume).plugins


# --- PLUGIN_DIR_INSECURE ------------------------------------------------------------------


def test_insecure_loads_what_would_be_refused_with_a_warning_for_each(
    plugin_dir: Path, log_records: list[dict[str, Any]]
) -> None:
    loose = add_plugin(plugin_dir, "loose", 0o666)
    plugin_dir.chmod(0o777)

    catalog = discover_plugins(plugin_dir, insecure=True)

    assert catalog.plugins["loose"].path == loose
    assert user_problems(catalog, plugin_dir) == []
    warnings = [r["message"] for r in log_records if r["level"].name == "WARNING"]
    assert any("PLUGIN_DIR_INSECURE is on" in m and str(plugin_dir) in m for m in warnings)
    assert any(f"PLUGIN_DIR {plugin_dir} is group- and world-writable" in m for m in warnings)
    assert any(str(loose) in m and "group- and world-writable (mode 0666)" in m for m in warnings)


def test_insecure_still_reports_plugins_that_fail_for_other_reasons(plugin_dir: Path) -> None:
    (plugin_dir / "broken.py").write_text("def broken(:\n")

    catalog = discover_plugins(plugin_dir, insecure=True)

    problem = catalog.problem_for("broken")
    assert problem is not None and "syntax error" in problem.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        (" No ", False),
        ("", False),
    ],
)
def test_plugin_dir_insecure_setting(text: str, expected: bool) -> None:
    settings = load_settings({"METRIC_NAME": "m", "PLUGIN_DIR_INSECURE": text})

    assert settings.plugin_dir_insecure is expected


def test_plugin_dir_insecure_is_off_by_default() -> None:
    assert load_settings({"METRIC_NAME": "m"}).plugin_dir_insecure is False


def test_an_invalid_plugin_dir_insecure_names_variable_value_and_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"METRIC_NAME": "m", "PLUGIN_DIR_INSECURE": "sometimes"})

    assert str(caught.value) == (
        "PLUGIN_DIR_INSECURE='sometimes' is invalid: expected one of true, false, 1, 0, yes, no"
    )


# --- the command line: fatal only for a plugin the configuration names ---------------------


def run_check(plugin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "METRIC_NAME": "queue_depth",
        "SCRAPE_URL": "http://127.0.0.1:9/metrics",
        "THRESHOLD": ">80",
        "PLUGIN_DIR": str(plugin_dir),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_refuses_to_start_with_a_named_loose_plugin(plugin_dir: Path) -> None:
    path = add_plugin(plugin_dir, "notify", 0o664)

    done = run_check(plugin_dir, ACTION_PLUGIN="notify")

    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"configuration error: ACTION_PLUGIN='notify' cannot be loaded: {path}: refused: "
        "the file is group-writable (mode 0664)"
    ) in done.stderr


def test_check_only_warns_about_a_loose_plugin_it_does_not_need(plugin_dir: Path) -> None:
    add_plugin(plugin_dir, "notify")
    loose = add_plugin(plugin_dir, "unused", 0o666)

    done = run_check(plugin_dir, ACTION_PLUGIN="notify")

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"plugin notify: {plugin_dir / 'notify.py'}" in done.stdout
    assert "plugin not loaded: refused: the file is group- and world-writable" in done.stderr
    assert str(loose) in done.stderr


def test_check_with_plugin_dir_insecure_starts_with_a_warning(plugin_dir: Path) -> None:
    add_plugin(plugin_dir, "notify", 0o664)

    done = run_check(plugin_dir, ACTION_PLUGIN="notify", PLUGIN_DIR_INSECURE="true")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "PLUGIN_DIR_INSECURE is on" in done.stderr
    assert "group-writable (mode 0664)" in done.stderr
