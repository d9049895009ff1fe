"""This machine's own tables beside the index: the summaries the LLM wrote and the saved queries.

They live in the state dir's database whatever the index (a PostgreSQL
index holds the files and chunks; these stay here), and only here: the
indexer never reads them. Their migrations are numbered in the one list
of :mod:`semfs.stores.metadata`; their rows are salvaged from a damaged
database (:func:`salvage`).
"""

from __future__ import annotations

import time
from typing import Optional

import sqlite_utils

from .sql import readable_rows, write


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
