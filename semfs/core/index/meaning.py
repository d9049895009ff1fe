"""The meaning phase of indexing: vectors for chunks whose words are already written.

An index hands out its waiting chunks as work (:class:`semfs.stores.backlog.EmbeddingWork`:
the embedded index keeps them in memory, a PostgreSQL index leases them
from its table to whichever mount or worker asks first). One step,
:func:`embed_claimed`, serves both: claim a batch, embed it through the
embedder worker, store what is still wanted. A batch the embedder could
not take is given back at once (nothing is lost while it is away).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Embedded:
    claimed: int  # chunks taken from the work and embedded
    stored: int  # of which the index kept a vector (a chunk gone since, or claimed by another, is not)
    seconds: float  # how long it took, the embedder's answer and the index's update


def embed_claimed(work, embedder, worker: str, batch: int, options: Optional[dict] = None, db=None) -> Embedded:
    """Claim up to ``batch`` chunks of ``work``, embed them, store their vectors.

    Embedded(0, 0, 0.0) when there is no work. If the embedder fails, the claim is given back
    and the error raised. ``db``: the calling thread's connection to the index."""
    claimed = work.claim(batch, worker, db)
    if not claimed:
        return Embedded(0, 0, 0.0)
    t0 = time.monotonic()
    ids = [i for i, _ in claimed]
    try:
        vecs = embedder.embed([t for _, t in claimed], **(options or {}))
    except BaseException:
        try:
            work.release(ids, worker)
        except Exception:
            pass  # (a lease runs out in any case)
        raise
    stored = work.store_claimed(ids, vecs, worker, db)
    return Embedded(len(ids), stored, time.monotonic() - t0)
