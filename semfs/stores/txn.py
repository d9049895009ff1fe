"""Transactions shared by the stores: an immediate write and a read snapshot."""

from __future__ import annotations

import contextlib
from typing import Iterator


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
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.conn.commit()
