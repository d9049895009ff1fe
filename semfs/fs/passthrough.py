"""The FUSE operations: a passthrough mirror of the backing folder.

Every operation makes the same system call on the backing folder, so the
backing filesystem decides every errno (ENOENT, EEXIST, ENOTEMPTY,
EACCES ...) and the folder stays usable without semfs. After a call
succeeds, one call into :class:`~semfs.fs.changes.ChangeTracker`
reports what changed.

Beneath BACKING, as the caller:
- Each path is resolved relative to a descriptor of BACKING opened at
  mount, through no symlink (:class:`~semfs.core.beneath.Tree`), and the
  last name is handled by an ``*at()`` call that does not follow it: a
  name swapped for a symlink directly in BACKING, between the kernel's
  permission check and the call, leads nowhere.
- When the daemon serves other users (root, ``--allow-other``), each call
  runs on its FUSE thread under the caller's fsuid, fsgid and groups, with
  no capability of root's (:class:`~semfs.fs.access.Identity`), so the
  kernel checks the call itself as it would the caller's, and new files
  and folders are the caller's from the start. What the daemon does for
  itself (versions, indexing) runs as the daemon.

Caveats:
- Open files are served by their file descriptor, not their path (the
  mount runs with ``nullpath_ok``), so a file that is renamed while open
  keeps working, as on a local disk.
- A file unlinked (or renamed over) while open is unlinked in the backing
  folder at once. libfuse still calls it by a ``.fuse_hidden*`` name until
  its last close; that name lives only in this process, served from one
  of the file's open descriptors (``fstat`` shows 0 links, ``fchmod``
  works). Nothing of it is ever left in BACKING. Once its folder is
  removed too, libfuse can no longer name it: ``fstat`` then answers
  ESTALE, while reads and writes through its descriptors go on.
- POSIX and BSD locks are kept by the kernel for this mount only; a
  program using the backing folder directly does not see them.
- libfuse gives each name of a hard-linked file its own kernel inode, so
  after a change through one name the others' cached attributes (link
  count, ctime, mode) are dropped by hand: the names of each inode with
  more than one link that the kernel was given are remembered for that.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import stat as statmod
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import mfusepy

from ..core.beneath import Tree, proc_path
from .access import Identity
from .changes import ChangeTracker

_libc = ctypes.CDLL(None, use_errno=True)
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
# libfuse's name for an unlinked file still open: ".fuse_hidden" and its node and counter in hex
_HIDDEN_NAME = re.compile(r"\.fuse_hidden[0-9a-f]{16}")
NOW = -1  # in utimens' times: the current time (UTIME_NOW), as the kernel sets it
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2


class _timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what)


def _utimensat(dirfd: int, name: Optional[str], times: Optional[tuple], flags: int) -> None:
    """utimensat(2) itself: None (omit) and NOW reach the kernel as UTIME_OMIT and UTIME_NOW,
    so it decides who may set which time exactly as on a local disk."""
    ts = None
    if times is not None:
        ts = (_timespec * 2)()
        for t, ns in zip(ts, times):
            if ns is None:
                t.tv_sec, t.tv_nsec = 0, _UTIME_OMIT
            elif ns == NOW:
                t.tv_sec, t.tv_nsec = 0, _UTIME_NOW
            else:
                t.tv_sec, t.tv_nsec = divmod(ns, 1_000_000_000)
    _check(_libc.utimensat(dirfd, None if name is None else os.fsencode(name), ts, flags), "utimensat")


def _dtype_mode(entry: os.DirEntry) -> int:
    # Only the file-type bits reach the kernel (as d_type); they spare
    # `find` and `rm -r` a stat per entry.
    if entry.is_symlink():
        return statmod.S_IFLNK
    if entry.is_dir(follow_symlinks=False):
        return statmod.S_IFDIR
    if entry.is_file(follow_symlinks=False):
        return statmod.S_IFREG
    return 0


@dataclass
class _Hidden:
    """A file unlinked while open, under the name libfuse calls it by until its last close."""

    fhs: list[int]  # its open handles (descriptors): any one of them serves the name
    sole: bool  # it had no other name, so it has none now (a version may still hold it)


class _Unlinked:
    """A stat result with no links."""

    st_nlink = 0

    def __init__(self, s: os.stat_result) -> None:
        self._s = s

    def __getattr__(self, name: str):
        return getattr(self._s, name)


class HardLinks:
    """The names the kernel was given of each non-folder inode with more than one link.

    Bounded: past ``limit`` names it starts again (a name forgotten only
    keeps its cached attributes until the attribute timeout).
    """

    def __init__(self, limit: int = 65536) -> None:
        self._names: dict[int, set[str]] = {}
        self._ino: dict[str, int] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def note(self, path: str, ino: int) -> None:
        if self._ino.get(path) == ino:
            return
        with self._lock:
            if len(self._ino) >= self._limit:
                self._names.clear()
                self._ino.clear()
            self._drop(path)
            self._ino[path] = ino
            self._names.setdefault(ino, set()).add(path)

    def _drop(self, path: str) -> None:
        ino = self._ino.pop(path, None)
        if ino is not None:
            names = self._names.get(ino)
            if names is not None:
                names.discard(path)
                if not names:
                    del self._names[ino]

    def others(self, path: str) -> list[str]:
        """The other known names of ``path``'s inode."""
        with self._lock:
            ino = self._ino.get(path)
            return [] if ino is None else [n for n in self._names.get(ino, ()) if n != path]

    def forget(self, path: str) -> None:
        with self._lock:
            self._drop(path)

    def moved(self, old: str, new: str) -> None:
        with self._lock:
            self._drop(new)
            ino = self._ino.get(old)
            if ino is not None:
                self._drop(old)
                self._ino[new] = ino
                self._names.setdefault(ino, set()).add(new)

    def __bool__(self) -> bool:
        return bool(self._ino)


@dataclass(frozen=True)
class Hooks:
    """What the mirror asks of its mount on the spot, given at construction (the change events
    go through the tracker instead: they are for observers that may lag)."""

    # Called with (relative path, origin) just before a file's content is overwritten,
    # truncated, replaced or unlinked: versions keep it.
    before_change: Optional[Callable[[str, str], object]] = None
    after_rename: Optional[Callable[[str, str, bool], object]] = None
    # Called instead of unlink: takes the file out of the tree into the version store (one
    # rename, no copy) and returns True, or returns False to leave it to before_change and unlink.
    take_on_unlink: Optional[Callable[[str], bool]] = None
    on_ready: Optional[Callable[[], None]] = None  # the kernel has connected: the mount is live
    # told of an operation's unexpected error (a damaged database: the daemon heals it)
    on_failure: Callable[[BaseException], object] = lambda e: None
    invalidate: Callable[[str], None] = lambda path: None  # drop the kernel's cached attributes of a path
    capabilities: int = 0  # FUSE_CAP_* bits to ask for, where the kernel offers them


class Passthrough(mfusepy.Operations):
    use_ns = True
    # Both flags are needed for mfusepy to set libfuse3's nullpath_ok:
    # operations on open handles then skip path resolution.
    flag_nopath = True
    flag_nullpath_ok = True

    def __init__(
        self, backing: str, tracker: ChangeTracker, serve_others: bool = False, hooks: Optional[Hooks] = None
    ) -> None:
        """``serve_others``: the mount lets other users in (``--allow-other``); a root daemon then
        acts as each caller. ``tracker`` turns operations into change events (for observers
        that may lag: the indexer); ``hooks`` are asked on the spot (versions, readiness)."""
        self.tree = Tree(backing)
        self.identity = Identity(serve_others)
        self.caller = self.identity.as_caller
        self.tracker = tracker
        self.hooks = hooks or Hooks()
        self._listings: dict[int, list[tuple[str, int, int]]] = {}
        self._hidden: dict[str, _Hidden] = {}
        self._links = HardLinks()

    def init_with_config(self, conn, config) -> None:
        # Called once the kernel has connected: the mount is live.
        if conn is not None:
            conn.want |= conn.capable & self.hooks.capabilities
        if self.hooks.on_ready is not None:
            self.hooks.on_ready()

    def destroy(self, path) -> None:
        self.tree.close()

    def _at(self, path: Optional[str]):
        # (None only comes with a file handle, which every caller uses first)
        assert path is not None
        return self.tree.at(path[1:])

    def _hidden_fh(self, path: Optional[str]) -> Optional[int]:
        """An open descriptor of the unlinked file libfuse calls ``path``, if it is one."""
        h = self._hidden.get(path) if self._hidden and path is not None else None
        return h.fhs[0] if h is not None and h.fhs else None

    def _changed(self, path: str) -> None:
        """A change through ``path`` changed its inode: the kernel's copies under its other names go."""
        if self._links:
            for other in self._links.others(path):
                self.hooks.invalidate(other)

    # -- attributes ------------------------------------------------------

    def getattr(self, path: Optional[str], fh: Optional[int] = None) -> "os.stat_result | _Unlinked":
        if fh is not None:
            return os.fstat(fh)
        if self._hidden and path in self._hidden:
            return self._hidden_stat(self._hidden[path])  # type: ignore[index]
        with self.caller(), self._at(path) as (d, name):
            s = os.stat(name, dir_fd=d, follow_symlinks=False)
        if s.st_nlink > 1 and not statmod.S_ISDIR(s.st_mode):
            self._links.note(path, s.st_ino)  # type: ignore[arg-type]
        return s

    def _hidden_stat(self, h: _Hidden) -> "os.stat_result | _Unlinked":
        if not h.fhs:
            raise mfusepy.FuseOSError(errno.ENOENT)
        s = os.fstat(h.fhs[0])
        # a kept version's link (outside the mount) is no name of it
        return _Unlinked(s) if h.sole and s.st_nlink else s

    def access(self, path: str, amode: int) -> int:
        with self.caller(), self._at(path) as (d, name):
            ok = os.access(name, amode, dir_fd=d, effective_ids=True, follow_symlinks=False)
        if not ok:
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def chmod(self, path: Optional[str], mode: int, fh: Optional[int] = None) -> int:
        fh = fh if fh is not None else self._hidden_fh(path)
        if fh is not None:
            with self.caller():
                os.fchmod(fh, mode)
            return 0
        try:
            with self.caller(), self._at(path) as (d, name):
                _check(_libc.fchmodat(d, os.fsencode(name), mode, _AT_SYMLINK_NOFOLLOW), "chmod")
        except PermissionError:
            self._drop_setid(path, mode)  # type: ignore[arg-type]
        self._changed(path)  # type: ignore[arg-type]
        return 0

    def _drop_setid(self, path: str, mode: int) -> None:
        """The kernel dropping set-user-ID and set-group-ID after another user's write,
        truncate or chown: libfuse 3.14 cannot take that on itself (no
        FUSE_CAP_HANDLE_KILLPRIV), so it comes as a chmod in that user's name, which the
        disk refuses to anyone but the owner. Made as the daemon only when it clears
        those bits and changes nothing else; anything else stays refused."""
        fd = self._handle(path)
        try:
            st = os.fstat(fd)
            cur, new = statmod.S_IMODE(st.st_mode), mode & 0o7777
            setid = statmod.S_ISUID | statmod.S_ISGID
            if not (
                statmod.S_ISREG(st.st_mode) and new != cur and new & ~setid == cur & ~setid and new & setid & ~cur == 0
            ):
                raise mfusepy.FuseOSError(errno.EPERM)
            os.chmod(proc_path(fd), new)
        finally:
            os.close(fd)

    def chown(self, path: Optional[str], uid: int, gid: int, fh: Optional[int] = None) -> int:
        fh = fh if fh is not None else self._hidden_fh(path)
        if fh is not None:
            with self.caller():
                os.fchown(fh, uid, gid)
            return 0
        with self.caller(), self._at(path) as (d, name):
            os.chown(name, uid, gid, dir_fd=d, follow_symlinks=False)
        self._changed(path)  # type: ignore[arg-type]
        return 0

    def utimens(self, path: Optional[str], times: Optional[tuple] = None, fh: Optional[int] = None) -> int:
        """``times`` is (atime, mtime), each nanoseconds, None (leave it) or NOW; None: both NOW."""
        fh = fh if fh is not None else self._hidden_fh(path)
        with self.caller():
            if fh is not None:
                _utimensat(_AT_FDCWD, proc_path(fh), times, 0)
                return 0
            with self._at(path) as (d, name):
                _utimensat(d, name, times, _AT_SYMLINK_NOFOLLOW)
        self._changed(path)  # type: ignore[arg-type]
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        fd = self.tree.fd if path in (None, "/") else self._handle(path)
        try:
            sv = os.statvfs(fd)
        finally:
            if fd != self.tree.fd:
                os.close(fd)
        keys = (
            "f_bsize",
            "f_frsize",
            "f_blocks",
            "f_bfree",
            "f_bavail",
            "f_files",
            "f_ffree",
            "f_favail",
            "f_flag",
            "f_namemax",
        )
        return {k: getattr(sv, k) for k in keys}

    def _handle(self, path: str) -> int:
        """An O_PATH descriptor of ``path`` itself, opened as the caller."""
        with self.caller():
            return self.tree.handle(path[1:])

    # -- extended attributes ----------------------------------------------
    # (no *at() form: the name, not followed, inside /proc/self/fd of its folder's descriptor;
    # the kernel asks for security.capability before every write, so this is one system call)

    def _xattr(self, path: str, fn, *args):
        fh = self._hidden_fh(path)
        with self.caller():
            if fh is not None:
                return fn(proc_path(fh), *args)
            with self._at(path) as (d, name):
                return fn(f"{proc_path(d)}/{name}", *args, follow_symlinks=False)

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        return self._xattr(path, os.getxattr, name)

    def listxattr(self, path: str) -> list[str]:
        return self._xattr(path, os.listxattr)

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self._xattr(path, os.setxattr, name, value, options)
        self._changed(path)
        return 0

    def removexattr(self, path: str, name: str) -> int:
        self._xattr(path, os.removexattr, name)
        self._changed(path)
        return 0

    # -- directories -----------------------------------------------------

    def opendir(self, path: str) -> int:
        with self.caller():
            return self.tree.open(path[1:], os.O_RDONLY | os.O_DIRECTORY)

    def releasedir(self, path: Optional[str], fh: int) -> int:
        self._listings.pop(fh, None)
        os.close(fh)
        return 0

    def readdir(self, path: Optional[str], fh: int):
        # Registers readdir with mfusepy; binding.FUSE calls dir_entries.
        for name, ino, mode in self.dir_entries(fh, 0):
            yield name, {"st_ino": ino, "st_mode": mode}, 0

    def dir_entries(self, fh: int, offset: int) -> list[tuple[str, int, int]]:
        """(name, inode, file-type bits) of each entry of the open directory ``fh``.

        Read at offset 0 (a new listing, or a rewinddir) and kept for the
        handle, so later offsets index the same list: libfuse only passes
        READDIRPLUS attributes on to the kernel when entries have offsets.
        """
        listing = self._listings.get(fh)
        if offset == 0 or listing is None:
            # With use_ino the inode goes to the caller, and readdir(3)
            # hides entries whose inode is 0: "." and ".." need real ones.
            listing = [
                (".", os.fstat(fh).st_ino, statmod.S_IFDIR),
                ("..", os.stat("..", dir_fd=fh).st_ino, statmod.S_IFDIR),
            ]
            with os.scandir(fh) as it:
                listing += [(e.name, e.inode(), _dtype_mode(e)) for e in it]
            self._listings[fh] = listing
        return listing

    def entry_stat(self, fh: int, name: str) -> Optional[os.stat_result]:
        """lstat of ``name`` in the open directory ``fh``; None if it is gone (call as the caller)."""
        try:
            s = os.stat(name, dir_fd=fh, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if s.st_nlink > 1 and not statmod.S_ISDIR(s.st_mode):
            return None  # its name is not known here: the kernel asks for it by LOOKUP
        return s

    def mkdir(self, path: str, mode: int) -> int:
        with self.caller(), self._at(path) as (d, name):
            os.mkdir(name, mode, dir_fd=d)
        self.tracker.dir_created(path)
        return 0

    def rmdir(self, path: str) -> int:
        with self.caller(), self._at(path) as (d, name):
            os.rmdir(name, dir_fd=d)
        self.tracker.dir_removed(path)
        return 0

    # -- names -----------------------------------------------------------

    def mknod(self, path: str, mode: int, dev: int) -> int:
        with self.caller(), self._at(path) as (d, name):
            os.mknod(name, mode, dev, dir_fd=d)
        return 0

    def unlink(self, path: str) -> int:
        if self._hidden and self._hidden.pop(path, None) is not None:
            return 0  # libfuse's last word on a file unlinked while open: it is gone already
        self._remove(path)
        self.tracker.deleted(path)
        return 0

    def _remove(self, path: str) -> None:
        """Unlink ``path``, its content kept as a version first."""
        rel = path[1:]
        others = self._links.others(path) if self._links else ()
        if self.hooks.take_on_unlink is not None and not self.identity.acts_for_other():
            # the caller may do what the daemon does: one rename into the version store
            if self.hooks.take_on_unlink(rel):
                return
        if self.hooks.before_change is not None:
            self.hooks.before_change(rel, "delete")
        with self.caller(), self._at(path) as (d, name):
            os.unlink(name, dir_fd=d)
        self._links.forget(path)
        for other in others:
            self.hooks.invalidate(other)

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        if not flags and _HIDDEN_NAME.fullmatch(new.rpartition("/")[2]) and old not in self._hidden:
            # libfuse hiding a file it was asked to unlink, or to rename over, while it
            # counts it open (its last handle may be closing: then nothing serves the name)
            return self._hide(old, new, self.tracker.handles_of(old))
        if self._hidden and old in self._hidden:
            raise mfusepy.FuseOSError(errno.ENOENT)  # (an unlinked file has no name to move)
        if self.hooks.before_change is not None:
            if flags & _RENAME_EXCHANGE:
                # both contents stay, under each other's name: copied (a link
                # would show as a second name of a live file), as each name's history
                self.hooks.before_change(new[1:], "exchange")
                self.hooks.before_change(old[1:], "exchange")
            else:
                self.hooks.before_change(new[1:], "rename")  # the content a rename over `new` replaces
        replaced = self._links.others(new) if self._links else ()
        with self.caller(), self._at(old) as (sd, sname), self._at(new) as (dd, dname):
            if flags:
                _check(_libc.renameat2(sd, os.fsencode(sname), dd, os.fsencode(dname), flags), "rename")
            else:
                os.rename(sname, dname, src_dir_fd=sd, dst_dir_fd=dd)
            if flags & _RENAME_EXCHANGE:
                is_dir = False
            else:
                is_dir = statmod.S_ISDIR(os.stat(dname, dir_fd=dd, follow_symlinks=False).st_mode)
        for other in replaced:
            self.hooks.invalidate(other)
        if flags & _RENAME_EXCHANGE:
            self._links.forget(old)
            self._links.forget(new)
            self.tracker.exchanged(old, new)
            return 0
        self._links.moved(old, new)
        if self.hooks.after_rename is not None:
            self.hooks.after_rename(old[1:], new[1:], is_dir)
        self.tracker.renamed(old, new, is_dir)
        return 0

    def _hide(self, old: str, hidden: str, fhs: list[int]) -> int:
        """libfuse hiding ``old``, open and unlinked (or about to be renamed over): unlink it for
        real, and serve the name libfuse will call it by from its open handles ``fhs``."""
        with self.caller(), self._at(old) as (d, name):
            st = os.stat(name, dir_fd=d, follow_symlinks=False)
        self._remove(old)
        self._hidden[hidden] = _Hidden(fhs, sole=st.st_nlink == 1)
        self.tracker.deleted(old)
        return 0

    def symlink(self, target: str, source: str) -> int:
        """Create the symlink ``target`` (a mount path) pointing at ``source`` (any text)."""
        with self.caller(), self._at(target) as (d, name):
            os.symlink(source, name, dir_fd=d)
        return 0

    def readlink(self, path: str) -> str:
        with self.caller(), self._at(path) as (d, name):
            return os.readlink(name, dir_fd=d)

    def link(self, target: str, source: str) -> int:
        """Create the hard link ``target`` to the existing ``source`` (both mount paths)."""
        if self._hidden and source in self._hidden:
            raise mfusepy.FuseOSError(errno.ENOENT)
        with self.caller(), self._at(source) as (sd, sname), self._at(target) as (td, tname):
            os.link(sname, tname, src_dir_fd=sd, dst_dir_fd=td, follow_symlinks=False)
            ino = os.stat(tname, dir_fd=td, follow_symlinks=False).st_ino
        self._links.note(source, ino)
        self._links.note(target, ino)
        # libfuse gives each name its own kernel inode, so the kernel still
        # holds the old link count (and ctime) of the other names; `tar` and
        # `rsync -H` would see the file change under them.
        self._changed(target)
        self.tracker.linked(target)
        return 0

    # -- file contents ---------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        fh = self._hidden_fh(path)
        if fh is not None:  # (through /proc/PID/fd of an unlinked file)
            with self.caller():
                fd = os.open(proc_path(fh), flags & ~os.O_CREAT)
            self.tracker.opened(fd, path)
            return fd
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY
        trunc = bool(flags & os.O_TRUNC) and writing
        if flags & os.O_TRUNC and not writing and self.hooks.before_change is not None:
            self.hooks.before_change(path[1:], "truncate")  # (O_RDONLY|O_TRUNC: the open itself truncates)
        # opened first, as the caller: a version is kept only of what it may change
        with self.caller():
            fd = self.tree.open(path[1:], flags & ~os.O_TRUNC if trunc else flags)
        try:
            if writing and self.hooks.before_change is not None:
                self.hooks.before_change(path[1:], "truncate" if trunc else "write")
            if trunc and statmod.S_ISREG(os.fstat(fd).st_mode):
                with self.caller():  # (as O_TRUNC would: by another user, it drops set-user-ID)
                    os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        self.tracker.opened(fd, path, dirty=trunc)
        return fd

    def wants_direct_io(self, fh: int) -> bool:
        return False

    def create(self, path: str, mode: int, flags: int) -> int:
        try:
            with self.caller():
                fd = self.tree.open(path[1:], flags | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            return self.open(path, flags & ~os.O_CREAT)  # made meanwhile: its content is kept as on open
        self.tracker.opened(fd, path, dirty=True)
        return fd

    def read(self, path: Optional[str], size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def read_buf(self, path: Optional[str], bufpp, size: int, offset: int, fh: int) -> int:
        # Registers read_buf with mfusepy; binding.FUSE calls read_source.
        raise mfusepy.FuseOSError(errno.ENOSYS)

    def read_source(self, fh: int, size: int, offset: int):
        """Where libfuse should read ``size`` bytes at ``offset`` of handle ``fh``: a file descriptor, or the bytes."""
        return fh

    def write(self, path: Optional[str], data, offset: int, fh: int) -> int:
        with self.caller():  # without root's CAP_FSETID: a write by another user clears set-user-ID
            n = os.pwrite(fh, data, offset)
        self.tracker.wrote(fh)
        return n

    def truncate(self, path: Optional[str], length: int, fh: Optional[int] = None) -> int:
        if fh is not None:
            with self.caller():
                os.ftruncate(fh, length)
            self.tracker.wrote(fh)
            return 0
        assert path is not None  # (no handle: a path)
        hidden = self._hidden_fh(path)
        if hidden is not None:
            with self.caller():
                os.truncate(proc_path(hidden), length)
            return 0
        with self.caller():
            fd = self.tree.handle(path[1:])  # as the caller: a version only of what it may change
        try:
            if self.hooks.before_change is not None:
                self.hooks.before_change(path[1:], "truncate")
            with self.caller():
                os.truncate(proc_path(fd), length)
        finally:
            os.close(fd)
        self._changed(path)
        self.tracker.truncated(path)
        return 0

    def fallocate(self, path: Optional[str], mode: int, offset: int, size: int, fh: int) -> int:
        if mode != 0:
            raise mfusepy.FuseOSError(errno.EOPNOTSUPP)
        with self.caller():
            os.posix_fallocate(fh, offset, size)
        self.tracker.wrote(fh)
        return 0

    def flush(self, path: Optional[str], fh: int) -> int:
        # close(2) of a dup: the backing filesystem sees every close, and
        # reports its errors (quota, NFS) to the caller's close.
        os.close(os.dup(fh))
        return 0

    def fsync(self, path: Optional[str], datasync: int, fh: int) -> int:
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        return 0

    def release(self, path: Optional[str], fh: int) -> int:
        # Forget the handle before closing it: once closed, another thread
        # may be handed the same descriptor number by open(2).
        self.tracker.closed(fh)
        if self._hidden:
            self._unhide(fh)
        os.close(fh)
        return 0

    def _unhide(self, fh: int) -> None:
        # libfuse unlinks the hidden name at the last close, unless it can no
        # longer name it (its folder was removed): the handles decide, not it.
        for name, h in list(self._hidden.items()):
            if fh in h.fhs:
                h.fhs.remove(fh)
            if not h.fhs:
                self._hidden.pop(name, None)
