"""The intake of indexing: what changed, and when to look at it.

A change event from the mount is applied to the index's rows at once
(:func:`apply`: a rename re-keys them, a delete forgets them, without
reading anything) or puts its path on the durable queue, due after a
debounce that every later event pushes back. The walk of BACKING
(:func:`walk`) finds what no event said: changes made while unmounted,
events lost to a kill -9, programs that write to BACKING directly.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ...stores import metadata as md
from ..events import ChangeEvent, EventKind
from ..ignore import IgnoreRules
from .words import retry

log = logging.getLogger(__name__)

HIDDEN_PREFIX = ".fuse_hidden"


@dataclass(frozen=True)
class Walked:
    queued: int  # paths queued: new, changed, or to be read again
    removed: list[int]  # chunk ids of files gone from BACKING (their vectors go)


def skip(rel: str) -> bool:
    """Never indexed: libfuse's hidden files of unlinked open files, names that are not UTF-8."""
    return os.path.basename(rel).startswith(HIDDEN_PREFIX) or not md.storable(rel)


def indexable(rel: str, ignore: IgnoreRules, is_dir: bool = False) -> bool:
    return md.storable(rel) and not ignore.ignored(rel, is_dir)


def apply(db, ev: ChangeEvent, due: float, ignore: IgnoreRules) -> list[int]:
    """Apply one event to the rows, inside the caller's write transaction; returns the chunk ids
    it removed (their vectors go)."""
    dest = ev.dest or ""
    here, there = indexable(ev.path, ignore, ev.is_dir), indexable(dest, ignore, ev.is_dir)
    if ev.kind == EventKind.RENAMED and not (here and there):
        if here:  # renamed to a name that is not indexed (into the trash, say): gone from the index
            ev = ChangeEvent(EventKind.DIR_REMOVED if ev.is_dir else EventKind.DELETED, ev.path)
        elif there:  # from such a name: new to the index
            if ev.is_dir:
                return []  # the periodic walk finds what it holds
            ev = ChangeEvent(EventKind.WRITTEN, dest)
        else:
            return []
    if not md.storable(ev.path):
        return []
    if ev.kind in (EventKind.WRITTEN, EventKind.TRUNCATED):
        if not skip(ev.path) and indexable(ev.path, ignore):
            md.enqueue(db, [ev.path], due)
        return []
    if ev.kind == EventKind.DELETED:
        md.done(db, [ev.path])
        return md.delete_file(db, ev.path)
    if ev.kind == EventKind.DIR_REMOVED:
        ids = []
        for row in md.files_under(db, ev.path):
            ids += md.delete_file(db, row.path)
        return ids
    if ev.kind == EventKind.RENAMED:
        old, new = ev.path, dest
        ids = []
        if ev.is_dir:
            for row in md.files_under(db, new):
                ids += md.delete_file(db, row.path)
            for row in md.files_under(db, old):
                md.rename_file(db, row.id, new + row.path[len(old) :])
        else:
            ids += md.delete_file(db, new)  # whatever the rename replaced
            moved = md.get_file(db, old)
            if moved is not None:
                md.rename_file(db, moved.id, new)
            if not skip(new):
                md.enqueue(db, [new], due)  # cheap check; re-keyed rows match by mtime
        md.rename_queued(db, old, new, ev.is_dir)
        return ids
    return []


def walk(db, backing: Path, ignore: IgnoreRules) -> Walked:
    """Queue the files of BACKING that are new, changed (by size and mtime) or to be read again,
    and forget those gone, in one write transaction of its own."""
    known = {row.path: (row.size, row.mtime_ns, row.error) for row in md.iter_files(db)}
    seen: set[str] = set()
    changed: list[str] = []
    root = str(backing)
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: log.warning("cannot list %s", e.filename)):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignore.ignored(prefix + d, is_dir=True)]
        for name in filenames:
            if name.startswith(HIDDEN_PREFIX):
                continue
            rel = prefix + name
            if not md.storable(rel) or ignore.ignored(rel):
                continue
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            seen.add(rel)
            k = known.get(rel)
            if k is None or k[0] != st.st_size or k[1] != st.st_mtime_ns or retry(k[2]):
                changed.append(rel)
    removed: list[int] = []
    with md.write(db):
        for rel in known.keys() - seen:
            removed += md.delete_file(db, rel)
        md.enqueue(db, changed, time.time())
    return Walked(len(changed), removed)
