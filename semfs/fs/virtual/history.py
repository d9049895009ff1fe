"""``history/<path>/``: the kept versions of a file, as read-only files.

``ls history/notes/plan.md/`` lists ``0001 2026-11-26T10-15-03.md``,
``0002 ...``: each version named by its number and the time its content
was written, with the file's extension, so ``cat``, ``diff`` and ``cp``
read it as it was. ``history/`` itself is a tree of the paths that have
versions, deleted files included (until their versions are pruned).

A caller sees the history of a file only if it could read that file
through the mirror now; a deleted file's history only root and the
mounting user see (nothing on disk says who could read it).

Caveat: a version is read whole into memory when opened (versions are
capped at 64 MB by :mod:`semfs.core.versions.keeper`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat as statmod
import time
from typing import Optional

import mfusepy

from ...core.versions.keeper import Version
from ...errors import SemfsError
from .base import Context, VHandle, VStat, enoent


class HistoryFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.versions = ctx.versions

    def visible(self, rel: str) -> bool:
        """Whether the caller may see the history of ``rel``: it could read that file (or list
        that folder) through the mirror now."""
        if not rel or self.ctx.access.privileged():
            return True
        return self.ctx.real_target(rel.split("/"))[0] in ("dir", "file")

    def _version(self, parts: list[str]) -> Optional[Version]:
        """The version a path names, if it names one (and the caller may see it)."""
        if len(parts) < 2 or not self.visible("/".join(parts[:-1])):
            return None
        return entry_names(self.versions.history("/".join(parts[:-1]))).get(parts[-1])

    def _version_stat(self, path: str, v: Version) -> VStat:
        st = self.ctx.nodes.node(statmod.S_IFREG | 0o444, path, v.size)
        return dataclasses.replace(st, st_mtime_ns=v.mtime_ns, st_atime_ns=v.mtime_ns, st_ctime_ns=int(v.time * 1e9))

    def stat(self, path: str, parts: list[str]) -> VStat:
        rel = "/".join(parts)
        if not parts or self.versions.has_history(rel) and self.visible(rel):
            return self.ctx.nodes.dir(path)
        v = self._version(parts)
        if v is None:
            raise enoent()
        return self._version_stat(path, v)

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        rel = "/".join(parts)
        if not self.visible(rel):
            raise enoent()
        names = [n for n in self.versions.names_under(rel) if self.visible(f"{rel}/{n}" if rel else n)]
        stats = {name: self.ctx.nodes.dir(f"{base}/{name}") for name in names}
        if rel:
            for name, v in entry_names(self.versions.history(rel)).items():
                stats[name] = self._version_stat(f"{base}/{name}", v)
        return stats

    def open(self, path: str, parts: list[str]) -> VHandle:
        v = self._version(parts)
        if v is None:
            rel = "/".join(parts)
            here = parts and self.versions.has_history(rel) and self.visible(rel)
            raise mfusepy.FuseOSError(errno.EISDIR if here else errno.ENOENT)
        try:
            data = self.versions.content(v)
        except (SemfsError, OSError) as e:  # a blob missing or damaged: this version only
            raise mfusepy.FuseOSError(errno.EIO) from e
        return VHandle(data=data, st=self._version_stat(path, v))

    def readlink(self, parts: list[str]) -> str:
        raise mfusepy.FuseOSError(errno.EINVAL)


def entry_names(history: list[Version]) -> dict[str, Version]:
    """A file's versions by their names in ``history/<file>/``."""
    return {entry_name(v): v for v in history}


def entry_name(v: Version) -> str:
    """``0003 2026-11-26T10-15-03.md``: number, when that content was written (local time), the file's extension."""
    ext = os.path.splitext(v.path.rsplit("/", 1)[-1])[1]
    secs = v.mtime_ns / 1e9 if v.mtime_ns else v.time
    return f"{v.version:04d} {time.strftime('%Y-%m-%dT%H-%M-%S', time.localtime(secs))}{ext if len(ext) <= 16 else ''}"
