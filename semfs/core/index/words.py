"""The words phase of indexing: a queued path checked on disk, read beneath BACKING, extracted
and chunked (:func:`prepare`); then a batch's file rows, chunks and BM25 postings written in
one transaction (:func:`write`). A file is searchable by its words from then on; its meaning
follows behind, in the meaning thread (``Indexer.backfill``), never holding its words back.

Each returns the chunk ids it removed (their vectors go), rather than filling a list it was
given.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...stores import lexical
from ...stores import metadata as md
from ..ignore import IgnoreRules
from ..readfile import open_beneath
from .chunking import Chunk, chunk_text
from .extract import MAX_BYTES, Extracted, extract_bytes

UNREADABLE = "unreadable"  # the start of the error recorded for a file that could not be read


@dataclass(frozen=True)
class Work:
    """A file whose words are to be written: what it was when read, and its text's chunks."""

    rel: str
    st: os.stat_result
    sha256: str
    extracted: Extracted
    chunks: list[Chunk]


@dataclass(frozen=True)
class Written:
    """What :func:`write` did: chunk ids with text (their vectors are to be computed), and
    the ids of the chunks they replaced (their vectors go)."""

    new: list[int]
    removed: list[int]


def retry(error: Optional[str]) -> bool:
    """Whether a file recorded with ``error`` is read again at its next check: one that could
    not be read is; one over a size or time limit is not, until it changes."""
    return error is not None and error.startswith(UNREADABLE)


def waits_for(e: BaseException) -> Optional[str]:
    """What a failure that passes by itself waits for, in words; None for any other failure."""
    text = str(e)
    no = getattr(e, "errno", None)
    if no in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text or "No space left" in text:
        return "no space left on the state dir's disk"
    if no in (errno.EMFILE, errno.ENFILE) or "Too many open files" in text:
        return "too many open files"
    return None


def prepare(db, backing: Path, rel: str, ignore: IgnoreRules) -> tuple[Optional[Work], list[int]]:
    """Check ``rel`` on disk, inside the caller's write transaction: (the work of writing its
    words, or None when its rows were settled here; the chunk ids removed meanwhile). A failure
    that passes by itself (:func:`waits_for`) is raised: the queue keeps the path."""
    row = md.get_file(db, rel)
    if ignore.ignored(rel):  # the rules changed since it was queued
        return None, md.delete_file(db, rel)
    try:
        st = os.lstat(backing / rel)
    except FileNotFoundError:
        return None, md.delete_file(db, rel)
    except OSError as e:
        if waits_for(e):
            raise  # tried again once files can be opened
        return None, _record_error(db, rel, row, None, f"{UNREADABLE}: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return None, md.delete_file(db, rel)
    if row is not None and not retry(row.error) and (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns):
        return None, []
    try:
        data, sha = _read(backing, rel, st)
    except OSError as e:
        if waits_for(e):
            raise
        return None, _record_error(db, rel, row, st, f"{UNREADABLE}: {e.strerror}")
    if row is not None and not retry(row.error) and row.sha256 == sha:
        md.touch_file(db, row.id, st.st_size, st.st_mtime_ns)  # same content: never re-embedded
        return None, []
    if data is None:
        ext = Extracted("binary", "", f"not indexed: {st.st_size} bytes is over the {MAX_BYTES}-byte limit")
    else:
        ext = extract_bytes(data, rel)
    return Work(rel, st, sha, ext, chunk_text(ext.text)), []


def write(db, work: list[Work]) -> Written:
    """The file rows, chunks and BM25 postings of ``work``, inside the caller's write
    transaction (a file with no text keeps one empty chunk: its name stays searchable)."""
    new_ids: list[int] = []
    removed: list[int] = []
    for w in work:
        row = md.get_file(db, w.rel)
        if row is not None:
            removed += md.chunk_ids(db, row.id)
        ext = w.extracted
        fid = md.upsert_file(db, w.rel, w.st.st_size, w.st.st_mtime_ns, w.sha256, ext.kind, len(ext.text), ext.error)
        if w.chunks:
            new = [md.NewChunk(i, c.start, c.end, c.text, True, c.line) for i, c in enumerate(w.chunks)]
        else:
            new = [md.NewChunk(0, 0, 0, "", False)]
        ids = md.replace_chunks(db, fid, new)
        if w.chunks:
            new_ids += ids
    lexical.post_pending(db)  # the batch's postings: one segment, in the same transaction
    return Written(new_ids, removed)


def _record_error(db, rel: str, row, st: Optional[os.stat_result], error: str) -> list[int]:
    removed = md.chunk_ids(db, row.id) if row is not None else []
    size = st.st_size if st is not None else 0
    mtime = st.st_mtime_ns if st is not None else 0
    fid = md.upsert_file(db, rel, size, mtime, None, None, 0, error)
    md.replace_chunks(db, fid, [md.NewChunk(0, 0, 0, "", False)])
    return removed


def _read(backing: Path, rel: str, st: os.stat_result) -> tuple[Optional[bytes], str]:
    """(content or None if over the size limit, sha256); never through a symlink."""
    h = hashlib.sha256()
    with open_beneath(str(backing), rel) as f:
        if st.st_size > MAX_BYTES:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            return None, h.hexdigest()
        data = f.read()
    h.update(data)
    return data, h.hexdigest()
