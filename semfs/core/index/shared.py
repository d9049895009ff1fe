"""Embedding work shared through a PostgreSQL index: claim a batch, embed it, store what is still ours.

The mounts' meaning threads and ``semfs worker`` (a machine with no mount)
run the same step; the claims and leases are the vector store's
(:meth:`semfs.stores.pgvectors.PgVectorStore.claim`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)


def embed_claimed(vectors, embedder, worker: str, batch: int, options: Optional[dict] = None) -> tuple[int, int]:
    """Claim up to ``batch`` chunks, embed them, store their vectors; returns (claimed, stored).

    (0, 0) when there is no work. If the embedder fails, the claim is given back
    at once and the error raised."""
    claimed = vectors.claim(batch, worker)
    if not claimed:
        return 0, 0
    ids = [i for i, _ in claimed]
    try:
        vecs = embedder.embed([t for _, t in claimed], **(options or {}))
    except BaseException:
        try:
            vectors.release(ids, worker)
        except Exception:
            pass  # the lease runs out in any case
        raise
    return len(ids), vectors.store_claimed(ids, vecs, worker)


def work(
    index,
    embedder,
    worker: str,
    stop: threading.Event,
    batch: int = 64,
    lease: Optional[float] = None,
    on_batch: Optional[Callable[[int, int], None]] = None,
    idle_wait: float = 1.0,
) -> int:
    """``semfs worker``: embed the folder's claimed work until ``stop`` is set; returns how many
    vectors it stored. Waits ``idle_wait`` between polls when there is none."""
    vectors = index.vectors(embedder.dim)
    if lease is not None:
        vectors.lease = lease
    stored = 0
    while not stop.is_set():
        try:
            n, s = embed_claimed(vectors, embedder, worker, batch)
        except Exception as e:
            log.warning("embedding failed (%s); trying again", e)
            stop.wait(2.0)
            continue
        if n:
            stored += s
            try:
                index.notify()
            except Exception as e:  # the mounts' caches catch up with their next change
                log.info("could not announce the new vectors: %s", e)
            if on_batch is not None:
                on_batch(n, s)
        else:
            stop.wait(idle_wait)
    return stored


def run_worker(
    url: str,
    folder: str,
    embedder,
    stop: threading.Event,
    batch: int = 64,
    lease: Optional[float] = None,
    on_batch: Optional[Callable[[int, int], None]] = None,
) -> int:
    """``semfs worker``: check that ``embedder`` is the one the folder's index was built with,
    then embed its waiting chunks until ``stop``; returns how many vectors it stored."""
    import socket

    from ...errors import InvalidRequest
    from ...stores import metadata as md
    from ...stores.backends import PostgresIndex

    index = PostgresIndex(url, folder)
    db: Any = index.connect()
    try:
        built = md.get_meta(db, "embedder")
    finally:
        db.close()
    if built is None:
        raise InvalidRequest(f"the folder {folder!r} has no index yet: mount it (or semfs index) with --index first")
    if built != embedder.name:
        raise InvalidRequest(f"the folder {folder!r} is indexed with the {built} embedder, not {embedder.name}")
    worker = f"worker:{socket.gethostname()}:{os.getpid()}"
    log.info("embedding the waiting chunks of %s as %s", index.describe(), worker)
    return work(index, embedder, worker, stop, batch=batch, lease=lease, on_batch=on_batch)
