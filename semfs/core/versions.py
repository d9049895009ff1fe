"""Versions: the content a change was about to destroy, kept before it goes.

Before the mount lets a file be overwritten (opened for writing,
truncated), replaced (renamed over) or unlinked, :meth:`Versions.keep`
stores its current content as a write-once blob and records a version
row (path, number, sha256, size, mtime, time, origin). A file about to be
unlinked or renamed over keeps its inode, so it is first hard-linked into
``pending/`` (no data copied; the user's rm or save goes on at once) and
a background thread turns the link into a blob; an overwrite in place
has to copy the content before it is changed. So every saved
change keeps the content before it, and the live file is always the
newest state. Identical content is stored once; when the newest version
already holds the file's current size and mtime, nothing is read at all.
Versions follow a file through renames.

Keeping a version must never cost the user a write: if it fails (disk
full, unreadable file) the change goes ahead, and the failure is logged
and shown by ``semfs status``. Files over ``max_bytes`` are not versioned.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import SemfsError
from ..stores import metadata as md
from ..stores.blobs import BlobStore
from .readfile import open_noatime

log = logging.getLogger(__name__)

MAX_BYTES = 64 << 20


class VersionError(SemfsError):
    pass


@dataclass(frozen=True)
class Version:
    path: str
    version: int
    sha256: Optional[str]  # None while pending
    pending: Optional[str]
    size: int
    mtime_ns: int
    time: float
    origin: str  # write, truncate, delete, rename, rollback


class Versions:
    def __init__(self, backing: Path, state_dir: Path, max_bytes: int = MAX_BYTES) -> None:
        self.backing = Path(backing)
        self.state_dir = Path(state_dir)
        self.blobs = BlobStore(self.state_dir / "blobs")
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()  # version numbers are per path: one writer at a time
        self.pending_dir = self.state_dir / "pending"
        self._work = threading.Event()
        self._worker: Optional[threading.Thread] = None

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = md.open_db(self.state_dir)
        return db

    # -- keeping -----------------------------------------------------------

    def keep(self, rel: str, origin: str) -> Optional[int]:
        """Store the current content of ``rel`` unless already stored; returns the version number or None.

        Never raises: a failure is logged and recorded, and the caller's change goes ahead.
        """
        try:
            return self._keep(rel, origin)
        except Exception as e:
            log.warning("could not keep a version of %s: %s", rel, e)
            self._record(f"failing: could not keep a version of {rel}: {e}")
            return None

    def _keep(self, rel: str, origin: str) -> Optional[int]:
        if not md.storable(rel):
            log.info("not versioned (the name is not UTF-8): %r", rel)
            return None
        full = self.backing / rel
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return None  # nothing to lose
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes:
            return None
        with self._lock:
            db = self._db()
            last = self._latest(db, rel)
            if last is not None and (last.size, last.mtime_ns) == (st.st_size, st.st_mtime_ns):
                return last.version  # this content is already kept
            sha = pending = None
            if origin in ("delete", "rename") and st.st_nlink == 1:
                # the name goes and no other name shows the inode: keep it by
                # a link, unseen (with other names, a link would show in nlink)
                pending = self._link(full)
            if pending is None:
                with open_noatime(full) as f:
                    sha, size = self.blobs.put_file(f)
                if last is not None and last.sha256 == sha:
                    return last.version
            number = (last.version + 1) if last is not None else 1
            with md.write(db):
                db.execute(
                    "INSERT INTO versions (path, version, sha256, pending, size, mtime_ns, time, origin) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [rel, number, sha, pending, st.st_size, st.st_mtime_ns, time.time(), origin],
                )
        if pending is not None:
            self._kick()
        return number

    def _link(self, full: Path) -> Optional[str]:
        """Hard-link ``full`` into pending/; None when that cannot be done (another filesystem)."""
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{threading.get_ident()}"
        try:
            os.link(full, self.pending_dir / name, follow_symlinks=False)
        except OSError:
            return None
        return name

    # -- the background thread that turns pending links into blobs ------------

    def _kick(self) -> None:
        self._work.set()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._drain, name="semfs-versions", daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        while self._work.wait(5.0):
            self._work.clear()
            while self.settle_pending():
                pass

    def settle_pending(self, limit: int = 64) -> int:
        """Turn up to ``limit`` pending links into blobs; returns how many it did."""
        db = self._db()
        rows = db.execute("SELECT id, pending FROM versions WHERE pending IS NOT NULL LIMIT ?", [limit]).fetchall()
        for vid, name in rows:
            link = self.pending_dir / name
            try:
                with open_noatime(link) as f:
                    sha, _ = self.blobs.put_file(f)
            except FileNotFoundError:
                sha = None
            with self._lock, md.write(db):
                if sha is None:
                    db.execute("DELETE FROM versions WHERE id = ?", [vid])  # lost before it was kept: say so honestly
                    log.warning("a pending version (%s) vanished before it was stored", name)
                else:
                    db.execute("UPDATE versions SET sha256 = ?, pending = NULL WHERE id = ?", [sha, vid])
            try:
                os.unlink(link)
            except FileNotFoundError:
                pass
        return len(rows)

    def recover(self) -> None:
        """After a crash: settle pending versions, drop links no row refers to, sweep half-written blobs."""
        db = self._db()
        while self.settle_pending():
            pass
        known = {r[0] for r in db.execute("SELECT pending FROM versions WHERE pending IS NOT NULL")}
        if self.pending_dir.is_dir():
            for p in self.pending_dir.iterdir():
                if p.name not in known:
                    p.unlink()
        self.blobs.sweep()

    def renamed(self, old: str, new: str, is_dir: bool) -> None:
        if not (md.storable(old) and md.storable(new)):
            return  # a name that is not UTF-8 has no versions to move, nor can it take them
        try:
            with self._lock:
                db = self._db()
                with md.write(db):
                    if is_dir:
                        db.execute(
                            "UPDATE versions SET path = ? || substr(path, ?) WHERE path >= ? AND path < ?",
                            [new, len(old) + 1, old + "/", old + "0"],
                        )
                    elif self._latest(db, new) is None:
                        db.execute("UPDATE versions SET path = ? WHERE path = ?", [new, old])
                    # else the rename replaced a file (an editor's atomic save): the
                    # name keeps its own history, which just gained the replaced content
        except Exception as e:
            log.warning("could not move the versions of %s: %s", old, e)
            self._record(f"failing: could not move the versions of {old}: {e}")

    def _record(self, text: str) -> None:
        try:
            db = self._db()
            with md.write(db):
                md.set_meta(db, "versions", text)
        except Exception:
            log.exception("could not record a versioning failure")

    # -- reading -----------------------------------------------------------

    def _latest(self, db, rel: str) -> Optional[Version]:
        row = db.execute(
            "SELECT path, version, sha256, pending, size, mtime_ns, time, origin FROM versions WHERE path = ? "
            "ORDER BY version DESC LIMIT 1",
            [rel],
        ).fetchone()
        return Version(*row) if row else None

    def history(self, rel: str) -> list[Version]:
        rows = self._db().execute(
            "SELECT path, version, sha256, pending, size, mtime_ns, time, origin FROM versions WHERE path = ? ORDER BY version",
            [rel],
        ).fetchall()
        return [Version(*r) for r in rows]

    def names_under(self, prefix: str) -> set[str]:
        """Names directly under the folder ``prefix`` ('' for the top) of paths that have versions."""
        lo, hi = (prefix + "/", prefix + "0") if prefix else ("", "\U0010ffff")
        rows = self._db().execute("SELECT DISTINCT path FROM versions WHERE path >= ? AND path < ?", [lo, hi])
        return {path[len(lo) :].split("/", 1)[0] for (path,) in rows}

    def has_history(self, rel: str) -> bool:
        """Whether ``rel`` has versions itself or holds paths that have."""
        row = self._db().execute(
            "SELECT 1 FROM versions WHERE path = ? OR (path >= ? AND path < ?) LIMIT 1", [rel, rel + "/", rel + "0"]
        ).fetchone()
        return row is not None

    def content(self, v: Version) -> bytes:
        if v.sha256 is None:  # still a hard link waiting to become a blob
            with open_noatime(self.pending_dir / v.pending) as f:
                return f.read()
        return self.blobs.read(v.sha256)

    def entry_names(self, rel: str) -> dict[str, Version]:
        """The versions of ``rel`` by their file names in ``history/<rel>/``."""
        return {entry_name(v): v for v in self.history(rel)}

    def pick(self, rel: str, version: Optional[int] = None, steps: Optional[int] = None, at: Optional[float] = None) -> Version:
        """The version a rollback asks for: a number, N steps back from now, or the state at a time."""
        hist = self.history(rel)
        if not hist:
            raise VersionError(f"no history for {rel}")
        if version is not None:
            for v in hist:
                if v.version == version:
                    return v
            raise VersionError(f"{rel} has no version {version} (it has {hist[0].version}..{hist[-1].version})")
        if steps is not None:
            if not 1 <= steps <= len(hist):
                raise VersionError(f"{rel} has {len(hist)} versions: --steps must be 1..{len(hist)}")
            return hist[-steps]
        if at is not None:
            # the content at time `at` is the first version kept after it (it was live until then)
            later = [v for v in hist if v.time > at]
            if not later:
                raise VersionError(f"{rel} has not changed since that time: nothing to roll back to")
            first = hist[0]
            if at < first.mtime_ns / 1e9:
                raise VersionError(f"{rel} has no version from before {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(first.mtime_ns / 1e9))}")
            return later[0]
        raise VersionError("say which version: --version, --steps or --at")


def entry_name(v: Version) -> str:
    """``0003 2026-11-26T10-15-03.md``: number, when that content was written (local time), the file's extension."""
    ext = os.path.splitext(v.path.rsplit("/", 1)[-1])[1]
    secs = v.mtime_ns / 1e9 if v.mtime_ns else v.time
    return f"{v.version:04d} {time.strftime('%Y-%m-%dT%H-%M-%S', time.localtime(secs))}{ext if len(ext) <= 16 else ''}"
