"""PostgreSQL + pgvector: one index that every mount of a shared folder uses (a team drive).

A database holds any number of folders. Each is a row of ``semfs_folders``
(an id and a name the user chose, ``--folder``), and its tables live in the
schema ``semfs_f<id>``: files, chunks (each with its vector, searched
through a pgvector HNSW index), queue, meta, BM25 segments and postings,
and file names. Mounts of one share on different machines name the same
folder and so use the same rows, whatever their local paths. Versions,
summaries and saved queries stay in each mount's own state dir: they
belong to the machine that kept them.

:class:`PgDatabase` gives a psycopg connection the few methods the stores
call on a sqlite_utils Database (``execute`` with ``?`` parameters,
``conn.executemany/commit/rollback``), so the stores' SQL serves both; the
few statements that differ are in :mod:`.pg_sql`, called by the adapter
(:class:`semfs.stores.backends.PostgresIndex`).

Every write transaction of a folder takes its advisory lock: the stores
were written for SQLite's one writer at a time and count on it (BM25
segments are posted from "the chunks that have none yet").

Caveats: credentials never come from the command line. A URL that holds
a password is refused; libpq reads ``PGPASSWORD`` or ``~/.pgpass``
(which it ignores unless it is 0600). psycopg is imported only by the
processes that use a PostgreSQL index.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from ..errors import SemfsError

log = logging.getLogger(__name__)

ENV_URL = "SEMFS_INDEX_URL"
ENV_FOLDER = "SEMFS_INDEX_FOLDER"
_BOOTSTRAP_LOCK = 0x73656D6673  # "semfs": creating the folder registry and a folder's schema
_WRITE = "BEGIN IMMEDIATE"  # how stores.sql.write opens a write transaction
_FOLDER_LOCK_CLASS = 1936  # pg_advisory_xact_lock(class, folder id): one writer per folder


class IndexUnreachable(SemfsError):
    """The PostgreSQL index cannot be reached or used."""


def check_url(url: str) -> str:
    """``url`` if it is a PostgreSQL URL without a password in it; else a one-line error."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise IndexUnreachable(f"not a PostgreSQL URL: {parts.scheme or url!r} (expected postgresql://...)")
    if parts.password or "password=" in parts.query.lower():
        raise IndexUnreachable(
            "the index URL holds a password, which any user can read on the command line or in ps: "
            "put it in ~/.pgpass (mode 0600) or PGPASSWORD instead"
        )
    return url


def check_folder(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        raise IndexUnreachable(f"invalid folder name {name!r} for the index: letters, digits, '.', '_', '-'")
    return name


@functools.lru_cache(maxsize=512)
def _sql(sql: str) -> str:
    """SQLite's ``?`` parameters as psycopg's ``%s`` (a literal ``%`` doubled)."""
    if sql == _WRITE:
        return "BEGIN"
    return sql.replace("%", "%%").replace("?", "%s")


class _Conn:
    """The part of a sqlite3.Connection the stores call (``db.conn``)."""

    def __init__(self, pg) -> None:
        self._pg = pg

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self._pg.info.transaction_status != TransactionStatus.IDLE

    def executemany(self, sql: str, rows: Iterable) -> None:
        rows = list(rows)
        if rows:
            with self._pg.cursor() as cur:
                cur.executemany(_sql(sql), rows)

    def commit(self) -> None:
        if self.in_transaction:
            self._pg.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self._pg.execute("ROLLBACK")


class PgDatabase:
    """One connection to one folder's schema, used like the stores use a SQLite database."""

    begin_snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ"  # read committed sees each statement's own moment
    ef_search: Optional[int] = None  # the session's hnsw.ef_search, once set (pgvectors)

    def __init__(self, pg, folder_id: int) -> None:
        self.pg = pg
        self.folder_id = folder_id
        self.conn = _Conn(pg)

    def execute(self, sql: str, params: Optional[Iterable[Any]] = None):
        cur = self.pg.execute(_sql(sql), list(params) if params is not None else None)
        if sql == _WRITE:  # a write: the folder's one writer at a time
            self.pg.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_FOLDER_LOCK_CLASS, self.folder_id])
        return cur

    def close(self) -> None:
        self.pg.close()

    @property
    def broken(self) -> bool:
        """Whether the connection is lost (the server went away): a new one is needed."""
        return bool(self.pg.closed or self.pg.broken)


TEAM_MISSING = (
    "an index in PostgreSQL needs psycopg and pgvector, semfs's team extra: pip install 'semfs[team]' "
    "(make install brings it)"
)


class PgIndex:
    """Where one folder's index lives in PostgreSQL: connects, creates and migrates its schema."""

    def __init__(self, url: str, folder: str) -> None:
        self.url = check_url(url)
        self.folder = check_folder(folder)
        self._id: Optional[int] = None
        self._lock = threading.Lock()
        self._notifier: Optional[PgDatabase] = None

    @property
    def folder_id(self) -> int:
        if self._id is None:
            with self._lock:
                if self._id is None:
                    self._id = self._bootstrap()
        return self._id

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel on which the folder's writers announce a change."""
        return f"semfs_f{self.folder_id}"

    def describe(self) -> str:
        p = urlsplit(self.url)
        host = p.hostname or dict(q.split("=", 1) for q in p.query.split("&") if "=" in q).get("host", "local socket")
        return f"PostgreSQL {host}{p.path or ''}, folder {self.folder!r}"

    def _connect_raw(self):
        try:
            import pgvector.psycopg  # noqa: F401  (connect() registers its type)
            import psycopg
        except ImportError:
            raise IndexUnreachable(TEAM_MISSING) from None
        try:
            timeout = int(os.environ.get("PGCONNECT_TIMEOUT", 5))  # libpq's own variable; it waits for ever without
            return psycopg.connect(self.url, autocommit=True, connect_timeout=timeout)
        except psycopg.Error as e:
            raise IndexUnreachable(f"the index at {self.describe()} is unreachable: {_one_line(e)}") from None

    def _bootstrap(self) -> int:
        from .pg_schema import migrate

        pg = self._connect_raw()
        try:
            with pg.transaction():
                pg.execute("SELECT pg_advisory_xact_lock(%s)", [_BOOTSTRAP_LOCK])
                pg.execute("CREATE EXTENSION IF NOT EXISTS vector")
                pg.execute(
                    "CREATE TABLE IF NOT EXISTS semfs_folders (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                    "created DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))"
                )
                pg.execute("INSERT INTO semfs_folders (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", [self.folder])
                fid = pg.execute("SELECT id FROM semfs_folders WHERE name = %s", [self.folder]).fetchone()[0]
                pg.execute(f"CREATE SCHEMA IF NOT EXISTS semfs_f{int(fid)}")
                pg.execute(f"SET LOCAL search_path TO semfs_f{int(fid)}, public")
                migrate(PgDatabase(pg, fid))
            return int(fid)
        except IndexUnreachable:
            raise
        except Exception as e:
            raise IndexUnreachable(f"the index at {self.describe()} cannot be used: {_one_line(e)}") from None
        finally:
            pg.close()

    def connect(self) -> PgDatabase:
        """A new connection to the folder's schema (one per thread, as with SQLite)."""
        fid = self.folder_id
        pg = self._connect_raw()
        try:
            pg.execute(f"SET search_path TO semfs_f{fid}, public")
            from pgvector.psycopg import register_vector

            register_vector(pg)
        except Exception:
            pg.close()
            raise
        return PgDatabase(pg, fid)

    def notify(self, what: str = "") -> None:
        """Tell every mount of the folder that its index changed (LISTEN/NOTIFY)."""
        with self._lock:
            if self._notifier is None or self._notifier.broken:
                self._notifier = self.connect()
            self._notifier.pg.execute("SELECT pg_notify(%s, %s)", [self.channel, what])

    def listen(self, on_change, stop: threading.Event) -> None:
        """Call ``on_change()`` for every change another mount (or worker) announces, until ``stop``
        is set; reconnects while the server is away. Runs in a thread of its own."""
        while not stop.is_set():
            try:
                db = self.connect()
            except Exception as e:
                log.info("cannot listen for changes to the index (%s); trying again", e)
                stop.wait(2.0)
                continue
            try:
                db.pg.execute(f"LISTEN {self.channel}")
                on_change()  # whatever happened while not listening
                while not stop.is_set():
                    if any(True for _ in db.pg.notifies(timeout=0.5)):
                        on_change()
            except Exception as e:
                log.info("lost the index's change notices (%s); listening again", _one_line(e))
                stop.wait(1.0)
            finally:
                try:
                    db.close()
                except Exception:
                    pass


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def transient_errors() -> tuple[type[BaseException], ...]:
    """The psycopg errors worth trying again (the server went away, a deadlock), if psycopg is loaded."""
    import sys

    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return ()
    return (psycopg.OperationalError, psycopg.errors.DeadlockDetected, IndexUnreachable)
