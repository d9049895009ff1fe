"""How a folder of results looks: its entries' names, its ``.results.json``, and which names are prompts.

A folder name is a prompt after URL-style unquoting, so a ``/`` (which
no file name can hold) is written ``%2F``, and ``%`` itself ``%25``.

Names that shells and file managers probe on their own (dot-files such as
``.Trash-1000``, ``.directory``, ``.hidden``; ``desktop.ini``,
``autorun.inf``, ``Thumbs.db``, ``folder.jpg``) are never taken for
prompts, so browsing never starts a search nobody asked for.

Entries are named by rank and the file's own name (``01-budget.md``),
best first; the rank keeps names unique. A name once listed keeps
resolving to its file for ``Seen.ttl`` seconds after the folder was last
listed, even if a later listing renamed it (a new file ranked above it):
a file manager shows a listing for minutes, and the kernel caches names
too, so a click on a name it shows must open that file.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Hashable, Optional

from ...core.query.queries import NOT_YET, Match

RESULTS_FILE = ".results.json"
MATCHES_FILE = ".matches"  # the listed files' matching lines, as grep -n prints them
RESULT_FILES = (RESULTS_FILE, MATCHES_FILE)
_PROBES = frozenset({"desktop.ini", "autorun.inf", "thumbs.db", "folder.jpg", "folder.gif", "albumartsmall.jpg"})


def is_probe(name: str) -> bool:
    """Whether ``name`` is one that tools look up on their own, not a prompt."""
    return name.startswith(".") or name.lower() in _PROBES


def prompt_of(name: str) -> str:
    return urllib.parse.unquote(name)


@dataclass(frozen=True)
class Entry:
    name: str  # as listed in the folder: rank prefix + original file name
    match: Match

    @property
    def path(self) -> str:
        return self.match.path


def named(found: list[Match]) -> list[Entry]:
    """Listing names: a rank prefix keeps them unique and in score order."""
    width = max(2, len(str(len(found))))
    return [Entry(f"{i:0{width}d}-{os.path.basename(m.path)}", m) for i, m in enumerate(found, 1)]


def find(entries: list[Entry], name: str):
    return next((e for e in entries if e.name == name), None)


class Seen:
    """The names results folders listed lately: folder key -> {name: (entry, when last listed)}."""

    def __init__(self, ttl: float = 600.0, folders: int = 1024) -> None:
        self.ttl = ttl
        self._folders = folders
        self._names: collections.OrderedDict[Hashable, dict[str, tuple[Entry, float]]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def note(self, key: Hashable, entries: list[Entry]) -> None:
        now = time.monotonic()
        with self._lock:
            names = self._names.pop(key, {})
            names = {n: (e, t) for n, (e, t) in names.items() if now - t < self.ttl}
            names.update((e.name, (e, now)) for e in entries)
            self._names[key] = names
            while len(self._names) > self._folders:
                self._names.popitem(last=False)

    def knows(self, key: Hashable) -> bool:
        """Whether the folder ``key`` was listed (lately enough to be remembered)."""
        with self._lock:
            return key in self._names

    def get(self, key: Hashable, name: str) -> Optional[Entry]:
        with self._lock:
            e, t = self._names.get(key, {}).get(name, (None, 0.0))
        return e if e is not None and time.monotonic() - t < self.ttl else None


NOTHING = "no file matches well enough to be listed"


def matches(entries: list[Entry]) -> bytes:
    """``.matches``: ``path:line:text`` for each passage of each listed file, best first, as
    ``grep -n`` prints a match in several files (passages with no line number are left out)."""
    out = [f"{e.path}:{p.line}:{p.text}\n" for e in entries for p in e.match.passages if p.line is not None]
    return "".join(out).encode("utf-8", "surrogateescape")


def results_json(
    entries: list[Entry],
    indexing: Optional[tuple[int, int]] = None,
    prompt: Optional[str] = None,
    meaning_behind: int = 0,
    more: Optional[str] = None,
) -> bytes:
    """``{"prompt": ..., "results": [{name, path, score, snippet, retrieval, [also], [alike]}, ...]}``, best
    first (``prompt`` where there is one: a saved query's name need not be its words; ``more``, the
    folder beside that lists past the cut-off, where there is one); with a
    ``"note"`` that says how far indexing is while it is behind (``indexing``: files indexed,
    files known) or the meaning of some chunks is not computed yet (``meaning_behind``: how
    many), or that nothing is listed once neither is."""
    rows = [
        {
            "name": e.name,
            **e.match.row(),
            "retrieval": e.match.retrieval,
            **({"group": e.match.group} if e.match.group is not None else {}),
        }
        for e in entries
    ]
    doc: dict = {} if prompt is None else {"prompt": prompt}
    doc["results"] = rows
    if more is not None:
        doc["more"] = more
    if indexing is not None:
        done, known = indexing
        doc["note"] = (
            f"indexing: {done:,} of {known:,} files; listing may grow"
            if known
            else "indexing: looking for files; listing may grow"
        )
    elif meaning_behind or any(e.match.retrieval == NOT_YET for e in entries):
        # no count: it changes by the batch, and the file's size is given before it is read
        doc["note"] = "indexing: the meaning of some files is not computed yet; listing may change"
    elif not rows:
        doc["note"] = NOTHING
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode()
