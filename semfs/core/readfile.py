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

import errno
import os
from typing import BinaryIO, Optional

from .beneath import open_reader, regular_file


def open_beneath(root: str, rel: str) -> BinaryIO:
    """Open the regular file ``rel`` of the folder ``root`` for reading; no symlink on the way.

    Raises OSError: ELOOP (or EXDEV) for a symlink component, EINVAL for
    anything but a regular file, and whatever the open itself meets.
    """
    dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_reader(dirfd, rel)
    finally:
        os.close(dirfd)


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
    return regular_file(fd, str(path))


class TooLarge(Exception):
    """A file holds more than a reader reads whole; ``size``: its size (None: it grew while read)."""

    def __init__(self, size: Optional[int]) -> None:
        super().__init__(size)
        self.size = size


def read_whole(f: BinaryIO, limit: int) -> bytes:
    """All of the open file ``f``, or :class:`TooLarge` if it holds more than ``limit`` bytes: told by
    its size before any read (a huge or sparse file is never loaded), then by what it gave."""
    size = os.fstat(f.fileno()).st_size
    if size > limit:
        raise TooLarge(size)
    data = f.read(limit + 1)
    if len(data) > limit:  # grew since the fstat
        raise TooLarge(None)
    return data
