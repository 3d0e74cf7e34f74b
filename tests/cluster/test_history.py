"""HISTORY_FILE: the action history as the service writes it and its readers read it.

Real SQLite files in a temporary directory; the clock of retention is a plain function.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from metric_reader._cluster import ActionHistory
from metric_reader._cluster._history import PRUNE_EVERY
from metric_reader._core import HistoryEntry, StateError

NOW = 1_780_000_000.0


def entry(at: float = NOW, rule: str = "disk_full", **fields: Any) -> HistoryEntry:
    values: dict[str, Any] = {
        "series": {"instance": "db-1", "mount": "/"},
        "plugin": "restart_pod",
        "kind": "fire",
        "outcome": "executed",
    }
    values.update(fields)
    return HistoryEntry(at=at, rule=rule, **values)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    yield seen
    logger.remove(sink)


def test_what_is_recorded_is_read_back_newest_first_and_filtered(tmp_path: Path) -> None:
    history = ActionHistory.open(tmp_path / "h.sqlite", clock=lambda: NOW)
    full = entry(
        NOW - 30,
        outcome="suppressed",
        reason="budget",
        detail="budget of plugin restart_pod: 3 per 1h",
        value=97.5,
        threshold=">90",
        duration=300.0,
        annotations={"summary": "disk full on db-1"},
        attempt=2,
        idempotency_key="k-1",
        level="hard",
    )
    history.record(full)
    history.record(entry(NOW - 20, rule="queue", outcome="failed", detail="boom"))
    history.record(entry(NOW - 10, kind="resolve", value=math.nan))
    assert [e.at for e in history.query()] == [NOW - 10, NOW - 20, NOW - 30]
    assert history.query(outcome="suppressed") == [full]
    assert [e.rule for e in history.query(rule="queue")] == ["queue"]
    assert [e.at for e in history.query(since=NOW - 20)] == [NOW - 10, NOW - 20]
    assert [e.at for e in history.query(limit=1)] == [NOW - 10]
    [resolve] = history.query(limit=1)
    assert math.isnan(resolve.value)
    assert resolve.as_dict()["value"] == "NaN"
    assert full.as_dict()["at"] == "2026-05-28T20:26:10.000Z"
    history.close()


def test_the_history_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    history = ActionHistory.open(path, clock=lambda: NOW)
    history.record(entry(outcome="shadow"))
    history.close()
    again = ActionHistory.open(path, clock=lambda: NOW + 60)
    assert [e.outcome for e in again.query()] == ["shadow"]
    again.close()


def test_rows_older_than_the_retention_go_at_open_and_as_it_records(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    now = [NOW]
    history = ActionHistory.open(path, retention=3600, clock=lambda: now[0])
    history.record(entry(NOW - 7200))
    history.record(entry(NOW - 60))
    history.close()
    history = ActionHistory.open(path, retention=3600, clock=lambda: now[0])
    assert [e.at for e in history.query()] == [NOW - 60]
    now[0] = NOW + 3600
    for i in range(PRUNE_EVERY):
        history.record(entry(NOW + i))
    assert len(history) == PRUNE_EVERY
    history.close()


def test_the_size_is_bounded(tmp_path: Path) -> None:
    history = ActionHistory.open(tmp_path / "h.sqlite", max_rows=10, clock=lambda: NOW)
    for i in range(3 * PRUNE_EVERY):
        history.record(entry(NOW + i))
        assert len(history) <= 10 + PRUNE_EVERY
    newest = [e.at for e in history.query(limit=1000)]
    assert newest[:10] == [NOW + 3 * PRUNE_EVERY - 1 - i for i in range(10)]
    history.close()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not a database, it is a note\n" * 40, "file is not a database"),
        (None, "schema version 7"),
    ],
)
def test_an_unusable_file_is_set_aside_with_one_warning(
    tmp_path: Path, warnings: list[str], content: bytes | None, reason: str
) -> None:
    path = tmp_path / "h.sqlite"
    if content is None:  # a SQLite database, but not this version's history
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE t (x)")
            other.execute("PRAGMA user_version = 7")
        other.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    history = ActionHistory.open(path, clock=lambda: NOW)
    [aside] = tmp_path.glob("h.sqlite.corrupt-*")
    assert aside.read_bytes() == before
    [warning] = warnings
    assert str(path) in warning and reason in warning and aside.name in warning
    history.record(entry())
    assert len(history.query()) == 1
    history.close()
    assert len(ActionHistory.open(path, clock=lambda: NOW).query()) == 1  # a new, usable file


def test_a_reader_in_another_connection_reads_while_the_service_writes(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    writer = ActionHistory.open(path, clock=lambda: NOW)
    writer.record(entry(NOW))
    reader = ActionHistory.open_read_only(path)
    assert len(reader.query()) == 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._db.execute("DELETE FROM actions")
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not done.is_set():
            seen.append(len(reader.query(limit=1000)))

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(1, 200):
        writer.record(entry(NOW + i))
    done.set()
    thread.join()
    assert seen == sorted(seen) and len(reader.query(limit=1000)) == 200
    reader.close()
    writer.close()
    # Stopped: the write-ahead log is folded in and gone; the file alone is read.
    assert len(ActionHistory.open_read_only(path).query(limit=1000)) == 200


def test_a_missing_or_foreign_file_is_a_clear_error_for_a_reader(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no such history file"):
        ActionHistory.open_read_only(tmp_path / "none.sqlite")
    (tmp_path / "bad.sqlite").write_bytes(b"x" * 2048)
    with pytest.raises(StateError, match="cannot read the history: file is not a database"):
        ActionHistory.open_read_only(tmp_path / "bad.sqlite")
    assert (tmp_path / "bad.sqlite").read_bytes() == b"x" * 2048


def test_a_file_that_cannot_be_opened_gives_a_history_in_memory(
    tmp_path: Path, warnings: list[str]
) -> None:
    (tmp_path / "plain").write_text("a file where a directory should be\n")
    history = ActionHistory.open(tmp_path / "plain" / "h.sqlite", clock=lambda: NOW)
    history.record(entry())
    assert len(history.query()) == 1 and history.path is None
    [warning] = warnings
    assert "unable to open database file; keeping it in memory" in warning


V1_SCHEMA = """
CREATE TABLE actions (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, rule TEXT NOT NULL, series TEXT NOT NULL,
    plugin TEXT NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
    detail TEXT NOT NULL, value REAL, threshold TEXT NOT NULL, duration REAL NOT NULL,
    annotations TEXT NOT NULL, attempt INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
    level TEXT NOT NULL
);
CREATE INDEX actions_at ON actions (at);
CREATE INDEX actions_rule_at ON actions (rule, at);
PRAGMA user_version = 1;
INSERT INTO actions VALUES (1, 1780000000.0, 'disk_full', '{}', 'restart_pod', 'fire',
    'executed', '', '', 91.0, '>90', 0.0, '{}', 1, 'k1', 'base');
"""


def test_a_history_of_the_earlier_schema_is_read_then_upgraded_keeping_its_rows(
    tmp_path: Path, warnings: list[str]
) -> None:
    path = tmp_path / "h.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(V1_SCHEMA)
    old.close()
    reader = ActionHistory.open_read_only(path)  # the CLI beside an older service
    [row] = reader.query()
    assert (row.idempotency_key, row.verified) == ("k1", None)
    reader.close()
    history = ActionHistory.open(path, clock=lambda: NOW)
    assert [(e.idempotency_key, e.value, e.verified) for e in history.query()] == [
        ("k1", 91.0, None)
    ]
    history.record(entry(NOW + 1, idempotency_key="k2", kind="repeat"))
    history.mark("k2", False)
    history.mark("k1", True)
    history.close()
    assert warnings == [] and list(tmp_path.glob("h.sqlite.corrupt-*")) == []
    again = ActionHistory.open_read_only(path)
    assert [(e.idempotency_key, e.verified) for e in again.query()] == [
        ("k2", False),
        ("k1", True),
    ]
    again.close()


def test_history_offers_every_outcome_the_history_records() -> None:
    """The CLI lists the outcomes itself (its --help imports no core module): the list must
    stay the one HistoryEntry allows."""
    import argparse

    from metric_reader._cli import _parser
    from metric_reader._core import OUTCOMES

    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    history = commands.choices["history"]
    [outcome] = [a for a in history._actions if a.dest == "outcome"]
    assert tuple(outcome.choices or ()) == OUTCOMES
