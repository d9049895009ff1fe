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
from typing import NamedTuple, Optional

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
    rows = [Row(*r) for r in vs.catalog.for_pruning()]
    doomed = _past_policy(rows, policy, now)
    short = vs.shortfall()
    store = _Stored(vs, rows, doomed, now, grace, short)
    # below the disk's reserve, versions yield: the store shrinks by what the disk lacks
    limit = policy.max_bytes if not short else max(0, min(policy.max_bytes, store.total - short))
    for r in rows:  # oldest first, until the store fits
        if store.total <= limit:
            break
        if r.id not in doomed:
            doomed.add(r.id)
            store.drop(r)
    gone_rows = [r for r in rows if r.id in doomed]
    unreferenced = [sha for sha in store.blob_size if not store.kept(sha)]
    freed = sum(store.blob_size[s] for s in unreferenced)
    freed += sum(store.pending_size.get(r.link, 0) for r in gone_rows if r.link)
    report = Report(
        len(gone_rows), len({r.path for r in gone_rows}), len(unreferenced), freed, store.total, store.waiting()
    )
    if dry_run:
        return report
    with vs.rows_locked():  # no version is being recorded meanwhile (in this process)
        with md.write(db):
            vs.catalog.drop(r.id for r in gone_rows)
        for r in gone_rows:
            if r.link:
                try:
                    os.unlink(vs.pending_dir / r.link)
                except FileNotFoundError:
                    pass
        _delete_blobs(vs, unreferenced, lambda: now + (time.time() - started), grace)
    if gone_rows or unreferenced:
        log.info(
            "pruned %d versions of %d files and %d blobs: %d bytes freed",
            *[report.versions, report.paths, report.blobs, freed],
        )
    return report


class Row(NamedTuple):
    """A version as pruning sees it (the catalog's ``for_pruning``)."""

    id: int
    path: str
    version: int
    sha256: Optional[str]  # its blob, once stored
    link: Optional[str]  # its pending link, until then
    time: float


def _past_policy(rows: list[Row], policy: Policy, now: float) -> set[int]:
    """The versions the policy lets go: beyond the newest ``keep`` of their path and older than ``days``."""
    by_path: dict[str, list[Row]] = {}
    for r in rows:
        by_path.setdefault(r.path, []).append(r)
    cutoff = now - policy.days * 86400
    doomed = set()
    for rs in by_path.values():
        for i, r in enumerate(sorted(rs, key=lambda r: r.version, reverse=True)):
            if i >= policy.keep and r.time < cutoff:
                doomed.add(r.id)
    return doomed


class _Stored:
    """What the store holds and what of it stays: blobs rows refer to, blobs young enough to be
    in use, and the pieces of either (a large content is a manifest of shared pieces); ``total``
    is the bytes that stay, kept up to date as rows are dropped."""

    def __init__(self, vs: Versions, rows: list[Row], doomed: set[int], now: float, grace: float, short: int) -> None:
        self.blobs = vs.blobs
        self.blob_size: dict[str, int] = {}
        blob_mtime: dict[str, float] = {}
        for sha in vs.blobs.names():
            try:
                st = vs.blobs.path(sha).stat()
            except FileNotFoundError:
                continue
            self.blob_size[sha], blob_mtime[sha] = st.st_size, st.st_mtime
        self.pending_size: dict[str, int] = {}
        for r in rows:
            if r.link:
                try:
                    self.pending_size[r.link] = os.stat(vs.pending_dir / r.link).st_size
                except FileNotFoundError:
                    self.pending_size[r.link] = 0
        self.young = {sha for sha, t in blob_mtime.items() if now - t < grace}
        if short:  # a blob some row named is not left to wait out the grace while the disk lacks space
            self.young -= {r.sha256 for r in rows if r.sha256}
        self.refs = Counter(r.sha256 for r in rows if r.sha256 and r.id not in doomed)
        self._pieces: dict[str, set[str]] = {}
        self.piece_refs: Counter = Counter()
        for sha in set(self.refs) | self.young:
            self.piece_refs.update(self.pieces_of(sha))
        self.total = sum(size for sha, size in self.blob_size.items() if self.kept(sha))
        self.total += sum(self.pending_size[r.link] for r in rows if r.link and r.id not in doomed)

    def pieces_of(self, sha: str) -> set[str]:
        if sha not in self._pieces:
            try:
                self._pieces[sha] = set(self.blobs.pieces(sha)) if sha in self.blob_size else set()
            except SemfsError:  # damaged: what it lists cannot be known
                self._pieces[sha] = set()
        return self._pieces[sha]

    def kept(self, sha: str) -> bool:
        return self.refs[sha] > 0 or sha in self.young or self.piece_refs[sha] > 0

    def drop(self, r: Row) -> None:
        """Row ``r`` goes: its blob too, and the pieces only it held, if nothing else keeps them."""
        if r.sha256:
            self.refs[r.sha256] -= 1
            if not self.kept(r.sha256):
                self.total -= self.blob_size.get(r.sha256, 0)
                for piece in self.pieces_of(r.sha256):
                    self.piece_refs[piece] -= 1
                    if not self.kept(piece):
                        self.total -= self.blob_size.get(piece, 0)
        elif r.link:
            self.total -= self.pending_size[r.link]

    def waiting(self) -> int:
        """Blobs no row refers to that are kept only while young (another process may be storing them)."""
        return sum(1 for sha in self.young if self.refs[sha] <= 0 and self.piece_refs[sha] <= 0)


def _delete_blobs(vs: Versions, shas: list[str], now, grace: float) -> None:
    """Delete the blobs ``shas``, but none recorded again since the rows were read, nor stored
    again meanwhile (by another process)."""
    still = vs.catalog.blobs_in_use()
    for sha in shas:
        if sha in still:
            continue
        try:
            if now() - vs.blobs.path(sha).stat().st_mtime < grace:
                continue
        except FileNotFoundError:
            continue
        vs.blobs.delete(sha)


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
