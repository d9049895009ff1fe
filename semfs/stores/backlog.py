"""The embedded index's embedding work: the chunk ids still without a vector, kept in memory.

An index hands its meaning phase one :class:`EmbeddingWork` (``claim`` a
batch, ``store_claimed`` its vectors, or ``release`` it when the embedder
failed); the mount's meaning thread and ``semfs worker`` run the same
step on it (:func:`semfs.core.index.meaning.embed_claimed`). Here, in the
state dir's own index, the work is a :class:`Backlog`: the words phase
adds each file's new chunks, the meaning thread takes them in batches,
and a batch the embedder could not take goes back to the front (nothing
is lost while it is away). A chunk deleted or replaced while its batch
was embedded loses its vector again at once. A PostgreSQL index claims
its work from the database instead
(:class:`semfs.stores.pgvectors.ClaimedWork`), so that every mount and
worker of the folder shares it.
"""

from __future__ import annotations

import collections
import threading
from typing import Iterable, Optional, Protocol

from . import metadata as md


class EmbeddingWork(Protocol):
    """Chunks that wait for their vectors, as the meaning phase sees them. ``db``: the calling
    thread's connection to the index (an index with connections of its own ignores it)."""

    wanted: bool  # whether there may be chunks to embed: the meaning thread looks only then

    def claim(self, n: int, worker: str, db=None) -> list[tuple[int, str]]:
        """Up to ``n`` chunks (id, text) for ``worker`` to embed; [] when none waits."""

    def release(self, ids: list[int], worker: str) -> None:
        """A claim that will not be embedded (the embedder failed): first in line again."""

    def store_claimed(self, ids: list[int], vectors, worker: str, db=None) -> int:
        """The vectors of a claim; returns how many were kept (a chunk gone since is not)."""

    def waiting(self, db=None) -> tuple[int, int]:
        """(chunks without their vector, files they belong to), for ``semfs status``."""

    def add(self, ids: Iterable[int]) -> None:
        """New chunks, written by the words phase."""

    def want_all(self) -> None:
        """Look at the whole index again (a new run, a new database)."""

    def __len__(self) -> int:
        """Chunks this mount knows to wait (for query folders' notes)."""


class Backlog:
    """The embedded index's work: chunk ids without a vector, oldest first, shared by the
    indexer and meaning threads under one lock."""

    def __init__(self, vectors) -> None:
        self.vectors = vectors  # the FAISS store the vectors go to
        self._lock = threading.Lock()
        self._ids: Optional[collections.deque[int]] = None  # None: not read from the index yet
        self.wanted = False

    def want_all(self) -> None:
        with self._lock:
            self._ids = None
            self.wanted = True

    def add(self, ids: Iterable[int]) -> None:
        with self._lock:
            self.wanted = True
            if self._ids is not None:
                self._ids.extend(ids)  # (the chunks they replaced are simply gone when reached)

    def _load(self, db) -> collections.deque[int]:
        # once a run (under the lock): the index's chunks with text that the vector file lacks
        if self._ids is None:
            self._ids = collections.deque(sorted(self.vectors.reconcile(md.vector_chunk_ids(db))))
        return self._ids

    def claim(self, n: int, worker: str, db=None) -> list[tuple[int, str]]:
        while True:
            with self._lock:
                if not self.wanted:
                    return []
                ids = self._load(db)
                batch = [ids.popleft() for _ in range(min(n, len(ids)))]
                if not batch:
                    self.wanted = False
                    return []
            rows = md.chunks_by_id(db, batch)  # (a chunk deleted since is simply gone)
            if rows:
                return rows

    def release(self, ids: list[int], worker: str) -> None:
        with self._lock:
            if self._ids is not None:
                self._ids.extendleft(reversed(ids))

    def store_claimed(self, ids: list[int], vectors, worker: str, db=None) -> int:
        self.vectors.add(ids, vectors)
        # a file changed or deleted while its chunks were embedded: their vectors go too
        gone = set(ids) - {r[0] for r in md.chunks_by_id(db, ids)}
        if gone:
            self.vectors.remove(gone)
        return len(ids) - len(gone)

    def waiting(self, db=None) -> tuple[int, int]:
        with self._lock:
            left = list(self._load(db)) if self.wanted else list(self._ids or ())
        return len(left), md.files_of_chunks(db, left)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids or ())
