"""A checkpoint store on SQLite, for applications that stream events through a session and
must survive a restart or a crash without losing or doubling an obligation.

The recipe (see docs/reliability.md)::

    store = CheckpointStore("policykit.db", engine)
    found = store.load("payroll")
    session, last = found if found else (engine.session(), None)
    for event in source.events_after(last):        # your log, queue or table
        for decision in session.feed(event):
            deliver(decision)                      # idempotent by decision.id
        if time_to_checkpoint():
            store.save("payroll", session, event["id"])

Deliver decisions *before* saving the checkpoint that covers them. After a crash the
restored session is at the last checkpoint, and replaying the events after it returns the
decisions delivered since then again, with the same ids (ids are deterministic): delivering
idempotently by id makes the result exactly that of an uninterrupted run.

Each save is one SQLite transaction in WAL mode with ``synchronous=FULL``: a checkpoint is
either wholly there or not at all, whatever instant the process dies.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import CheckpointError, ParameterError

if TYPE_CHECKING:
    from .engine import Engine, Session

__all__ = ["CheckpointError", "CheckpointStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS policykit_checkpoints (
    stream_id TEXT PRIMARY KEY,
    snapshot BLOB NOT NULL,
    last_event_id TEXT,
    fingerprint TEXT NOT NULL,
    backend TEXT NOT NULL,
    clock TEXT,
    saves INTEGER NOT NULL
)
"""




class CheckpointStore:
    """Session checkpoints by stream id in one SQLite file (standard library only).

    ``engine`` (or the ``engine`` argument of :meth:`load`) is the engine sessions are
    restored into: a checkpoint written by another policy set or backend is refused with
    :class:`~policykit.SnapshotError`. The store may be shared by threads."""

    def __init__(self, path: str | Path, engine: Engine | None = None, *,
                 synchronous: Literal["FULL", "NORMAL"] = "FULL", timeout: float = 30.0) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ParameterError("synchronous", synchronous, "'FULL' or 'NORMAL'")
        self.path = str(path)
        self.engine = engine
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise CheckpointError(f"{self.path}: cannot open the checkpoint store: {exc}") \
                from None

    def save(self, stream_id: str, session: Session, last_event_id: str | None) -> None:
        """Store ``session``'s snapshot as the checkpoint of ``stream_id``, replacing the
        previous one atomically. ``last_event_id``: the last event fed before it (where to
        resume reading your event source)."""
        _check_id(stream_id)
        snapshot = session.snapshot()
        clock = session.clock.isoformat() if session.clock is not None else None
        fingerprint = session.fingerprint or ""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute(
                        "INSERT INTO policykit_checkpoints (stream_id, snapshot, last_event_id,"
                        " fingerprint, backend, clock, saves) VALUES (?, ?, ?, ?, ?, ?, 1) "
                        "ON CONFLICT(stream_id) DO UPDATE SET snapshot = excluded.snapshot, "
                        "last_event_id = excluded.last_event_id, "
                        "fingerprint = excluded.fingerprint, backend = excluded.backend, "
                        "clock = excluded.clock, saves = saves + 1",
                        (stream_id, snapshot, last_event_id, fingerprint, session.backend,
                         clock))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise CheckpointError(f"{self.path}: cannot save checkpoint {stream_id!r}: "
                                      f"{exc}") from None

    def load_bytes(self, stream_id: str) -> tuple[bytes, str | None] | None:
        """The raw snapshot of ``stream_id`` and its last event id, or None."""
        _check_id(stream_id)
        rows = self._query("SELECT snapshot, last_event_id FROM policykit_checkpoints "
                           "WHERE stream_id = ?", (stream_id,))
        if not rows:
            return None
        snapshot, last = rows[0]
        if not isinstance(snapshot, bytes) or not (last is None or isinstance(last, str)):
            raise CheckpointError(f"{self.path}: checkpoint {stream_id!r} is not a snapshot")
        return snapshot, last

    def load(self, stream_id: str,
             engine: Engine | None = None) -> tuple[Session, str | None] | None:
        """The restored session of ``stream_id`` and the last event id saved with it, or
        None when the stream has no checkpoint yet."""
        chosen = engine or self.engine
        if chosen is None:
            raise ParameterError("engine", None, "the Engine to restore sessions into (give it "
                                 "to CheckpointStore(path, engine) or to load)")
        found = self.load_bytes(stream_id)
        if found is None:
            return None
        snapshot, last = found
        return chosen.restore(snapshot), last

    def saves(self, stream_id: str) -> int:
        """How many times ``stream_id`` was saved (0 if never)."""
        _check_id(stream_id)
        rows = self._query("SELECT saves FROM policykit_checkpoints WHERE stream_id = ?",
                           (stream_id,))
        return int(str(rows[0][0])) if rows else 0

    def streams(self) -> list[str]:
        """The stream ids that have a checkpoint."""
        rows = self._query("SELECT stream_id FROM policykit_checkpoints ORDER BY stream_id")
        return [str(r[0]) for r in rows]

    def delete(self, stream_id: str) -> None:
        """Forget the checkpoint of ``stream_id`` (e.g. when its stream is finished)."""
        _check_id(stream_id)
        self._query("DELETE FROM policykit_checkpoints WHERE stream_id = ?", (stream_id,))

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise CheckpointError(f"{self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_id(stream_id: object) -> None:
    if not isinstance(stream_id, str) or not 1 <= len(stream_id) <= 256:
        raise ParameterError("stream_id", stream_id, "a non-empty string of at most 256 "
                             "characters")
