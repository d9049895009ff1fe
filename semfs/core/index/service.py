"""What the CLI asks of an index: build it, search it, describe it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ...errors import Busy, NotFound
from ...stores import metadata as md
from ...stores.catalog import Catalog
from ..mounts import lock_holder
from ..paths import place

if TYPE_CHECKING:  # numpy, torch and FAISS come with these: only the commands that search pay for them
    from ...models.embedder import Embedder
    from ..query.search import Hit
    from .indexer import Progress


class IndexUnavailable(NotFound):
    """The index cannot be used: missing, or built with another embedder."""


def index_folder(
    backing: str,
    embedder: Embedder,
    state_dir: Optional[str] = None,
    progress: Optional[Callable[[Progress], None]] = None,
    index_url: Optional[str] = None,
    folder: Optional[str] = None,
) -> tuple[Path, Progress]:
    """Bring the index of ``backing`` up to date now (not while it is mounted)."""
    loc = place(backing, state_dir)
    b, s = loc.backing, loc.state_dir
    from .indexer import Indexer

    holder = lock_holder(s)
    if loc.mountpoint is not None or holder is not None:
        where = loc.mountpoint or (holder.mountpoint if holder else "")
        raise Busy(f"{b} is mounted at {where}: its daemon keeps the index up to date (see semfs status)")
    from ...stores.backends import index_for
    from ...stores.healing import at_start
    from ..versions.keeper import Versions

    if s.exists():
        at_start(s, Versions.content_kept(s))  # a damaged one is moved aside and rebuilt here
    return s, Indexer(b, s, embedder, index=index_for(s, index_url, folder)).run_once(progress)


def open_read(backing: str, state_dir: Optional[str] = None):
    """(where ``backing`` is, its index adapter, a read-only connection to the index); NotFound
    if it has none yet."""
    from ...stores.backends import index_for

    loc = place(backing, state_dir)
    store = index_for(loc.state_dir)
    db = store.open_db_readonly()
    if db is None:
        raise NotFound(f"{loc.backing} has no index yet: run 'semfs index {loc.backing}' or mount it")
    return loc, store, db


class Index:
    """A read-side view of one backing folder's index."""

    def __init__(self, backing: str, embedder: Embedder, state_dir: Optional[str] = None) -> None:
        from ..query.search import Searcher

        loc, store, self.db = open_read(backing, state_dir)
        self.store = store
        self.backing, self.state_dir = loc.backing, loc.state_dir
        if md.get_meta(self.db, "embedder") not in (None, embedder.name):
            raise IndexUnavailable(
                f"the index was built with the {md.get_meta(self.db, 'embedder')} embedder, not {embedder.name}"
            )
        self.vectors = store.vectors(embedder.dim, writer=False)
        self.searcher = Searcher(
            self.backing, self.db, self.vectors, embedder, connect=store.open_db_readonly, index=store
        )

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        return self.searcher.search(query, k=k, mode=mode)


@dataclass(frozen=True)
class IndexStats:
    files: int
    indexed: int
    failed: int
    queued: int
    chunks: int
    bytes_on_disk: int
    failures: list[tuple[str, str]]
    llm: Optional[str] = None
    indexer: Optional[str] = None
    versions: Optional[str] = None  # a versioning failure, if one is recorded
    kept: tuple[int, int, int] = (0, 0, 0)  # versions, files they belong to, bytes of blobs and pending links
    policy: Optional[object] = None  # retention.Policy
    embedder: Optional[str] = None  # the mount's embedder worker: ready, restarting, off (and why)
    vectors: Optional[int] = None  # chunks with a vector in the last saved vector index
    with_text: int = 0  # chunks that should have one
    meaning: Optional[dict] = None  # the indexer's last word on embedding: files, embedded, chunks_left, rate
    where: Optional[str] = None  # where a shared index lives (None: embedded in the state dir)
    healed: Optional[str] = None  # what a heal of a damaged database recovered, if one happened


def index_stats(state_dir: Path) -> Optional[IndexStats]:
    """What ``semfs status`` shows: the index's counts (from wherever it lives) and this
    machine's word on its mount (from the state dir)."""
    from ...stores.backends import index_for

    store = index_for(state_dir)
    idb: Any = store.open_db_readonly()
    if idb is None:
        return None
    try:
        c = md.counts(idb)
        fails = md.failures(idb)
    finally:
        idb.close()
    db = md.open_db_readonly(state_dir)  # this machine's own word (the index's, when it is embedded)
    if db is None:
        return IndexStats(
            c["files"], c["indexed"], c["failed"], c["queued"], c["chunks"], 0, fails, where=store.where()
        )
    try:
        llm = md.get_meta(db, "llm")
        embedder = md.get_meta(db, "embedder_worker")
        vectors = md.get_meta(db, "vectors")
        meaning = md.get_meta(db, "meaning")
        indexer = md.get_meta(db, "indexer")
        versions = md.get_meta(db, "versions")
        healed = md.get_meta(db, "healed")
        n_versions, n_paths = Catalog(lambda: db).counts()
        from ..versions.retention import load_policy

        policy = load_policy(db)
    finally:
        db.close()
    kept_bytes = 0
    for sub in ("blobs", "pending"):
        for dirpath, _, names in os.walk(state_dir / sub):
            for name in names:
                try:
                    kept_bytes += os.lstat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
    from ...stores import vectors as vector_files

    meaning_now = json.loads(meaning) if meaning else None
    # saved once, gone since, and no daemon holding them in memory
    lost = vectors is not None and store.vectors_lost() and lock_holder(state_dir) is None
    if meaning_now and lost and c["chunks"]:
        # the record is older than the file's loss: nothing is searchable by meaning now
        meaning_now = dict(meaning_now, embedded=0, chunks_left=c["chunks"], rate=None)
    full = _disk_full(state_dir)
    if full:  # nothing can be written there, the daemon's own word on it included
        indexer = f"waiting: {full}"
    size = vector_files.bytes_on_disk(state_dir)
    for name in (md.DB_NAME, md.DB_NAME + "-wal"):
        try:
            size += (state_dir / name).stat().st_size
        except FileNotFoundError:
            pass
    return IndexStats(
        c["files"],
        c["indexed"],
        c["failed"],
        c["queued"],
        c["chunks"],
        size,
        fails,
        llm,
        indexer,
        versions,
        (n_versions, n_paths, kept_bytes),
        policy,
        embedder,
        int(vectors) if vectors is not None else None,
        c["with_text"],
        meaning_now,
        store.where(),
        healed,
    )


DISK_LOW = 1 << 20  # bytes free under which the state dir's disk counts as full


def _disk_full(state_dir: Path) -> Optional[str]:
    """Said of a state dir whose disk is (all but) full, else None: read live, since the daemon
    cannot record it on the disk that is full."""
    try:
        st = os.statvfs(state_dir)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    return f"no space left on the state dir's disk ({free // 1024} KiB free)" if free < DISK_LOW else None
