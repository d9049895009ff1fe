"""The catalog of versions and change notes: every query of their tables, and their migrations.

``versions`` holds a row per kept content of a path, numbered per path
(1, 2, ...); its content is a blob (``sha256``) or, until the background
thread stores it, a hard link in ``pending/`` (``pending``).
``change_notes`` holds what the model said a change did, keyed by the
contents before and after (a note describes a change wherever it
happened).

Methods run on the calling thread's connection, inside whatever
transaction that thread has open (``stores.sql.write``), so a caller can
make several of them one transaction. The migrations are numbered in the
one list of :mod:`semfs.stores.metadata`, which runs them in order and
refuses a database from a newer semfs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from .sql import in_batches, readable_rows

_COLUMNS = "path, version, sha256, pending, size, mtime_ns, time, origin"


@dataclass(frozen=True)
class Version:
    path: str
    version: int
    sha256: Optional[str]  # None while pending
    pending: Optional[str]
    size: int
    mtime_ns: int
    time: float
    origin: str  # write, truncate, delete, rename, rollback


def m004_versions(db) -> None:
    db.executescript(
        """
        CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            version INTEGER NOT NULL,
            sha256 TEXT,  -- NULL while the content waits as a hard link in pending/
            pending TEXT,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            time REAL NOT NULL,
            origin TEXT NOT NULL,
            UNIQUE (path, version)
        );
        """
    )


def m006_change_notes(db) -> None:
    # keyed by content: a note describes a change, whichever file or version it happened in
    db.execute(
        "CREATE TABLE change_notes (before TEXT NOT NULL, after TEXT NOT NULL, model TEXT NOT NULL, "
        "note TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (before, after, model))"
    )


class Catalog:
    def __init__(self, connection: Callable[[], object]) -> None:
        """``connection()``: the calling thread's connection to the state database."""
        self._db = connection

    @property
    def db(self):
        return self._db()

    # -- versions: writing ---------------------------------------------------

    def add(
        self,
        path: str,
        version: int,
        sha256: Optional[str],
        pending: Optional[str],
        size: int,
        mtime_ns: int,
        at: float,
        origin: str,
    ) -> None:
        self.db.execute(
            f"INSERT INTO versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [path, version, sha256, pending, size, mtime_ns, at, origin],
        )

    def stored(self, row_id: int, sha256: str) -> None:
        """A pending version's content is now the blob ``sha256``."""
        self.db.execute("UPDATE versions SET sha256 = ?, pending = NULL WHERE id = ?", [sha256, row_id])

    def drop(self, row_ids) -> None:
        in_batches(self.db, "DELETE FROM versions WHERE id IN ({ids})", list(row_ids))

    def move(self, old: str, new: str, is_dir: bool) -> None:
        """The versions of ``old`` (a file, or everything under a folder) now belong to ``new``."""
        if is_dir:
            self.db.execute(
                "UPDATE versions SET path = ? || substr(path, ?) WHERE path >= ? AND path < ?",
                [new, len(old) + 1, old + "/", old + "0"],
            )
        else:
            self.db.execute("UPDATE versions SET path = ? WHERE path = ?", [new, old])

    # -- versions: reading ---------------------------------------------------

    def latest(self, path: str) -> Optional[Version]:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM versions WHERE path = ? ORDER BY version DESC LIMIT 1", [path]
        ).fetchone()
        return Version(*row) if row else None

    def of(self, path: str) -> list[Version]:
        """The versions of ``path``, oldest first."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM versions WHERE path = ? ORDER BY version", [path]).fetchall()
        return [Version(*r) for r in rows]

    def names_under(self, prefix: str) -> set[str]:
        """Names directly under the folder ``prefix`` ('' for the top) of paths that have versions."""
        lo, hi = (prefix + "/", prefix + "0") if prefix else ("", "\U0010ffff")
        rows = self.db.execute("SELECT DISTINCT path FROM versions WHERE path >= ? AND path < ?", [lo, hi])
        return {path[len(lo) :].split("/", 1)[0] for (path,) in rows}

    def has_history(self, path: str) -> bool:
        """Whether ``path`` has versions itself or holds paths that have."""
        row = self.db.execute(
            "SELECT 1 FROM versions WHERE path = ? OR (path >= ? AND path < ?) LIMIT 1", [path, path + "/", path + "0"]
        ).fetchone()
        return row is not None

    def pending_links(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT pending FROM versions WHERE pending IS NOT NULL")}

    def has_pending(self) -> bool:
        return self.db.execute("SELECT 1 FROM versions WHERE pending IS NOT NULL LIMIT 1").fetchone() is not None

    def pending(self, limit: int) -> list[tuple[int, str]]:
        """(row id, link name) of up to ``limit`` versions still waiting as links."""
        return self.db.execute("SELECT id, pending FROM versions WHERE pending IS NOT NULL LIMIT ?", [limit]).fetchall()

    def for_pruning(self) -> list[tuple]:
        """(id, path, version, sha256, pending, time) of every version, oldest first."""
        sql = "SELECT id, path, version, sha256, pending, time FROM versions ORDER BY time, id"
        return self.db.execute(sql).fetchall()

    def blobs_in_use(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT sha256 FROM versions WHERE sha256 IS NOT NULL")}

    def paths_kept_since(self, t: float) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT path FROM versions WHERE time > ?", [t])]

    def counts(self) -> tuple[int, int]:
        """(versions, paths that have them)."""
        return tuple(self.db.execute("SELECT count(*), count(DISTINCT path) FROM versions").fetchone())

    # -- change notes ----------------------------------------------------------

    def note(self, before: str, after: str, model: str) -> Optional[str]:
        """The note on the change between two contents (by sha256), if the model was asked ('' if it had none)."""
        row = self.db.execute(
            "SELECT note FROM change_notes WHERE before = ? AND after = ? AND model = ?", [before, after, model]
        ).fetchone()
        return row[0] if row else None

    def put_note(self, before: str, after: str, model: str, note: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO change_notes (before, after, model, note, created) VALUES (?, ?, ?, ?, ?)",
            [before, after, model, note, time.time()],
        )


def salvage(old, new, deadline: float, present: Callable[[Optional[str], Optional[str]], bool]) -> tuple[int, bool]:
    """Copy into ``new`` the versions and change notes a damaged database (``old``, a
    connection) still gives up, each version only if ``present(sha256, pending)`` (its content
    is still there); inside the caller's write transaction. Returns (versions copied, whether
    some were lost)."""
    rows, lost = readable_rows(old, "versions", _COLUMNS, deadline)
    kept = [r for r in rows if isinstance(r[0], str) and isinstance(r[1], int) and present(r[2], r[3])]
    new.conn.executemany(f"INSERT OR IGNORE INTO versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", kept)
    notes, _ = readable_rows(old, "change_notes", "before, after, model, note, created", deadline)
    new.conn.executemany("INSERT OR IGNORE INTO change_notes VALUES (?, ?, ?, ?, ?)", notes)
    return len(kept), lost or len(kept) < len(rows)
