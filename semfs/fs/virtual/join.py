"""``join/<prompt>``: one read-only file of the passages a prompt matched, under their files' paths.

``cat "join/budget decisions"`` reads the lines of the files that
``query/budget decisions/`` lists, best first, each with its file's path
and line numbers (see :mod:`semfs.core.query.join`). ``join/`` lists only
its hint file, so a walk of the mount never searches; a prompt's file is
searched when it is opened (its size is unknown until then: 0, served with
direct I/O, so ``cat`` reads it whole). A caller sees the passages of the
files it may read, as in ``query/``.
"""

from __future__ import annotations

import errno

import mfusepy

from ...core.query.join import passages_document
from .base import Context, VHandle, VStat, enoent
from .results import is_probe, prompt_of

HINT = "HOW TO JOIN.txt"
HINT_TEXT = """\
cat "join/<what you are looking for>" reads, as one document, the lines
that matched in each file query/<what you are looking for>/ lists, best
first, under each file's path and with its line numbers. Nothing is
written; to make a file of several, run: semfs join A B ... -o OUT
"""


class JoinFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def stat(self, path: str, parts: list[str]) -> VStat:
        if not parts:
            return self.ctx.nodes.dir(path)
        if parts == [HINT]:
            return self.ctx.nodes.file(path, len(HINT_TEXT.encode()))
        if len(parts) != 1 or is_probe(parts[0]) or not prompt_of(parts[0]).strip():
            raise enoent()
        return self.ctx.nodes.file(path, 0)  # made when opened: direct I/O

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        if parts:
            raise enoent()
        return {HINT: self.stat(f"{base}/{HINT}", [HINT])}

    def open(self, path: str, parts: list[str]) -> VHandle:
        if parts == [HINT]:
            return VHandle(data=HINT_TEXT.encode())
        self.stat(path, parts)  # (refuses what is no prompt)
        prompt = prompt_of(parts[0])
        found = self.ctx.visible(self.ctx.queries.query(prompt))
        text = passages_document(prompt, [e.match for e in found])
        return VHandle(data=text.encode("utf-8", "surrogateescape"), direct=True)

    def readlink(self, parts: list[str]) -> str:
        raise mfusepy.FuseOSError(errno.EINVAL)  # (no links here)
