"""BACKING by descriptor: every path resolved beneath it, through no symlink.

The daemon may be root and BACKING may hold folders that other users
write to. Any of them can swap a name for a symlink, directly in
BACKING, between the kernel's permission check and the daemon's system
call. So no path is ever handed to the kernel from ``/``: a
:class:`Tree` opens BACKING once (an ``O_PATH`` descriptor, so renaming
or replacing the folder later does not redirect it), and each operation
opens the folder that holds its name with ``openat2`` and
``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` (Linux 5.6+; elsewhere a walk
of ``O_NOFOLLOW`` opens, one component at a time), then makes its
``*at()`` call on the last name with ``AT_SYMLINK_NOFOLLOW`` or its
like. A path that is under PATH_MAX inside the mount therefore works
however long BACKING's own path is.

Calls with no ``*at()`` form go through ``/proc/self/fd/N``, which the
kernel resolves to that descriptor's very inode and checks as it would
the name: ``truncate`` through an ``O_PATH`` descriptor of the name itself
(:meth:`Tree.handle`, a symlink not followed), the xattr calls through the
name, not followed, inside its folder's descriptor.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import BinaryIO

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the table was unified)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_have_openat2 = True


_HOW_SIZE = ctypes.c_size_t(ctypes.sizeof(_OpenHow))
_NR_OPENAT2 = ctypes.c_long(_SYS_OPENAT2)


def _openat2(dirfd: int, rel: str, flags: int) -> int:
    how = _OpenHow(flags, 0, _RESOLVE)
    fd = _libc.syscall(_NR_OPENAT2, ctypes.c_int(dirfd), os.fsencode(rel), ctypes.byref(how), _HOW_SIZE)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), rel)
    return fd


def _walk_open(dirfd: int, parts: list[str], flags: int) -> int:
    fd = os.dup(dirfd)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def open_in(dirfd: int, rel: str, flags: int) -> int:
    """``open(dirfd/rel, flags)`` with no symlink on the way and nothing outside ``dirfd``.

    ``flags`` are openat2's, which refuses bits it does not know (the
    kernel's own ``__FMODE_EXEC``, say): open a caller's file with
    :meth:`Tree.open`, which resolves only the folders this way."""
    global _have_openat2
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or rel.startswith("/"):
        raise OSError(errno.EINVAL, "not a path inside the backing folder", rel)
    if _have_openat2:
        try:
            return _openat2(dirfd, "/".join(parts), flags)
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EPERM) or e.errno == errno.EPERM and flags & os.O_NOATIME:
                raise
            _have_openat2 = False  # an old kernel, or a seccomp filter that forbids it
    return _walk_open(dirfd, parts, flags)


_DIR_HOW = _OpenHow(_DIR, 0, _RESOLVE)
_DIR_HOW_P = ctypes.byref(_DIR_HOW)


def _open_dir(dirfd: int, rel: str) -> int:
    # The hot path of every mirror call below the top folder: a path from
    # libfuse is clean (no "", ".", ".."), so one system call with arguments
    # made once; anything else (an error, no openat2) goes the long way.
    if _have_openat2:
        fd = _libc.syscall(_NR_OPENAT2, dirfd, os.fsencode(rel), _DIR_HOW_P, _HOW_SIZE)
        if fd >= 0:
            return fd
    return open_in(dirfd, rel, _DIR)


def proc_path(fd: int) -> str:
    """A path the kernel resolves to the inode of ``fd`` itself (a symlink too, for an O_PATH one)."""
    return f"/proc/self/fd/{fd}"


def regular_file(fd: int, name: str) -> BinaryIO:
    """``fd`` as a binary reader if it is a regular file; closed, and EINVAL, if not."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", name)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_reader(dirfd: int, rel: str) -> BinaryIO:
    """The regular file ``rel`` beneath ``dirfd``, for reading without changing its atime.

    Opened non-blocking, so a FIFO swapped in cannot hang the open; then
    refused (EINVAL), as is anything but a regular file.
    """
    try:
        fd = open_in(dirfd, rel, _READ | os.O_NOATIME)
    except PermissionError:  # O_NOATIME is for the file's owner and root
        fd = open_in(dirfd, rel, _READ)
    return regular_file(fd, rel)


class _At:
    """``with tree.at(rel) as (dirfd, name)``: the parent is closed after."""

    __slots__ = ("tree", "fd", "name")

    def __init__(self, tree: "Tree", fd: int, name: str) -> None:
        self.tree, self.fd, self.name = tree, fd, name

    def __enter__(self) -> tuple[int, str]:
        return self.fd, self.name

    def __exit__(self, *exc) -> None:
        self.tree.done(self.fd)


class Tree:
    """A folder held by descriptor; names beneath it, for ``*at()`` calls.

    Paths are relative (``a/b``); ``""`` is the folder itself. A parent
    descriptor returned by :meth:`parent` is the caller's to close, with
    :meth:`done`, unless it is :attr:`fd`.
    """

    def __init__(self, root: str) -> None:
        self.fd = os.open(root, _DIR)

    def close(self) -> None:
        os.close(self.fd)

    def parent(self, rel: str) -> tuple[int, str]:
        """(descriptor of the folder holding ``rel``, its last name); ``(fd, ".")`` for the root."""
        cut = rel.rfind("/")
        if cut < 0:
            return self.fd, rel or "."
        return _open_dir(self.fd, rel[:cut]), rel[cut + 1 :]

    def at(self, rel: str) -> _At:
        return _At(self, *self.parent(rel))

    def done(self, dirfd: int) -> None:
        if dirfd != self.fd:
            os.close(dirfd)

    def open(self, rel: str, flags: int, mode: int = 0o777) -> int:
        """``open(rel, flags | O_NOFOLLOW)`` beneath the root; ``""`` opens the root itself."""
        with self.at(rel) as (d, name):
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=d)

    def handle(self, rel: str) -> int:
        """An O_PATH descriptor of ``rel`` itself (a symlink is not followed), for :func:`proc_path`."""
        return self.open(rel, os.O_PATH)

    def lstat(self, rel: str) -> os.stat_result:
        with self.at(rel) as (d, name):
            return os.stat(name, dir_fd=d, follow_symlinks=False)

    def reader(self, rel: str) -> BinaryIO:
        return open_reader(self.fd, rel)
