"""The mirror plus virtual folders: ``query/<prompt>/``, ``similar/<file>/``, ``summary/<file>``.

Paths under the virtual roots are answered from :class:`QueryService`;
everything else goes to :class:`Passthrough` unchanged. Virtual folders
hold relative symlinks into the mirrored tree, so ``cat``, ``grep`` and
editors open (and write) the real file, plus a hidden ``.results.json``
with path, score and snippet of every entry.

The virtual roots are read-only (EROFS), except for saved queries:
``mkdir query/<prompt>`` saves one, ``rmdir query/<name>`` forgets it, and
``ls query/`` lists them (``semfs query --save NAME PROMPT`` saves a prompt
too long for a name). Every name under ``query/`` exists as a prompt
folder, and the kernel answers ``mkdir`` of an existing name with EEXIST
without asking the mount; so the lookup of a prompt that is not saved
yet reports ENOENT when the process asking is inside mkdir(2) (read from
``/proc/<tid>/syscall``). Caveats: where that file cannot be read (a
daemon not run by root under Yama's ptrace_scope >= 1), mkdir gives EEXIST
and ``--save`` is the way; and for up to the entry timeout (1 s) after the
same prompt folder was listed, the kernel still knows it and gives EEXIST.
``getattr`` of a query folder answers at once without searching; the
search runs when the folder is listed, or an entry or ``.results.json``
inside it is looked up.

``summary/<file>`` reads as a short LLM summary of that file, generated
when it is opened (a deliberate act) and cached per content; until then
its size is unknown and it is served with direct I/O, so ``cat`` reads it
whole.

``similar/`` and ``summary/`` themselves list nothing, so programs that walk the whole mount
(find, du, backup tools, IDE indexers) do not run a search per file; its
subfolders are there when named: ``ls similar/notes/budget.md/``.

Caveat: a real folder in the backing folder named like a virtual root is
hidden by it (``semfs mount`` says so when it starts).
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import logging
import os
import stat as statmod
import threading
import time
from dataclasses import dataclass
from typing import Optional

import mfusepy

from ..core.changes import ChangeTracker
from ..core.queries import RESULTS_FILE, Entry, QueryService, is_probe, prompt_of, renumbered, results_json
from ..core.mounts import VIRTUAL_KINDS
from ..core.versions import Versions
from .access import CallerAccess
from .history import HistoryFolder
from .passthrough import Passthrough

log = logging.getLogger(__name__)

VIRTUAL_FH_BASE = 1 << 48  # handles above this are virtual; real ones are file descriptors

# mkdir(2) and mkdirat(2) by architecture (asm/unistd_64.h; aarch64 has only mkdirat)
_MKDIR_SYSCALLS = {"x86_64": {83, 258}, "aarch64": {34}, "riscv64": {34}}.get(os.uname().machine, set())


def _caller_in_mkdir() -> bool:
    """Whether the thread that sent this FUSE request is inside mkdir(2)."""
    if not _MKDIR_SYSCALLS:
        return False
    try:
        tid = mfusepy.fuse_get_context()[2]
        with open(f"/proc/{tid}/syscall", "rb") as f:
            first = f.read(32).split(b" ", 1)[0]
        return int(first) in _MKDIR_SYSCALLS
    except (OSError, ValueError):  # gone, not permitted, or "running"
        return False


@dataclass(frozen=True)
class VStat:
    """The fields binding._fill_stat reads, for things that exist nowhere on disk."""

    st_mode: int
    st_ino: int
    st_size: int = 0
    st_nlink: int = 1
    st_uid: int = os.getuid()
    st_gid: int = os.getgid()
    st_rdev: int = 0
    st_blksize: int = 4096
    st_blocks: int = 0
    st_atime_ns: int = 0
    st_mtime_ns: int = 0
    st_ctime_ns: int = 0


def _ino(path: str) -> int:
    # Stable and far from the backing filesystem's small inode numbers.
    return (int.from_bytes(hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little") >> 2) | (1 << 61)


def _rofs() -> mfusepy.FuseOSError:
    # the virtual folders are read-only
    return mfusepy.FuseOSError(errno.EROFS)


@dataclass
class _VHandle:
    listing: Optional[list[tuple[str, int, int]]] = None  # for directories
    stats: Optional[dict[str, VStat]] = None
    data: bytes = b""  # for .results.json, summaries and versions
    direct: bool = False  # size unknown to getattr: served with direct I/O
    st: Optional[VStat] = None  # attributes of an open file, when not those of a plain virtual file


class SemanticFS(HistoryFolder, Passthrough):
    def __init__(self, backing: str, tracker: ChangeTracker, queries: Optional[QueryService] = None,
                 versions: Optional[Versions] = None, roots: Optional[dict[str, str]] = None,
                 access: Optional[CallerAccess] = None) -> None:
        """``roots``: kind -> folder name, for kinds other than their own name.
        The query, similar and summary folders need ``queries``; history needs ``versions``.
        ``access`` decides what each caller may see (default: everything, for a mount
        only its owner can enter)."""
        super().__init__(backing, tracker)
        self.access = access or CallerAccess(backing, enforce=False)
        self.queries = queries
        self.versions = versions
        names = {**{k: k for k in VIRTUAL_KINDS}, **(roots or {})}
        kinds = (["query", "similar", "summary"] if queries is not None else []) + (["history"] if versions is not None else [])
        self.roots = {names[k]: k for k in kinds}
        self._handles: dict[int, _VHandle] = {}
        self._next = itertools.count(VIRTUAL_FH_BASE)
        self._started = time.time_ns()
        self._hlock = threading.Lock()
        self._root_fhs: set[int] = set()  # open handles of the mount's root directory
        self._bad_names_logged: set[str] = set()

    # -- routing -----------------------------------------------------------

    def _route(self, path: Optional[str]) -> Optional[tuple[str, list[str]]]:
        if not path or path == "/":
            return None
        end = path.find("/", 1)
        kind = self.roots.get(path[1:] if end < 0 else path[1:end])
        if kind is None:
            return None  # (most paths: no split of the whole path)
        if not path.isascii():
            try:
                path.encode("utf-8")
            except UnicodeEncodeError:
                # nothing in the index or the versions has such a name: it does not
                # exist, quietly (a log line once per folder kind, not per request)
                if kind not in self._bad_names_logged:
                    self._bad_names_logged.add(kind)
                    log.info("names that are not UTF-8 do not exist under %s/ (first: %r)", kind, path)
                raise mfusepy.FuseOSError(errno.ENOENT)
        return kind, ([] if end < 0 else path[end + 1 :].split("/"))

    def _vnode(self, mode: int, path: str, size: int = 0, nlink: int = 1) -> VStat:
        t = self._started  # virtual things date from the mount
        return VStat(mode, _ino(path), size, nlink, st_atime_ns=t, st_mtime_ns=t, st_ctime_ns=t)

    def _dir(self, path: str) -> VStat:
        return self._vnode(statmod.S_IFDIR | 0o555, path, nlink=2)

    def _link(self, path: str, target: str) -> VStat:
        return self._vnode(statmod.S_IFLNK | 0o777, path, len(target.encode()))

    def _file(self, path: str, size: int) -> VStat:
        return self._vnode(statmod.S_IFREG | 0o444, path, size)

    def _real_target(self, parts: list[str]) -> tuple[str, Optional[str]]:
        """What ``similar/<parts>`` or ``summary/<parts>`` names in the backing folder.

        (what, rel): "dir" (browse it), "file" (its similar folder, or its
        summary), "entry" (a name inside the similar folder of the file
        ``rel``), or "missing".
        """
        rel = "/".join(parts)
        full = os.path.join(self.root, rel) if rel else self.root
        if not rel or os.path.isdir(full) and not os.path.islink(full):
            return ("dir", rel) if self.access.can(rel, os.R_OK | os.X_OK) else ("missing", None)
        if os.path.isfile(full) and not os.path.islink(full):
            return ("file", rel) if self.access.can(rel) else ("missing", None)
        parent = "/".join(parts[:-1])
        if parts[:-1] and os.path.isfile(os.path.join(self.root, parent)) and self.access.can(parent):
            return "entry", parent
        return "missing", None

    def _visible(self, found: list[Entry]) -> list[Entry]:
        """The results this caller may see: files it could read through the mirror, best first.

        The cached results hold more than a folder shows, so a caller who may
        not see some of them still gets a full folder."""
        k = self.queries.k
        if self.access.privileged():
            return found[:k]
        ok = set(self.access.readable([e.path for e in found], limit=k))
        return renumbered([e for e in found if e.path in ok])

    def _query(self, name: str, may_wait: bool = False) -> list[Entry]:
        return self._visible(self.queries.query(name, may_wait=may_wait))

    def _similar(self, rel: str) -> list[Entry]:
        return self._visible(self.queries.similar(rel))

    def _entry(self, found: list[Entry], name: str) -> Optional[Entry]:
        return next((e for e in found if e.name == name), None)

    def _target(self, depth: int, entry: Entry) -> str:
        return "../" * depth + entry.path

    def _vstat(self, path: str, kind: str, parts: list[str]):
        """The attributes of a virtual path, or raise ENOENT."""
        if not parts:
            return self._dir(path)
        if kind == "history":
            return self._history_stat(path, parts)
        if kind == "query":
            name = parts[0]
            if is_probe(name) or len(parts) > 2:
                raise mfusepy.FuseOSError(errno.ENOENT)
            if len(parts) == 1:
                if _caller_in_mkdir() and self.queries.saved_prompt(name) is None:
                    raise mfusepy.FuseOSError(errno.ENOENT)  # so that the kernel lets mkdir save it
                return self._dir(path)
            found = self._query(name)
            if parts[1] == RESULTS_FILE:
                return self._file(path, len(results_json(found)))
            e = None if is_probe(parts[1]) else self._entry(found, parts[1])
            if e is None:
                raise mfusepy.FuseOSError(errno.ENOENT)
            return self._link(path, self._target(2, e))
        what, rel = self._real_target(parts)
        if kind == "summary":
            if what == "dir":
                return self._dir(path)
            if what == "file":
                size = self.queries.cached_summary_size(rel)
                return self._file(path, size or 0)  # unknown yet: read with direct I/O
            raise mfusepy.FuseOSError(errno.ENOENT)
        if what in ("dir", "file"):
            return self._dir(path)
        if what == "entry":
            found = self._similar(rel)
            if parts[-1] == RESULTS_FILE:
                return self._file(path, len(results_json(found)))
            e = self._entry(found, parts[-1])
            if e is not None:
                return self._link(path, self._target(len(parts), e))
        raise mfusepy.FuseOSError(errno.ENOENT)

    # -- attributes and listing ----------------------------------------------

    def getattr(self, path, fh=None):
        if fh is not None and fh >= VIRTUAL_FH_BASE:
            h = self._handles.get(fh)
            if h is None or h.listing is not None:
                return self._dir(path or str(fh))
            return h.st or self._file(path or str(fh), len(h.data))
        r = self._route(path)
        if r is None:
            return super().getattr(path, fh)
        return self._vstat(path, *r)

    def readlink(self, path: str) -> str:
        r = self._route(path)
        if r is None:
            return super().readlink(path)
        kind, parts = r
        if kind == "query" and len(parts) == 2:
            e = self._entry(self._query(parts[0]), parts[1])
            if e is not None:
                return self._target(2, e)
        elif kind == "similar" and parts:
            what, rel = self._real_target(parts)
            if what == "entry":
                e = self._entry(self._similar(rel), parts[-1])
                if e is not None:
                    return self._target(len(parts), e)
        raise mfusepy.FuseOSError(errno.EINVAL)

    def _new_handle(self, h: _VHandle) -> int:
        with self._hlock:
            fh = next(self._next)
            self._handles[fh] = h
        return fh

    def opendir(self, path: str) -> int:
        r = self._route(path)
        if r is None:
            fh = super().opendir(path)
            if path == "/":
                self._root_fhs.add(fh)
            return fh
        kind, parts = r
        st = self._vstat(path, kind, parts)
        if not statmod.S_ISDIR(st.st_mode):
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        listing = [(".", st.st_ino, statmod.S_IFDIR), ("..", 1, statmod.S_IFDIR)]
        stats: dict[str, VStat] = {}
        base = path.rstrip("/")
        found: Optional[list[Entry]] = None
        depth = len(parts) + 1
        if kind == "history":
            stats = self._history_listing(base, parts)
        elif kind == "query" and not parts:
            for name in self.queries.saved():
                stats[name] = self._dir(f"{base}/{name}")
        elif kind == "query":
            found = self._query(parts[0], may_wait=True)  # listing: the one place the LLM may run
            depth = 2
        else:
            what, rel = self._real_target(parts)
            if what == "dir" and not rel:
                pass  # listed empty: a walker of the whole mount (find, du, an IDE) must not search every file
            elif what == "dir":
                full = os.path.join(self.root, rel)
                files, dirs = [], []
                with os.scandir(full) as it:
                    for e in it:
                        if e.is_file(follow_symlinks=False):
                            files.append(e.name)
                        elif e.is_dir(follow_symlinks=False):
                            dirs.append(e.name)
                # only what the caller could open here: files it may read, folders it may list
                files = [n.rsplit("/", 1)[-1] for n in self.access.readable([f"{rel}/{n}" for n in files])]
                dirs = [n.rsplit("/", 1)[-1] for n in self.access.readable([f"{rel}/{n}" for n in dirs], os.R_OK | os.X_OK)]
                for name in files:
                    stats[name] = self._file(f"{base}/{name}", 0) if kind == "summary" else self._dir(f"{base}/{name}")
                for name in dirs:
                    stats[name] = self._dir(f"{base}/{name}")
            elif what == "file":
                found = self._similar(rel)
            else:
                raise mfusepy.FuseOSError(errno.ENOENT)
        if found is not None:
            for e in found:
                stats[e.name] = self._link(f"{base}/{e.name}", self._target(depth, e))
            stats[RESULTS_FILE] = self._file(f"{base}/{RESULTS_FILE}", len(results_json(found)))
        listing += [(name, s.st_ino, statmod.S_IFMT(s.st_mode)) for name, s in stats.items()]
        return self._new_handle(_VHandle(listing=listing, stats=stats))

    def releasedir(self, path, fh: int) -> int:
        if fh >= VIRTUAL_FH_BASE:
            self._handles.pop(fh, None)
            return 0
        self._root_fhs.discard(fh)
        return super().releasedir(path, fh)

    def dir_entries(self, fh: int, offset: int):
        if fh >= VIRTUAL_FH_BASE:
            return self._handles[fh].listing
        listing = super().dir_entries(fh, offset)
        if offset == 0 and fh in self._root_fhs:
            # the mount's root: the virtual roots take the place of real names
            listing = [x for x in listing if x[0] not in self.roots]
            listing += [(name, _ino("/" + name), statmod.S_IFDIR) for name in self.roots]
            self._listings[fh] = listing
        return listing

    def entry_stat(self, fh: int, name: str):
        if fh >= VIRTUAL_FH_BASE:
            stats = self._handles[fh].stats or {}
            return stats.get(name)
        if name in self.roots and fh in self._root_fhs:
            return self._dir("/" + name)
        return super().entry_stat(fh, name)

    # -- the results file --------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        r = self._route(path)
        if r is None:
            return super().open(path, flags)
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
            raise _rofs()
        kind, parts = r
        if kind == "history":
            return self._new_handle(_VHandle(data=self._history_open(parts), st=self._vstat(path, kind, parts)))
        if kind == "summary":
            what, rel = self._real_target(parts)
            if what != "file":
                raise mfusepy.FuseOSError(errno.EISDIR if what == "dir" else errno.ENOENT)
            # Reading a summary is deliberate (cat, semfs summary); the model runs here, bounded.
            return self._new_handle(_VHandle(data=self.queries.summary(rel), direct=True))
        if not parts or parts[-1] != RESULTS_FILE:
            raise mfusepy.FuseOSError(errno.ENOENT)  # the kernel resolves the symlinks itself
        if kind == "query":
            found = self._query(parts[0])
        else:
            what, rel = self._real_target(parts)
            if what != "entry":
                raise mfusepy.FuseOSError(errno.ENOENT)
            found = self._similar(rel)
        return self._new_handle(_VHandle(data=results_json(found)))

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

    # -- saved queries -------------------------------------------------------

    def mkdir(self, path: str, mode: int) -> int:
        r = self._route(path)
        if r is None:
            return super().mkdir(path, mode)
        kind, parts = r
        if kind != "query" or len(parts) != 1 or is_probe(parts[0]) or not prompt_of(parts[0]).strip():
            raise _rofs()
        self.queries.save(parts[0])
        return 0

    def rmdir(self, path: str) -> int:
        r = self._route(path)
        if r is None:
            return super().rmdir(path)
        kind, parts = r
        if kind != "query" or len(parts) != 1:
            raise _rofs()
        if not self.queries.unsave(parts[0]):
            raise mfusepy.FuseOSError(errno.ENOENT)
        return 0


def _read_only(name: str):
    real = getattr(Passthrough, name)

    def op(self, path, *args, **kwargs):
        if self._route(path) is not None:
            raise _rofs()
        return real(self, path, *args, **kwargs)

    op.__name__ = name
    return op


for _name in ("create", "unlink", "mknod", "truncate", "chmod", "chown", "utimens", "setxattr", "removexattr"):
    setattr(SemanticFS, _name, _read_only(_name))


def _two_paths(name: str, check_second: bool = True):
    real = getattr(Passthrough, name)

    def op(self, a, b, *args):
        if self._route(a) is not None or (check_second and self._route(b) is not None):
            raise _rofs()
        return real(self, a, b, *args)

    op.__name__ = name
    return op


SemanticFS.rename = _two_paths("rename")
SemanticFS.link = _two_paths("link")
SemanticFS.symlink = _two_paths("symlink", check_second=False)  # its second argument is the link's text


def _no_xattrs(name: str, empty):
    real = getattr(Passthrough, name)

    def op(self, path, *args):
        if self._route(path) is not None:
            if empty is None:
                raise mfusepy.FuseOSError(errno.ENODATA)
            return empty
        return real(self, path, *args)

    op.__name__ = name
    return op


SemanticFS.getxattr = _no_xattrs("getxattr", None)
SemanticFS.listxattr = _no_xattrs("listxattr", [])
