"""``history/<path>/``: the kept versions of a file, as read-only files.

``ls history/notes/plan.md/`` lists ``0001 2026-11-26T10-15-03.md``,
``0002 ...``: each version named by its number and the time its content
was written, with the file's extension, so ``cat``, ``diff`` and ``cp``
read it as it was. ``history/`` itself is a tree of the paths that have
versions, deleted files included (until their versions are pruned).

Caveat: a version is read whole into memory when opened (versions are
capped at 64 MB by :mod:`semfs.core.versions`).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat as statmod
from typing import Optional

import mfusepy

from ..core.versions import Version, Versions
from .access import CallerAccess
from ..errors import SemfsError


class HistoryFolder:
    """The part of :class:`~semfs.fs.semantic.SemanticFS` that answers for ``history/``."""

    versions: Optional[Versions]
    root: str
    access: "CallerAccess"

    def _history_visible(self, rel: str) -> bool:
        """Whether the caller may see the history of ``rel``: it could read that file (or list
        that folder) through the mirror now. A deleted file's history is shown only to
        the daemon's own user and root: nothing on disk says who could read it."""
        if not rel or self.access.privileged():
            return True
        try:
            st = os.lstat(os.path.join(self.root, rel))
        except OSError:
            return False
        if statmod.S_ISDIR(st.st_mode):
            return self.access.can(rel, os.R_OK | os.X_OK)
        return statmod.S_ISREG(st.st_mode) and self.access.can(rel)

    def _history_version(self, parts: list[str]) -> Optional[Version]:
        """The version a path names, if it names one (and the caller may see it)."""
        if len(parts) < 2 or not self._history_visible("/".join(parts[:-1])):
            return None
        return self.versions.entry_names("/".join(parts[:-1])).get(parts[-1])

    def _history_stat(self, path: str, parts: list[str]):
        rel = "/".join(parts)
        if not parts or self.versions.has_history(rel) and self._history_visible(rel):
            return self._dir(path)
        v = self._history_version(parts)
        if v is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        return self._version_stat(path, v)

    def _version_stat(self, path: str, v: Version):
        st = self._vnode(statmod.S_IFREG | 0o444, path, v.size)
        return dataclasses.replace(st, st_mtime_ns=v.mtime_ns, st_atime_ns=v.mtime_ns, st_ctime_ns=int(v.time * 1e9))

    def _history_listing(self, base: str, parts: list[str]) -> dict:
        rel = "/".join(parts)
        if not self._history_visible(rel):
            raise mfusepy.FuseOSError(errno.ENOENT)
        names = [n for n in self.versions.names_under(rel) if self._history_visible(f"{rel}/{n}" if rel else n)]
        stats = {name: self._dir(f"{base}/{name}") for name in names}
        if rel:
            for name, v in self.versions.entry_names(rel).items():
                stats[name] = self._version_stat(f"{base}/{name}", v)
        return stats

    def _history_open(self, parts: list[str]) -> bytes:
        v = self._history_version(parts)
        if v is None:
            rel = "/".join(parts)
            here = parts and self.versions.has_history(rel) and self._history_visible(rel)
            raise mfusepy.FuseOSError(errno.EISDIR if here else errno.ENOENT)
        try:
            return self.versions.content(v)
        except (SemfsError, OSError) as e:  # a blob missing or damaged: this version only
            raise mfusepy.FuseOSError(errno.EIO) from e
