"""``summary/<file>``: a short summary of that file by the local LLM.

It is generated when the file is opened (a deliberate act) and cached
per content; until then its size is unknown and it is served with direct
I/O, so ``cat`` reads it whole. ``summary/`` itself lists nothing (walkers
must not summarise every file); its subfolders mirror the backing tree.
"""

from __future__ import annotations

import errno

import mfusepy

from .base import Context, VHandle, VStat, enoent


class SummaryFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def stat(self, path: str, parts: list[str]) -> VStat:
        nodes = self.ctx.nodes
        if not parts:
            return nodes.dir(path)
        what, rel = self.ctx.real_target(parts)
        if what == "dir":
            return nodes.dir(path)
        if what == "file":
            size = self.ctx.queries.cached_summary_size(rel)
            return nodes.file(path, size or 0)  # unknown yet: read with direct I/O
        raise enoent()

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        what, rel = self.ctx.real_target(parts)
        if what == "dir" and not rel:
            return {}  # a walker of the whole mount must not summarise every file
        if what == "dir":
            return self.ctx.browse(rel, base, as_file=lambda p: self.ctx.nodes.file(p, 0))
        raise enoent()

    def open(self, path: str, parts: list[str]) -> VHandle:
        what, rel = self.ctx.real_target(parts)
        if what != "file":
            raise mfusepy.FuseOSError(errno.EISDIR if what == "dir" else errno.ENOENT)
        # Reading a summary is deliberate (cat, semfs summary); the model runs here, bounded.
        return VHandle(data=self.ctx.queries.summary(rel), direct=True)

    def readlink(self, parts: list[str]) -> str:
        raise mfusepy.FuseOSError(errno.EINVAL)
