"""``query/<prompt>/``: the files a prompt finds, as relative symlinks, best first.

``ls query/`` lists saved queries; ``mkdir query/<prompt>`` saves one,
``mv -T`` renames it (the prompt stays) and ``rmdir`` forgets it (``semfs
query --save NAME PROMPT`` saves a prompt too long for a name). ``query/``
is 0755, so its owner, the mounting user, may do all three, and the
kernel refuses them to anyone else. (A plain ``mv a b`` moves ``a`` into
``b``, since every name under ``query/`` is a folder: hence ``-T``.)

Every name under ``query/`` exists as a prompt folder, and the kernel
answers ``mkdir`` of an existing name with EEXIST without asking the
mount; so the lookup of a prompt that is not saved yet reports ENOENT when
the process asking is inside mkdir(2) (read from ``/proc/<tid>/syscall``).
Caveats: where that file cannot be read (a daemon not run by root under
Yama's ptrace_scope >= 1), mkdir gives EEXIST and ``--save`` is the way;
and for up to the entry timeout (1 s) after the same prompt folder was
listed, the kernel still knows it and gives EEXIST.

``stat`` of a prompt folder answers at once without searching; the search
runs when the folder is listed, or an entry or ``.results.json`` inside
it is looked up.

``query/`` also holds one file, ``HOW TO SEARCH.txt``, that says all this
to someone who opens the folder in a file manager (so that name is not a
prompt).
"""

from __future__ import annotations

import errno
import os

import mfusepy

from .base import Context, VHandle, VStat, enoent, erofs, target
from .results import RESULTS_FILE, is_probe, prompt_of

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


HINT = "HOW TO SEARCH.txt"
HINT_TEXT = """\
Search this drive by naming a folder here with what you are looking for.

In a file manager, type the path in the location bar, for example
    query/notes about the budget meeting last march/
or make a new folder here and name it with your words: it is saved, and
lists the matching files each time you open it (rename it with
mv -T OLD NEW; delete it to forget it: that deletes no file).
In a shell:
    ls "query/recipes I saved in the past 3 days/"

A folder lists the files that match, best first, as links to the real
files (open, edit and save them as usual); none if nothing matches.
While the drive is still being indexed, .results.json says how far, and
the listing may grow: a file manager shows it again on reload (F5).
Its hidden .results.json has each file's score and a snippet. Words such
as "yesterday", "last march", "in 2025", "pdf", "photos" or "in recipes/"
also filter by time, kind and folder.

Next to query/: similar/<file> lists the files closest in meaning to that
file, and summary/<file> is a short summary of it.
"""


class QueryFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queries = ctx.queries

    def _found(self, name: str):
        prompt = self.queries.saved_prompt(name) or prompt_of(name)
        return self.ctx.visible(self.queries.query(prompt))

    def stat(self, path: str, parts: list[str]) -> VStat:
        nodes = self.ctx.nodes
        if not parts:
            return nodes.dir(path, writable=True)  # its owner saves, renames and forgets queries here
        name = parts[0]
        if is_probe(name) or len(parts) > 2:
            raise enoent()
        if parts == [HINT]:
            return nodes.file(path, len(HINT_TEXT.encode()))
        if len(parts) == 1:
            if caller_in_mkdir() and self.queries.saved_prompt(name) is None:
                raise enoent()  # so that the kernel lets mkdir save it
            return nodes.dir(path)
        if parts[1] == RESULTS_FILE:
            return nodes.file(path, len(self.ctx.results_json(self._found(name))))
        e = None if is_probe(parts[1]) else self.ctx.entry(("query", name), self._found(name), parts[1])
        if e is None:
            raise enoent()
        return nodes.link(path, target(2, e))

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        if not parts:
            saved = {name: self.ctx.nodes.dir(f"{base}/{name}") for name in self.queries.saved()}
            return {HINT: self.stat(f"{base}/{HINT}", [HINT]), **saved}
        return self.ctx.results_folder(("query", parts[0]), base, self._found(parts[0]), depth=2)

    def open(self, path: str, parts: list[str]) -> VHandle:
        if parts == [HINT]:
            return VHandle(data=HINT_TEXT.encode())
        if len(parts) != 2 or parts[1] != RESULTS_FILE:
            raise enoent()  # the kernel resolves the symlinks itself
        return VHandle(data=self.ctx.results_json(self._found(parts[0])), direct=True)

    def readlink(self, parts: list[str]) -> str:
        if len(parts) == 2:
            e = self.ctx.entry(("query", parts[0]), self._found(parts[0]), parts[1])
            if e is not None:
                return target(2, e)
        raise mfusepy.FuseOSError(errno.EINVAL)

    def mkdir(self, parts: list[str]) -> None:
        if parts == [HINT]:
            raise mfusepy.FuseOSError(errno.EEXIST)
        if len(parts) != 1 or is_probe(parts[0]) or not prompt_of(parts[0]).strip():
            raise erofs()
        self.queries.save(parts[0], prompt_of(parts[0]))

    def rmdir(self, parts: list[str]) -> None:
        if len(parts) != 1:
            raise erofs()
        if not self.queries.unsave(parts[0]):
            raise enoent()

    def rename(self, old: list[str], new: list[str]) -> None:
        """A saved query under another name (``mv -T``, rename(2)); its prompt stays."""
        if len(old) != 1 or len(new) != 1 or HINT in (old[0], new[0]) or is_probe(new[0]):
            raise erofs()
        prompt = self.queries.saved_prompt(old[0])
        if prompt is None:
            raise erofs()  # a prompt not saved is no folder to move: mkdir saves it
        if old[0] == new[0]:
            return
        if self.queries.saved_prompt(new[0]) is not None:
            raise mfusepy.FuseOSError(errno.EEXIST)
        self.queries.save(new[0], prompt)
        self.queries.unsave(old[0])
