"""Rule files that change on disk (issue 23, point 10): a change of ``CONFIG_FILE`` or of a
rule file reloads the running service as SIGHUP does, with the same refusals.

The files sit in a directory laid out as kubelet mounts a ConfigMap: each is a symlink
``name -> ..data/name``, ``..data`` a symlink to a timestamped directory, and an update
writes a new timestamped directory and renames a new ``..data`` over the old one, at once.
Real ``python -m metric_reader`` processes; every wait is for a log line or an answer of
``/api/status``, with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .conftest import EVENT_TIMEOUT, Service, ServiceFactory, free_port

RULES_TOML = """\
prometheus_endpoint = "http://127.0.0.1:{port}"
polling_interval = "500ms"
rule_files = ["*.yml"]
"""


def _alerts(*names: str) -> str:
    rules = "".join(
        f"      - alert: {name}\n        expr: up{{job='{name}'}} == 0\n" for name in names
    )
    return f"groups:\n  - name: node\n    rules:\n{rules}"


class ConfigMapVolume:
    """A directory as kubelet mounts a ConfigMap, updated as kubelet's AtomicWriter does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.versions = 0
        path.mkdir()

    def publish(self, files: Mapping[str, str]) -> None:
        """Every key of the ConfigMap at once: a new timestamped directory, ``..data``
        swapped to it by a rename, a symlink for each new key, the old directory removed."""
        self.versions += 1
        version = f"..2026_12_06_00_00_{self.versions:02d}.000000001"
        (self.path / version).mkdir()
        for name, text in files.items():
            (self.path / version / name).write_text(text)
        data, old = self.path / "..data", None
        if data.is_symlink():
            old = self.path / os.readlink(data)
        (self.path / "..data_tmp").symlink_to(version)
        os.replace(self.path / "..data_tmp", data)
        for name in files:
            link = self.path / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        if old is not None:
            shutil.rmtree(old)

    def file(self, name: str) -> Path:
        """The file behind the key ``name`` in the current version (an edit in place)."""
        return self.path / os.readlink(self.path / "..data") / name


def _status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as response:
        return dict(json.loads(response.read()))


def _rules(port: int) -> list[str]:
    try:
        return sorted(rule["name"] for rule in _status(port)["rules"])
    except OSError:
        return []


def _lines(svc: Service, text: str) -> list[str]:
    return [line for line in svc.stderr().splitlines() if text in line]


def _polls(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        page = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("metric_reader_polls_total{")
    )


def _start(service: ServiceFactory, volume: ConfigMapVolume, **env: str) -> tuple[Service, int]:
    port = free_port()
    svc = service(
        {
            "CONFIG_FILE": str(volume.path / "rules.toml"),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "info",
            **env,
        }
    )
    svc.wait_until(lambda: _rules(port), EVENT_TIMEOUT, "the status page")
    return svc, port


def test_a_configmap_update_an_edit_and_a_new_file_each_reload_the_service(
    tmp_path: Path, service: ServiceFactory
) -> None:
    volume = ConfigMapVolume(tmp_path / "rules")
    toml = RULES_TOML.format(port=free_port())
    volume.publish({"rules.toml": toml, "node.yml": _alerts("HostDown")})
    svc, port = _start(service, volume)
    assert _rules(port) == ["HostDown"]

    # kubelet's update: ..data swapped to a new directory, rules.toml unchanged in it.
    volume.publish({"rules.toml": toml, "node.yml": _alerts("HostDown", "HostOutOfMemory")})
    svc.wait_until(
        lambda: _rules(port) == ["HostDown", "HostOutOfMemory"], EVENT_TIMEOUT, "the new alert"
    )
    [changed] = _lines(svc, "changed on disk")
    assert f"{volume.path / 'node.yml'} changed on disk: reloading the configuration" in changed
    [reloaded] = _lines(svc, "configuration reloaded")
    assert "1 rules kept as they were, 0 kept with new settings, 1 new" in reloaded

    # An edit in place, and a new file the glob matches.
    volume.file("node.yml").write_text(_alerts("HostDown"))
    (volume.path / "disk.yml").write_text(_alerts("HostOutOfDiskSpace"))
    svc.wait_until(
        lambda: _rules(port) == ["HostDown", "HostOutOfDiskSpace"], EVENT_TIMEOUT, "the edit"
    )
    assert svc.stop() == 0
    assert not _lines(svc, "reload refused")


def test_a_broken_update_is_refused_once_and_the_old_rules_go_on(
    tmp_path: Path, service: ServiceFactory
) -> None:
    """One service watching, one with WATCH_CONFIG=false, side by side: the same broken
    update is refused once by the first, whose rules go on; the second does not reload."""
    watched, unwatched = ConfigMapVolume(tmp_path / "a"), ConfigMapVolume(tmp_path / "b")
    toml = RULES_TOML.format(port=free_port())
    for volume in (watched, unwatched):
        volume.publish({"rules.toml": toml, "node.yml": _alerts("HostDown")})
    svc, port = _start(service, watched)
    off, off_port = _start(service, unwatched, WATCH_CONFIG="false")

    broken = _alerts("HostDown", "HostOutOfMemory") + "        for: soon\n"  # one mistake
    watched.publish({"rules.toml": toml, "node.yml": broken})
    unwatched.publish({"rules.toml": toml, "node.yml": _alerts("HostDown", "HostOutOfMemory")})
    svc.wait_until(lambda: _lines(svc, "reload refused"), EVENT_TIMEOUT, "the refusal")
    # Ten more ticks (5 s, two looks at the files at least): the refusal is not tried again.
    polls = _polls(port)
    svc.wait_until(lambda: _polls(port) >= polls + 10, EVENT_TIMEOUT, "ten more ticks")
    [refused] = _lines(svc, "reload refused")
    assert f'{watched.path / "node.yml"}:8:14: group "node", rule 2, "HostOutOfMemory": for: ' in (
        refused
    ), refused
    assert _rules(port) == ["HostDown"] and not _lines(svc, "configuration reloaded")
    assert _rules(off_port) == ["HostDown"] and not _lines(off, "configuration reloaded")

    # Fixed: the next look reloads it.
    watched.publish({"rules.toml": toml, "node.yml": _alerts("HostDown", "HostOutOfMemory")})
    svc.wait_until(
        lambda: _rules(port) == ["HostDown", "HostOutOfMemory"], EVENT_TIMEOUT, "the fix"
    )
    assert len(_lines(svc, "reload refused")) == 1
