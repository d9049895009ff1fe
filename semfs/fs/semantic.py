"""The mirror plus virtual folders: ``query/``, ``similar/``, ``summary/``, ``history/``.

Paths under a virtual root are answered by that kind's folder object
(:mod:`semfs.fs.virtual`, one module per kind); everything else goes to
:class:`Passthrough` unchanged. This class routes a path to its folder,
keeps the table of open virtual handles, and keeps the virtual roots
read-only (EROFS), except for what a folder allows itself (``mkdir`` and
``rmdir`` of saved queries).

Every virtual folder shows a caller only what it could read through the
mirror (:class:`~semfs.fs.access.CallerAccess`, given to each folder).
Names under a virtual root that are not UTF-8 do not exist (nothing in
the index or the versions has one).

Caveat: a real folder in the backing folder named like a virtual root is
hidden by it (``semfs mount`` says so when it starts).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat as statmod
import threading
import time
from typing import Optional

import mfusepy

from .access import CallerAccess
from .changes import ChangeTracker
from .passthrough import Hooks, Passthrough
from .virtual.base import Context, Nodes, VHandle, VirtualFolder, erofs, ino
from .virtual.kinds import root_names, shown

log = logging.getLogger(__name__)

_RENAME_NOREPLACE = 1
VIRTUAL_FH_BASE = 1 << 48  # handles above this are virtual; real ones are file descriptors


class SemanticFS(Passthrough):
    def __init__(
        self,
        backing: str,
        tracker: ChangeTracker,
        queries=None,
        versions=None,
        roots: Optional[dict[str, str]] = None,
        access: Optional[CallerAccess] = None,
        serve_others: bool = False,
        hooks: Optional[Hooks] = None,
    ) -> None:
        """``roots``: kind -> folder name, for kinds other than their own name
        (:mod:`.virtual.kinds`). The kinds of the index need ``queries`` (a QueryService),
        those of versions need ``versions``. ``access`` decides what each caller may see (default:
        everything, for a mount only its owner can enter); ``serve_others`` as for Passthrough."""
        super().__init__(backing, tracker, serve_others, hooks)
        self.nodes = Nodes(time.time_ns())  # virtual things date from the mount
        ctx = Context(backing, access or CallerAccess(backing, enforce=False), self.nodes, queries, versions)
        names = root_names(roots or {})
        kinds = shown(index=queries is not None, versions=versions is not None)
        self.roots = {names[k.name]: k.name for k in kinds}  # root name -> kind
        self.folders: dict[str, VirtualFolder] = {names[k.name]: k.load()(ctx) for k in kinds}
        self._handles: dict[int, VHandle] = {}
        self._next = itertools.count(VIRTUAL_FH_BASE)
        self._hlock = threading.Lock()
        self._root_fhs: set[int] = set()  # open handles of the mount's root directory
        self._bad_names_logged: set[str] = set()

    # -- routing -----------------------------------------------------------

    def _route(self, path: Optional[str]) -> Optional[tuple[VirtualFolder, list[str]]]:
        """The folder object and the parts below its root, for a virtual path; None for the mirror."""
        if not path or path == "/":
            return None
        end = path.find("/", 1)
        name = path[1:] if end < 0 else path[1:end]
        folder = self.folders.get(name)
        if folder is None:
            return None  # (most paths: no split of the whole path)
        if not path.isascii():
            try:
                path.encode("utf-8")
            except UnicodeEncodeError:
                # nothing in the index or the versions has such a name: it does not
                # exist, quietly (a log line once per folder kind, not per request)
                if name not in self._bad_names_logged:
                    self._bad_names_logged.add(name)
                    log.info("names that are not UTF-8 do not exist under %s/ (first: %r)", name, path)
                raise mfusepy.FuseOSError(errno.ENOENT)
        return folder, ([] if end < 0 else path[end + 1 :].split("/"))

    def _writable(self, path: Optional[str]) -> None:
        if self._route(path) is not None:
            raise erofs()

    def _new_handle(self, h: VHandle) -> int:
        with self._hlock:
            fh = next(self._next)
            self._handles[fh] = h
        return fh

    # -- attributes and listing ----------------------------------------------

    def getattr(self, path, fh=None):
        if fh is not None and fh >= VIRTUAL_FH_BASE:
            h = self._handles.get(fh)
            if h is None or h.listing is not None:
                return self.nodes.dir(path or str(fh))
            return h.st or self.nodes.file(path or str(fh), len(h.data))
        r = self._route(path)
        if r is None:
            return super().getattr(path, fh)
        folder, parts = r
        return folder.stat(path, parts)

    def readlink(self, path: str) -> str:
        r = self._route(path)
        if r is None:
            return super().readlink(path)
        folder, parts = r
        return folder.readlink(parts)

    def opendir(self, path: str) -> int:
        r = self._route(path)
        if r is None:
            fh = super().opendir(path)
            if path == "/":
                self._root_fhs.add(fh)
            return fh
        folder, parts = r
        st = folder.stat(path, parts)
        if not statmod.S_ISDIR(st.st_mode):
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        stats = folder.listing(path.rstrip("/"), parts)
        listing = [(".", st.st_ino, statmod.S_IFDIR), ("..", 1, statmod.S_IFDIR)]
        listing += [(name, s.st_ino, statmod.S_IFMT(s.st_mode)) for name, s in stats.items()]
        hold = getattr(folder, "hold", None)  # a kind that keeps its names as they are while a folder is open
        return self._new_handle(VHandle(listing=listing, stats=stats, release=hold(parts) if hold else None))

    def releasedir(self, path, fh: int) -> int:
        if fh >= VIRTUAL_FH_BASE:
            h = self._handles.pop(fh, None)
            if h is not None and h.release is not None:
                h.release()
            return 0
        self._root_fhs.discard(fh)
        return super().releasedir(path, fh)

    def dir_entries(self, fh: int, offset: int):
        if fh >= VIRTUAL_FH_BASE:
            return self._handles[fh].listing
        listing = super().dir_entries(fh, offset)
        if offset == 0 and fh in self._root_fhs:
            # the mount's root: the virtual roots take the place of real names
            listing = [x for x in listing if x[0] not in self.folders]
            listing += [(name, ino("/" + name), statmod.S_IFDIR) for name in self.folders]
            self._listings[fh] = listing
        return listing

    def entry_stat(self, fh: int, name: str):
        if fh >= VIRTUAL_FH_BASE:
            stats = self._handles[fh].stats or {}
            return stats.get(name)
        if name in self.folders and fh in self._root_fhs:
            return self.nodes.dir("/" + name)
        return super().entry_stat(fh, name)

    def statfs(self, path: str) -> dict[str, int]:
        # a virtual path lives on no filesystem: answer with the backing folder's figures, search nothing
        return super().statfs("/" if self._route(path) is not None else path)

    # -- files -----------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        r = self._route(path)
        if r is None:
            return super().open(path, flags)
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
            raise erofs()
        folder, parts = r
        return self._new_handle(folder.open(path, parts))

    def wants_direct_io(self, fh: int) -> bool:
        h = self._handles.get(fh) if fh >= VIRTUAL_FH_BASE else None
        return h is not None and h.direct

    def read_source(self, fh: int, size: int, offset: int):
        h = self._handles.get(fh) if fh >= VIRTUAL_FH_BASE else None
        if h is not None:
            return h.data[offset : offset + size]
        return super().read_source(fh, size, offset)

    def flush(self, path, fh: int) -> int:
        return 0 if fh >= VIRTUAL_FH_BASE else super().flush(path, fh)

    def release(self, path, fh: int) -> int:
        if fh >= VIRTUAL_FH_BASE:
            self._handles.pop(fh, None)
            return 0
        return super().release(path, fh)

    # -- folders a kind may make or remove (saved queries) -------------------------

    def mkdir(self, path: str, mode: int) -> int:
        r = self._route(path)
        if r is None:
            return super().mkdir(path, mode)
        folder, parts = r
        make = getattr(folder, "mkdir", None)
        if make is None:
            raise erofs()
        make(parts)
        return 0

    def rmdir(self, path: str) -> int:
        r = self._route(path)
        if r is None:
            return super().rmdir(path)
        folder, parts = r
        remove = getattr(folder, "rmdir", None)
        if remove is None:
            raise erofs()
        remove(parts)
        return 0

    # -- everything else is read-only under a virtual root ------------------------

    # (signatures as Passthrough's: mfusepy looks at them to decide what to pass)

    def create(self, path: str, mode: int, flags: int) -> int:
        self._writable(path)
        return super().create(path, mode, flags)

    def unlink(self, path: str) -> int:
        self._writable(path)
        return super().unlink(path)

    def mknod(self, path: str, mode: int, dev: int) -> int:
        self._writable(path)
        return super().mknod(path, mode, dev)

    def truncate(self, path: Optional[str], length: int, fh: Optional[int] = None) -> int:
        self._writable(path)
        return super().truncate(path, length, fh)

    def chmod(self, path: Optional[str], mode: int, fh: Optional[int] = None) -> int:
        self._writable(path)
        return super().chmod(path, mode, fh)

    def chown(self, path: Optional[str], uid: int, gid: int, fh: Optional[int] = None) -> int:
        self._writable(path)
        return super().chown(path, uid, gid, fh)

    def utimens(self, path: Optional[str], times: Optional[tuple] = None, fh: Optional[int] = None) -> int:
        self._writable(path)
        return super().utimens(path, times, fh)

    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self._writable(path)
        return super().setxattr(path, name, value, options, position)

    def removexattr(self, path: str, name: str) -> int:
        self._writable(path)
        return super().removexattr(path, name)

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        src, dst = self._route(old), self._route(new)
        if src is None and dst is None:
            return super().rename(old, new, flags)
        # within one virtual folder that renames its own entries (saved queries), and only there
        if src is None or dst is None or src[0] is not dst[0] or flags & ~_RENAME_NOREPLACE:
            raise erofs()
        move = getattr(src[0], "rename", None)
        if move is None:
            raise erofs()
        move(src[1], dst[1])
        return 0

    def link(self, target: str, source: str) -> int:
        self._writable(target)
        self._writable(source)
        return super().link(target, source)

    def symlink(self, target: str, source: str) -> int:
        self._writable(target)  # (source is the link's text, not a path)
        return super().symlink(target, source)

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if self._route(path) is not None:
            raise mfusepy.FuseOSError(errno.ENODATA)
        return super().getxattr(path, name, position)

    def listxattr(self, path: str) -> list[str]:
        if self._route(path) is not None:
            return []
        return super().listxattr(path)
