"""End to end: a plugin file changed, broken, removed and restored under a running service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .conftest import EVENT_TIMEOUT, RecordingPlugins, ScrapeServer, Service, ServiceFactory

MARKED_RECORDER = '''\
"""recorder, version {marker}: records its marker with each call."""

import json
import os
import time

MARKER = {marker!r}


class Recorder:
    name = "recorder"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        line = {{
            "method": "execute",
            "plugin": self.name,
            "marker": MARKER,
            "kind": getattr(event, "kind", None),
            "t": time.monotonic(),
        }}
        with open(os.environ["RECORDER_FILE"], "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\\n")


Plugin = Recorder()
'''


def replace_file(path: Path, text: str) -> None:
    """Write a new version the way editors and deploy tools do: a new file renamed over."""
    new = path.with_name(f".{path.name}.new")
    new.write_text(text)
    new.chmod(0o644)
    os.replace(new, path)


def markers(plugins: RecordingPlugins) -> list[Any]:
    return [record.get("marker") for record in plugins.records()]


def wait_for_marker(
    svc: Service, plugins: RecordingPlugins, marker: str | None, count: int, after: int = 0
) -> None:
    """Wait until ``count`` calls recorded ``marker`` past the first ``after`` records."""
    svc.wait_until(
        lambda: markers(plugins)[after:].count(marker) >= count,
        EVENT_TIMEOUT,
        lambda: (
            f"{count} call(s) with marker {marker!r} after record {after}; "
            f"markers so far: {markers(plugins)}"
        ),
    )


def wait_for_log(svc: Service, text: str) -> None:
    svc.wait_until(lambda: text in svc.output(), EVENT_TIMEOUT, f"the log to say {text!r}")


def test_a_plugin_file_changed_broken_removed_and_restored_while_running(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("queue_depth", 95)
    svc = service(
        {
            "SCRAPE_URL": scrape_server.url,
            "POLLING_INTERVAL": "250ms",
            "METRIC_NAME": "queue_depth",
            "THRESHOLD": ">80",
            "BACKOFF_DELAY": "500ms",
            "ACTION_PLUGIN": "recorder",
            **recording_plugin_dir.env,
        }
    )
    svc.extra_diagnostics = [recording_plugin_dir.describe]
    plugin_file = recording_plugin_dir.plugin_dir / "recorder.py"
    wait_for_marker(svc, recording_plugin_dir, None, 1)  # the original recorder: no marker

    # 1. A new version is dropped in: the running service calls it, no restart.
    replace_file(plugin_file, MARKED_RECORDER.format(marker="v2"))
    wait_for_marker(svc, recording_plugin_dir, "v2", 2)
    wait_for_log(svc, f"plugin recorder reloaded from {plugin_file}")

    # 2. A broken version: it is reported, and v2 keeps recording.
    plugin_file.write_text("def broken(:\n")
    wait_for_log(svc, f"{plugin_file} failed to load: syntax error at line 1")
    wait_for_log(svc, "the previous version of plugin recorder stays in service")
    seen = len(recording_plugin_dir.records())
    wait_for_marker(svc, recording_plugin_dir, "v2", 3, after=seen)
    assert set(markers(recording_plugin_dir)[seen:]) == {"v2"}, recording_plugin_dir.describe()

    # 3. Removed: the plugin is gone and calls fail; put back, it is used again.
    plugin_file.unlink()
    wait_for_log(svc, f"plugin recorder removed ({plugin_file} is gone)")
    wait_for_log(svc, "execute failed: plugin 'recorder' is not loaded any more")
    replace_file(plugin_file, MARKED_RECORDER.format(marker="v3"))
    wait_for_marker(svc, recording_plugin_dir, "v3", 2)
    assert svc.alive(), svc.diagnostics()
