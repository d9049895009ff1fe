"""``similar/<file>``: the files closest in meaning to that one, as relative symlinks.

``similar/`` mirrors the backing folder's tree from its root, so a file
manager can click to any file; there each file is a symlink to its results
folder ``similar/.of/<file>/`` (see :class:`~semfs.fs.virtual.base.LinkedTree`),
so a walk of the whole mount runs no search, while a click,
``ls similar/notes/budget.md/`` or ``cd`` follows the link and lists the
results.
"""

from __future__ import annotations

import errno

import mfusepy

from .base import OF, Context, LinkedTree, VHandle, VStat, enoent, target
from .results import RESULTS_FILE, results_json


class SimilarFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tree = LinkedTree(ctx)

    def _found(self, rel: str):
        return self.ctx.visible(self.ctx.queries.similar(rel))

    def stat(self, path: str, parts: list[str]) -> VStat:
        if not parts or parts[0] != OF:
            return self.tree.stat(path, parts)
        what, rel = self.tree.behind(parts)
        if what in ("dir", "file"):
            return self.ctx.nodes.dir(path)
        if what == "entry":
            found = self._found(rel)
            if parts[-1] == RESULTS_FILE:
                return self.ctx.nodes.file(path, len(results_json(found)))
            e = self.ctx.entry(("similar", rel), found, parts[-1])
            if e is not None:
                return self.ctx.nodes.link(path, target(len(parts), e))
        raise enoent()

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        if not parts or parts[0] != OF:
            return self.tree.listing(base, parts)
        what, rel = self.tree.behind(parts)
        if what == "file":
            return self.ctx.results_folder(("similar", rel), base, self._found(rel), depth=len(parts) + 1)
        if what == "dir":
            return {}  # reached only by name: each file's folder is what counts
        raise enoent()

    def open(self, path: str, parts: list[str]) -> VHandle:
        if parts[:1] == [OF] and parts[-1] == RESULTS_FILE:
            what, rel = self.tree.behind(parts)
            if what == "entry":
                return VHandle(data=results_json(self._found(rel)))
        raise enoent()  # the kernel resolves the symlinks itself

    def readlink(self, parts: list[str]) -> str:
        if parts[:1] != [OF]:
            return self.tree.readlink(parts)
        what, rel = self.tree.behind(parts)
        if what == "entry":
            e = self.ctx.entry(("similar", rel), self._found(rel), parts[-1])
            if e is not None:
                return target(len(parts), e)
        raise mfusepy.FuseOSError(errno.EINVAL)
