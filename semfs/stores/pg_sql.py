"""The PostgreSQL index's statements where they differ from SQLite's (:mod:`.metadata`).

Every other statement on the index tables is one text for both (the
connection of :mod:`.pg` takes ``?`` parameters). These differ because a
shared queue is taken by several mounts at once (claims with a lease, so
that each path is indexed by one of them), and because file names are
searched with ``tsvector`` instead of FTS5.
"""

from __future__ import annotations

import re
import time
from typing import Iterable, Optional

QUEUE_LEASE = 120.0  # seconds a mount may take over a path of a shared queue before another may retry it


def take_due(db, now: float, limit: int) -> list[str]:
    """Paths due at ``now``, claimed: another mount takes other paths meanwhile, and a mount
    that dies loses its claim after ``QUEUE_LEASE``."""
    t = time.time()
    return [
        r[0]
        for r in db.execute(
            """UPDATE queue SET lease_until = ? WHERE path IN (
                 SELECT path FROM queue WHERE due <= ? AND (lease_until IS NULL OR lease_until < ?)
                 ORDER BY due LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING path""",
            [t + QUEUE_LEASE, now, t, limit],
        ).fetchall()
    ]


def release(db, paths: Iterable[str]) -> None:
    """Give back the claim on ``paths``; they stay queued, for whichever mount asks next."""
    paths = list(paths)
    if paths:
        db.execute("UPDATE queue SET lease_until = NULL WHERE path = ANY(?)", [paths])


def next_due(db) -> Optional[float]:
    """When the queue is due next, leaving out what another mount has claimed."""
    row = db.execute(
        "SELECT min(due) FROM queue WHERE lease_until IS NULL OR lease_until < ?", [time.time()]
    ).fetchone()
    return row[0] if row else None


def names_top(db, words: list[str], n: int) -> list[tuple[int, float]]:
    """(file id, score) of the files whose name holds any of ``words``, best first."""
    q = " | ".join(w for w in (re.sub(r"[^\w]", "", x) for x in words) if w)
    if not q:
        return []
    return [
        (int(r[0]), float(r[1]))
        for r in db.execute(
            "SELECT rowid, ts_rank_cd(tsv, q) FROM names_fts, to_tsquery('english', ?) q WHERE tsv @@ q "
            "ORDER BY 2 DESC LIMIT ?",
            [q, n],
        ).fetchall()
    ]
