"""How a folder of results looks: its entries' names, its ``.results.json``, and which names are prompts.

A folder name is a prompt after URL-style unquoting, so a ``/`` (which
no file name can hold) is written ``%2F``, and ``%`` itself ``%25``.

Names that shells and file managers probe on their own (dot-files such as
``.Trash-1000``, ``.directory``, ``.hidden``; ``desktop.ini``,
``autorun.inf``, ``Thumbs.db``, ``folder.jpg``) are never taken for
prompts, so browsing never starts a search nobody asked for.

Entries are named by rank and the file's own name (``01-budget.md``),
best first; the rank keeps names unique.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass

from ...core.query.queries import Match

RESULTS_FILE = ".results.json"
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


def results_json(entries: list[Entry]) -> bytes:
    rows = [
        {
            "name": e.name,
            "path": e.path,
            "score": e.match.score,
            "snippet": e.match.snippet,
            "retrieval": e.match.retrieval,
        }
        for e in entries
    ]
    return (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode()
