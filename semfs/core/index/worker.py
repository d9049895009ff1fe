"""``semfs worker``: a machine with no mount embeds the waiting chunks of a PostgreSQL index.

It runs the mounts' own meaning step (:func:`.meaning.embed_claimed`) on the
work the index leases out (:class:`semfs.stores.pgvectors.ClaimedWork`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Optional

from .meaning import embed_claimed

log = logging.getLogger(__name__)


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
    todo = index.work(vectors)
    stored = 0
    while not stop.is_set():
        try:
            got = embed_claimed(todo, embedder, worker, batch)
        except Exception as e:
            log.warning("embedding failed (%s); trying again", e)
            stop.wait(2.0)
            continue
        n, s = got.claimed, got.stored
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
