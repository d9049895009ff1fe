"""Whether the process asking the mount could read a backing path through the mirror.

Every virtual folder (``query/``, ``similar/``, ``summary/``,
``history/``) is built from what the daemon can read, and the daemon may
be root. So each virtual entry is shown to a caller only if that caller
could read its source file, and search every folder above it, through
the mirror, which the kernel decides with ``default_permissions``.

The decision is the kernel's own: on the FUSE thread that serves the
request, the thread's filesystem credentials are switched to the
caller's uid, gid and supplementary groups (``setfsuid``, ``setfsgid``
and the raw ``setgroups`` system call, all three per thread), then
``faccessat(..., AT_EACCESS)`` is asked, then the daemon's credentials
come back. Modes, owners, groups and POSIX ACLs all count, and a root
daemon's file capabilities drop while the fsuid is not 0, as the kernel
does for any fsuid change.

Caveats:
- Only a mount with ``--allow-other`` is checked: without it the kernel
  lets no one but the mounting user in.
- A daemon not run by root cannot take another user's credentials; it
  then decides by mode bits and groups, and refuses a file with an ACL.
- The caller's supplementary groups are read from ``/proc/<tid>/status``
  of the thread that sent the request; if it is gone, the answer is no.
- The kernel caches the names it looked up for the entry timeout (1 s),
  for every user: a name one caller listed can be stat()ed by another
  who guesses it within that second. Reading what it points to, a
  results file or a summary always asks again.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import logging
import os
import stat
from typing import Optional

import mfusepy

from ..core.beneath import Tree

log = logging.getLogger(__name__)

# per-thread credential system calls by architecture (asm/unistd_64.h, asm-generic/unistd.h)
_SYSCALLS = {
    "x86_64": {"setgroups": 116, "setfsuid": 122, "setfsgid": 123},
    "aarch64": {"setgroups": 159, "setfsuid": 151, "setfsgid": 152},
    "riscv64": {"setgroups": 159, "setfsuid": 151, "setfsgid": 152},
}.get(os.uname().machine)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(name: str, *args) -> int:
    assert _SYSCALLS is not None  # (callers check first: CallerAccess._switch)
    return _libc.syscall(ctypes.c_long(_SYSCALLS[name]), *args)


def _set_groups(groups: list[int]) -> None:
    # The raw system call: glibc's setgroups() changes every thread of the process.
    arr = (ctypes.c_uint32 * max(1, len(groups)))(*groups)
    if _syscall("setgroups", ctypes.c_long(len(groups)), arr) != 0:
        raise OSError(ctypes.get_errno(), "setgroups")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522


def _capget() -> "ctypes.Array[_CapData]":
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(_CapHeader(_CAP_V3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    return data


def _capset(data) -> None:
    # pid 0: this thread only (capabilities are per thread in Linux)
    if _libc.capset(ctypes.byref(_CapHeader(_CAP_V3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def caller_groups(tid: int) -> Optional[list[int]]:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Groups:"):
                    return [int(g) for g in line.split()[1:]]
    except (OSError, ValueError):
        return None
    return None


class _Same:
    """The daemon's own credentials: nothing to switch."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


_SAME = _Same()


class _Switched:
    __slots__ = ("identity",)

    def __init__(self, identity: "Identity") -> None:
        self.identity = identity

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        self.identity.restore()


class Identity:
    """The filesystem credentials of this FUSE thread: the daemon's, or its caller's.

    ``as_caller()`` is a context manager: inside it, when the daemon serves
    other users (root, ``--allow-other``) and the caller is not root, the
    thread runs under the caller's fsuid, fsgid and supplementary groups,
    so the kernel decides every system call as it would for the caller.
    """

    def __init__(self, serve_others: bool) -> None:
        self._uid = os.geteuid()
        self._gid = os.getegid()
        self._own_groups = os.getgroups()
        self.switches = serve_others and self._uid == 0 and _SYSCALLS is not None
        if self.switches:
            self._caps = _capget()  # what restore() raises again
            self._no_caps = _capget()
            for d in self._no_caps:
                d.effective = 0

    def become(self, uid: int, gid: int, groups: list[int]) -> None:
        """This thread takes ``uid``/``gid``/``groups`` for file access; :meth:`restore` undoes it.

        setfsuid drops only the file capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN ...);
        the thread's effective set is emptied too, so that no other capability
        of root's (CAP_SYS_RESOURCE's reserved blocks, say) serves the caller."""
        _syscall("setfsgid", ctypes.c_long(gid))
        try:
            _set_groups(groups)
            _syscall("setfsuid", ctypes.c_long(uid))
            _capset(self._no_caps)
        except BaseException:
            self.restore()
            raise

    def restore(self) -> None:
        _capset(self._caps)
        _syscall("setfsuid", ctypes.c_long(self._uid))
        _set_groups(self._own_groups)
        _syscall("setfsgid", ctypes.c_long(self._gid))

    def acts_for_other(self) -> bool:
        """Whether :meth:`as_caller` switches for the current request."""
        return self.switches and mfusepy.fuse_get_context()[0] != 0

    def as_caller(self):
        if not self.switches:
            return _SAME
        uid, gid, tid = mfusepy.fuse_get_context()
        if uid == 0:
            return _SAME
        groups = caller_groups(tid)
        if groups is None:
            raise mfusepy.FuseOSError(errno.EACCES)  # the caller is gone: nobody to act for
        self.become(uid, gid, groups)
        return _Switched(self)


class CallerAccess:
    """Asks, for the caller of the current FUSE request, whether a backing path is readable."""

    def __init__(self, backing: str, enforce: bool) -> None:
        self.root = backing
        self.enforce = enforce
        self._uid = os.geteuid()
        self._identity = Identity(serve_others=True)
        self._tree = Tree(backing)

    def _caller(self) -> tuple[int, int, int]:
        uid, gid, tid = mfusepy.fuse_get_context()
        return uid, gid, tid

    def privileged(self) -> bool:
        """The caller sees everything the daemon indexed: checks are off, or it is root or the daemon's user."""
        if not self.enforce:
            return True
        uid = self._caller()[0]
        return uid == 0 or uid == self._uid

    def can(self, rel: str, mode: int = os.R_OK) -> bool:
        """Whether the caller could ``mode`` (R_OK, R_OK|X_OK ...) the backing path ``rel``,
        searching every folder above it, as the kernel would decide through the mirror."""
        return bool(self.readable([rel], mode, limit=1))

    def readable(self, rels: list[str], mode: int = os.R_OK, limit: int = 0) -> list[str]:
        """The paths of ``rels`` the caller could ``mode``, in order; at most ``limit`` (0: all).

        One switch of credentials for the lot: a folder of results costs one."""
        if self.privileged():
            return rels[:limit] if limit else list(rels)
        uid, gid, tid = self._caller()
        groups = caller_groups(tid)
        if groups is None:
            return []
        if not self._identity.switches:
            ok = (r for r in rels if self._by_mode_bits(uid, gid, groups, r, mode))
            return list(itertools.islice(ok, limit or None))
        out: list[str] = []
        self._identity.become(uid, gid, groups)
        try:
            for rel in rels:
                try:  # the folders on the way opened as the caller: each must let it search
                    with self._tree.at(rel) as (d, name):
                        allowed = os.access(name, mode, dir_fd=d, effective_ids=True, follow_symlinks=False)
                except OSError:
                    allowed = False
                if allowed:
                    out.append(rel)
                    if len(out) == limit:
                        break
        finally:
            self._identity.restore()
        return out

    def _by_mode_bits(self, uid: int, gid: int, groups: list[int], rel: str, mode: int) -> bool:
        ids = {gid, *groups}
        parts = rel.split("/") if rel else []
        path = self.root
        checks = [(path, os.X_OK)]
        for i, part in enumerate(parts):
            path = os.path.join(path, part)
            checks.append((path, mode if i == len(parts) - 1 else os.X_OK))
        if not parts:
            checks[-1] = (path, mode)
        for p, want in checks:
            try:
                st = os.lstat(p)
                if any(a.startswith("system.posix_acl") for a in os.listxattr(p, follow_symlinks=False)):
                    return False  # an ACL: not ours to evaluate without the caller's credentials
            except OSError:
                return False
            if st.st_uid == uid:
                bits = (st.st_mode >> 6) & 7
            elif st.st_gid in ids:
                bits = (st.st_mode >> 3) & 7
            else:
                bits = st.st_mode & 7
            if (bits & want) != want:
                return False
            if stat.S_ISLNK(st.st_mode):
                return False
        return True


def denied() -> mfusepy.FuseOSError:
    # Not EACCES: a name the caller may not know of does not exist for it.
    return mfusepy.FuseOSError(errno.ENOENT)
