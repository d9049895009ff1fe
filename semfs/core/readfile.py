"""Reading users' files: without leaving a trace on them, and never outside the backing folder.

semfs reads files to index, summarise and version them. Two rules:

- the user did not read them, so their atimes must not change
  (``O_NOATIME``, allowed to the file's owner and root; others fall back
  to a plain open);
- a daemon run by root must not be steered outside BACKING by a symlink,
  even one swapped in for a folder between a check and the open. So a
  backing file is opened relative to BACKING with ``openat2`` and
  ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` (Linux 5.6+), or else by a walk
  of ``O_NOFOLLOW`` opens, one component at a time, each relative to the
  folder opened before it. Only regular files are read: a FIFO or a device
  swapped in is refused (opened non-blocking, so a FIFO cannot hang the
  open).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import BinaryIO

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the table was unified)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_have_openat2 = True


def _openat2(dirfd: int, rel: str, flags: int) -> int:
    how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dirfd),
        os.fsencode(rel),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), rel)
    return fd


def _walk_open(dirfd: int, parts: list[str], flags: int) -> int:
    fd = os.dup(dirfd)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags, dir_fd=fd)
    finally:
        os.close(fd)


def _open_in(dirfd: int, rel: str, flags: int) -> int:
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


def open_beneath(root: str, rel: str) -> BinaryIO:
    """Open the regular file ``rel`` of the folder ``root`` for reading; no symlink on the way.

    Raises OSError: ELOOP (or EXDEV) for a symlink component, EINVAL for
    anything but a regular file, and whatever the open itself meets.
    """
    dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        base = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = _open_in(dirfd, rel, base | os.O_NOATIME)
        except PermissionError:
            fd = _open_in(dirfd, rel, base)
    finally:
        os.close(dirfd)
    return _regular(fd, rel)


def _regular(fd: int, name: str) -> BinaryIO:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", name)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def open_noatime(path, ino: int = 0) -> BinaryIO:
    """Open a file of ours (a pending version link) for reading without updating its
    access time, never through a symlink; with ``ino``, only if it is still that inode."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_NOATIME)
    except PermissionError:
        fd = os.open(path, flags)
    if ino and os.fstat(fd).st_ino != ino:
        os.close(fd)
        raise OSError(errno.ESTALE, "not the file that was kept", str(path))
    return _regular(fd, str(path))
