"""``HISTORY_FILE``: the action history, every owed call and what became of it (issue 25,
point 8), in an embedded SQLite database.

The service records one ``HistoryEntry`` per owed call (``record``: one INSERT and a
commit, on the event loop); ``metric-reader history``, ``GET /api/actions`` and the status
page read it (``query``). The database is in WAL mode, so another process (the CLI) reads
while the service writes, and ``synchronous=NORMAL``: a commit is not an fsync (a power cut
may lose the last rows, never the file). Its size is bounded: rows older than the retention
(``HISTORY_RETENTION``) and beyond ``max_rows`` are deleted every ``PRUNE_EVERY`` inserts
and at open; SQLite reuses the freed pages.

A history of an earlier schema is brought up to this one in place (``_MIGRATIONS``: a column
added, every row kept); the CLI reads one as it is. A file that is not a usable history (not
SQLite, corrupt, a newer or unknown schema) is set aside as
``<name>.corrupt-<timestamp>`` with one warning and a new one is made; a history that cannot
be opened at all (permissions, a full disk) is kept in memory instead, with one warning:
never fatal, the history is a record, not what the service needs to act. Writing it fails
the same way, warned once until it works again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import quote

from .._core import OUTCOMES, HistoryEntry, Outcome, StateError, logger

if TYPE_CHECKING:
    import sqlite3

__all__ = ["PRUNE_EVERY", "SCHEMA_VERSION", "ActionHistory"]

SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of the database this version writes."""
PRUNE_EVERY = 100
"""Inserts between two prunings: the table holds at most ``max_rows + PRUNE_EVERY`` rows."""
BUSY_TIMEOUT_MS = 250
"""How long a write waits for another writer's lock (two services on one file), at most."""

_COLUMNS = (
    "at",
    "rule",
    "series",
    "plugin",
    "kind",
    "outcome",
    "reason",
    "detail",
    "value",
    "threshold",
    "duration",
    "annotations",
    "attempt",
    "idempotency_key",
    "level",
    "verified",
)
_COLUMNS_OF = {1: _COLUMNS[:-1], 2: _COLUMNS}
"""The columns of each schema version this one reads."""
_MIGRATIONS = {
    1: "ALTER TABLE actions ADD COLUMN verified INTEGER; PRAGMA user_version = 2;",
}
"""What brings a history of each earlier version to the next (``verified``: whether a fix
held, NULL in the rows written before)."""
_SCHEMA = f"""
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    rule TEXT NOT NULL,
    series TEXT NOT NULL,
    plugin TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    value REAL,
    threshold TEXT NOT NULL,
    duration REAL NOT NULL,
    annotations TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    level TEXT NOT NULL,
    verified INTEGER
);
CREATE INDEX actions_at ON actions (at);
CREATE INDEX actions_rule_at ON actions (rule, at);
PRAGMA user_version = {SCHEMA_VERSION};
"""
_MARK = (
    "UPDATE actions SET verified = ? WHERE idempotency_key = ? AND outcome = 'executed' "
    "AND kind IN ('fire', 'repeat')"
)
_INSERT = f"INSERT INTO actions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


class _Unusable(Exception):
    """The file is not a history this version can use; the message says why."""


def _utc_stamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y%m%dT%H%M%SZ")


def _sidecars(path: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory index beside ``path``."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


class ActionHistory:
    """The action history: ``record`` an entry, ``query`` them newest first, ``close``.

    Made by ``open`` (the service: read-write, made when missing) or ``open_read_only``
    (the CLI, beside a running service)."""

    def __init__(
        self,
        connection: sqlite3.Connection | None,
        path: Path | None,
        retention: float,
        max_rows: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connection
        """None: a history in memory not used yet (made at its first use)."""
        self.path = path
        """The file (None: kept in memory)."""
        self.retention = retention
        self.max_rows = max_rows
        self._clock = clock
        self._lock = threading.Lock()
        self._since_prune = 0
        self._failing = False
        self._columns: tuple[str, ...] = _COLUMNS
        """The columns read (a history of an earlier schema, read only, lacks some)."""

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = _connect(":memory:")
            self._connection.executescript(_SCHEMA)
        return self._connection

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | None,
        retention: float = 30 * 86400,
        max_rows: int = 100_000,
        *,
        clock: Callable[[], float] = time.time,
    ) -> ActionHistory:
        """The history in ``path`` (None: in memory), made when missing. Never raises: an
        unusable file is set aside and replaced, one that cannot be opened at all gives a
        history in memory, each with one warning. One in memory is made at its first use:
        a service that owes no call never loads SQLite (2 MB resident)."""
        connection = None if path is None else _open_file(path)
        history = cls(connection, None if connection is None else path, retention, max_rows, clock)
        if connection is not None:
            history.prune()
        return history

    @classmethod
    def open_read_only(cls, path: Path) -> ActionHistory:
        """The history in ``path``, for reading only, beside the service that may be writing
        it; ``StateError`` saying why when there is none or it cannot be read. Nothing is
        set aside or written."""
        if not path.is_file():
            raise StateError(f"{path}: no such history file")
        uri = f"file:{_uri_path(path)}?mode=ro"
        try:
            try:
                connection = _checked(uri)
            except sqlite3.OperationalError as exc:
                if "unable to open" not in str(exc):
                    raise
                # A history whose service stopped has no -shm, and one cannot be made in a
                # directory we cannot write: read the file as it is.
                connection = _checked(f"{uri}&immutable=1")
        except (sqlite3.Error, _Unusable) as exc:
            raise StateError(f"{path}: cannot read the history: {exc}") from None
        history = cls(connection, path, math.inf, 0)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        history._columns = _COLUMNS_OF[version]
        return history

    # --- writing -----------------------------------------------------------------------------

    def record(self, entry: HistoryEntry) -> None:
        """Add ``entry``: one INSERT and a commit. Never raises: a failed write is warned
        about (once, until a write works again) and the entry is lost."""
        row = (
            entry.at,
            entry.rule,
            json.dumps(dict(entry.series), sort_keys=True, ensure_ascii=False),
            entry.plugin,
            entry.kind,
            entry.outcome,
            entry.reason,
            entry.detail,
            None if math.isnan(entry.value) else entry.value,
            entry.threshold,
            entry.duration,
            json.dumps(dict(entry.annotations), sort_keys=True, ensure_ascii=False),
            entry.attempt,
            entry.idempotency_key,
            entry.level,
            entry.verified,
        )
        with self._lock:
            try:
                with self._db:
                    self._db.execute(_INSERT, row)
                self._since_prune += 1
                if self._since_prune >= PRUNE_EVERY:
                    self._prune()
            except sqlite3.Error as exc:
                if not self._failing:
                    logger.bind(history=str(self.path or ":memory:"), error=str(exc)).warning(
                        "action history: cannot record an action: {}", exc
                    )
                self._failing = True
                return
        if self._failing:
            logger.bind(history=str(self.path or ":memory:")).info(
                "action history: recording again"
            )
            self._failing = False

    def mark(self, key: str, held: bool) -> None:
        """The fix ``key`` names (a fire or repeat that ran) held or not: its rows say so.
        Never raises (a failed write is warned about, as in ``record``)."""
        with self._lock:
            try:
                with self._db:
                    self._db.execute(_MARK, (held, key))
            except sqlite3.Error as exc:
                logger.bind(history=str(self.path or ":memory:"), error=str(exc)).warning(
                    "action history: cannot mark a fix {}: {}",
                    "verified" if held else "unverified",
                    exc,
                )

    def prune(self) -> None:
        """Delete the rows older than the retention and the oldest beyond ``max_rows``."""
        with self._lock:
            try:
                self._prune()
            except sqlite3.Error as exc:
                logger.bind(history=str(self.path or ":memory:"), error=str(exc)).warning(
                    "action history: cannot delete old rows: {}", exc
                )

    def _prune(self) -> None:
        self._since_prune = 0
        with self._db:
            if math.isfinite(self.retention):
                self._db.execute(
                    "DELETE FROM actions WHERE at < ?", (self._clock() - self.retention,)
                )
            self._db.execute(
                "DELETE FROM actions WHERE id <= "
                "(SELECT id FROM actions ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.max_rows,),
            )

    # --- reading -----------------------------------------------------------------------------

    def query(
        self,
        since: float | None = None,
        rule: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> list[HistoryEntry]:
        """The entries at or after ``since`` (wall clock), of ``rule``, of ``outcome``,
        newest first, at most ``limit``. An empty list when the history cannot be read
        (warned)."""
        where: list[str] = []
        args: list[float | str] = []
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        if rule is not None:
            where.append("rule = ?")
            args.append(rule)
        if outcome is not None:
            where.append("outcome = ?")
            args.append(outcome)
        sql = f"SELECT {', '.join(self._columns)} FROM actions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        with self._lock:
            try:
                rows = self._db.execute(sql, (*args, max(0, limit))).fetchall()
            except sqlite3.Error as exc:
                logger.bind(history=str(self.path or ":memory:"), error=str(exc)).warning(
                    "action history: cannot read it: {}", exc
                )
                return []
        return [_entry(self._columns, row) for row in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM actions").fetchone()[0])

    def close(self) -> None:
        """Close the database (the last connection folds the write-ahead log into the file)."""
        if self._connection is None:
            return
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._connection.close()


def _entry(columns: tuple[str, ...], row: tuple[object, ...]) -> HistoryEntry:
    fields = dict(zip(columns, row, strict=True))
    outcome = str(fields["outcome"])
    value = fields["value"]
    verified = fields.get("verified")
    return HistoryEntry(
        at=float(cast(float, fields["at"])),
        rule=str(fields["rule"]),
        series=_labels(fields["series"]),
        plugin=str(fields["plugin"]),
        kind=str(fields["kind"]),
        outcome=cast(Outcome, outcome) if outcome in OUTCOMES else "failed",
        reason=str(fields["reason"]),
        detail=str(fields["detail"]),
        value=math.nan if value is None else float(cast(float, value)),
        threshold=str(fields["threshold"]),
        duration=float(cast(float, fields["duration"])),
        annotations=_labels(fields["annotations"]),
        attempt=int(cast(int, fields["attempt"])),
        idempotency_key=str(fields["idempotency_key"]),
        level=str(fields["level"]),
        verified=None if verified is None else bool(verified),
    )


def _labels(text: object) -> Mapping[str, str]:
    try:
        data = json.loads(str(text))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


# --- the file ------------------------------------------------------------------------------


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    """A connection any thread may use (``ActionHistory`` serialises them); Python's default
    transactions: a write begins one, ``with connection`` commits it.

    ``sqlite3`` is imported here, the module's name bound for the whole module: every
    ``except sqlite3.Error`` above guards code that has made a connection first."""
    global sqlite3
    import sqlite3

    return sqlite3.connect(target, uri=uri, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)


def _uri_path(path: Path) -> str:
    return quote(str(path.absolute()))


def _checked(uri: str) -> sqlite3.Connection:
    """A read-only connection to the history at ``uri``, checked."""
    connection = _connect(uri, uri=True)
    connection.isolation_level = None  # no transaction kept open: each read sees the newest
    try:
        _check(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _check(connection: sqlite3.Connection) -> None:
    """Raise ``_Unusable`` unless ``connection`` holds this version's history, or an earlier
    version's (``_COLUMNS_OF``)."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version not in _COLUMNS_OF:
        newer = " (a newer metric-reader's)" if version > SCHEMA_VERSION else ""
        raise _Unusable(f"schema version {version}{newer}, expected {SCHEMA_VERSION}")
    columns = tuple(row[1] for row in connection.execute("PRAGMA table_info(actions)"))
    if columns[1:] != _COLUMNS_OF[version]:
        raise _Unusable("its actions table is not the one expected")


def _open_file(path: Path) -> sqlite3.Connection | None:
    """A read-write connection to the history in ``path``: made when missing, set aside and
    made again when unusable; None (warned) when the file cannot be used at all."""
    for attempt in (1, 2):
        connection: sqlite3.Connection | None = None
        try:
            connection = _connect(str(path))
            _prepare(connection)
            return connection
        except (sqlite3.DatabaseError, _Unusable) as exc:
            if connection is not None:
                connection.close()
            unusable = isinstance(exc, _Unusable) or not isinstance(exc, sqlite3.OperationalError)
            if attempt == 1 and unusable and _set_aside(path, str(exc)):
                continue
            reason = str(exc)
        except OSError as exc:
            reason = exc.strerror or str(exc)
        break
    logger.bind(history=str(path), error=reason).warning(
        "action history: cannot use {}: {}; keeping it in memory (lost at a restart)",
        path,
        reason,
    )
    return None


def _prepare(connection: sqlite3.Connection) -> None:
    """The schema checked (or made, in an empty database), then WAL mode: a file that is
    set aside is set aside as it was found."""
    tables = connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    empty = tables == 0 and connection.execute("PRAGMA user_version").fetchone()[0] == 0
    if not empty:
        _check(connection)
        check = connection.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise _Unusable(f"damaged: {check}")
        _migrate(connection)
    if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
        raise sqlite3.OperationalError("the database refused WAL mode")
    connection.execute("PRAGMA synchronous = NORMAL")
    if empty:
        connection.executescript(_SCHEMA)


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a checked history of an earlier schema to this one, every row kept: one
    transaction per step, so a step that fails leaves the file as the step found it."""
    while (version := connection.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
        connection.executescript(f"BEGIN; {_MIGRATIONS[version]} COMMIT;")


def _set_aside(path: Path, reason: str) -> bool:
    """Move the unusable ``path`` (and its write-ahead log, which belongs to it) to
    ``<name>.corrupt-<timestamp>``, with one warning; whether it was moved."""
    aside = path.with_name(f"{path.name}.corrupt-{_utc_stamp(time.time())}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        logger.bind(history=str(path), error=str(exc)).warning(
            "action history {} is unusable ({}) and cannot be set aside: {}", path, reason, exc
        )
        return False
    wal, shm = _sidecars(path)
    with contextlib.suppress(OSError):
        os.replace(wal, aside.with_name(aside.name + "-wal"))
    with contextlib.suppress(OSError):
        shm.unlink()
    logger.bind(history=str(path), error=reason).warning(
        "action history {} is unusable ({}): set aside as {}, starting a new one",
        path,
        reason,
        aside.name,
    )
    return True
