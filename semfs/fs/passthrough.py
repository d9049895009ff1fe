"""The FUSE operations: a passthrough mirror of the backing folder.

Every operation maps the mount path onto the backing folder and makes the
same system call there, so the backing filesystem decides every errno
(ENOENT, EEXIST, ENOTEMPTY, EACCES, ENAMETOOLONG ...) and the folder stays
usable without semfs. After a call succeeds, one call into
:class:`~semfs.fs.changes.ChangeTracker` reports what changed.

Caveats:
- Open files are served by their file descriptor, not their path (the
  mount runs with ``nullpath_ok``), so a file that is renamed while open
  keeps working, as on a local disk.
- A file unlinked (or renamed over) while open is, as in every libfuse
  filesystem, first renamed to ``.fuse_hidden*`` in the backing folder
  and removed at its last close, so ``fstat`` and ``fchmod`` on it keep
  working. The mount hides these names; the backing folder shows them
  until then (and keeps them if the daemon is killed meanwhile).
- POSIX and BSD locks are kept by the kernel for this mount only; a
  program using the backing folder directly does not see them.
- When the daemon runs as root (``allow_other``), new files are given to
  the calling user, as they would be on a local disk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as statmod
from typing import Callable, Optional

import mfusepy

from .changes import ChangeTracker

_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
HIDDEN_PREFIX = ".fuse_hidden"  # libfuse's name for unlinked files still open


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


class Passthrough(mfusepy.Operations):
    use_ns = True
    # Both flags are needed for mfusepy to set libfuse3's nullpath_ok:
    # operations on open handles then skip path resolution.
    flag_nopath = True
    flag_nullpath_ok = True

    def __init__(self, backing: str, tracker: ChangeTracker) -> None:
        self.root = backing.rstrip("/")
        self.tracker = tracker
        self._give_to_caller = os.geteuid() == 0
        self.on_ready: Optional[Callable[[], None]] = None
        self.capabilities = 0  # FUSE_CAP_* bits to ask for, where the kernel offers them
        # Called with (relative path, origin) just before a file's content is
        # overwritten, truncated, replaced or unlinked: versions keep it.
        self.before_change: Optional[Callable[[str, str], object]] = None
        self.after_rename: Optional[Callable[[str, str, bool], object]] = None
        # Called instead of unlink: takes the file out of the tree into the version
        # store (one rename, no copy) and returns True, or returns False to leave it
        # to before_change and unlink.
        self.take_on_unlink: Optional[Callable[[str], bool]] = None
        self._listings: dict[int, list[tuple[str, int, int]]] = {}
        self.invalidate: Callable[[str], None] = lambda path: None

    def init_with_config(self, conn, config) -> None:
        # Called once the kernel has connected: the mount is live.
        if conn is not None:
            conn.want |= conn.capable & self.capabilities
        if self.on_ready is not None:
            self.on_ready()

    def _full(self, path: Optional[str]) -> str:
        # (None only comes with a file handle, which every caller uses first)
        assert path is not None
        return self.root + path

    def _own(self, full: str) -> None:
        if self._give_to_caller:
            uid, gid, _ = mfusepy.fuse_get_context()
            if uid != 0 or gid != 0:
                os.lchown(full, uid, gid)

    # -- attributes ------------------------------------------------------

    def getattr(self, path: Optional[str], fh: Optional[int] = None) -> os.stat_result:
        if fh is not None:
            return os.fstat(fh)
        return os.lstat(self._full(path))

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._full(path), amode, follow_symlinks=False):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def chmod(self, path: Optional[str], mode: int, fh: Optional[int] = None) -> int:
        if fh is not None:
            os.fchmod(fh, mode)
        else:
            os.chmod(self._full(path), mode)
        return 0

    def chown(self, path: Optional[str], uid: int, gid: int, fh: Optional[int] = None) -> int:
        if fh is not None:
            os.fchown(fh, uid, gid)
        else:
            os.lchown(self._full(path), uid, gid)
        return 0

    def utimens(self, path: Optional[str], times: Optional[tuple] = None, fh: Optional[int] = None) -> int:
        """``times`` is (atime_ns, mtime_ns); None in either place leaves that time as it is."""
        if times is None:
            ns = None
        else:
            atime, mtime = times
            if atime is None or mtime is None:
                st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
                atime = st.st_atime_ns if atime is None else atime
                mtime = st.st_mtime_ns if mtime is None else mtime
            ns = (atime, mtime)
        if fh is not None:
            os.utime(fh, ns=ns) if ns is not None else os.utime(fh)
        elif ns is not None:
            os.utime(self._full(path), ns=ns, follow_symlinks=False)
        else:
            os.utime(self._full(path), follow_symlinks=False)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._full(path))
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

    # -- extended attributes ----------------------------------------------

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        return os.getxattr(self._full(path), name, follow_symlinks=False)

    def listxattr(self, path: str) -> list[str]:
        return os.listxattr(self._full(path), follow_symlinks=False)

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        os.setxattr(self._full(path), name, value, options, follow_symlinks=False)
        return 0

    def removexattr(self, path: str, name: str) -> int:
        os.removexattr(self._full(path), name, follow_symlinks=False)
        return 0

    # -- directories -----------------------------------------------------

    def opendir(self, path: str) -> int:
        return os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY)

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
                listing += [(e.name, e.inode(), _dtype_mode(e)) for e in it if not e.name.startswith(HIDDEN_PREFIX)]
            self._listings[fh] = listing
        return listing

    def entry_stat(self, fh: int, name: str) -> Optional[os.stat_result]:
        """lstat of ``name`` in the open directory ``fh``; None if it is gone."""
        try:
            return os.stat(name, dir_fd=fh, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def mkdir(self, path: str, mode: int) -> int:
        full = self._full(path)
        os.mkdir(full, mode)
        self._own(full)
        self.tracker.dir_created(path)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._full(path))
        self.tracker.dir_removed(path)
        return 0

    # -- names -----------------------------------------------------------

    def mknod(self, path: str, mode: int, dev: int) -> int:
        full = self._full(path)
        os.mknod(full, mode, dev)
        self._own(full)
        return 0

    def unlink(self, path: str) -> int:
        hidden = os.path.basename(path).startswith(HIDDEN_PREFIX)
        if hidden or self.take_on_unlink is None or not self.take_on_unlink(path[1:]):
            if self.before_change is not None and not hidden:
                self.before_change(path[1:], "delete")
            os.unlink(self._full(path))
        if not hidden:
            self.tracker.deleted(path)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        src, dst = self._full(old), self._full(new)
        if self.before_change is not None:
            if os.path.basename(new).startswith(HIDDEN_PREFIX):
                self.before_change(old[1:], "delete")  # libfuse hiding a file unlinked while open
            elif flags & _RENAME_EXCHANGE:
                # both contents stay, under each other's name: copied (a link
                # would show as a second name of a live file), as each name's history
                self.before_change(new[1:], "exchange")
                self.before_change(old[1:], "exchange")
            else:
                self.before_change(new[1:], "rename")  # the content a rename over `new` replaces
        if flags:
            if _libc.renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            if flags & _RENAME_EXCHANGE:
                self.tracker.exchanged(old, new)
                return 0
        else:
            os.rename(src, dst)
        if os.path.basename(new).startswith(HIDDEN_PREFIX):
            # libfuse hiding a file unlinked while open: for everyone
            # but the handles still open, it is gone.
            self.tracker.deleted(old)
            return 0
        is_dir = statmod.S_ISDIR(os.lstat(dst).st_mode)
        if self.after_rename is not None:
            self.after_rename(old[1:], new[1:], is_dir)
        self.tracker.renamed(old, new, is_dir)
        return 0

    def symlink(self, target: str, source: str) -> int:
        """Create the symlink ``target`` (a mount path) pointing at ``source`` (any text)."""
        full = self._full(target)
        os.symlink(source, full)
        self._own(full)
        return 0

    def readlink(self, path: str) -> str:
        return os.readlink(self._full(path))

    def link(self, target: str, source: str) -> int:
        """Create the hard link ``target`` to the existing ``source`` (both mount paths)."""
        os.link(self._full(source), self._full(target), follow_symlinks=False)
        # libfuse gives each name its own kernel inode, so the kernel still
        # holds the old link count (and ctime) of `source`; `tar` and
        # `rsync -H` would see the file change under them.
        self.invalidate(source)
        self.tracker.linked(target)
        return 0

    # -- file contents ---------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC
        if writing and self.before_change is not None:
            self.before_change(path[1:], "truncate" if flags & os.O_TRUNC else "write")
        fd = os.open(self._full(path), flags)
        self.tracker.opened(fd, path, dirty=bool(flags & os.O_TRUNC) and (flags & os.O_ACCMODE) != os.O_RDONLY)
        return fd

    def wants_direct_io(self, fh: int) -> bool:
        return False

    def create(self, path: str, mode: int, flags: int) -> int:
        full = self._full(path)
        fd = os.open(full, flags | os.O_CREAT, mode)
        try:
            self._own(full)
        except OSError:
            os.close(fd)
            raise
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
        n = os.pwrite(fh, data, offset)
        self.tracker.wrote(fh)
        return n

    def truncate(self, path: Optional[str], length: int, fh: Optional[int] = None) -> int:
        if fh is not None:
            os.ftruncate(fh, length)
            self.tracker.wrote(fh)
        else:
            assert path is not None  # (no handle: a path)
            if self.before_change is not None:
                self.before_change(path[1:], "truncate")
            os.truncate(self._full(path), length)
            self.tracker.truncated(path)
        return 0

    def fallocate(self, path: Optional[str], mode: int, offset: int, size: int, fh: int) -> int:
        if mode != 0:
            raise mfusepy.FuseOSError(errno.EOPNOTSUPP)
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
        os.close(fh)
        return 0
