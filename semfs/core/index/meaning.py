"""The meaning phase of indexing: vectors for chunks whose words are already written.

:class:`Backlog` holds the chunk ids still without a vector, oldest first:
the indexer thread adds each file's new chunks, the meaning thread takes
them in batches and :func:`embed_batch` embeds them through the embedder
worker. A batch the embedder could not take goes back to the front of the
backlog (nothing is lost while it is away); a chunk deleted or replaced
while its batch was embedded loses its vector again at once. On a shared
(PostgreSQL) index the work is claimed from the database instead
(:mod:`.shared`), and this backlog stays empty.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from ...stores import metadata as md


@dataclass(frozen=True)
class Embedded:
    chunks: int  # chunks given a vector
    seconds: float  # how long it took, the embedder's answer and the index's update


class Backlog:
    """Chunk ids without a vector, shared by the indexer and meaning threads (all under one lock,
    which also guards whatever the caller keeps beside it: the indexer's generation)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._ids: Optional[collections.deque[int]] = None  # None: not read from the index yet
        self.wanted = False  # whether there may be chunks to embed (a run's first look, new chunks)

    def want_all(self) -> None:
        """Look at the whole index again at the next take (a new run, a new database)."""
        with self.lock:
            self._ids = None
            self.wanted = True

    def add(self, ids: Iterable[int]) -> None:
        """New chunks, written by the words phase."""
        with self.lock:
            self.wanted = True
            if self._ids is not None:
                self._ids.extend(ids)  # (the chunks they replaced are simply gone when reached)

    def load(self, missing: Callable[[], Iterable[int]]) -> Optional[int]:
        """How many are left (None: none are wanted), after reading them once per run with
        ``missing()`` (the chunks the index has no vector for); 0 clears ``wanted``."""
        with self.lock:
            if not self.wanted:
                return None
            if self._ids is None:
                self._ids = collections.deque(sorted(missing()))
            if not self._ids:
                self.wanted = False
            return len(self._ids)

    def take(self, n: int) -> list[int]:
        with self.lock:
            ids = self._ids or collections.deque()
            return [ids.popleft() for _ in range(min(n, len(ids)))]

    def put_back(self, batch: list[int]) -> None:
        """A batch the embedder could not take, first again."""
        with self.lock:
            if self._ids is not None:
                self._ids.extendleft(reversed(batch))

    def left(self) -> list[int]:
        with self.lock:
            return list(self._ids or ())

    def __len__(self) -> int:
        with self.lock:
            return len(self._ids or ())


def embed_batch(db, embedder, vectors, batch: list[int], options: dict) -> Embedded:
    """Vectors for the chunks ``batch`` (those still there), added to ``vectors``; raises what
    the embedder raises (the caller puts the batch back)."""
    rows = md.chunks_by_id(db, batch)  # (a chunk deleted since is simply gone)
    if not rows:
        return Embedded(0, 0.0)
    t0 = time.monotonic()
    vecs = embedder.embed([r[1] for r in rows], **options)
    ids = [r[0] for r in rows]
    vectors.add(ids, vecs)
    # a file changed or deleted while its chunks were embedded: their vectors go too
    gone = set(ids) - {r[0] for r in md.chunks_by_id(db, ids)}
    if gone:
        vectors.remove(gone)
    return Embedded(len(rows), time.monotonic() - t0)
