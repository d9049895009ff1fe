"""SQLite metadata: files, chunks, keyword index and the index queue.

Chunk text is ranked by our own BM25 segments (:mod:`.lexical`); file
names by an FTS5 table, one row per file.

One database per state dir, in WAL mode so the daemon's writer and any
number of readers (``semfs search``, ``semfs status``) work at once.
Each connection belongs to one thread; open one per thread with
:func:`open_db`.

Schema changes are numbered migrations, applied in order and recorded in
``_migrations``; a database newer than this code is refused rather than
misread.

Chunk ids are the vector ids in the FAISS index. They come from
AUTOINCREMENT and are never reused, so a vector left behind by a crash can
never be mistaken for a newer chunk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import sqlite_utils

from ..errors import SemfsError
from . import lexical, local
from .catalog import m004_versions, m006_change_notes
from .local import m002_saved_queries, m003_summaries
from .private import FILE_MODE, private_dir, private_file
from .sql import apply_migrations, in_batches, readable_rows, write

DB_NAME = "semfs.db"

log = logging.getLogger(__name__)


class StoreError(SemfsError):
    """The metadata database cannot be used as it is."""


def _m001_files_chunks_queue(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT,
            kind TEXT,
            text_len INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL,
            error TEXT
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            text TEXT NOT NULL,
            has_vector INTEGER NOT NULL
        );
        CREATE INDEX chunks_file ON chunks(file_id);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(text, name, tokenize = 'porter unicode61');
        CREATE TABLE queue (
            path TEXT PRIMARY KEY,
            due REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


def _m005_own_bm25(db: sqlite_utils.Database) -> None:
    # FTS5 ranked chunk text too slowly at scale (see stores/lexical.py);
    # it keeps the file names, one row per file, where renames are one update.
    for stmt in (
        "DROP TABLE chunks_fts",
        "ALTER TABLE chunks ADD COLUMN lex_segment INTEGER",  # NULL: not posted yet; 0: no terms
        "ALTER TABLE chunks ADD COLUMN lex_len INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX chunks_unposted ON chunks(id) WHERE lex_segment IS NULL",
        "CREATE INDEX chunks_segment ON chunks(lex_segment)",
        """CREATE TABLE lex_segments (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, total_len INTEGER NOT NULL,
             dead INTEGER NOT NULL, dead_len INTEGER NOT NULL, ids BLOB NOT NULL, lens BLOB NOT NULL)""",
        """CREATE TABLE lex_postings (id INTEGER PRIMARY KEY, term TEXT NOT NULL, segment INTEGER NOT NULL,
             pos BLOB NOT NULL, tf BLOB NOT NULL)""",
        "CREATE UNIQUE INDEX lex_postings_term ON lex_postings(term, segment)",
        "CREATE INDEX lex_postings_segment ON lex_postings(segment)",
        "CREATE VIRTUAL TABLE names_fts USING fts5(name, tokenize = 'porter unicode61')",
    ):
        db.execute(stmt)
    db.conn.executemany(
        "INSERT INTO names_fts (rowid, name) VALUES (?, ?)",
        [(fid, name_words(path)) for fid, path in db.execute("SELECT id, path FROM files").fetchall()],
    )
    lexical.post_pending(db)


def _m007_segment_ids_never_reused(db: sqlite_utils.Database) -> None:
    # An INTEGER PRIMARY KEY gives the highest id again once its row is deleted (maintain()
    # drops the newest segment when it is all dead), and LexicalIndex caches each segment's
    # arrays by id: the new segment was read with the old one's (an IndexError, or wrong
    # scores). AUTOINCREMENT never gives an id twice. (PostgreSQL's BIGSERIAL never did.)
    for stmt in (
        """CREATE TABLE lex_segments_new (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL,
             total_len INTEGER NOT NULL, dead INTEGER NOT NULL, dead_len INTEGER NOT NULL,
             ids BLOB NOT NULL, lens BLOB NOT NULL)""",
        "INSERT INTO lex_segments_new SELECT id, n, total_len, dead, dead_len, ids, lens FROM lex_segments",
        "DROP TABLE lex_segments",
        "ALTER TABLE lex_segments_new RENAME TO lex_segments",
    ):
        db.execute(stmt)


def _m008_chunk_lines(db: sqlite_utils.Database) -> None:
    # chunks written before it have none: their passages carry no line until the file changes
    db.execute("ALTER TABLE chunks ADD COLUMN line INTEGER")


# One numbered list for the whole database; each table's owner writes its own (4 and 6: the catalog
# of versions; 2 and 3: this machine's saved queries and summaries, in .local).
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m001_files_chunks_queue,
    m002_saved_queries,
    m003_summaries,
    m004_versions,
    _m005_own_bm25,
    m006_change_notes,
    _m007_segment_ids_never_reused,
    _m008_chunk_lines,
]


def open_db(state_dir: Path) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) the database of ``state_dir``.

    A database SQLite cannot read is moved aside (``semfs.db.corrupt-<time>``)
    and a new one started: everything in it can be rebuilt from the
    backing folder, and a writer that refused to start would never heal.
    """
    private_dir(state_dir)
    path = state_dir / DB_NAME
    for attempt in range(50):
        try:
            return open_file(path)
        except sqlite3.DatabaseError as e:
            if is_damage(e) and str(path) in served:
                raise  # its mount heals it in place (moved, the mount's other connections would keep the old one)
            if is_damage(e):
                break
            # busy or locked (another connection is creating the file or
            # switching it to WAL): not damage; wait and try again
            if attempt == 49:
                raise StoreError(f"the index database {path} stays locked ({e})") from None
            time.sleep(0.05 * (attempt + 1))
    move_aside(path, "SQLite cannot read it")
    return _open(path)


served: set[str] = set()  # databases a mount in this process serves from (stores.healing arms it)


def open_file(path: Path) -> sqlite_utils.Database:
    """The database at ``path`` (0600), created and migrated as needed."""
    _create(path)
    private_file(path)
    db = _open(path)
    for suffix in ("-wal", "-shm"):  # made by an older semfs, or before the line above
        if os.path.exists(f"{path}{suffix}"):
            private_file(Path(f"{path}{suffix}"))
    return db


def copy_aside(path: Path) -> Optional[Path]:
    """A copy of a damaged database at ``path`` (and its WAL) as ``semfs.db.corrupt-<time>``,
    for whoever wants to look at it; None if it could not be made (a full disk, say).

    Copied by a child process: a descriptor of the database opened and closed here would drop
    the POSIX locks this process's connections hold on it (see :func:`_create`)."""
    import subprocess

    aside = _aside_name(path)
    try:
        for src, dst in ((str(path), str(aside)), (f"{path}-wal", f"{aside}-wal")):
            if os.path.exists(src):
                _create(Path(dst))  # (0600 before a byte is copied; cp keeps the mode of a file it overwrites)
                r = subprocess.run(["cp", "--", src, dst], capture_output=True, text=True)
                if r.returncode != 0:
                    raise OSError(r.stderr.strip() or f"cp exited with {r.returncode}")
    except OSError as e:
        log.warning("could not keep a copy of the damaged database %s: %s", path, e)
        for name in (str(aside), f"{aside}-wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        return None
    return aside


def overwrite(path: Path, new: sqlite_utils.Database) -> None:
    """Make the database at ``path`` hold what ``new`` holds, page by page (SQLite's backup),
    in place: connections open to it go on, and see the new content at their next read (its
    name and its WAL's stay, so no connection can delete the other's WAL)."""
    dest = sqlite3.connect(str(path), timeout=30)
    try:
        new.conn.backup(dest)
    finally:
        dest.close()


def move_aside(path: Path, why: str) -> Path:
    """``path`` as ``semfs.db.corrupt-<time>``, its WAL beside it (what can be salvaged from
    them is read later, :mod:`.healing`); the vector file goes (:func:`drop_vectors`). Returns
    where it went."""
    aside = _aside_name(path)
    log.warning("index database %s is damaged (%s): moved to %s, rebuilding from the backing folder", path, why, aside)
    os.replace(path, aside)
    if os.path.exists(f"{path}-wal"):
        os.replace(f"{path}-wal", f"{aside}-wal")
    Path(f"{path}-shm").unlink(missing_ok=True)
    drop_vectors(path.parent)
    return aside


def drop_vectors(state_dir: Path) -> None:
    """Remove the vector file of ``state_dir`` whose database was found damaged: its ids are
    that database's chunk ids, which the rebuilt one gives to other chunks."""
    from . import vectors

    vectors.drop(state_dir)


ASIDE_KEPT = 3  # damaged copies kept (a failing disk could otherwise fill itself with them)


def _aside_name(path: Path) -> Path:
    """A new name for a damaged copy; the oldest ones beyond ``ASIDE_KEPT - 1`` go."""
    old = sorted(path.parent.glob(f"{DB_NAME}.corrupt-*[0-9]"), key=lambda p: p.stat().st_mtime)
    for gone in old[: max(0, len(old) - (ASIDE_KEPT - 1))]:
        for name in (str(gone), f"{gone}-wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = path.with_name(f"{DB_NAME}.corrupt-{stamp}"), 1
    while os.path.lexists(aside):  # (damaged again within the second)
        n += 1
        aside = path.with_name(f"{DB_NAME}.corrupt-{stamp}-{n}")
    return aside


CHECK_SECONDS = 10.0  # at most this long checking a database at mount; a check cut short passes


def check_db(state_dir: Path) -> Optional[Path]:
    """Where the database of ``state_dir`` was moved if it fails SQLite's quick_check (every page
    read and checked, not its indexes against its tables), else None (also when there is none);
    the next :func:`open_db` then starts a new one. For a mount's start, with the state lock
    held: nobody else writes."""
    path = state_dir / DB_NAME
    if not path.exists():
        return None
    deadline = time.monotonic() + CHECK_SECONDS
    try:
        conn = sqlite3.connect(str(path), timeout=30)
        try:
            conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
            rows = conn.execute("PRAGMA quick_check(1)").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        if "interrupted" in str(e):
            log.info("the check of %s took over %.0f s: cut short, the database used as it is", path, CHECK_SECONDS)
            return None
        if not is_damage(e):
            return None  # busy, locked: not damage, and open_db says what it is
        return move_aside(path, str(e))
    if rows == [("ok",)]:
        return None
    return move_aside(path, str(rows[0][0]) if rows else "quick_check said nothing")


def is_damage(e: BaseException) -> bool:
    """Whether ``e`` is SQLite saying its file is damaged (not busy, locked or full)."""
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    msg = str(e).lower()
    return "not a database" in msg or "malformed" in msg or "corrupt" in msg


def _create(path: Path) -> None:
    """A new database file, 0600 before SQLite makes -wal and -shm (which copy its mode).

    Only a file that does not exist yet is opened here: closing any other
    descriptor of a database would drop the POSIX locks that this process's
    SQLite connections hold on it (and corrupt it)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        pass


def _open(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(path, timeout=30, isolation_level="")  # type: ignore[call-overload]  # "": no autocommit
    try:
        db = sqlite_utils.Database(conn)
        db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
        db.execute("SELECT count(*) FROM files").fetchone()
    except BaseException:
        conn.close()
        raise
    return db


def migrate(db: sqlite_utils.Database) -> None:
    try:  # already up to date: no need to queue for the write lock
        done = {row[0] for row in db.execute("SELECT id FROM _migrations").fetchall()}
        if done == set(range(1, len(MIGRATIONS) + 1)):
            return
    except sqlite3.OperationalError:
        pass  # a new database
    with write(db):
        apply_migrations(
            db, MIGRATIONS, lambda n: StoreError(f"the index database is from a newer semfs (migration {n})")
        )


# -- files and chunks --------------------------------------------------------


@dataclass(frozen=True)
class FileRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: Optional[str]
    kind: Optional[str]
    error: Optional[str]


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    start: int
    end: int
    text: str
    has_vector: bool
    line: Optional[int] = None  # the line of the file's text it starts on (None: not known)


_WORD_SPLIT = re.compile(r"[\W_]+")


def storable(rel: str) -> bool:
    """Whether a path can be a key here: a name that is not UTF-8 (its bytes come
    as surrogates) cannot. Such files are neither indexed nor versioned."""
    try:
        rel.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def name_words(path: str) -> str:
    """A path as words for full-text search: ``a/b-c.md`` -> ``a b c md``."""
    return " ".join(w for w in _WORD_SPLIT.split(path) if w)


def get_file(db: sqlite_utils.Database, path: str) -> Optional[FileRow]:
    row = db.execute(
        "SELECT id, path, size, mtime_ns, sha256, kind, error FROM files WHERE path = ?", [path]
    ).fetchone()
    return FileRow(*row) if row else None


def iter_files(db: sqlite_utils.Database) -> Iterator[FileRow]:
    for row in db.execute("SELECT id, path, size, mtime_ns, sha256, kind, error FROM files"):
        yield FileRow(*row)


def chunk_ids(db: sqlite_utils.Database, file_id: int) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM chunks WHERE file_id = ? AND has_vector = 1", [file_id])]


def upsert_file(
    db: sqlite_utils.Database,
    path: str,
    size: int,
    mtime_ns: int,
    sha256: Optional[str],
    kind: Optional[str],
    text_len: int,
    error: Optional[str],
) -> int:
    """Insert or update the row of ``path``; returns its id."""
    new = db.execute("SELECT 1 FROM files WHERE path = ?", [path]).fetchone() is None
    db.execute(
        """INSERT INTO files (path, size, mtime_ns, sha256, kind, text_len, indexed_at, error)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
             sha256 = excluded.sha256, kind = excluded.kind, text_len = excluded.text_len,
             indexed_at = excluded.indexed_at, error = excluded.error""",
        [path, size, mtime_ns, sha256, kind, text_len, time.time(), error],
    )
    fid = db.execute("SELECT id FROM files WHERE path = ?", [path]).fetchone()[0]
    if new:
        db.execute("INSERT INTO names_fts (rowid, name) VALUES (?, ?)", [fid, name_words(path)])
    return fid


def touch_file(db: sqlite_utils.Database, file_id: int, size: int, mtime_ns: int) -> None:
    """Record a new size/mtime for content that did not change."""
    db.execute(
        "UPDATE files SET size = ?, mtime_ns = ?, indexed_at = ? WHERE id = ?", [size, mtime_ns, time.time(), file_id]
    )


def replace_chunks(db: sqlite_utils.Database, file_id: int, chunks: Iterable[NewChunk]) -> list[int]:
    """Replace the chunks of a file; returns the new chunk ids, in order (old ones: see delete_chunks).

    The new chunks are searchable by keyword once :func:`lexical.post_pending`
    has run, at the end of the same transaction.
    """
    delete_chunks(db, file_id)
    ids = []
    for c in chunks:
        row = db.execute(
            'INSERT INTO chunks (file_id, ordinal, start, "end", text, has_vector, line) VALUES (?, ?, ?, ?, ?, ?, ?) '
            "RETURNING id",
            [file_id, c.ordinal, c.start, c.end, c.text, int(c.has_vector), c.line],
        ).fetchone()
        ids.append(int(row[0]))
    return ids


def delete_chunks(db: sqlite_utils.Database, file_id: int) -> None:
    lexical.forget_file_chunks(db, file_id)
    db.execute("DELETE FROM chunks WHERE file_id = ?", [file_id])


def delete_file(db: sqlite_utils.Database, path: str) -> list[int]:
    """Forget ``path``; returns the vector ids to remove."""
    row = get_file(db, path)
    if row is None:
        return []
    ids = chunk_ids(db, row.id)
    delete_chunks(db, row.id)
    db.execute("DELETE FROM names_fts WHERE rowid = ?", [row.id])
    db.execute("DELETE FROM files WHERE id = ?", [row.id])
    return ids


def files_under(db: sqlite_utils.Database, prefix: str) -> list[FileRow]:
    """Files at ``prefix`` or below it (a directory path, no trailing slash)."""
    lo = prefix + "/"
    hi = prefix + "0"  # '0' sorts right after '/'
    rows = db.execute(
        "SELECT id, path, size, mtime_ns, sha256, kind, error FROM files WHERE path = ? OR (path >= ? AND path < ?)",
        [prefix, lo, hi],
    ).fetchall()
    return [FileRow(*r) for r in rows]


def rename_file(db: sqlite_utils.Database, file_id: int, new_path: str) -> None:
    """Re-key a file (its chunks and vectors stay: content did not change).

    The caller first deletes whatever was indexed at ``new_path``.
    """
    db.execute("UPDATE files SET path = ? WHERE id = ?", [new_path, file_id])
    db.execute("UPDATE names_fts SET name = ? WHERE rowid = ?", [name_words(new_path), file_id])


def get_meta(db: sqlite_utils.Database, key: str) -> Optional[str]:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def record_meta(state_dir: Path, key: str, value: str) -> None:
    """Set one meta value of the database in ``state_dir`` through a short-lived connection."""
    db = open_db(state_dir)
    try:
        with write(db):
            set_meta(db, key, value)
    finally:
        db.close()


def vector_chunk_ids(db: sqlite_utils.Database) -> set[int]:
    return {r[0] for r in db.execute("SELECT id FROM chunks WHERE has_vector = 1")}


def chunks_by_id(db: sqlite_utils.Database, ids: Iterable[int]) -> list[tuple[int, str]]:
    return in_batches(db, "SELECT id, text FROM chunks WHERE id IN ({ids})", ids)


# -- queue ---------------------------------------------------------------


def enqueue(db: sqlite_utils.Database, paths: Iterable[str], due: float) -> None:
    """Ask for ``paths`` to be checked against the disk at ``due`` (later events push it back)."""
    db.conn.executemany(
        "INSERT INTO queue (path, due) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET due = "
        "CASE WHEN excluded.due > queue.due THEN excluded.due ELSE queue.due END",
        [(p, due) for p in paths],
    )


def dequeue_due(db: sqlite_utils.Database, now: float, limit: int) -> list[str]:
    """Paths due at ``now`` (a PostgreSQL queue also claims them: :mod:`.pg_sql`)."""
    return [r[0] for r in db.execute("SELECT path FROM queue WHERE due <= ? ORDER BY due LIMIT ?", [now, limit])]


def backlog(db: sqlite_utils.Database) -> tuple[int, int]:
    """(files indexed, files queued): how far the words are behind."""
    files = db.execute("SELECT count(*) FROM files").fetchone()[0]
    queued = db.execute("SELECT count(*) FROM queue").fetchone()[0]
    return files, queued


def next_due(db: sqlite_utils.Database) -> Optional[float]:
    row = db.execute("SELECT min(due) FROM queue").fetchone()
    return row[0] if row else None


def done(db: sqlite_utils.Database, paths: Iterable[str], before: Optional[float] = None) -> None:
    """Take ``paths`` off the queue; with ``before``, only those not queued again since that time
    (on a shared queue another mount may have seen a newer write meanwhile)."""
    if before is None:
        db.conn.executemany("DELETE FROM queue WHERE path = ?", [(p,) for p in paths])
    else:
        db.conn.executemany("DELETE FROM queue WHERE path = ? AND due <= ?", [(p, before) for p in paths])


def rename_queued(db: sqlite_utils.Database, old: str, new: str, is_dir: bool) -> None:
    if is_dir:
        rows = db.execute("SELECT path, due FROM queue WHERE path >= ? AND path < ?", [old + "/", old + "0"]).fetchall()
        for path, due in rows:
            db.execute("DELETE FROM queue WHERE path = ?", [path])
            enqueue(db, [new + path[len(old) :]], due)
    else:
        row = db.execute("SELECT due FROM queue WHERE path = ?", [old]).fetchone()
        if row:
            db.execute("DELETE FROM queue WHERE path = ?", [old])
            enqueue(db, [new], row[0])


# -- what a damaged database still gives up ----------------------------------


def salvage(old, new: sqlite_utils.Database, deadline: float) -> tuple[int, bool]:
    """Copy into ``new`` the saved queries, summaries and settings a damaged database (``old``,
    a connection) still gives up, and carry its id counters over, so that no chunk or segment id
    is given twice (until the running mount drops its vectors and BM25 cache, they know old ids);
    inside the caller's write transaction. Returns (saved queries copied, whether some were lost)."""
    saved, lost = local.salvage(old, new, deadline)
    settings, _ = readable_rows(old, "meta", "key, value", deadline)
    new.conn.executemany(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", [r for r in settings if r[0] in SETTINGS]
    )
    for table in ("chunks", "lex_segments"):
        try:
            top = old.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [table]).fetchone()
            top = top[0] if top else 0
        except sqlite3.DatabaseError:
            top = ID_GAP  # unreadable: start far above any id it is likely to have given
        have = new.execute("SELECT max(seq) FROM sqlite_sequence WHERE name = ?", [table]).fetchone()[0] or 0
        new.execute("DELETE FROM sqlite_sequence WHERE name = ?", [table])  # (it has no key of its own)
        new.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", [table, max(top, have)])
    return saved, lost


SETTINGS = ("retention",)  # meta keys that hold what the user chose (semfs gc's policy), not a status
ID_GAP = 1 << 40  # the new database's first ids when the damaged one's counters cannot be read


def files_of_chunks(db: sqlite_utils.Database, chunk_ids: list[int]) -> int:
    """How many files the chunks ``chunk_ids`` belong to."""
    files: set[int] = set()
    for i in range(0, len(chunk_ids), 500):
        part = chunk_ids[i : i + 500]
        q = ",".join("?" * len(part))
        files.update(r[0] for r in db.execute(f"SELECT DISTINCT file_id FROM chunks WHERE id IN ({q})", part))
    return len(files)


def files_with_text(db: sqlite_utils.Database) -> int:
    """How many files have chunks that should have vectors."""
    return db.execute("SELECT count(DISTINCT file_id) FROM chunks WHERE has_vector = 1").fetchone()[0]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "files": one("SELECT count(*) FROM files"),
        "indexed": one("SELECT count(*) FROM files WHERE error IS NULL"),
        "failed": one("SELECT count(*) FROM files WHERE error IS NOT NULL"),
        "chunks": one("SELECT count(*) FROM chunks"),
        "with_text": one("SELECT count(*) FROM chunks WHERE has_vector = 1"),
        "queued": one("SELECT count(*) FROM queue"),
    }


def failures(db: sqlite_utils.Database, limit: int = 10) -> list[tuple[str, str]]:
    return [
        tuple(r)
        for r in db.execute("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path LIMIT ?", [limit])
    ]


def open_db_readonly(state_dir: Path) -> Optional[sqlite_utils.Database]:
    """The database of ``state_dir`` opened read-only, or None if there is none yet."""
    path = state_dir / DB_NAME
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        ready = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"the index database {path} is unreadable ({e})") from None
    if not ready:  # being created by a daemon right now
        conn.close()
        return None
    if _behind(conn):  # written by an older semfs: bring it up to date first
        conn.close()
        open_db(state_dir).close()
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    return sqlite_utils.Database(conn)


def _behind(conn: sqlite3.Connection) -> bool:
    try:
        return conn.execute("SELECT count(*) FROM _migrations").fetchone()[0] < len(MIGRATIONS)
    except sqlite3.OperationalError:
        return True
