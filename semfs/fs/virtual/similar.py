"""``similar/<file>``: the files closest in meaning to that one, as relative symlinks.

``similar/`` mirrors the backing folder's tree from its root, so a file
manager can click to any file; there each file is a symlink to its results
folder, a hidden sibling ``.<file>.of`` that no listing shows (see
:class:`~semfs.fs.virtual.base.LinkedTree`), so a walk of the whole mount
runs no search, while a click, ``ls similar/notes/budget.md/`` or ``cd``
follows the link and lists the results.

The results folder sits beside its link, at the same depth, so the
relative link of each result resolves the same from the path a file
manager shows (``similar/notes/budget.md/01-x.md``) as from the folder it
really is (``similar/notes/.budget.md.of/01-x.md``): no "broken link".
Caveat: a backing file named ``.<name>.of`` beside a file ``<name>`` is
hidden in ``similar/`` (the name is taken).
"""

from __future__ import annotations

import errno
from typing import Optional

import mfusepy

from .base import OF, Context, LinkedTree, VHandle, VStat, enoent, target
from .results import RESULT_FILES


def results_name(name: str) -> str:
    """The hidden sibling that holds the similar files of ``name``."""
    return f".{name}{OF}"


def _source(name: str) -> Optional[str]:
    if name.startswith(".") and name.endswith(OF) and len(name) > len(OF) + 1:
        return name[1 : -len(OF)]
    return None


class SimilarFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tree = LinkedTree(ctx, link=lambda depth, rel: results_name(rel.rsplit("/", 1)[-1]))

    def _found(self, rel: str):
        return self.ctx.visible(self.ctx.queries.similar(rel))

    def _results_of(self, parts: list[str]) -> Optional[str]:
        """The file whose results folder ``parts`` names, if it does."""
        src = _source(parts[-1]) if parts else None
        if src is None:
            return None
        what, rel = self.ctx.real_target([*parts[:-1], src])
        return rel if what == "file" else None

    def stat(self, path: str, parts: list[str]) -> VStat:
        if self._results_of(parts) is not None:
            return self.ctx.nodes.dir(path)
        rel = self._results_of(parts[:-1])
        if rel is None:
            return self.tree.stat(path, parts)
        if parts[-1] in RESULT_FILES:
            return self.ctx.nodes.file(path, len(self.ctx.result_file(parts[-1], self._found(rel))))
        e = self.ctx.entry(("similar", rel), lambda: self._found(rel), parts[-1])
        if e is not None:
            return self.ctx.nodes.link(path, target(len(parts), e))
        raise enoent()

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        rel = self._results_of(parts)
        if rel is None:
            return self.tree.listing(base, parts)
        return self.ctx.results_folder(("similar", rel), base, self._found(rel), depth=len(parts) + 1)

    def open(self, path: str, parts: list[str]) -> VHandle:
        rel = self._results_of(parts[:-1])
        if rel is not None and parts[-1] in RESULT_FILES:
            return VHandle(data=self.ctx.result_file(parts[-1], self._found(rel)), direct=True)
        raise enoent()  # the kernel resolves the symlinks itself

    def readlink(self, parts: list[str]) -> str:
        rel = self._results_of(parts[:-1])
        if rel is None:
            return self.tree.readlink(parts)
        e = self.ctx.entry(("similar", rel), lambda: self._found(rel), parts[-1])
        if e is not None:
            return target(len(parts), e)
        raise mfusepy.FuseOSError(errno.EINVAL)
