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

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Optional

from ...errors import SemfsError
from ...stores import metadata as md
from ...stores.blobs import BlobError, BlobStore
from ...stores.catalog import Version
from ...stores.healing import report_damage
from ...stores.local import LocalStore
from ...stores.private import private_dir
from ..beneath import Tree
from ..ignore import IgnoreRules
from ..readfile import open_noatime

log = logging.getLogger(__name__)

MAX_BYTES = 64 << 20
JOURNAL = "journal"  # in pending/: one JSON line per link whose row is not written yet
QUIET = 0.3  # seconds without a new kept version before the background thread records and stores
MAX_WAIT = 5.0  # but it waits no longer than this during a long burst


class VersionError(SemfsError):
    pass


def pending_ino(name: str) -> int:
    """The inode a pending link was made of, from its name (0: a name from before it was recorded)."""
    parts = name.split("-")
    return int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else 0


def reserve_for(total: int) -> int:
    """The default reserve of a disk of ``total`` bytes: the larger of 5% and 1 GiB, but at most
    a fifth of it (1 GiB would be all of a small disk)."""
    return min(max(total // 20, 1 << 30), total // 5)


class Versions:
    def __init__(self, backing: Path, state_dir: Path, max_bytes: int = MAX_BYTES, local=None) -> None:
        """``local``: the state dir's LocalStore, if the caller shares one (a mount does)."""
        self.backing = Path(backing)
        self._root = str(self.backing)
        self._tree: Optional[Tree] = None
        self.state_dir = Path(state_dir)
        self.blobs = BlobStore(self.state_dir / "blobs")
        self.max_bytes = max_bytes
        self.local = local if local is not None else LocalStore(self.state_dir)
        self.catalog = self.local.catalog  # every query of the versions table
        self.ignore = IgnoreRules(self.backing)
        self._rows = threading.Lock()  # version numbers are per path: one writer of rows at a time
        self._lock = threading.Lock()  # the journal and the list of its unrecorded entries
        self.pending_dir = self.state_dir / "pending"
        self.journal_path = self.pending_dir / JOURNAL
        self._journal_fd: Optional[int] = None
        self._unrecorded: list[dict] = []  # journaled links whose rows are not written yet
        self._work = threading.Event()
        self._last_kick = 0.0
        self._worker: Optional[threading.Thread] = None
        # bytes the state dir's disk keeps free before a version is kept (None: reserve_for())
        self.reserve: Optional[int] = None
        self._short = False  # whether the last version was skipped for space (said once a spell)
        self._failing = False  # whether the last keep failed (status says so until one works)
        self.prune_wanted = threading.Event()  # the disk fell below the reserve: prune now, not in an hour

    @staticmethod
    def content_kept(state_dir: Path):
        """``present(sha256, pending)``: whether a version's content is still in ``state_dir``
        (for what a damaged database's rows may be salvaged, :mod:`semfs.stores.healing`)."""
        blobs, pending = BlobStore(Path(state_dir) / "blobs"), Path(state_dir) / "pending"

        def present(sha256: Optional[str], link: Optional[str]) -> bool:
            if sha256 is not None:
                try:
                    return blobs.has(sha256)
                except (BlobError, TypeError):  # a damaged page gave garbage
                    return False
            return isinstance(link, str) and "/" not in link and (pending / link).is_file()

        return present

    def _free_and_reserve(self) -> Optional[tuple[int, int]]:
        try:
            st = os.statvfs(self.state_dir)
        except OSError:
            return None
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        reserve = self.reserve if self.reserve is not None else reserve_for(total)
        forced = os.environ.get("SEMFS_RESERVE")  # bytes, over the policy (the test suite sets 0)
        if forced is not None and forced.isdigit():
            reserve = int(forced)
        return free, reserve

    def shortfall(self) -> int:
        """How many bytes the state dir's disk is below its reserve (0 when above)."""
        got = self._free_and_reserve()
        return 0 if got is None else max(0, got[1] - got[0])

    def room_for(self, size: int) -> bool:
        """Whether keeping ``size`` more bytes of versions leaves the state dir's disk above its
        reserve. A version that does not fit is not kept, and the user's change frees its space;
        the first such asks for a prune (the oldest versions go until the disk is above it)."""
        got = self._free_and_reserve()
        if got is None:
            return True
        free, reserve = got
        if free - size >= reserve:
            if self._short:
                self._short = False
                self._record("ok")
            return True
        if not self._short:
            self._short = True
            self.prune_wanted.set()
            log.warning("versions not kept while the disk has under %d bytes free (%d now)", reserve, free)
            self._record(f"skipping: the disk is below its reserve of {reserve:,} free bytes; changes are not kept")
        return False

    @property
    def tree(self) -> Tree:
        """BACKING by descriptor, opened at first use (a mount's: when it starts)."""
        if self._tree is None:
            self._tree = Tree(self._root)
        return self._tree

    def _db(self):
        return self.local.db()

    def connection(self):
        """This thread's connection to the state database (for the change notes and retention that live beside it)."""
        return self._db()

    def rows_locked(self):
        """Hold while no version row may be written (in this process): a context manager."""
        return self._rows

    # -- keeping -----------------------------------------------------------

    def keep(self, rel: str, origin: str) -> Optional[int]:
        """Store the current content of ``rel`` unless already stored; returns the version number or None.

        Never raises: a failure is logged and recorded, and the caller's change goes ahead.
        """
        try:
            kept = self._keep(rel, origin)
        except Exception as e:
            self._failed(f"keep a version of {rel}", e)
            self._failing = True
            return None
        if self._failing:  # a fault is said while it lasts, not after
            self._failing = False
            self._record("ok")
        return kept

    def _keep(self, rel: str, origin: str) -> Optional[int]:
        if not md.storable(rel):
            log.info("not versioned (the name is not UTF-8): %r", rel)
            return None
        try:
            st = self.tree.lstat(rel)
        except (FileNotFoundError, NotADirectoryError):
            return None  # nothing to lose
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_bytes or not self.room_for(st.st_size):
            return None
        if origin in ("delete", "rename") and st.st_nlink > 1:
            # the name goes, the content stays under the file's other names (git's
            # temporary objects, `cp -l` trees): nothing is lost, nothing to copy
            return None
        if origin in ("delete", "rename"):
            # The name goes and no other name shows the inode: keep it by a
            # link, unseen (with other names, a link would show in nlink), and
            # journal it; its row is written in the background, so a burst of
            # deletes costs a link and a line each, not a transaction each.
            pending = self._into_pending(rel, move=False, ino=st.st_ino)
            if pending is not None:
                return self._hand_over(rel, pending, st, origin)
        with self._rows:
            db = self._db()
            self._record_journaled(db)  # numbers follow the journaled versions
            last = self.catalog.latest(rel)
            if last is not None and (last.size, last.mtime_ns) == (st.st_size, st.st_mtime_ns):
                return last.version  # this content is already kept
            with self.tree.reader(rel) as f:
                sha, _ = self.blobs.put_file(f)
            if last is not None and last.sha256 == sha:
                return last.version
            number = (last.version + 1) if last is not None else 1
            with md.write(db):
                self.catalog.add(rel, number, sha, None, st.st_size, st.st_mtime_ns, time.time(), origin)
        return number

    def take(self, rel: str) -> bool:
        """Unlink ``rel`` by moving it into pending/ as its newest version; False (having
        changed nothing) when it cannot be taken so, and a plain unlink should follow.

        One rename instead of a link and an unlink: deleting costs about what it
        does without versions. Never raises.
        """
        try:
            if not md.storable(rel):
                return False
            st = self.tree.lstat(rel)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > self.max_bytes:
            return False
        if not self.room_for(st.st_size):
            return False  # the plain unlink frees its space
        name = self._into_pending(rel, move=True, ino=st.st_ino)
        if name is None:
            return False  # (another filesystem, an immutable file, ...): the unlink says why
        try:
            self._hand_over(rel, name, st, "delete")
        except Exception as e:
            self._failed(f"keep a version of {rel}", e, "it was deleted unkept")
            os.unlink(f"{self.pending_dir}/{name}")
        return True

    def _into_pending(self, rel: str, move: bool, ino: int) -> Optional[str]:
        """Hard-link (or, with ``move``, rename) ``rel`` into pending/; its name there,
        or None when that cannot be done (another filesystem). The name ends with the
        inode ``ino`` seen before: the link is read only if it is still that file."""
        if self._journal_fd is None:
            private_dir(self.pending_dir)
        name = f"{time.time_ns()}-{threading.get_ident()}-{ino}"
        dest = f"{self.pending_dir}/{name}"
        try:
            with self.tree.at(rel) as (d, base):
                if move:
                    os.rename(base, dest, src_dir_fd=d)
                else:
                    os.link(base, dest, src_dir_fd=d, follow_symlinks=False)
        except OSError:
            return None
        return name

    def _hand_over(self, rel: str, name: str, st: os.stat_result, origin: str) -> Optional[int]:
        """Journal the pending file ``name`` as the newest version of ``rel`` (None), or,
        if the journal cannot be written, record its row at once (its version number)."""
        entry = dict(link=name, path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, time=time.time(), origin=origin)
        try:
            with self._lock:
                self._journal(entry)
        except OSError as e:
            log.warning("could not journal a kept version (%s): recording it now", e)
            with self._rows:
                db = self._db()
                self._record_journaled(db)  # the ones journaled before it come first
                self._record_journaled(db, [entry])
                latest = self.catalog.latest(rel)
                assert latest is not None  # (recorded just now, under the lock)
                number = latest.version
            self._kick()  # to store it
            return number
        self._kick()
        return None

    # -- the journal of links not yet recorded ----------------------------------

    def _journal(self, entry: dict) -> None:
        """Append ``entry`` to the journal (with ``_lock`` held). The line is in the page
        cache before the user's unlink goes ahead: a killed daemon loses nothing."""
        if self._journal_fd is None:
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._journal_fd, (json.dumps(entry) + "\n").encode())
        self._unrecorded.append(entry)

    def _record_journaled(self, db, entries: Optional[list[dict]] = None) -> int:
        """Write the rows of journaled links (with ``_rows`` held); returns how many.

        Without ``entries``, those this object journaled; the journal is
        emptied once every line of it has its row.
        """
        if entries is None:
            with self._lock:
                batch, self._unrecorded = self._unrecorded, []
        else:
            batch = entries
        if not batch:
            return 0
        try:
            with md.write(db):
                for e in batch:
                    last = self.catalog.latest(e["path"])
                    number = (last.version + 1) if last else 1
                    link, size, mtime = e["link"], e["size"], e["mtime_ns"]
                    self.catalog.add(e["path"], number, None, link, size, mtime, e["time"], e["origin"])
        except BaseException:
            if entries is None:
                with self._lock:
                    self._unrecorded[:0] = batch  # still journaled: tried again next time
            raise
        if entries is None:
            with self._lock:
                if not self._unrecorded and self._journal_fd is not None:
                    os.ftruncate(self._journal_fd, 0)
        return len(batch)

    def _record_journaled_if_any(self) -> None:
        if self._unrecorded:  # (unlocked peek: a late entry is recorded by the background thread)
            self.record_journaled()

    def record_journaled(self) -> int:
        with self._rows:
            return self._record_journaled(self._db())

    def _read_journal(self) -> list[dict]:
        """Journaled links whose rows are not in the database (another process's, or a dead daemon's)."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for line in raw.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash: its link has no row and is dropped by recover
        if not entries:
            return []
        known = self.catalog.pending_links()
        return [e for e in entries if e["link"] not in known and (self.pending_dir / e["link"]).exists()]

    # -- the background thread that turns pending links into blobs ------------

    def _kick(self) -> None:
        self._last_kick = time.monotonic()
        if (
            not self._work.is_set()
        ):  # (only the first of a burst wakes the thread: a wake-up per delete cost more than the delete)
            self._work.set()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._drain, name="semfs-versions", daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        while self._work.wait(5.0):
            # Let a burst (rm -r) run on before competing with it: the links and
            # the journal keep everything safe meanwhile.
            started = time.monotonic()
            while True:
                now = time.monotonic()
                idle = now - self._last_kick
                if idle >= QUIET or now - started > MAX_WAIT:
                    break
                time.sleep(QUIET - idle)
            self._work.clear()
            try:
                self.record_journaled()
            except Exception as e:  # the lines stay in the journal: recover() records them
                self._failed("record kept versions", e)
            while not self._work.is_set() and self.settle_pending():
                pass  # (a new burst first: the loop comes back for the rest)
            if not self._work.is_set() and self._has_pending():
                self._work.set()

    def _has_pending(self) -> bool:
        return self.catalog.has_pending()

    def settle_pending(self, limit: int = 64) -> int:
        """Turn up to ``limit`` pending links into blobs; returns how many it did."""
        db = self._db()
        rows = self.catalog.pending(limit)
        for vid, name in rows:
            link = self.pending_dir / name
            why = "vanished"
            try:
                with open_noatime(link, pending_ino(name)) as f:
                    sha, _ = self.blobs.put_file(f)
            except FileNotFoundError:
                sha = None
            except OSError as e:  # a symlink, a FIFO, another inode: something swapped in, never read
                sha, why = None, f"was refused ({e.strerror})"
            with self._rows, md.write(db):
                if sha is None:
                    self.catalog.drop([vid])  # lost before it was kept: say so honestly
                    log.warning("a pending version (%s) %s before it was stored", name, why)
                else:
                    self.catalog.stored(vid, sha)
            try:
                os.unlink(link)
            except FileNotFoundError:
                pass
        return len(rows)

    def recover(self) -> None:
        """After a crash: record journaled links, settle pending versions, drop links no row
        refers to, sweep half-written blobs."""
        db = self._db()
        with self._rows:
            leftover = self._read_journal()
            if leftover:
                log.info("recording %d versions journaled before a stop", len(leftover))
                self._record_journaled(db, leftover)
            try:
                os.truncate(self.journal_path, 0)
            except FileNotFoundError:
                pass
        while self.settle_pending():
            pass
        known = self.catalog.pending_links()
        if self.pending_dir.is_dir():
            for p in self.pending_dir.iterdir():
                if p.name not in known and p.name != JOURNAL:
                    p.unlink()
        self.blobs.sweep()

    def renamed(self, old: str, new: str, is_dir: bool) -> None:
        if not (md.storable(old) and md.storable(new)):
            return  # a name that is not UTF-8 has no versions to move, nor can it take them
        if self.ignore.ignored(new, is_dir):
            return  # into the trash (say): the versions stay where the file was, under history/
        try:
            with self._rows:
                db = self._db()
                self._record_journaled(db)  # their paths move too
                with md.write(db):
                    if is_dir or self.catalog.latest(new) is None:
                        self.catalog.move(old, new, is_dir)
                    # else the rename replaced a file (an editor's atomic save): the
                    # name keeps its own history, which just gained the replaced content
        except Exception as e:
            self._failed(f"move the versions of {old}", e)

    def _failed(self, what: str, e: Exception, then: str = "") -> None:
        """A version that could not be kept (or recorded, or moved): damage to the database is
        reported for healing, and the log and ``semfs status`` say what failed."""
        report_damage(self.state_dir, e)
        log.warning("could not %s: %s%s", what, e, f" ({then})" if then else "")
        self._record(f"failing: could not {what}: {e}")

    def _record(self, text: str) -> None:
        try:
            self.local.record("versions", text)
        except Exception:
            log.exception("could not record a versioning failure")

    # -- reading -----------------------------------------------------------

    def history(self, rel: str) -> list[Version]:
        """The versions of ``rel``, oldest first, including those still in a journal
        (numbered as they will be when recorded)."""
        journaled = [e for e in self._read_journal() if e["path"] == rel]
        out = self.catalog.of(rel)
        n = out[-1].version if out else 0
        for e in journaled:
            n += 1
            out.append(Version(rel, n, None, e["link"], e["size"], e["mtime_ns"], e["time"], e["origin"]))
        return out

    def names_under(self, prefix: str) -> set[str]:
        """Names directly under the folder ``prefix`` ('' for the top) of paths that have versions."""
        self._record_journaled_if_any()
        return self.catalog.names_under(prefix)

    def has_history(self, rel: str) -> bool:
        """Whether ``rel`` has versions itself or holds paths that have."""
        self._record_journaled_if_any()
        return self.catalog.has_history(rel)

    def content(self, v: Version) -> bytes:
        if v.sha256 is None:  # still a hard link waiting to become a blob
            assert v.pending is not None
            with open_noatime(self.pending_dir / v.pending, pending_ino(v.pending)) as f:
                return f.read()
        return self.blobs.read(v.sha256)
