"""The protocol every virtual folder kind follows, and what they share.

A kind (``query``, ``similar``, ``summary``, ``history``) is one object
that answers for every path under its root, given as ``parts`` (the path
below the root, split on ``/``; ``[]`` is the root itself):

- ``stat(path, parts)``: the attributes, or ENOENT;
- ``listing(base, parts)``: name -> attributes of a folder's entries;
- ``open(path, parts)``: the content of a file, as a :class:`VHandle`;
- ``readlink(parts)``: the target of a symlink entry;
- optionally ``mkdir(parts)``, ``rmdir(parts)`` and ``rename(old, new)`` (else the root
  is read-only), and ``hold(parts)``: called as a folder is opened, it returns what to
  call when it is closed (``topics/`` keeps its grouping while one of its folders is open).

Everything it needs comes in one :class:`Context`: the backing folder,
the per-caller access check (every kind asks it before showing anything),
the query service and versions, and the node factory. A kind never sees
FUSE itself beyond raising :class:`mfusepy.FuseOSError`, so each can be
tested without a mount.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import stat as statmod
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional, Protocol

import mfusepy

from ..access import CallerAccess
from .results import MATCHES_FILE, RESULTS_FILE, Entry, Seen, find, matches, named, results_json


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


@dataclass
class VHandle:
    """An open virtual file or folder."""

    listing: Optional[list[tuple[str, int, int]]] = None  # for folders
    stats: Optional[dict[str, VStat]] = None
    data: bytes = b""  # for .results.json, summaries and versions
    direct: bool = False  # size unknown to getattr: served with direct I/O
    st: Optional[VStat] = None  # attributes of an open file, when not those of a plain virtual file
    release: Optional[Callable[[], None]] = None  # called when it is closed (a kind's hold on what it shows)


def ino(path: str) -> int:
    # Stable and far from the backing filesystem's small inode numbers.
    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 2) | (1 << 61)


def enoent() -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(errno.ENOENT)


def erofs() -> mfusepy.FuseOSError:
    # the virtual folders are read-only
    return mfusepy.FuseOSError(errno.EROFS)


def target(depth: int, entry: Entry) -> str:
    """The relative symlink from a results folder ``depth`` levels below the mount's root."""
    return "../" * depth + entry.path


class Nodes:
    """Attributes of virtual things: folders 0555, files 0444, links 0777, dated from the mount."""

    def __init__(self, started_ns: int) -> None:
        self.started = started_ns

    def node(self, mode: int, path: str, size: int = 0, nlink: int = 1) -> VStat:
        t = self.started
        return VStat(mode, ino(path), size, nlink, st_atime_ns=t, st_mtime_ns=t, st_ctime_ns=t)

    def dir(self, path: str, writable: bool = False) -> VStat:
        """A folder; ``writable`` by its owner (the daemon's user), for the folders whose
        entries can be made and removed (saved queries): the kernel checks that itself."""
        return self.node(statmod.S_IFDIR | (0o755 if writable else 0o555), path, nlink=2)

    def link(self, path: str, target: str) -> VStat:
        return self.node(statmod.S_IFLNK | 0o777, path, len(target.encode()))

    def file(self, path: str, size: int) -> VStat:
        return self.node(statmod.S_IFREG | 0o444, path, size)


@dataclass
class Context:
    """What every kind of virtual folder works with."""

    root: str  # the backing folder
    access: CallerAccess
    nodes: Nodes
    queries: Any = None  # core.query.queries.QueryService, for query/, similar/, summary/
    versions: Any = None  # core.versions.keeper.Versions, for history/
    seen: Seen = field(default_factory=Seen)  # names results folders listed lately

    def real_target(self, parts: list[str]) -> tuple[str, str]:
        """What ``<kind>/<parts>`` names in the backing folder, for the kinds that mirror its tree.

        (what, rel): "dir" (browse it), "file" (its similar folder, or its
        summary), "entry" (a name inside the similar folder of the file
        ``rel``), or "missing" (also for what the caller may not read).
        """
        rel = "/".join(parts)
        full = os.path.join(self.root, rel) if rel else self.root
        if not rel or os.path.isdir(full) and not os.path.islink(full):
            return ("dir", rel) if self.access.can(rel, os.R_OK | os.X_OK) else ("missing", "")
        if os.path.isfile(full) and not os.path.islink(full):
            return ("file", rel) if self.access.can(rel) else ("missing", "")
        parent = "/".join(parts[:-1])
        if parts[:-1] and os.path.isfile(os.path.join(self.root, parent)) and self.access.can(parent):
            return "entry", parent
        return "missing", ""

    def is_file(self, rel: str) -> bool:
        """Whether ``rel`` is a regular file of the backing folder now (not a symlink to one)."""
        full = os.path.join(self.root, rel)
        return os.path.isfile(full) and not os.path.islink(full)

    def visible(self, found: list, k: Optional[int] = None) -> list[Entry]:
        """The results (core Matches, best first) this caller may see, named as listed: at most
        ``k`` (default: the query service's).

        The query service keeps more than a folder shows, so a caller who may
        not see some of them still gets a full folder."""
        k = k or self.queries.k
        if self.access.privileged():
            return named(found[:k])
        if not any(m.also or m.alike for m in found):
            ok = set(self.access.readable([m.path for m in found], limit=k))
            return named([m for m in found if m.path in ok])
        # a copy of a text stands for it when the caller may not read the file listed first, and
        # copies it may not read are not named to it; a near copy stands for it without the first
        # file's lines (those that differ are not the caller's to read)
        ok = set(self.access.readable([p for m in found for p in (m.path, *m.also, *m.alike)]))
        shown = []
        for m in found:
            same = [p for p in (m.path, *m.also) if p in ok]
            alike = tuple(p for p in m.alike if p in ok)
            if same:
                shown.append(dataclasses.replace(m, path=same[0], also=tuple(same[1:]), alike=alike))
            elif alike:
                shown.append(dataclasses.replace(m, path=alike[0], also=(), alike=alike[1:], snippet="", passages=()))
            else:
                continue
            if len(shown) == k:
                break
        return named(shown)

    def entry(self, key: Hashable, found: Callable[[], list[Entry]], name: str, cheap: bool = False) -> Optional[Entry]:
        """The entry ``name`` of a results folder: as listed lately (if its file is still there
        and this caller may still read it), else as ``found()`` lists it now. A folder this
        daemon never listed has no names to look up, so that costs no search (a file manager
        starting up stats the results it opened last time, under names of another listing),
        unless ``found`` is ``cheap`` (a saved query's, searched in the background)."""
        e = self.seen.get(key, name)
        if e is not None and self.access.can(e.path) and self.is_file(e.path):
            return e
        if not cheap and not self.seen.knows(key):
            return None
        return find(found(), name)

    def results_folder(
        self,
        key: Hashable,
        base: str,
        found: list[Entry],
        depth: int,
        prompt: Optional[str] = None,
        more: Optional[str] = None,
    ) -> dict[str, VStat]:
        """A folder of results: a relative symlink per entry, ``.results.json`` and ``.matches``
        (and ``more``, the folder that lists past the cut-off, named in ``.results.json`` only)."""
        self.seen.note(key, found)
        stats = {e.name: self.nodes.link(f"{base}/{e.name}", target(depth, e)) for e in found}
        for name in (RESULTS_FILE, MATCHES_FILE):
            stats[name] = self.nodes.file(f"{base}/{name}", len(self.result_file(name, found, prompt, more)))
        return stats

    def result_file(
        self, name: str, found: list[Entry], prompt: Optional[str] = None, more: Optional[str] = None
    ) -> bytes:
        """A results folder's file ``name`` (one of results.RESULT_FILES) for ``found``."""
        if name == MATCHES_FILE:
            return matches(found)
        return results_json(found, self.queries.indexing(), prompt, self.queries.meaning_behind(), more)

    def browse(self, rel: str, base: str, as_file) -> dict[str, VStat]:
        """The entries of the backing folder ``rel`` the caller could open: files it may
        read (as ``as_file(path)`` gives them) and folders it may list."""
        files, dirs = [], []
        with os.scandir(os.path.join(self.root, rel)) as it:
            for e in it:
                if e.is_file(follow_symlinks=False):
                    files.append(e.name)
                elif e.is_dir(follow_symlinks=False):
                    dirs.append(e.name)
        stats = {}
        prefix = f"{rel}/" if rel else ""
        for name in (n.rsplit("/", 1)[-1] for n in self.access.readable([prefix + n for n in files])):
            stats[name] = as_file(f"{base}/{name}")
        for name in (n.rsplit("/", 1)[-1] for n in self.access.readable([prefix + n for n in dirs], os.R_OK | os.X_OK)):
            stats[name] = self.nodes.dir(f"{base}/{name}")
        return stats


OF = ".of"  # <kind>/.of/<file>: what a kind shows for <file>, behind the link <kind>/<file>


class LinkedTree:
    """The part of ``similar/`` and ``summary/`` that mirrors the backing tree: folders as
    folders, each file a symlink to what the kind shows for it, which no listing shows
    (``summary/.of/<file>``; for ``similar/``, a hidden sibling of the link).

    Programs that walk trees (find, du, rsync, tar, grep -r, ripgrep) do not
    follow symlinks by default, so a walk of the whole mount never opens a
    file's results or summary; a file manager, ``cat`` or ``ls <link>/``
    follow them. (Caveat: a top-level ``.of`` of the backing folder is not
    shown there: the name is taken.)
    """

    def __init__(self, ctx: Context, link=None) -> None:
        """``link(depth, rel)``: the target of the link for the file ``rel``, from a folder
        ``depth`` levels below the kind's root (default: ``.of/<rel>`` at the kind's root)."""
        self.ctx = ctx
        self.link = link or self.of_link

    @staticmethod
    def of_link(depth: int, rel: str) -> str:
        """The link from a folder ``depth`` levels below the kind's root to ``.of/<rel>``."""
        return f"{'../' * depth}{OF}/{rel}"

    def stat(self, path: str, parts: list[str]) -> VStat:
        what, rel = self.ctx.real_target(parts)
        if what == "dir":
            return self.ctx.nodes.dir(path)
        if what == "file":
            return self.ctx.nodes.link(path, self.link(len(parts) - 1, rel))
        raise enoent()

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        what, rel = self.ctx.real_target(parts)
        if what != "dir":
            raise enoent()

        def as_link(p: str) -> VStat:
            name = p.rsplit("/", 1)[-1]
            return self.ctx.nodes.link(p, self.link(len(parts), f"{rel}/{name}" if rel else name))

        entries = self.ctx.browse(rel, base, as_file=as_link)
        if not parts:
            entries.pop(OF, None)
        return entries

    def readlink(self, parts: list[str]) -> str:
        what, rel = self.ctx.real_target(parts) if parts else ("missing", "")
        if what == "file":
            return self.link(len(parts) - 1, rel)
        raise mfusepy.FuseOSError(errno.EINVAL)

    def behind(self, parts: list[str]) -> tuple[str, str]:
        """What ``<kind>/.of/<parts[1:]>`` names, as :meth:`Context.real_target` says (``.of`` itself: a folder)."""
        return self.ctx.real_target(parts[1:]) if parts[1:] else ("dir", "")


class VirtualFolder(Protocol):
    def stat(self, path: str, parts: list[str]) -> VStat: ...

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]: ...

    def open(self, path: str, parts: list[str]) -> VHandle: ...

    def readlink(self, parts: list[str]) -> str: ...
