"""A non-editable ``pip install .`` in a fresh virtual environment works, plugins included."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this checkout installed into it."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    [wheel] = wheels.glob("metric_reader-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [str(env_dir / "bin" / "pip"), "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    return env_dir / "bin"


def run(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
    )


def test_console_script_and_module_are_installed(installed: Path) -> None:
    for command in (
        ["metric-reader", "--version"],
        [str(installed / "python"), "-m", "metric_reader", "--version"],
    ):
        result = run(installed, *command)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("metric-reader ")


def test_bundled_plugins_ship_with_the_wheel(installed: Path) -> None:
    result = run(installed, "metric-reader", "plugins")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0]: line for line in result.stdout.splitlines()}
    for name in ("log_action", "file_action"):
        assert name in listed, result.stdout
        assert "/site-packages/metric_reader/_bundled_plugins/" in listed[name]


def test_installed_service_fires_a_bundled_plugin(installed: Path) -> None:
    result = run(
        installed,
        "metric-reader",
        "fire",
        "log_action",
        "--metric",
        "queue_depth",
        "--value",
        "95",
        "--threshold",
        ">80",
        "--duration",
        "30s",
    )
    assert result.returncode == 0, result.stderr
    assert "log_action: execute OK" in result.stdout
    assert "queue_depth" in result.stderr  # what log_action logged
