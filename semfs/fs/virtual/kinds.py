"""The kinds of virtual folder: the one registry.

A new kind is one module in this package, holding a class that follows
:class:`~semfs.fs.virtual.base.VirtualFolder`, and one entry in
:data:`KINDS`. The mount's folders (``SemanticFS``), the CLI's
``--<kind>-root`` options and which folders a mount shows all come from
here. This module imports nothing heavy: the CLI reads it as it starts,
and a folder's module is only imported when a mount makes its folder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Mapping

INDEX, VERSIONS = "index", "versions"  # the part of a mount a kind shows


@dataclass(frozen=True)
class Kind:
    name: str  # its root's default name, and NAME in --NAME-root
    folder: str  # "module:Class", the module in this package
    needs: str  # INDEX (the query service) or VERSIONS
    holds: str  # what it holds, for --NAME-root's help

    def load(self) -> type:
        module, cls = self.folder.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


KINDS: tuple[Kind, ...] = (
    Kind("query", "query:QueryFolder", INDEX, "prompts"),
    Kind("similar", "similar:SimilarFolder", INDEX, "similar files"),
    Kind("summary", "summary:SummaryFolder", INDEX, "summaries"),
    Kind("join", "join:JoinFolder", INDEX, "a prompt's passages as one file"),
    Kind("topics", "topics:TopicsFolder", INDEX, "files grouped by meaning"),
    Kind("history", "history:HistoryFolder", VERSIONS, "versions"),
)
NAMES = tuple(k.name for k in KINDS)


def shown(index: bool, versions: bool) -> list[Kind]:
    """The kinds a mount shows: those of the index, those of versions, or both."""
    return [k for k in KINDS if (k.needs == INDEX and index) or (k.needs == VERSIONS and versions)]


def root_names(roots: Mapping[str, str]) -> dict[str, str]:
    """Kind -> its root's name: ``roots`` (the user's choices) over each kind's own name."""
    unknown = set(roots) - set(NAMES)
    if unknown:
        raise ValueError(f"no virtual folder kind {sorted(unknown)[0]!r}")
    return {k: roots.get(k, k) for k in NAMES}
