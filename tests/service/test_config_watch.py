"""When the configuration's files call for a reload (``WATCH_CONFIG``): what a look sees of
real files, and when a look is a reload due. The service around it is tested in
``tests/integration/test_config_watch.py``."""

from __future__ import annotations

import os
from pathlib import Path

from metric_reader._config import load_settings
from metric_reader._service._config_watch import ConfigWatch

ALERTS = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"


def _configuration(tmp_path: Path) -> Path:
    (tmp_path / "a.yml").write_text(ALERTS)
    config = tmp_path / "rules.toml"
    config.write_text('rule_files = ["*.yml"]\n')
    return config


def test_a_look_sees_contents_through_symlinks_and_new_files_of_a_glob(tmp_path: Path) -> None:
    config = _configuration(tmp_path)
    settings = load_settings({"CONFIG_FILE": str(config)})
    watch = ConfigWatch()
    first = watch.files.look(settings)
    assert sorted(first) == [str(tmp_path / "a.yml"), str(config)]

    (tmp_path / "..data").mkdir()  # as in a ConfigMap volume
    target = tmp_path / "..data" / "a.yml"
    target.write_text(ALERTS)
    (tmp_path / "a.yml").unlink()
    (tmp_path / "a.yml").symlink_to("..data/a.yml")  # another inode, the same contents
    assert watch.files.look(settings) == first

    # The same size and the same timestamps, other contents: a change all the same.
    stat = os.stat(target)
    target.write_text(ALERTS.replace("A", "B"))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = watch.files.look(settings)
    assert second[str(tmp_path / "a.yml")] != first[str(tmp_path / "a.yml")]

    (tmp_path / "b.yml").write_text(ALERTS)
    assert str(tmp_path / "b.yml") in watch.files.look(settings)


def test_a_reload_is_due_once_a_change_has_settled_and_not_for_what_was_refused() -> None:
    watch = ConfigWatch()
    watch.loaded = {"rules.toml": "1"}
    assert not watch.due({"rules.toml": "1"})
    assert not watch.due({"rules.toml": "2"})  # first seen: it may be half written
    assert not watch.due({"rules.toml": "3"})  # still changing
    assert watch.due({"rules.toml": "3"})  # the same twice: reload
    assert watch.changed({"rules.toml": "3", "b.yml": "1"}) == ["b.yml", "rules.toml"]

    watch.refused_at({"rules.toml": "3"})
    assert not watch.due({"rules.toml": "3"})  # refused: not again, however often seen
    assert not watch.due({"rules.toml": "3"})
    assert not watch.due({"rules.toml": "4"})
    assert watch.due({"rules.toml": "4"})  # changed again: tried again

    # A reload read the files as they were just before it; one changed meanwhile.
    watch.reloaded(before={"rules.toml": "4"}, after={"rules.toml": "5", "b.yml": "1"})
    assert watch.loaded == {"rules.toml": "4", "b.yml": "1"}
    assert not watch.due({"rules.toml": "5", "b.yml": "1"})
    assert watch.due({"rules.toml": "5", "b.yml": "1"})  # the change is not lost
