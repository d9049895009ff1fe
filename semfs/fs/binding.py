"""A subclass of mfusepy's FUSE: fixes to its libfuse3 glue, and a faster request path.

Fixes: mfusepy drops the ``fuse_file_info`` that libfuse3 passes to
truncate, chmod, chown and utimens, and the flags of rename. With
``nullpath_ok`` the path is NULL exactly when a handle is given
(``ftruncate``, ``fchmod``, ``futimens``), so dropping it would break
those calls; dropping rename's flags would turn RENAME_NOREPLACE into an
overwrite. It also turns UTIME_NOW/UTIME_OMIT into bogus times.

Speed (each measured with scripts/bench_fs.py, see docs/BENCHMARKS.md):
- worker threads keep their Python thread state between callbacks;
- reads hand libfuse the backing file descriptor (``read_buf``), so the
  data moves in C, spliced, without the GIL; writes go to the backing file
  straight from the kernel's buffer, with no intermediate ``bytes``;
- READDIRPLUS replies carry attributes and entry offsets, sparing the
  kernel a LOOKUP per entry;
- attributes are copied into ``struct stat`` field by field, and errors
  take a wrapper without mfusepy's per-call logging set-up.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
from typing import Optional

import mfusepy

from .passthrough import NOW

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]

_BUF_IS_FD, _BUF_FD_SEEK = 1 << 1, 1 << 2  # enum fuse_buf_flags
_CAP_SPLICE_WRITE, _CAP_SPLICE_MOVE = 1 << 7, 1 << 8
_CAP_POSIX_ACL = 1 << 19
_CAP_HANDLE_KILLPRIV = 1 << 20


class _bufvec(ctypes.Structure):
    # struct fuse_bufvec with its one inline fuse_buf (mfusepy declares
    # the array as a pointer, which is not the C layout).
    _fields_ = [
        ("count", ctypes.c_size_t),
        ("idx", ctypes.c_size_t),
        ("off", ctypes.c_size_t),
        ("buf", mfusepy.fuse_buf * 1),
    ]


_BUFVEC_SIZE = ctypes.sizeof(_bufvec)
_READDIR_PLUS = 1  # enum fuse_readdir_flags
_FILL_DIR_PLUS = 2  # enum fuse_fill_dir_flags
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2


def _fh(fip) -> Optional[int]:
    return fip.contents.fh if fip else None


def _view(buf, size: int) -> memoryview:
    addr = ctypes.cast(buf, ctypes.c_void_p).value or 0
    return memoryview((ctypes.c_char * size).from_address(addr)).cast("B")


def _fill_stat(st, s: os.stat_result) -> None:
    st.st_mode = s.st_mode
    st.st_ino = s.st_ino
    st.st_nlink = s.st_nlink
    st.st_uid = s.st_uid
    st.st_gid = s.st_gid
    st.st_rdev = s.st_rdev
    st.st_size = s.st_size
    st.st_blksize = s.st_blksize
    st.st_blocks = s.st_blocks
    st.st_atimespec.tv_sec, st.st_atimespec.tv_nsec = divmod(s.st_atime_ns, 1_000_000_000)
    st.st_mtimespec.tv_sec, st.st_mtimespec.tv_nsec = divmod(s.st_mtime_ns, 1_000_000_000)
    st.st_ctimespec.tv_sec, st.st_ctimespec.tv_nsec = divmod(s.st_ctime_ns, 1_000_000_000)


def _ns(ts) -> Optional[int]:
    if ts.tv_nsec == _UTIME_OMIT:
        return None
    if ts.tv_nsec == _UTIME_NOW:
        return NOW  # the kernel's own "now", and its own rule of who may set it
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec


def capabilities() -> int:
    """The FUSE_CAP_* bits semfs asks libfuse for.

    Splice: read replies move backing pages to the kernel without copies
    through userspace. POSIX ACLs: the kernel caches each file's ACL and
    checks permissions against it (as the backing filesystem would)
    instead of asking for ``system.posix_acl_access`` on every ``ls -l``.
    Kill-priv: set-user-ID and set-group-ID bits are then dropped by the
    backing filesystem itself when another user writes, truncates or
    chowns (the mirror makes those calls as the caller). libfuse 3.14 does
    not pass the flag on; the kernel then sends a chmod in that user's
    name instead (``Passthrough._drop_setid``).
    """
    return _CAP_SPLICE_WRITE | _CAP_SPLICE_MOVE | _CAP_POSIX_ACL | _CAP_HANDLE_KILLPRIV


def invalidate_path(path: str) -> None:
    """Drop the kernel's cached attributes of ``path`` (call from a FUSE handler only)."""
    fuse = ctypes.c_void_p(mfusepy._libfuse.fuse_get_context().contents.fuse)
    mfusepy._libfuse.fuse_invalidate_path(fuse, path.encode("utf-8", "surrogateescape"))


_pinned: set[int] = set()
_PyGILState_Ensure = ctypes.pythonapi.PyGILState_Ensure
_request = threading.local()  # .on while this thread serves a FUSE request


def in_request() -> bool:
    """Whether this thread is serving a FUSE request now: only then does libfuse's
    fuse_get_context() point at a context (elsewhere it reads whatever thread-local slot its
    key names, and a process that never served may crash on it)."""
    return getattr(_request, "on", False)


class FUSE(mfusepy.FUSE):
    def _wrapper(self, func, *args, **kwargs):
        # libfuse calls us on its own worker threads. ctypes gives such a
        # thread a fresh Python thread state for every callback and throws
        # it away afterwards, which costs more than most operations. One
        # extra PyGILState_Ensure, never released, keeps the state alive
        # for the life of the thread.
        tid = threading.get_ident()
        if tid not in _pinned:
            _PyGILState_Ensure()
            _pinned.add(tid)
        # mfusepy's wrapper, less its per-call logging set-up: this is the
        # hot path of every request.
        _request.on = True
        try:
            return func(*args, **kwargs) or 0
        except OSError as e:
            if isinstance(e.errno, int) and e.errno > 0:
                return -e.errno
            log.exception("FUSE operation %s raised an OSError without errno", func.__name__)
            return -errno.EIO
        except Exception as e:
            log.exception("FUSE operation %s failed", func.__name__)
            self.operations.hooks.on_failure(e)
            return -errno.EIO
        except BaseException:
            log.critical("FUSE operation %s interrupted, stopping", func.__name__, exc_info=True)
            mfusepy.fuse_exit()
            return -errno.EFAULT
        finally:
            _request.on = False

    def fgetattr(self, path, buf, fip):
        # libfuse zeroed the buffer; fill it straight from the stat result.
        _fill_stat(buf.contents, self.operations.getattr(self._p(path), _fh(fip)))
        return 0

    def readdir_fuse_3(self, path, buf, filler, offset, fip, flags):
        # Entries go out with offsets (index + 1), so libfuse passes the
        # full attributes of a READDIRPLUS reply on to the kernel, which
        # then skips a LOOKUP per entry (mfusepy never asks for plus).
        fh = fip.contents.fh
        entries = self.operations.dir_entries(fh, offset)
        plus = flags & _READDIR_PLUS
        st = mfusepy.c_stat()
        enc, errs = self.encoding, self.errors
        with self.operations.caller():  # the entries' attributes, as the caller may see them
            for i in range(offset, len(entries)):
                name, ino, mode = entries[i]
                full = self.operations.entry_stat(fh, name) if plus and i > 1 else None
                if full is not None:
                    _fill_stat(st, full)
                    fl = _FILL_DIR_PLUS
                else:
                    ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
                    st.st_ino, st.st_mode = ino, mode
                    fl = 0
                if filler(buf, name.encode(enc, errs), st, i + 1, fl) != 0:
                    break
        return 0

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

    def create(self, path, mode, fip):
        # mfusepy's own asks inspect.signature of the operation on every call
        fi = fip.contents
        fi.fh = self.operations.create(self._p(path), mode, fi.flags)
        return 0

    def open(self, path, fip):
        fi = fip.contents
        fi.fh = self.operations.open(self._p(path), fi.flags)
        if self.operations.wants_direct_io(fi.fh):
            fi.direct_io = 1  # content of unknown size: read to EOF, whatever getattr said
        return 0

    def read_buf(self, path, bufpp, size, offset, fip):
        # Hand libfuse the backing file descriptor instead of the data: it
        # copies (or splices) the bytes to the kernel in C, without the GIL.
        # libfuse frees the bufvec (and any memory buffer) with free(3).
        src = self.operations.read_source(fip.contents.fh, size, offset)
        p = _libc.malloc(_BUFVEC_SIZE)
        if not p:
            return -errno.ENOMEM
        bv = _bufvec.from_address(p)
        bv.count, bv.idx, bv.off = 1, 0, 0
        b = bv.buf[0]
        if isinstance(src, int):
            b.size, b.flags, b.mem, b.fd, b.pos = size, _BUF_IS_FD | _BUF_FD_SEEK, None, src, offset
        else:
            mem = _libc.malloc(max(len(src), 1))
            if not mem:
                _libc.free(ctypes.c_void_p(p))
                return -errno.ENOMEM
            ctypes.memmove(mem, src, len(src))
            b.size, b.flags, b.mem, b.fd, b.pos = len(src), 0, mem, -1, 0
        bufpp[0] = ctypes.cast(p, ctypes.POINTER(mfusepy.fuse_bufvec))
        return 0

    def write(self, path, buf, size, offset, fip):
        return self.operations.write(None, _view(buf, size), offset, fip.contents.fh)
