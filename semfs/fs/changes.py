"""Turn filesystem operations into change events.

The FUSE layer reports what it did (a handle opened, written, closed; a
path renamed, unlinked, truncated) and :class:`ChangeTracker` decides which
:class:`~semfs.core.events.ChangeEvent` that amounts to. A file counts as
*written* when the last write through a handle is followed by its close,
so an editor's save burst or a thousand appends become one event per
handle, not one per ``write(2)``.

Paths come in as the mount sees them (``/dir/name``) and go out relative
to the backing folder (``dir/name``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

from ..core.events import ChangeEvent, EventBus, EventKind


@dataclass
class _Handle:
    path: Optional[str]  # None once the file was unlinked while open
    dirty: bool


def _rel(path: str) -> str:
    return path.lstrip("/")


class ChangeTracker:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._handles: dict[int, _Handle] = {}
        self._lock = threading.Lock()

    # -- open files ------------------------------------------------------

    def opened(self, fh: int, path: str, dirty: bool = False) -> None:
        """A handle was opened; ``dirty`` if opening already changed the file (create, O_TRUNC)."""
        with self._lock:
            self._handles[fh] = _Handle(path, dirty)

    def handles_of(self, path: str) -> list[int]:
        """The open handles of ``path``."""
        with self._lock:
            return [fh for fh, h in self._handles.items() if h.path == path]

    def wrote(self, fh: int) -> None:
        # Called on every write: no lock, a plain attribute store.
        h = self._handles.get(fh)
        if h is not None:
            h.dirty = True

    def closed(self, fh: int) -> None:
        with self._lock:
            h = self._handles.pop(fh, None)
        if h is not None and h.dirty and h.path is not None:
            self._bus.publish(ChangeEvent(EventKind.WRITTEN, _rel(h.path)))

    # -- namespace changes -----------------------------------------------

    def renamed(self, old: str, new: str, is_dir: bool) -> None:
        prefix = old + "/"
        with self._lock:
            for h in self._handles.values():
                if h.path == new:
                    h.path = None  # replaced by the rename: its content is gone
                elif h.path == old:
                    h.path = new
                elif h.path is not None and is_dir and h.path.startswith(prefix):
                    h.path = new + h.path[len(old) :]
        self._bus.publish(ChangeEvent(EventKind.RENAMED, _rel(old), dest=_rel(new), is_dir=is_dir))

    def exchanged(self, a: str, b: str) -> None:
        """RENAME_EXCHANGE swapped two files: both now hold other content."""
        with self._lock:
            for h in self._handles.values():
                if h.path == a:
                    h.path = b
                elif h.path == b:
                    h.path = a
        for p in (a, b):
            self._bus.publish(ChangeEvent(EventKind.WRITTEN, _rel(p)))

    def deleted(self, path: str) -> None:
        with self._lock:
            for h in self._handles.values():
                if h.path == path:
                    h.path = None
        self._bus.publish(ChangeEvent(EventKind.DELETED, _rel(path)))

    def truncated(self, path: str) -> None:
        self._bus.publish(ChangeEvent(EventKind.TRUNCATED, _rel(path)))

    def linked(self, path: str) -> None:
        """A new name (hard link) now shows existing content."""
        self._bus.publish(ChangeEvent(EventKind.WRITTEN, _rel(path)))

    def dir_created(self, path: str) -> None:
        self._bus.publish(ChangeEvent(EventKind.DIR_CREATED, _rel(path)))

    def dir_removed(self, path: str) -> None:
        self._bus.publish(ChangeEvent(EventKind.DIR_REMOVED, _rel(path)))
