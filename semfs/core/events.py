"""Change events: the single hook point between the mount and the library.

The FUSE layer publishes one :class:`ChangeEvent` for every change that
landed in the backing folder (a file written and closed, renamed, deleted,
truncated; a directory created or removed). Subscribers such as the
indexer register with :meth:`EventBus.subscribe` and never touch ``fs/``.

Subscribers run on the FUSE thread that made the change, so they must
return quickly (enqueue, never embed). An exception in a subscriber is
logged and swallowed: a failing indexer must never fail a user's write.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import Callable, NamedTuple, Optional

log = logging.getLogger(__name__)


class EventKind(str, enum.Enum):
    WRITTEN = "written"  # a file was created or modified, and closed
    TRUNCATED = "truncated"  # truncate(2) on a path, outside an open handle
    RENAMED = "renamed"  # file or directory moved from path to dest
    DELETED = "deleted"  # a file (or symlink) was unlinked
    DIR_CREATED = "dir_created"
    DIR_REMOVED = "dir_removed"


class ChangeEvent(NamedTuple):
    """One change, with paths relative to the backing folder (no leading /)."""

    # A NamedTuple, not a frozen dataclass: one is built on the FUSE
    # thread for every change, and this is several times cheaper.
    kind: EventKind
    path: str
    dest: Optional[str] = None  # only for RENAMED
    is_dir: bool = False  # for RENAMED: whether a directory moved


Subscriber = Callable[[ChangeEvent], None]


class EventBus:
    """Fan-out of change events to subscribers; safe to use from many threads."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Register ``fn``; returns a function that unregisters it."""
        with self._lock:
            self._subscribers = self._subscribers + (fn,)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not fn)

        return unsubscribe

    def publish(self, event: ChangeEvent) -> None:
        # Read the tuple once: subscribe/unsubscribe replace it atomically,
        # so publishing never takes the lock on the write path.
        for fn in self._subscribers:
            try:
                fn(event)
            except Exception:  # a broken subscriber must not fail the write
                log.exception("change subscriber %r failed on %s", fn, event)
