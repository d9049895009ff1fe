"""What a search reads of the index tables: one SQL text for both adapters.

The searcher, the query folders and the daemon's calibration read files
and chunks only through these functions, so every statement on the index
tables is in :mod:`semfs.stores` (:mod:`.metadata` writes them, this module
reads them for a search, :mod:`.pg_sql` holds what PostgreSQL says
differently). ``has_vector`` marks a chunk that should have a vector (it
has text); whether it has one yet is the vector store's to say.
"""

from __future__ import annotations

from typing import Iterator, Optional

from .sql import in_batches


def files_of(db, chunk_ids: list[int]) -> dict[int, int]:
    """chunk id -> file id, for the chunks that still exist."""
    return dict(in_batches(db, "SELECT id, file_id FROM chunks WHERE id IN ({ids})", chunk_ids))


def first_chunks(db, file_ids: list[int]) -> dict[int, int]:
    """file id -> its first chunk (every indexed file has one, if only an empty one)."""
    if not file_ids:
        return {}
    return dict(
        in_batches(db, "SELECT file_id, min(id) FROM chunks WHERE file_id IN ({ids}) GROUP BY file_id", file_ids)
    )


def chunks_with_text(db, file_ids) -> list[tuple[int, int]]:
    """(chunk id, file id) of the chunks of ``file_ids`` that should have a vector."""
    return in_batches(db, "SELECT id, file_id FROM chunks WHERE has_vector = 1 AND file_id IN ({ids})", list(file_ids))


def file_row(db, file_id: int) -> Optional[tuple[str, Optional[str], int, Optional[str]]]:
    """(path, kind, mtime_ns, sha256) of a file, None if it is gone."""
    row = db.execute("SELECT path, kind, mtime_ns, sha256 FROM files WHERE id = ?", [file_id]).fetchone()
    return tuple(row) if row is not None else None


def files_newest_first(db) -> Iterator[tuple[int, str, Optional[str], int]]:
    """(id, path, kind, mtime_ns) of every file, the newest first."""
    yield from db.execute("SELECT id, path, kind, mtime_ns FROM files ORDER BY mtime_ns DESC")  # (lazily: k are taken)


def first_chunk(db, file_id: int) -> Optional[tuple[int, str]]:
    """(id, text) of a file's first chunk, if it has one."""
    row = db.execute("SELECT id, text FROM chunks WHERE file_id = ? ORDER BY ordinal LIMIT 1", [file_id]).fetchone()
    return (row[0], row[1]) if row is not None else None


def chunk_text(db, chunk_id: int) -> str:
    row = db.execute("SELECT text FROM chunks WHERE id = ?", [chunk_id]).fetchone()
    return row[0] if row else ""


def sample_texts(db, n: int) -> list[str]:
    """Up to ``n`` chunks' text of the folder (real text to calibrate a model on)."""
    return [r[0] for r in db.execute("SELECT text FROM chunks WHERE has_vector = 1 LIMIT ?", [n])]


def names_top(db, words: list[str], n: int) -> list[tuple[int, float]]:
    """(file id, score) of the files whose name holds any of ``words``, best first (SQLite's FTS5;
    PostgreSQL's is :func:`.pg_sql.names_top`)."""
    if not words:
        return []
    match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
    return db.execute(
        "SELECT rowid, -bm25(names_fts) FROM names_fts WHERE names_fts MATCH ? ORDER BY 2 DESC LIMIT ?", [match, n]
    ).fetchall()


def chunk_lines(db, chunk_ids: list[int]) -> dict[int, tuple[Optional[int], str]]:
    """chunk id -> (the line it starts on, or None if not recorded; its text)."""
    rows = in_batches(db, "SELECT id, line, text FROM chunks WHERE id IN ({ids})", chunk_ids)
    return {r[0]: (r[1], r[2]) for r in rows}


def files_with_content(db, file_ids: list[int], sha256s: list[str]) -> list[tuple[str, Optional[str], int, str]]:
    """(path, kind, mtime_ns, sha256) of the files of ``file_ids`` whose content is one of
    ``sha256s``, in the order of ``file_ids``."""
    if not file_ids or not sha256s:
        return []
    wanted = set(sha256s)
    rows = in_batches(db, "SELECT id, path, kind, mtime_ns, sha256 FROM files WHERE id IN ({ids})", file_ids)
    by_id = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows if r[4] in wanted}
    return [by_id[f] for f in file_ids if f in by_id]


def file_texts(db, file_id: int, limit: int) -> Optional[list[str]]:
    """The texts of a file's chunks in order, or None if it has more than ``limit`` of them."""
    rows = db.execute("SELECT text FROM chunks WHERE file_id = ? ORDER BY ordinal LIMIT ?", [file_id, limit + 1])
    texts = [r[0] for r in rows.fetchall()]
    return texts if len(texts) <= limit else None


def every_file(db) -> list[tuple[int, str, Optional[str]]]:
    """(id, path, sha256) of every file of the index."""
    return [tuple(r) for r in db.execute("SELECT id, path, sha256 FROM files ORDER BY id")]


def files_with_text(db) -> list[int]:
    """The ids of the files with a chunk that should have a vector, ascending."""
    return [r[0] for r in db.execute("SELECT DISTINCT file_id FROM chunks WHERE has_vector = 1 ORDER BY file_id")]


def vector_chunks(db) -> list[tuple[int, int]]:
    """(chunk id, file id) of every chunk that should have a vector."""
    return [tuple(r) for r in db.execute("SELECT id, file_id FROM chunks WHERE has_vector = 1 ORDER BY id")]


def opening_texts(db, file_ids: list[int], chunks: int) -> dict[int, str]:
    """file id -> the text of its first ``chunks`` chunks, joined by a line break."""
    rows = in_batches(
        db,
        f"SELECT file_id, ordinal, text FROM chunks WHERE ordinal < {int(chunks)} AND file_id IN ({{ids}})",
        file_ids,
    )
    out: dict[int, list[tuple[int, str]]] = {}
    for fid, ordinal, text in rows:
        out.setdefault(fid, []).append((ordinal, text or ""))
    return {fid: "\n".join(t for _, t in sorted(parts)) for fid, parts in out.items()}


def paths_of(db, file_ids: list[int]) -> dict[int, str]:
    """file id -> path, for the files that still exist."""
    return dict(in_batches(db, "SELECT id, path FROM files WHERE id IN ({ids})", file_ids))
