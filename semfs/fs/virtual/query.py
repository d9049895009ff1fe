"""``query/<prompt>/``: the files a prompt finds, as relative symlinks, best first.

``ls query/`` lists saved queries; ``mkdir query/<prompt>`` saves one and
``rmdir`` forgets it (``semfs query --save NAME PROMPT`` saves a prompt too
long for a name). Every name under ``query/`` exists as a prompt folder,
and the kernel answers ``mkdir`` of an existing name with EEXIST without
asking the mount; so the lookup of a prompt that is not saved yet reports
ENOENT when the process asking is inside mkdir(2) (read from
``/proc/<tid>/syscall``). Caveats: where that file cannot be read (a
daemon not run by root under Yama's ptrace_scope >= 1), mkdir gives EEXIST
and ``--save`` is the way; and for up to the entry timeout (1 s) after the
same prompt folder was listed, the kernel still knows it and gives EEXIST.

``stat`` of a prompt folder answers at once without searching; the search
runs when the folder is listed (the one place the LLM may be waited on),
or an entry or ``.results.json`` inside it is looked up.
"""

from __future__ import annotations

import errno
import os

import mfusepy

from .base import Context, VHandle, VStat, enoent, erofs, target
from .results import RESULTS_FILE, find, is_probe, prompt_of, results_json

# mkdir(2) and mkdirat(2) by architecture (asm/unistd_64.h; aarch64 has only mkdirat)
_MKDIR_SYSCALLS = {"x86_64": {83, 258}, "aarch64": {34}, "riscv64": {34}}.get(os.uname().machine, set())


def caller_in_mkdir() -> bool:
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


class QueryFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queries = ctx.queries

    def _found(self, name: str, may_wait: bool = False):
        prompt = self.queries.saved_prompt(name) or prompt_of(name)
        return self.ctx.visible(self.queries.query(prompt, may_wait=may_wait))

    def stat(self, path: str, parts: list[str]) -> VStat:
        nodes = self.ctx.nodes
        if not parts:
            return nodes.dir(path)
        name = parts[0]
        if is_probe(name) or len(parts) > 2:
            raise enoent()
        if len(parts) == 1:
            if caller_in_mkdir() and self.queries.saved_prompt(name) is None:
                raise enoent()  # so that the kernel lets mkdir save it
            return nodes.dir(path)
        found = self._found(name)
        if parts[1] == RESULTS_FILE:
            return nodes.file(path, len(results_json(found)))
        e = None if is_probe(parts[1]) else find(found, parts[1])
        if e is None:
            raise enoent()
        return nodes.link(path, target(2, e))

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        if not parts:
            return {name: self.ctx.nodes.dir(f"{base}/{name}") for name in self.queries.saved()}
        return self.ctx.results_folder(base, self._found(parts[0], may_wait=True), depth=2)

    def open(self, path: str, parts: list[str]) -> VHandle:
        if len(parts) != 2 or parts[1] != RESULTS_FILE:
            raise enoent()  # the kernel resolves the symlinks itself
        return VHandle(data=results_json(self._found(parts[0])))

    def readlink(self, parts: list[str]) -> str:
        if len(parts) == 2:
            e = find(self._found(parts[0]), parts[1])
            if e is not None:
                return target(2, e)
        raise mfusepy.FuseOSError(errno.EINVAL)

    def mkdir(self, parts: list[str]) -> None:
        if len(parts) != 1 or is_probe(parts[0]) or not prompt_of(parts[0]).strip():
            raise erofs()
        self.queries.save(parts[0], prompt_of(parts[0]))

    def rmdir(self, parts: list[str]) -> None:
        if len(parts) != 1:
            raise erofs()
        if not self.queries.unsave(parts[0]):
            raise enoent()
