"""Retention: which versions go, for ``semfs gc`` and the mount's hourly pass.

A version stays while it is one of the newest ``keep`` of its path, or
younger than ``days``; of what stays, the oldest go first until the blobs
fit in ``max_bytes``, and, while the state dir's disk is below its
reserve, until the store has shrunk by what the disk lacks (a pass runs
within 5 s of a version skipped for space). A blob goes when no version refers to it any more.
The policy is kept in the state dir's database, so the CLI and the
daemon prune alike.

A blob that no row refers to (left by a crash between writing the blob
and its row) is removed too, but only once it is ``GRACE`` old: another
process may be about to record it. Storing content that already exists
touches its blob, so the same grace protects a blob being reused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Optional

from ...errors import SemfsError
from ...stores import metadata as md
from .keeper import Versions

log = logging.getLogger(__name__)

GRACE = 600.0  # seconds an unreferenced blob is left alone
META_KEY = "retention"


@dataclass(frozen=True)
class Policy:
    keep: int = 10  # the newest versions of every path always stay
    days: float = 30.0  # and so does every version younger than this
    max_bytes: int = 1 << 30  # then the oldest go until the store fits
    # free bytes the state dir's disk keeps before a version is kept (None: keeper.reserve_for)
    reserve: Optional[int] = None


@dataclass(frozen=True)
class Report:
    versions: int  # version rows removed
    paths: int  # paths that lost versions
    blobs: int  # blob files removed
    bytes_freed: int
    bytes_kept: int  # blob bytes left, pending links included
    waiting: int = 0  # blobs no version needs that are left alone until they are GRACE old


def load_policy(db) -> Policy:
    raw = md.get_meta(db, META_KEY)
    if not raw:
        return Policy()
    try:
        return Policy(**json.loads(raw))
    except (TypeError, ValueError):
        log.warning("ignoring an unreadable retention policy: %r", raw)
        return Policy()


def save_policy(db, policy: Policy) -> None:
    with md.write(db):
        md.set_meta(db, META_KEY, json.dumps(asdict(policy)))


def collect(
    vs: Versions,
    policy: Optional[Policy] = None,
    now: Optional[float] = None,
    dry_run: bool = False,
    grace: float = GRACE,
) -> Report:
    """Prune ``vs`` by ``policy`` (the saved one by default); with ``dry_run``, only say what would go."""
    db = vs.connection()
    policy = policy or load_policy(db)
    started = time.time()
    now = started if now is None else now
    rows = vs.catalog.for_pruning()

    doomed: set[int] = set()
    by_path: dict[str, list] = {}
    for r in rows:
        by_path.setdefault(r[1], []).append(r)
    cutoff = now - policy.days * 86400
    for rs in by_path.values():
        for i, r in enumerate(sorted(rs, key=lambda r: r[2], reverse=True)):
            if i >= policy.keep and r[5] < cutoff:
                doomed.add(r[0])

    blob_size, blob_mtime = {}, {}
    for sha in vs.blobs.names():
        try:
            st = vs.blobs.path(sha).stat()
        except FileNotFoundError:
            continue
        blob_size[sha], blob_mtime[sha] = st.st_size, st.st_mtime
    pending_size = {}
    for r in rows:
        if r[4]:
            try:
                pending_size[r[4]] = os.stat(vs.pending_dir / r[4]).st_size
            except FileNotFoundError:
                pending_size[r[4]] = 0

    # What stays: blobs rows refer to, blobs young enough to be in use, and
    # the pieces of either (a large content is a manifest of shared pieces).
    young = {sha for sha, t in blob_mtime.items() if now - t < grace}
    short = vs.shortfall()
    if short:  # a blob some row named is not left to wait out the grace while the disk lacks space
        young -= {r[3] for r in rows if r[3]}
    refs = Counter(r[3] for r in rows if r[3] and r[0] not in doomed)
    pieces: dict[str, set[str]] = {}

    def pieces_of(sha: str) -> set[str]:
        if sha not in pieces:
            try:
                pieces[sha] = set(vs.blobs.pieces(sha)) if sha in blob_size else set()
            except SemfsError:  # damaged: what it lists cannot be known
                pieces[sha] = set()
        return pieces[sha]

    piece_refs: Counter = Counter()
    for sha in set(refs) | young:
        piece_refs.update(pieces_of(sha))

    def kept(sha: str) -> bool:
        return refs[sha] > 0 or sha in young or piece_refs[sha] > 0

    total = sum(size for sha, size in blob_size.items() if kept(sha))
    total += sum(pending_size[r[4]] for r in rows if r[4] and r[0] not in doomed)
    # below the disk's reserve, versions yield: the store shrinks by what the disk lacks
    limit = policy.max_bytes if not short else max(0, min(policy.max_bytes, total - short))
    for r in rows:  # oldest first, until the store fits
        if total <= limit:
            break
        if r[0] in doomed:
            continue
        doomed.add(r[0])
        if r[3]:
            refs[r[3]] -= 1
            if not kept(r[3]):
                total -= blob_size.get(r[3], 0)
                for piece in pieces_of(r[3]):
                    piece_refs[piece] -= 1
                    if not kept(piece):
                        total -= blob_size.get(piece, 0)
        elif r[4]:
            total -= pending_size[r[4]]

    gone_rows = [r for r in rows if r[0] in doomed]
    unreferenced = [sha for sha in blob_size if not kept(sha)]
    freed = sum(blob_size[s] for s in unreferenced) + sum(pending_size.get(r[4], 0) for r in gone_rows if r[4])
    waiting = sum(1 for sha in young if refs[sha] <= 0 and piece_refs[sha] <= 0)
    report = Report(len(gone_rows), len({r[1] for r in gone_rows}), len(unreferenced), freed, total, waiting)
    if dry_run:
        return report
    with vs.rows_locked():  # no version is being recorded meanwhile (in this process)
        with md.write(db):
            vs.catalog.drop(r[0] for r in gone_rows)
        for r in gone_rows:
            if r[4]:
                try:
                    os.unlink(vs.pending_dir / r[4])
                except FileNotFoundError:
                    pass
        still = vs.catalog.blobs_in_use()
        for sha in unreferenced:
            if sha in still:  # recorded again since the rows were read
                continue
            try:
                if now + (time.time() - started) - vs.blobs.path(sha).stat().st_mtime < grace:
                    continue  # stored again meanwhile (by another process)
            except FileNotFoundError:
                continue
            vs.blobs.delete(sha)
    if gone_rows or unreferenced:
        log.info(
            "pruned %d versions of %d files and %d blobs: %d bytes freed",
            *[report.versions, report.paths, report.blobs, freed],
        )
    return report


def start_background(vs: Versions, stop, interval: float = 3600.0, first: float = 60.0):
    """Prune ``vs`` by its saved policy ``first`` seconds from now, then every ``interval``,
    until the event ``stop`` is set (a daemon thread)."""
    import threading

    def loop() -> None:
        delay = first
        while True:
            due = time.monotonic() + delay
            while time.monotonic() < due and not vs.prune_wanted.is_set():
                if stop.wait(min(5.0, max(0.0, due - time.monotonic()))):
                    return
            if stop.is_set():
                return
            vs.prune_wanted.clear()
            delay = interval
            try:
                vs.reserve = load_policy(vs.connection()).reserve  # as `semfs gc --reserve` last set it
                collect(vs)
            except Exception:
                log.exception("pruning versions failed; trying again in %.0f s", interval)

    t = threading.Thread(target=loop, name="semfs-versions-gc", daemon=True)
    t.start()
    return t
