"""Fixtures for the container image test (``make image-test``): the image built with podman
from this checkout's ``Dockerfile``, on a Debian base made by ``build-base.sh``, offline.

``make test`` leaves this directory out (it needs root and podman, and minutes the first
time): the tests here are collected only when ``tests/image`` is named on the command line.

Where podman cannot run containers the tests are skipped with the reason;
``IMAGE_TEST_REQUIRED=1`` turns that skip into a failure (for machines where it must run).
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

# The real Prometheus + Pushgateway and the recording plugins of the integration tests.
from integration.conftest import (  # noqa: F401  (fixtures are found by name)
    prometheus_stack,
    recording_plugin_dir,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WHEELS = "build/wheels"  # relative to REPO, the build context
IMAGE = "localhost/metric-reader:image-test"
BUILD_TIMEOUT = 900.0


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect this directory only when it (or a file in it) is named on the command line.

    ``None`` otherwise, which leaves the decision to pytest (``--ignore`` and the like)."""
    named = (Path(arg.split("::")[0]).resolve() for arg in config.args)
    return None if any(path == HERE or HERE in path.parents for path in named) else True


def _cannot(reason: str) -> None:
    message = f"container image test not run: {reason}"
    if os.environ.get("IMAGE_TEST_REQUIRED") == "1":
        pytest.fail(f"{message} (and IMAGE_TEST_REQUIRED=1)", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class Podman:
    """The podman command with this machine's global flags (``PODMAN_FLAGS`` overrides them).

    runc and cgroupfs work where crun or the systemd cgroup manager do not (hybrid cgroups,
    no systemd in a CI container); runc is preferred when it is installed.
    """

    flags: tuple[str, ...]

    @classmethod
    def for_this_machine(cls) -> Podman:
        if "PODMAN_FLAGS" in os.environ:
            return cls(tuple(shlex.split(os.environ["PODMAN_FLAGS"])))
        if shutil.which("runc") or Path("/usr/sbin/runc").exists():
            return cls(("--runtime", "runc", "--cgroup-manager", "cgroupfs"))
        return cls(("--cgroup-manager", "cgroupfs"))

    @property
    def limits(self) -> tuple[str, ...]:
        """Explicit ``--ulimit`` flags for containers and build steps.

        Podman's defaults (copied from its own raised limits) can be more than this machine
        lets a container have, and then every container fails to start ("error setting
        rlimits"). A sidecar needs little: these values, or this process's own if lower.
        """
        flags: list[str] = []
        for name, which, wanted in (
            ("nofile", resource.RLIMIT_NOFILE, 65536),
            ("nproc", resource.RLIMIT_NPROC, 4096),
        ):
            hard = resource.getrlimit(which)[1]
            value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            flags += ["--ulimit", f"{name}={value}:{value}"]
        return tuple(flags)

    def argv(self, *args: str) -> list[str]:
        return ["podman", *self.flags, *args]

    def run(
        self, *args: str, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman <args>``; with ``check``, fail with its output if it fails."""
        argv = self.argv(*args)
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} exited with {result.returncode}\n"
                f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
            )
        return result


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@pytest.fixture(scope="session")
def podman() -> Podman:
    if shutil.which("podman") is None:
        _cannot("podman is not installed (Debian: apt-get install podman runc uidmap)")
    return Podman.for_this_machine()


@pytest.fixture(scope="session")
def base_image(podman: Podman) -> str:
    """``metric-reader-base:bookworm`` (debootstrapped, cached); skip if podman cannot run it."""
    result = subprocess.run(
        [str(HERE / "build-base.sh")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode == 77:
        _cannot(_last_line(result.stderr).removeprefix("build-base: "))
    assert result.returncode == 0, f"build-base.sh failed:\n{result.stderr[-6000:]}"
    image = result.stdout.strip()
    probe = podman.run("run", "--rm", "--network=none", *podman.limits, image, "true", check=False)
    if probe.returncode != 0:
        _cannot(f"podman cannot run containers here: {_last_line(probe.stderr)}")
    return image


def _build_wheels() -> Path:
    """The project's wheel and its dependencies', built on the host (same Python 3.11)."""
    wheels = REPO / WHEELS
    shutil.rmtree(wheels, ignore_errors=True)  # never install a stale wheel of this project
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(REPO)]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stderr[-6000:]}"
    return wheels


@pytest.fixture(scope="session")
def app_image(podman: Podman, base_image: str) -> str:
    """The project's Dockerfile built on ``base_image`` from host wheels, with no network."""
    _build_wheels()
    # Without layer caching (a rebuild takes seconds), and the previous build removed first,
    # repeated runs leave no untagged images behind.
    podman.run("rmi", "--ignore", IMAGE)
    build_args: Sequence[str] = (
        "--build-arg",
        f"BASE={base_image}",
        "--build-arg",
        f"WHEELS={WHEELS}",
    )
    podman.run(
        "build",
        "--pull=never",
        "--layers=false",
        "--format=docker",  # as docker build makes it: OCI images drop HEALTHCHECK
        "--network=none",
        *podman.limits,
        *build_args,
        "--tag",
        IMAGE,
        "--file",
        str(REPO / "Dockerfile"),
        str(REPO),
        timeout=BUILD_TIMEOUT,
    )
    return IMAGE
