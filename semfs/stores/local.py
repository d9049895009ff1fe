"""This machine's own state beside the index: :class:`LocalStore`.

What belongs to the machine that kept it, never to a shared index: the
catalog of versions and change notes (:mod:`.catalog`), the summaries the
LLM wrote, the saved queries, the status words of ``semfs status`` and
the user's settings (the ``meta`` table). They live in the state dir's
database whatever the index; a PostgreSQL index holds the files and
chunks elsewhere, and the embedded index's tables share this file (one
WAL, one check and heal at mount, one backup: see docs/DESIGN.md). The
indexer never reads them. A mount opens one pool of connections to them
(:class:`LocalStore`), shared by the versions keeper, the query folders
and status; their migrations (2, 3, 4, 6) are numbered in the state
database's one list (:data:`semfs.stores.metadata.MIGRATIONS`) and their
rows are salvaged from a damaged database (:func:`salvage`).
"""

from __future__ import annotations

import time
from typing import Optional

import sqlite_utils

from .sql import ThreadConnections, readable_rows, write


class LocalStore:
    """The state dir's own tables, one connection per thread (opened on first use)."""

    def __init__(self, state_dir) -> None:
        from pathlib import Path

        from . import metadata as md  # (metadata numbers this module's migrations: imported late)
        from .catalog import Catalog

        self.state_dir = Path(state_dir)
        self._conns = ThreadConnections(lambda: md.open_db(self.state_dir))
        self.catalog = Catalog(self.db)  # every query of the versions table

    def db(self) -> sqlite_utils.Database:
        """The calling thread's connection."""
        return self._conns.get()

    def close_mine(self) -> None:
        self._conns.close_mine()

    def word(self, key: str) -> Optional[str]:
        """A status word or setting (``meta``)."""
        from . import metadata as md

        return md.get_meta(self.db(), key)

    def record(self, key: str, value: str) -> None:
        """Set a status word or setting, in its own transaction."""
        from . import metadata as md

        with write(self.db()):
            md.set_meta(self.db(), key, value)


def m002_saved_queries(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE saved_queries (name TEXT PRIMARY KEY, prompt TEXT NOT NULL, created REAL NOT NULL)")


def m003_summaries(db: sqlite_utils.Database) -> None:
    # keyed by content: a changed file has a new sha256 and so no summary yet
    db.execute(
        "CREATE TABLE summaries (sha256 TEXT NOT NULL, model TEXT NOT NULL, summary TEXT NOT NULL, "
        "created REAL NOT NULL, PRIMARY KEY (sha256, model))"
    )


def get_summary(db: sqlite_utils.Database, sha256: str, model: str) -> Optional[str]:
    row = db.execute("SELECT summary FROM summaries WHERE sha256 = ? AND model = ?", [sha256, model]).fetchone()
    return row[0] if row else None


def put_summary(db: sqlite_utils.Database, sha256: str, model: str, summary: str) -> None:
    with write(db):
        db.execute(
            "INSERT OR REPLACE INTO summaries (sha256, model, summary, created) VALUES (?, ?, ?, ?)",
            [sha256, model, summary, time.time()],
        )


def saved_queries(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    return [tuple(r) for r in db.execute("SELECT name, prompt FROM saved_queries ORDER BY name")]


def save_query(db: sqlite_utils.Database, name: str, prompt: str) -> None:
    with write(db):
        db.execute(
            "INSERT INTO saved_queries (name, prompt, created) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET prompt = excluded.prompt",
            [name, prompt, time.time()],
        )


def rename_query(db: sqlite_utils.Database, old: str, new: str, prompt: str) -> bool:
    """Saved query ``old`` as ``new``, asking ``prompt``; False if ``old`` is gone or ``new`` is taken."""
    with write(db):
        return (
            db.execute(
                "UPDATE saved_queries SET name = ?, prompt = ? WHERE name = ? "
                "AND NOT EXISTS (SELECT 1 FROM saved_queries WHERE name = ?)",
                [new, prompt, old, new],
            ).rowcount
            > 0
        )


def delete_query(db: sqlite_utils.Database, name: str) -> bool:
    with write(db):
        return db.execute("DELETE FROM saved_queries WHERE name = ?", [name]).rowcount > 0


def salvage(old, new: sqlite_utils.Database, deadline: float) -> tuple[int, bool]:
    """Copy into ``new`` the saved queries and summaries a damaged database (``old``, a
    connection) still gives up, inside the caller's write transaction. Returns (saved queries
    copied, whether some could not be read)."""
    saved, lost = readable_rows(old, "saved_queries", "name, prompt, created", deadline)
    new.conn.executemany("INSERT OR IGNORE INTO saved_queries (name, prompt, created) VALUES (?, ?, ?)", saved)
    summaries, _ = readable_rows(old, "summaries", "sha256, model, summary, created", deadline)
    new.conn.executemany("INSERT OR IGNORE INTO summaries VALUES (?, ?, ?, ?)", summaries)
    return len(saved), lost
