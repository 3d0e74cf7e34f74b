"""Headless Chromium (Debian package ``chromium``) for the tests that look at a page the way
a person does: its DOM after loading, or a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSER_TIMEOUT = 120.0


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            "chromium not found (looked at $CHROMIUM, PATH and /usr/bin): this test needs a "
            "real browser; install the Debian package 'chromium' (.ci/run does) or set CHROMIUM",
            pytrace=False,
        )
    return path


def browse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once with a fresh profile; fail with its output if it fails."""
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",  # the tests may run as root, in a container
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        env={**os.environ, "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {argv}\n{done.stderr}"
    return done
