"""The container image, run as a sidecar runs it, against a real Prometheus.

Read-only root file system without podman's tmpfs mounts, plugins from a read-only bind
mount, a non-root user (the image's, and an arbitrary uid), the host network, one writable
volume for the state file. The test pushes a
value above the threshold and checks, from outside the container, that the plugin acted,
that ``/healthz`` answers, and that SIGTERM stops the service with exit code 0, "stopped"
logged and the state written, within the service's grace period.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from integration.conftest import (
    PrometheusStack,
    RecordingPlugins,
    free_port,
    wait_until,
)

from .conftest import Podman

IMAGE_UID = 10001  # USER in the Dockerfile
NOBODY = 65534
METRIC = "image_test_queue_depth"
# The service's own grace for running plugin calls (SHUTDOWN_GRACE) is 10 s; the recorder
# plugin returns at once, so the stop must come well within it.
STOP_WITHIN = 10.0
STARTUP_TIMEOUT = 60.0


class Container:
    def __init__(self, podman: Podman, name: str) -> None:
        self.podman, self.name = podman, name

    def inspect(self, template: str) -> str:
        return self.podman.run("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = self.podman.run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def wait_until(self, predicate: Callable[[], object], what: str) -> None:
        """Wait for ``predicate`` (an ``OSError`` counts as not yet); fail if it exits."""

        def check() -> bool:
            if not self.running():
                raise AssertionError(f"the container exited\n{self.diagnostics()}")
            try:
                return bool(predicate())
            except OSError:
                return False

        wait_until(check, STARTUP_TIMEOUT, what, interval=0.2, diagnostics=self.diagnostics)

    def terminate(self, within: float) -> int:
        """Send SIGTERM (as ``kubectl delete`` does) and return the exit code, which must come
        ``within`` seconds: no SIGKILL fallback here, unlike ``podman stop``."""
        self.podman.run("kill", "--signal", "TERM", self.name)
        try:
            result = self.podman.run("wait", self.name, timeout=within)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {within:.0f}s after SIGTERM\n{self.diagnostics()}"
            ) from None
        return int(result.stdout.strip())

    def diagnostics(self) -> str:
        state = self.podman.run(
            "inspect",
            "--format",
            "{{.State.Status}} exit={{.State.ExitCode}}",
            self.name,
            check=False,
        )
        return f"container {self.name}: {state.stdout.strip()}\n--- logs ---\n{self.logs()[-6000:]}"


@pytest.fixture
def container_name(podman: Podman) -> Iterator[str]:
    name = f"metric-reader-image-test-{uuid.uuid4().hex[:8]}"
    yield name
    podman.run("rm", "--force", "--time", "0", name, check=False)


def start_sidecar(
    podman: Podman, name: str, image: str, env: Mapping[str, str], *args: str
) -> Container:
    """``podman run`` the image as a sidecar: read-only root without podman's tmpfs on /tmp,
    /run and /var/tmp, the host network (the pod's), ``args`` (volumes, user) added."""
    podman.run(
        "run",
        "--detach",
        "--name",
        name,
        "--read-only",
        "--read-only-tmpfs=false",
        "--network",
        "host",
        # Podman runs HEALTHCHECK on a systemd timer, absent here; a test runs it by hand.
        "--health-interval",
        "disable",
        *podman.limits,
        *args,
        *(arg for key, value in env.items() for arg in ("--env", f"{key}={value}")),
        image,
    )
    return Container(podman, name)


def _writable_by(uid: int, path: Path) -> Path:
    path.mkdir()
    os.chown(path, uid, uid)
    return path


def _host_pid_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _root_mount_options(pid: int) -> list[str]:
    """Mount options of ``/`` as the container's process sees it (its mountinfo)."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise AssertionError(f"no / in /proc/{pid}/mountinfo")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


# The image's own user, and an arbitrary one as Kubernetes' runAsUser or OpenShift gives.
@pytest.mark.parametrize(
    ("user_args", "uid"),
    [((), IMAGE_UID), (("--user", f"{NOBODY}:{NOBODY}"), NOBODY)],
    ids=["image-user", "uid-65534"],
)
def test_sidecar_acts_answers_healthz_and_stops_on_sigterm(
    user_args: tuple[str, ...],
    uid: int,
    podman: Podman,
    app_image: str,
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    container_name: str,
    tmp_path: Path,
) -> None:
    prometheus_stack.push(METRIC, 95, {"queue": "orders"})
    prometheus_stack.wait_visible(METRIC, 95)
    state_dir = _writable_by(uid, tmp_path / "state")
    plugins = RecordingPlugins(recording_plugin_dir.plugin_dir, state_dir / "records.jsonl")
    port = free_port()
    env = {
        "PROMETHEUS_ENDPOINT": prometheus_stack.prometheus_url,
        "METRIC_NAME": METRIC,
        "THRESHOLD": ">80",
        "THRESHOLD_DURATION": "1s",
        "POLLING_INTERVAL": "500ms",
        "ACTION_PLUGIN": "recorder",
        "RECORDER_FILE": "/var/lib/metric-reader/records.jsonl",
        "STATE_FILE": "/var/lib/metric-reader/state.json",
        "LISTEN_ADDRESS": f"127.0.0.1:{port}",
    }
    container = start_sidecar(
        podman,
        container_name,
        app_image,
        env,
        *user_args,
        "--volume",
        f"{plugins.plugin_dir}:/plugins:ro",
        "--volume",
        f"{state_dir}:/var/lib/metric-reader",
    )

    container.wait_until(
        lambda: any(r["method"] == "execute" for r in plugins.records()),
        "the recorder plugin's first call",
    )
    [call] = [r for r in plugins.records() if r["method"] == "execute"]
    assert (call["metric_name"], call["value"], call["labels"]["queue"]) == (METRIC, 95, "orders")

    status, body = _get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200, (body, container.diagnostics())

    # What the process really runs as, seen from the host: not root, on a read-only root.
    pid = int(container.inspect("{{.State.Pid}}"))
    uids = _host_pid_status(pid)["Uid"].split()
    assert set(uids) == {str(uid)}, uids
    assert "ro" in _root_mount_options(pid), _root_mount_options(pid)

    assert container.terminate(within=STOP_WITHIN) == 0, container.diagnostics()
    assert "stopped" in container.logs().splitlines()[-1], container.diagnostics()
    state = json.loads((state_dir / "state.json").read_text())
    assert "orders" in json.dumps(state), f"the breached series is not in the state: {state}"


def test_image_healthcheck_follows_listen_address(
    podman: Podman, app_image: str, prometheus_stack: PrometheusStack, container_name: str
) -> None:
    port = free_port()
    env = {
        "PROMETHEUS_ENDPOINT": prometheus_stack.prometheus_url,
        "METRIC_NAME": METRIC,
        "LISTEN_ADDRESS": f"127.0.0.1:{port}",
    }
    container = start_sidecar(podman, container_name, app_image, env)
    container.wait_until(
        lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, "/healthz on the host"
    )
    result = podman.run("healthcheck", "run", container_name, check=False)
    assert result.returncode == 0, (
        f"the image's HEALTHCHECK says {result.stdout.strip()!r} while /healthz answers 200\n"
        f"{container.diagnostics()}"
    )
