"""``query/<prompt>/``: the files a prompt finds, as relative symlinks, best first.

``ls query/`` lists saved queries; ``mkdir query/<prompt>`` saves one,
``mv`` (or a file manager's rename) renames it and ``rmdir`` forgets it
(``semfs query --save NAME PROMPT`` saves a prompt too long for a name).
A query named by its words asks its new name's words once renamed; one
saved with ``--save`` keeps its prompt. ``query/`` is 0755, so its owner,
the mounting user, may do all three, and the kernel refuses them to
anyone else.

Every name under ``query/`` exists as a prompt folder, but the kernel
answers ``mkdir`` or ``rename`` onto an existing name without asking the
mount, and GIO (Thunar, Nautilus, PCManFM, ``gio rename``) lstat()s the
new name and refuses to rename onto one that exists. So the lookup of a
prompt that is not saved reports ENOENT when the thread asking is inside
mkdir(2), rename(2) or fstatat(2) with AT_SYMLINK_NOFOLLOW, which is
lstat(3), and the path it names ends in that prompt (read from
``/proc/<tid>/syscall`` and ``/proc/<tid>/mem``); ``ls``, ``stat``,
``cd`` and GIO's own queries use statx(2) or open(2) and find the prompt,
as does a walk to a name inside a prompt folder. Caveats:
where those files cannot be read (a daemon not run by root under Yama's
ptrace_scope >= 1, as on Ubuntu), mkdir gives EEXIST and a rename says
the name exists: ``--save`` is the way there; for up to the entry timeout
(1 s) after the same prompt folder was looked up, the kernel still knows
it; and ``find``, ``du`` or Python's ``os.lstat`` of a prompt that is not
saved say it does not exist (a walk runs no search anyway).

``stat`` of a prompt folder answers at once without searching; the search
runs when the folder is listed, or an entry or ``.results.json`` inside
it is looked up.

A prompt that groups its files (``query/<words> by month/``, by kind or by
folder: :mod:`semfs.core.query.groups`) lists a folder per group, each
holding its files; its ``.results.json`` names each file's group.

``query/<prompt>/.more/`` lists the prompt's ranking past the cut-off (up
to ``MORE_K`` files), for an agent that wants more than what matched well;
no listing shows it, so a walk of the mount never searches it.

``query/`` also holds one file, ``HOW TO SEARCH.txt``, that says all this
to someone who opens the folder in a file manager (so that name is not a
prompt).
"""

from __future__ import annotations

import dataclasses
import errno
import os
from dataclasses import dataclass
from typing import Callable, Optional

import mfusepy

from ...core.query.groups import read_phrase
from ...core.query.queries import MORE_K
from ..binding import in_request
from .base import Context, VHandle, VStat, enoent, erofs, target
from .results import RESULT_FILES, Entry, is_probe, named, prompt_of

# By architecture (asm/unistd_64.h, asm-generic/unistd.h): the calls that make or take a name,
# each with the index of its argument that holds the new name's path; and fstatat, which is
# lstat(3) with AT_SYMLINK_NOFOLLOW in its fourth argument.
_NAMING, _FSTATAT = {
    "x86_64": ({83: 0, 258: 1, 82: 1, 264: 3, 316: 3, 6: 0}, 262),  # mkdir mkdirat rename renameat renameat2 lstat
    "aarch64": ({34: 1, 38: 3, 276: 3}, 79),  # mkdirat renameat renameat2
    "riscv64": ({34: 1, 276: 3}, 79),
}.get(os.uname().machine, ({}, -1))
_AT_SYMLINK_NOFOLLOW = 0x100
_PATH_MAX = 4096


def caller_names(name: str) -> bool:
    """Whether the thread that sent this FUSE lookup is about to make, rename onto or lstat() ``name``.

    Its call and arguments are read from ``/proc/<tid>/syscall``, and the path it names from
    its memory: the lookup is for that path's last name, not a folder on the way to it
    (``lstat("query/x/.results.json")`` is no lstat of ``x``).
    """
    if not in_request():
        return False  # (no caller: a test of the folder on its own)
    try:
        tid = mfusepy.fuse_get_context()[2]
        with open(f"/proc/{tid}/syscall", "rb") as f:
            fields = f.read(200).split()
        nr = int(fields[0])
        if nr == _FSTATAT:
            if not int(fields[4], 16) & _AT_SYMLINK_NOFOLLOW:
                return False
            arg = 1
        elif nr in _NAMING:
            arg = _NAMING[nr]
        else:
            return False
        path = _read_path(tid, int(fields[1 + arg], 16))
    except (OSError, ValueError, IndexError):  # gone, not permitted, or "running"
        return False
    return path.rstrip(b"/").rsplit(b"/", 1)[-1] == os.fsencode(name)


def _read_path(tid: int, address: int) -> bytes:
    """The NUL-ended path at ``address`` in thread ``tid``'s memory, read a page at a time
    (the next page may be unmapped)."""
    out = b""
    with open(f"/proc/{tid}/mem", "rb", buffering=0) as mem:
        while len(out) < _PATH_MAX:
            chunk = os.pread(mem.fileno(), 4096 - (address + len(out)) % 4096, address + len(out))
            if not chunk:
                break
            out += chunk
            if b"\0" in chunk:
                break
    return out.split(b"\0", 1)[0]


HINT = "HOW TO SEARCH.txt"
HINT_TEXT = """\
Search this drive by naming a folder here with what you are looking for.

In a file manager, type the path in the location bar, for example
    query/notes about the budget meeting last march/
or make a new folder here and name it with your words: it is saved, and
lists the matching files each time you open it (rename it to change the
words; delete it to forget it: that deletes no file).
In a shell:
    ls "query/recipes I saved in the past 3 days/"

A folder lists the files that match, best first, as links to the real
files (open, edit and save them as usual); none if nothing matches.
While the drive is still being indexed, .results.json says how far, and
the listing may grow: a file manager shows it again on reload (F5).
Its hidden .results.json has each file's score (the estimated chance
that it is what you asked for, 0 to 1, comparable from one search to
another), the lines that matched with their line numbers, and the other
files of identical content (listed once); its hidden .matches has those
lines as grep -n prints them (path:line:text, best first):
    cat "query/budget decisions/.matches"
A folder lists only the files that match well enough; its hidden .more/
lists the whole ranking past that cut-off (up to 50 files, with its own
.results.json and .matches), for when the answer is not among them:
    ls "query/budget decisions/.more/"
Words such as "yesterday", "last march", "in 2025", "pdf", "photos" or
"in recipes/" also filter by time, kind and folder, and "by month", "by
kind" or "by folder" at the end makes a folder of each group. A time is
a file's date: a date in its path or name (2026-03-12 budget review.md)
if it has one, else when it was last changed; not dates written inside
it.

Next to query/: similar/<file> lists the files closest in meaning to that
file, summary/<file> is a short summary of it, and cat "join/<words>"
reads the matching lines of what query/<words>/ lists as one document.
"""


MORE = ".more"  # query/<prompt>/.more/: the ranking past the cut-off; in no listing, so no walk searches it


@dataclass(frozen=True)
class _Place:
    """A path inside a prompt's folder, read once."""

    folder: list[str]  # the results folder: [name], [name, MORE] or [name, group]
    name: Optional[str]  # the name inside it (None: the folder itself)
    prompt: str
    saved: bool  # a saved query's
    grouped: bool  # its prompt groups its files ("... by month")


def _groups(entries: list[Entry]) -> list[str]:
    """The groups of a grouped prompt's entries, the best file's first."""
    return list(dict.fromkeys(e.match.group for e in entries if e.match.group is not None))


def _by_group(entries: list[Entry]) -> list[Entry]:
    """A grouped prompt's entries, best group first, each named by its group's folder and its
    name there."""
    return [
        Entry(f"{g}/{e.name}", e.match)
        for g in _groups(entries)
        for e in named([x.match for x in entries if x.match.group == g])
    ]


class QueryFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queries = ctx.queries

    def _asks(self, name: str) -> tuple[str, bool]:
        """The prompt of the folder ``name``, and whether it is a saved query's (one read of them)."""
        saved = self.queries.saved_prompt(name)
        return (prompt_of(name), False) if saved is None else (saved, True)

    def _place(self, parts: list[str]) -> "_Place":
        """Where ``parts`` (inside ``query/``, a prompt's folder first) is: one read of the saved queries."""
        prompt, saved = self._asks(parts[0])
        grouped = read_phrase(prompt)[1] is not None
        if len(parts) >= 2 and (parts[1] == MORE or (parts[1] not in RESULT_FILES and grouped)):
            folder, name = parts[:2], (parts[2] if len(parts) == 3 else None)
        else:
            folder, name = parts[:1], (parts[1] if len(parts) == 2 else None)
        return _Place(folder, name, prompt, saved, grouped)

    def _results(self, p: "_Place") -> tuple[tuple, Callable[[], list], bool]:
        """For the results folder of ``p`` ([name], [name, MORE] or [name, group]): its key, what
        it lists (as a call), and whether what it lists is searched in the background."""
        prompt = p.prompt
        if p.folder[1:] == [MORE]:
            return ("query", *p.folder), lambda: self.ctx.visible(self.queries.ranking(prompt), MORE_K), False
        # a saved query is searched in the background, as the index changes
        found = self.queries.saved_query if p.saved else self.queries.query
        if len(p.folder) == 2:  # one group of a grouped prompt's files, named within it
            group = p.folder[1]
            return (
                ("query", *p.folder),
                lambda: named([e.match for e in self.ctx.visible(found(prompt)) if e.match.group == group]),
                p.saved,
            )
        if p.grouped:  # named as the group folders name them: "<group>/01-x.md"
            return ("query", p.folder[0]), lambda: _by_group(self.ctx.visible(found(prompt))), p.saved
        return ("query", p.folder[0]), lambda: self.ctx.visible(found(prompt)), p.saved

    @staticmethod
    def _more(p: "_Place") -> Optional[str]:
        return MORE + "/" if len(p.folder) == 1 else None

    def stat(self, path: str, parts: list[str]) -> VStat:
        nodes = self.ctx.nodes
        if not parts:
            return nodes.dir(path, writable=True)  # its owner saves, renames and forgets queries here
        if parts == [HINT]:
            return nodes.file(path, len(HINT_TEXT.encode()))
        if is_probe(parts[0]):
            raise enoent()
        p = self._place(parts)
        if len(parts) > len(p.folder) + 1:
            raise enoent()
        if p.name is None:
            if len(p.folder) == 1 and not p.saved and caller_names(p.folder[0]):
                raise enoent()  # so that the kernel lets mkdir save it, or a rename take the name
            if len(p.folder) == 2 and p.folder[1] != MORE:
                group = p.folder[1]
                _, entries, _ = self._results(dataclasses.replace(p, folder=p.folder[:1], name=None))
                if is_probe(group) or group not in _groups(entries()):
                    raise enoent()
            return nodes.dir(path)
        key, found, cheap = self._results(p)
        if p.name in RESULT_FILES:
            return nodes.file(path, len(self.ctx.result_file(p.name, found(), p.prompt, self._more(p))))
        e = None if is_probe(p.name) else self.ctx.entry(key, found, p.name, cheap=cheap)
        if e is None:
            raise enoent()
        return nodes.link(path, target(len(parts), e))

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        if not parts:
            saved = {name: self.ctx.nodes.dir(f"{base}/{name}") for name in self.queries.saved()}
            return {HINT: self.stat(f"{base}/{HINT}", [HINT]), **saved}
        p = self._place(parts)
        key, found, _ = self._results(p)
        if len(p.folder) == 1 and p.grouped:  # a folder per group, and the files of all
            entries = found()
            stats = {g: self.ctx.nodes.dir(f"{base}/{g}") for g in _groups(entries)}
            for file in RESULT_FILES:
                stats[file] = self.ctx.nodes.file(
                    f"{base}/{file}", len(self.ctx.result_file(file, entries, p.prompt, self._more(p)))
                )
            return stats
        return self.ctx.results_folder(key, base, found(), len(p.folder) + 1, p.prompt, self._more(p))

    def open(self, path: str, parts: list[str]) -> VHandle:
        if parts == [HINT]:
            return VHandle(data=HINT_TEXT.encode())
        p = self._place(parts)
        if p.name not in RESULT_FILES or len(parts) != len(p.folder) + 1:
            raise enoent()  # the kernel resolves the symlinks itself
        _, found, _ = self._results(p)
        return VHandle(data=self.ctx.result_file(p.name, found(), p.prompt, self._more(p)), direct=True)

    def readlink(self, parts: list[str]) -> str:
        p = self._place(parts)
        if p.name is not None and len(parts) == len(p.folder) + 1:
            key, found, cheap = self._results(p)
            e = self.ctx.entry(key, found, p.name, cheap=cheap)
            if e is not None:
                return target(len(parts), e)
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
        """A saved query under another name; one named by its words asks the new words."""
        if len(old) != 1 or len(new) != 1 or HINT in (old[0], new[0]) or is_probe(new[0]):
            raise erofs()
        prompt = self.queries.saved_prompt(old[0])
        if prompt is None:
            raise enoent()  # a prompt not saved is no folder to move: mkdir saves it
        if old[0] == new[0]:
            return
        if not prompt_of(new[0]).strip():
            raise erofs()
        if prompt == prompt_of(old[0]):
            prompt = prompt_of(new[0])
        if not self.queries.rename(old[0], new[0], prompt):
            raise mfusepy.FuseOSError(errno.EEXIST)
