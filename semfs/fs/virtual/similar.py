"""``similar/<file>/``: the files closest in meaning to that one, as relative symlinks.

``similar/`` itself lists nothing, so programs that walk the whole mount
(find, du, backup tools, IDE indexers) do not run a search per file; its
subfolders mirror the backing folder's tree and are there when named:
``ls similar/notes/budget.md/``.
"""

from __future__ import annotations

import errno

import mfusepy

from .base import Context, VHandle, VStat, enoent, target
from .results import RESULTS_FILE, find, results_json


class SimilarFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _found(self, rel: str):
        return self.ctx.visible(self.ctx.queries.similar(rel))

    def stat(self, path: str, parts: list[str]) -> VStat:
        nodes = self.ctx.nodes
        if not parts:
            return nodes.dir(path)
        what, rel = self.ctx.real_target(parts)
        if what in ("dir", "file"):
            return nodes.dir(path)
        if what == "entry":
            found = self._found(rel)
            if parts[-1] == RESULTS_FILE:
                return nodes.file(path, len(results_json(found)))
            e = find(found, parts[-1])
            if e is not None:
                return nodes.link(path, target(len(parts), e))
        raise enoent()

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        what, rel = self.ctx.real_target(parts)
        if what == "dir" and not rel:
            return {}  # a walker of the whole mount (find, du, an IDE) must not search every file
        if what == "dir":
            return self.ctx.browse(rel, base, as_file=self.ctx.nodes.dir)  # a file's similar folder
        if what == "file":
            return self.ctx.results_folder(base, self._found(rel), depth=len(parts) + 1)
        raise enoent()

    def open(self, path: str, parts: list[str]) -> VHandle:
        what, rel = self.ctx.real_target(parts)
        if what != "entry" or parts[-1] != RESULTS_FILE:
            raise enoent()  # the kernel resolves the symlinks itself
        return VHandle(data=results_json(self._found(rel)))

    def readlink(self, parts: list[str]) -> str:
        what, rel = self.ctx.real_target(parts) if parts else ("missing", "")
        if what == "entry":
            e = find(self._found(rel), parts[-1])
            if e is not None:
                return target(len(parts), e)
        raise mfusepy.FuseOSError(errno.EINVAL)
