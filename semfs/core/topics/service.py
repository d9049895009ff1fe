"""Keeping the grouping of a folder by meaning: what ``topics/``, ``semfs topics`` and MCP show.

:func:`step` brings a grouping up to date with the index: the first time
it groups every file (:func:`~.tree.build`); after that new and changed
files join the nearest topic and deleted ones leave, renaming nothing.
Once enough has changed (``REGROUP_SHARE`` of the files, at least
``REGROUP_MIN``), it groups everything afresh and takes the new grouping
only if its silhouette beats the current one's by ``MARGIN``, and only when
the caller says nobody is looking (a topic folder open or listed lately
keeps its names: :class:`Topics`). The mount runs it in its own thread;
no listing ever waits for it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ...stores import reads, topicfile
from ...stores.sql import ThreadConnections
from . import corpus
from .tree import Tree, build, from_arrays, quality, to_arrays

log = logging.getLogger(__name__)

REGROUP_SHARE = 0.2
REGROUP_MIN = 5
# the silhouette a regrouping must gain: above what the seed alone moves it (docs/BENCHMARKS.md,
# "Topics": 5 seeds on the same files spread by 0.017-0.022, and 0.036 before the ladder was thinned)
MARGIN = 0.04
# s a topic folder's names are kept after it was last listed (results.Seen's ttl; a test sets less)
HOLD = float(os.environ.get("SEMFS_TOPICS_HOLD", 600))


def step(tree: Optional[Tree], db, vectors, may_regroup: bool) -> tuple[Optional[Tree], str]:
    """(the grouping brought up to date with the index, what was done: "built", "updated",
    "regrouped", "kept" or "" for nothing to do)."""
    present = {fid: sha for fid, _, sha in reads.every_file(db)}
    if tree is None:
        c, rest = corpus.sampled(db, vectors)
        return (_placed(build(c), db, vectors, rest, present), "built") if len(c) else (None, "")
    placed = dict(zip(tree.ids.tolist(), tree.shas))
    fresh = {f for f, sha in present.items() if placed.get(f, "\0") != sha}
    gone = set(placed) - set(present)
    what = ""
    if fresh or gone:
        updated, changes = tree.updated(corpus.read(db, vectors, only=fresh), present)
        if changes:  # (a file with no vector yet, or none to have, is placed later or never)
            tree, what = updated, "updated"
    if not (due(tree) and may_regroup):
        return tree, what
    c, rest = corpus.sampled(db, vectors)
    new = _placed(build(c, seed=int(tree.meta.get("seed", 0))), db, vectors, rest, present)
    now = quality(tree, c)
    if new is not None and new.meta["quality"] >= now + MARGIN:
        log.info("topics regrouped: silhouette %.3f -> %.3f over %d files", now, new.meta["quality"], len(c))
        return new, "regrouped"
    tree.meta.update(files=len(c), changes=0, quality=now)  # checked: not again before as much changes
    return tree, "kept"


def _placed(tree: Optional[Tree], db, vectors, rest: list[int], present: dict) -> Optional[Tree]:
    """``tree``, grouped from a sample of the files, with the rest placed in their nearest leaves,
    a batch of files' vectors at a time (so the daemon never holds every file's vector at once)."""
    if tree is None or not rest:
        return tree
    meta = dict(tree.meta)
    for start in range(0, len(rest), corpus.SAMPLE):
        tree, _ = tree.updated(corpus.read(db, vectors, only=set(rest[start : start + corpus.SAMPLE])), present)
    tree.meta.update(meta, files=len(tree.ids))  # (placed at the build: no change since it)
    return tree


def due(tree: Tree) -> bool:
    """Whether enough changed since the grouping was made (or last checked) to try a new one."""
    return tree.meta.get("changes", 0) >= max(REGROUP_MIN, REGROUP_SHARE * tree.meta.get("files", 0))


class Topics:
    """A mount's grouping: kept in memory, saved in the state dir, held while it is looked at."""

    def __init__(self, state_dir: Path, index, vectors: Callable[[], object]) -> None:
        self.state_dir = Path(state_dir)
        self._vectors = vectors
        self._conns = ThreadConnections(index.open_db)
        saved = topicfile.load(self.state_dir)
        self.tree: Optional[Tree] = from_arrays(*saved) if saved is not None else None
        self._lock = threading.Lock()
        self._open = 0  # topic folders open now
        self._looked = 0.0  # when one was last listed (monotonic)
        self.waiting = False  # a regrouping is due and waits for nobody to look

    def look(self) -> Callable[[], None]:
        """A topic folder is being listed and is open until the returned callable is called."""
        with self._lock:
            self._open += 1
            self._looked = time.monotonic()

        def done() -> None:
            with self._lock:
                self._open -= 1
                self._looked = time.monotonic()  # (its names were on show until now)

        return done

    def may_regroup_now(self) -> bool:
        """A regrouping that waited for nobody to look may go now."""
        return self.waiting and not self.looked_at()

    def looked_at(self) -> bool:
        with self._lock:
            return self._open > 0 or time.monotonic() - self._looked < HOLD

    def refresh(self) -> str:
        """Bring the grouping up to date (the mount's topics thread calls it when the index changed)."""
        vectors = self._vectors()
        if vectors is None:
            return ""
        t0 = time.monotonic()
        held = self.looked_at()
        tree, what = step(self.tree, self._conns.get(), vectors, may_regroup=not held)
        self.waiting = held and tree is not None and due(tree)
        if what:
            self.tree = tree
            if tree is not None:
                topicfile.save(self.state_dir, *to_arrays(tree))
            log.info("topics %s in %.0f ms", what, (time.monotonic() - t0) * 1000)
        return what

    def paths(self, file_ids: list[int]) -> dict[int, str]:
        return reads.paths_of(self._conns.get(), file_ids)

    def texts(self, file_ids: list[int]) -> dict[int, str]:
        return reads.opening_texts(self._conns.get(), file_ids, corpus.TEXT_CHUNKS)

    def close(self) -> None:
        self._conns.close_mine()


def folder_topics(backing: str, state_dir: Optional[str] = None) -> list[dict]:
    """The topics of a folder, for ``semfs topics`` and MCP: ``[{"name", "files": [{path, score}],
    "topics": [...]}]``, the largest first, each topic's files best examples first.

    A mounted folder shows what its mount keeps (grouped now, and not kept, if it has not
    grouped yet); a folder that is not mounted is brought up to date here and kept."""
    from ...models.embedder import dim_of
    from ...stores import metadata as md
    from ..index.service import open_read
    from ..mounts import lock_holder

    loc, store, db = open_read(backing, state_dir)
    try:
        mounted = loc.mountpoint is not None or lock_holder(loc.state_dir) is not None
        saved = topicfile.load(loc.state_dir)
        tree = from_arrays(*saved) if saved is not None else None
        if tree is None or not mounted:
            dim = dim_of(md.get_meta(db, "embedder"))
            vectors = store.vectors(dim, writer=False) if dim else None
            if vectors is not None:
                tree, what = step(tree, db, vectors, may_regroup=not mounted)
                if what and tree is not None and not mounted:
                    topicfile.save(loc.state_dir, *to_arrays(tree))
        if tree is None:
            return []
        paths = reads.paths_of(db, tree.ids.tolist())
        return _described(tree, -1, paths, loc.backing)
    finally:
        db.close()


def _described(tree: Tree, parent: int, paths: dict[int, str], backing: Path) -> list[dict]:
    out = []
    for t in tree.children(parent):
        kids = _described(tree, t.id, paths, backing)
        files = [
            {"path": paths[f], "score": round(s, 4)}
            for f, s in tree.members(t.id)
            if f in paths and (backing / paths[f]).is_file()
        ]
        if files:
            out.append({"name": t.name, "files": files, **({"topics": kids} if kids else {})})
    return sorted(out, key=lambda d: -len(d["files"]))
