"""SQL helpers shared by the stores: an immediate write, a read snapshot, batched IN lists."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterable, Iterator

BATCH = 500  # ids per IN (...) list, well under SQLite's limit on bound parameters


@contextlib.contextmanager
def write(db) -> Iterator:
    """A write transaction that takes the write lock up front (BEGIN IMMEDIATE).

    Several connections write to one database (the indexer, FUSE threads
    keeping versions, saved queries). A deferred transaction that read
    first and then writes can get SQLITE_BUSY at once, without waiting, if
    another connection wrote meanwhile; an immediate one waits its turn
    (up to the connection's 30 s busy timeout).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()


@contextlib.contextmanager
def snapshot(db) -> Iterator:
    """Several reads that see one state of the database (WAL: writers go on meanwhile).

    Inside a transaction already, that transaction is the snapshot.
    """
    if db.conn.in_transaction:
        yield db
        return
    db.execute(getattr(db, "begin_snapshot", "BEGIN"))  # (a connection that needs more to see one state says so)
    try:
        yield db
    finally:
        db.conn.commit()


def apply_migrations(db, migrations: list, newer: Callable[[int], Exception]) -> None:
    """Apply the numbered ``migrations`` not yet recorded in ``_migrations``, in order, inside the
    caller's write transaction; ``newer(n)`` is raised for a database a newer semfs migrated to ``n``."""
    # DOUBLE PRECISION: a float8 in PostgreSQL; in SQLite, REAL affinity as before
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
    done = {row[0] for row in db.execute("SELECT id FROM _migrations").fetchall()}
    if done and max(done) > len(migrations):
        raise newer(max(done))
    for number, fn in enumerate(migrations, start=1):
        if number not in done:
            fn(db)
            db.execute("INSERT INTO _migrations (id, applied_at) VALUES (?, ?)", [number, time.time()])


def in_batches(db, sql: str, ids: Iterable) -> list:
    """Run ``sql``, whose ``{ids}`` stands for an IN list, over ``ids`` in batches; returns all rows."""
    ids = list(ids)
    rows: list = []
    for i in range(0, len(ids), BATCH):
        part = ids[i : i + BATCH]
        rows += db.execute(sql.format(ids=",".join("?" * len(part))), part).fetchall()
    return rows


class ThreadConnections:
    """One connection per thread, opened on first use by ``open_db`` (SQLite connections
    must not be shared between threads that use them at once)."""

    def __init__(self, open_db) -> None:
        import threading

        self._open = open_db
        self._local = threading.local()

    def get(self):
        db = getattr(self._local, "db", None)
        if db is not None and getattr(db, "broken", False):  # a PostgreSQL server that went away and came back
            try:
                db.close()
            except Exception:
                pass
            db = None
        if db is None:
            db = self._local.db = self._open()
        return db

    def close_mine(self) -> None:
        """Close the calling thread's connection, if it has one."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def readable_rows(conn, table: str, columns: str, deadline: float) -> tuple[list[tuple], bool]:
    """The rows of ``table`` (``columns``) that SQLite can still read in a damaged database, and
    whether some could not be read. Read in rowid order; past a page that fails, rowids are
    tried one by one until one reads (a damaged leaf loses its own rows, not the rest), until
    ``deadline`` (a ``time.monotonic()``)."""
    import sqlite3

    rows: list[tuple] = []
    last, lost = 0, False
    try:
        top = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        return rows, True  # its root or its rightmost pages: nothing to walk from
    while last < top and time.monotonic() < deadline:
        try:
            for r in conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid", [last]):
                rows.append(tuple(r[1:]))
                last = r[0]
            return rows, lost
        except sqlite3.DatabaseError:
            lost = True
        k = last + 1
        while k <= top and time.monotonic() < deadline:
            try:
                r = conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid = ?", [k]).fetchone()
            except sqlite3.DatabaseError:
                k += 1
                continue
            if r is not None:
                rows.append(tuple(r[1:]))
            break
        last = k
    return rows, lost or last < top
