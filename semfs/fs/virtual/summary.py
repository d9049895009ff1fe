"""``summary/<file>``: what that file is and its key points (see :mod:`semfs.core.query.summaries`).

``summary/`` mirrors the backing tree from its root, so a file manager can
click to any file's summary; each file there is a symlink to
``summary/.of/<file>`` (see :class:`~semfs.fs.virtual.base.LinkedTree`), so
``find``, ``du`` and ``grep -r`` over the mount neither list it as a file
nor read it. A summary is made when it is opened (a deliberate act) and
cached per content; until then its size is unknown (0) and it is served
with direct I/O, so ``cat`` reads it whole. ``stat`` and listings never
summarise, and both give a cached summary's true size.
"""

from __future__ import annotations

import errno

import mfusepy

from .base import OF, Context, LinkedTree, VHandle, VStat, enoent


class SummaryFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tree = LinkedTree(ctx)

    def stat(self, path: str, parts: list[str]) -> VStat:
        if not parts or parts[0] != OF:
            return self.tree.stat(path, parts)
        what, rel = self.tree.behind(parts)
        if what == "dir":
            return self.ctx.nodes.dir(path)
        if what == "file":
            size = self.ctx.queries.cached_summary_size(rel)
            return self.ctx.nodes.file(path, size or 0)  # unknown yet: read with direct I/O
        raise enoent()

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        if not parts or parts[0] != OF:
            return self.tree.listing(base, parts)
        what, _ = self.tree.behind(parts)
        if what == "dir":
            return {}  # reached only by name: each file's summary is what counts
        raise enoent()

    def open(self, path: str, parts: list[str]) -> VHandle:
        sub = parts[1:] if parts[:1] == [OF] else parts  # (the kernel follows the links itself)
        what, rel = self.ctx.real_target(sub) if sub else ("dir", "")
        if what != "file":
            raise mfusepy.FuseOSError(errno.EISDIR if what == "dir" else errno.ENOENT)
        # Reading a summary is deliberate (cat, semfs summary); the model runs here, bounded.
        return VHandle(data=self.ctx.queries.summary(rel), direct=True)

    def readlink(self, parts: list[str]) -> str:
        return self.tree.readlink(parts)
