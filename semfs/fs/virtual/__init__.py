"""The virtual folders of a mount, one module per kind, registered here.

A new kind is one module with a class following
:class:`~semfs.fs.virtual.base.VirtualFolder` and one line in ``FOLDERS``
(and its default root name in :data:`semfs.core.mounts.VIRTUAL_KINDS`).
"""

from __future__ import annotations

from .base import Context, Nodes, VHandle, VirtualFolder, VStat
from .history import HistoryFolder
from .query import QueryFolder
from .similar import SimilarFolder
from .summary import SummaryFolder

FOLDERS: dict[str, type] = {
    "query": QueryFolder,
    "similar": SimilarFolder,
    "summary": SummaryFolder,
    "history": HistoryFolder,
}

__all__ = ["FOLDERS", "Context", "Nodes", "VHandle", "VStat", "VirtualFolder"]
