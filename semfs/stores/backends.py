"""Where a backing folder's index lives: embedded in its state dir, or in PostgreSQL.

The one interface (:class:`IndexPort`) the indexer, the searcher, the
query folders, status and workers use, with one adapter per place an index
lives: :class:`EmbeddedIndex` (SQLite, FAISS and the BM25 segments in the
state dir) and :class:`PostgresIndex` (a team drive). A new place is one
more adapter here; what differs between them is decided here and nowhere
else (the few statements that differ in SQL are :mod:`.pg_sql`). A state dir whose index is in PostgreSQL says so in
``index.json`` (the URL, without credentials, and the folder's name), so
every command that finds the state dir finds the index too.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable, Optional, Protocol

from . import pg_sql
from .atomic import write_atomic
from .backlog import EmbeddingWork
from .pg import ENV_FOLDER, ENV_URL, IndexUnreachable, PgIndex, check_folder, check_url

RECORD = "index.json"
EMBEDDED = "embedded"

log = logging.getLogger(__name__)


class Generation:
    """An index's change counter, in this process: bumped after every change to it (by this
    mount, or news of another's), so that result caches know theirs are stale."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> None:
        with self._lock:
            self.value += 1


class IndexPort(Protocol):
    """What the indexer, the searcher, the query folders, status and workers ask of an index,
    wherever it lives. The ``db`` arguments are the caller's connection from ``open_db``."""

    in_state_db: bool  # whether the index is the state dir's database (healed with it, machine-local)
    give_up_after: Optional[int]  # failed indexing rounds in a row after which the indexer stops (None: never)
    retry_cap: float  # the longest wait, in seconds, between failed rounds

    def open_db(self): ...

    def open_db_readonly(self):
        """A connection that writes nothing, or None when there is no index yet."""

    def vectors(self, dim: int, writer: bool = True): ...

    def work(self, vectors) -> EmbeddingWork:
        """The chunks that wait for their vectors in ``vectors``, for the meaning phase."""

    def take_due(self, db, now: float, limit: int) -> list[str]:
        """Queued paths due at ``now``, taken for this mount until ``done`` or ``release``."""

    def release(self, db, paths) -> None:
        """Taken paths left for the next round (by whichever mount)."""

    def next_due(self, db) -> Optional[float]: ...

    def names_top(self, db, words: list[str], n: int) -> list[tuple[int, float]]:
        """(file id, score) of the files whose name holds any of ``words``, best first."""

    changes: Generation  # bumped by changed() and by news from other mounts (listen)

    @property
    def generation(self) -> int: ...

    def changed(self) -> None:
        """The index changed here: bump the generation and tell the other mounts of the folder."""

    def notify(self, what: str = "") -> None:
        """Tell the other mounts of the folder that the index changed."""

    def listen(self, on_change: Callable[[], None], stop) -> None:
        """Call ``on_change`` whenever another mount changes the index, until ``stop`` (returns
        at once where there is nobody else)."""

    def describe(self) -> str: ...

    def where(self) -> Optional[str]:
        """Where the index lives, for ``semfs status`` (None: in the state dir)."""

    def vectors_lost(self) -> bool:
        """Whether the saved vectors are gone from the disk (nothing searchable by meaning)."""

    def checkpoint(self, db) -> None:
        """Fold what was written back into the index while nothing is written (if it has to)."""

    def record(self, state_dir: Path, db, key: str, value: str) -> None:
        """A status word for ``semfs status`` (``db``: the caller's connection to the index)."""


class _Changes:
    """What both adapters do alike with their change generation."""

    changes: Generation

    @property
    def generation(self) -> int:
        return self.changes.value

    def changed(self) -> None:
        self.changes.bump()
        try:
            self.notify()  # type: ignore[attr-defined]  # the other mounts' caches are stale now too
        except Exception as e:
            log.info("could not tell the other mounts of a change: %s", e)


class EmbeddedIndex(_Changes):
    """SQLite and FAISS in the state dir (the default)."""

    in_state_db = True
    give_up_after: Optional[int] = 20  # a bug, not the machine: stop and say so
    retry_cap = 30.0

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.changes = Generation()

    def open_db(self):
        from . import metadata as md

        return md.open_db(self.state_dir)

    def open_db_readonly(self):
        from . import metadata as md

        return md.open_db_readonly(self.state_dir)

    def vectors(self, dim: int, writer: bool = True):
        from .vectors import VectorStore

        return VectorStore(self.state_dir, dim, writer=writer)

    def work(self, vectors) -> EmbeddingWork:
        from .backlog import Backlog

        return Backlog(vectors)

    def take_due(self, db, now: float, limit: int) -> list[str]:
        from . import metadata as md

        return md.dequeue_due(db, now, limit)

    def release(self, db, paths) -> None:
        pass  # one mount: nothing was claimed from anybody

    def next_due(self, db) -> Optional[float]:
        from . import metadata as md

        return md.next_due(db)

    def names_top(self, db, words: list[str], n: int) -> list[tuple[int, float]]:
        from . import reads

        return reads.names_top(db, words, n)

    def notify(self, what: str = "") -> None:
        pass  # one mount per state dir: nobody else to tell

    def listen(self, on_change, stop) -> None:
        pass  # nor anybody to hear

    def describe(self) -> str:
        return "embedded (SQLite and FAISS in the state dir)"

    def where(self) -> Optional[str]:
        return None

    def vectors_lost(self) -> bool:
        from . import vectors

        return not vectors.saved(self.state_dir)

    def checkpoint(self, db) -> None:
        # a reader's snapshot held during a burst keeps SQLite's own checkpoints from truncating
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def record(self, state_dir: Path, db, key: str, value: str) -> None:
        from . import metadata as md

        with md.write(db):  # (the index is the state dir's database: the caller's connection will do)
            md.set_meta(db, key, value)


class PostgresIndex(_Changes, PgIndex):
    in_state_db = False
    give_up_after: Optional[int] = None  # the server may be away for a while: wait for it
    retry_cap = 5.0  # (and notice within 5 s that it is back)

    def __init__(self, url: str, folder: str) -> None:
        super().__init__(url, folder)
        self.changes = Generation()

    def open_db(self):
        return self.connect()

    def open_db_readonly(self):
        return self.connect()

    def vectors(self, dim: int, writer: bool = True):
        """The folder's vectors; a reader (``writer=False``) never creates or changes the column."""
        from .pgvectors import PgVectorStore

        return PgVectorStore(self, dim, create=writer)

    def work(self, vectors) -> EmbeddingWork:
        from .pgvectors import ClaimedWork

        return ClaimedWork(vectors)

    def take_due(self, db, now: float, limit: int) -> list[str]:
        return pg_sql.take_due(db, now, limit)

    def release(self, db, paths) -> None:
        pg_sql.release(db, paths)

    def next_due(self, db) -> Optional[float]:
        return pg_sql.next_due(db)

    def names_top(self, db, words: list[str], n: int) -> list[tuple[int, float]]:
        return pg_sql.names_top(db, words, n)

    def where(self) -> Optional[str]:
        return self.describe()

    def vectors_lost(self) -> bool:
        return False  # the server keeps them

    def checkpoint(self, db) -> None:
        pass  # the server's business

    def record(self, state_dir: Path, db, key: str, value: str) -> None:
        from . import metadata as md

        md.record_meta(state_dir, key, value)  # this mount's word, in its own state dir: not every mount's


Backend = IndexPort  # (the name the callers knew)


def index_for(state_dir: Path, url: Optional[str] = None, folder: Optional[str] = None) -> Backend:
    """The index of ``state_dir``. With ``url`` (``"embedded"`` for the default), it is chosen now
    and recorded for the commands that come after; else what was recorded, else embedded."""
    state_dir = Path(state_dir)
    record = state_dir / RECORD
    if url is None:
        try:
            data = json.loads(record.read_text())
        except FileNotFoundError:
            return EmbeddedIndex(state_dir)
        except (OSError, ValueError) as e:
            raise IndexUnreachable(f"{record} is unreadable ({e}): mount again with --index") from None
        return PostgresIndex(data["url"], data["folder"])
    if url == EMBEDDED:
        record.unlink(missing_ok=True)
        return EmbeddedIndex(state_dir)
    check_url(url)
    if not folder:
        raise IndexUnreachable(f"an index in PostgreSQL needs a folder name: --folder NAME or {ENV_FOLDER}")
    check_folder(folder)
    index = PostgresIndex(url, folder)
    index.folder_id  # reachable and set up, before anything relies on it
    from .private import private_dir

    private_dir(state_dir)
    write_atomic(record, json.dumps({"url": url, "folder": folder}).encode())
    return index


def chosen(url: Optional[str], folder: Optional[str], backing: Path) -> tuple[Optional[str], Optional[str]]:
    """The index the user asked for (an option, else the environment), and its folder name
    (the backing folder's own name unless one is given)."""
    import os

    url = url or os.environ.get(ENV_URL) or None
    if url is None or url == EMBEDDED:
        return url, None
    return url, folder or os.environ.get(ENV_FOLDER) or Path(backing).name
