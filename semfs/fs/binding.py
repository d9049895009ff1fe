"""A thin subclass of mfusepy's FUSE that fills three gaps of its libfuse3 glue.

mfusepy drops the ``fuse_file_info`` that libfuse3 passes to truncate,
chmod, chown and utimens, and the flags of rename. With ``nullpath_ok``
the path is NULL exactly when a handle is given (``ftruncate``,
``fchmod``, ``futimens`` on a file that may be unlinked), so dropping it
would break those calls; dropping rename's flags would turn
RENAME_NOREPLACE into an overwrite. It also converts UTIME_NOW/UTIME_OMIT
into bogus times.

Reads and writes move data straight between the kernel's buffer and the
backing file (``preadv`` into it, ``pwrite`` from it) instead of through
an intermediate ``bytes`` copy.
"""

from __future__ import annotations

import ctypes
import time
from typing import Optional

import mfusepy

_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2


def _fh(fip) -> Optional[int]:
    return fip.contents.fh if fip else None


def _view(buf, size: int) -> memoryview:
    addr = ctypes.cast(buf, ctypes.c_void_p).value
    return memoryview((ctypes.c_char * size).from_address(addr)).cast("B")


def _ns(ts) -> Optional[int]:
    if ts.tv_nsec == _UTIME_OMIT:
        return None
    if ts.tv_nsec == _UTIME_NOW:
        return time.time_ns()
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec


def invalidate_path(path: str) -> None:
    """Drop the kernel's cached attributes of ``path`` (call from a FUSE handler only)."""
    fuse = ctypes.c_void_p(mfusepy._libfuse.fuse_get_context().contents.fuse)
    mfusepy._libfuse.fuse_invalidate_path(fuse, path.encode("utf-8", "surrogateescape"))


class FUSE(mfusepy.FUSE):
    def _p(self, path: Optional[bytes]) -> Optional[str]:
        return None if path is None else path.decode(self.encoding, self.errors)

    def truncate_fuse_3(self, path, length, fip):
        return self.operations.truncate(self._p(path), length, _fh(fip))

    def chmod_fuse_3(self, path, mode, fip):
        return self.operations.chmod(self._p(path), mode, _fh(fip))

    def chown_fuse_3(self, path, uid, gid, fip):
        # (uid_t)-1 means "leave as is"; ctypes hands it over as a large unsigned
        if uid == ctypes.c_uint32(-1).value:
            uid = -1
        if gid == ctypes.c_uint32(-1).value:
            gid = -1
        return self.operations.chown(self._p(path), uid, gid, _fh(fip))

    def utimens_fuse_3(self, path, buf, fip):
        times = None
        if buf:
            times = (_ns(buf.contents.actime), _ns(buf.contents.modtime))
        return self.operations.utimens(self._p(path), times, _fh(fip))

    def rename_fuse_3(self, old, new, flags):
        return self.operations.rename(self._p(old), self._p(new), flags)

    def read(self, path, buf, size, offset, fip):
        return self.operations.read_into(fip.contents.fh, _view(buf, size), offset)

    def write(self, path, buf, size, offset, fip):
        return self.operations.write(None, _view(buf, size), offset, fip.contents.fh)
