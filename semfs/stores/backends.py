"""Where a backing folder's index lives: embedded in its state dir, or in PostgreSQL.

The one interface the indexer, the searcher and the query folders use:
``open_db()`` (a connection of the calling thread), ``vectors(dim)`` and
``notify()``. A state dir whose index is in PostgreSQL says so in
``index.json`` (the URL, without credentials, and the folder's name), so
every command that finds the state dir finds the index too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Protocol

from .atomic import write_atomic
from .pg import ENV_FOLDER, ENV_URL, IndexUnreachable, PgIndex, check_folder, check_url

RECORD = "index.json"
EMBEDDED = "embedded"


class IndexPort(Protocol):
    """What the indexer, the searcher, the query folders and workers ask of an index, wherever it
    lives: its connections, its vectors, the news of a change, and its status words."""

    shared: bool  # other mounts and workers change it too

    def open_db(self): ...

    def open_db_readonly(self): ...

    def vectors(self, dim: int, writer: bool = True): ...

    def notify(self, what: str = "") -> None: ...

    def listen(self, on_change: Callable[[], None], stop) -> None: ...

    def describe(self) -> str: ...

    def checkpoint(self, db) -> None:
        """Fold what was written back into the index while nothing is written (if it has to)."""

    def record(self, state_dir: Path, db, key: str, value: str) -> None:
        """A status word for ``semfs status`` (``db``: the caller's connection to the index)."""


class EmbeddedIndex:
    """SQLite and FAISS in the state dir (the default)."""

    shared = False

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    def open_db(self):
        from . import metadata as md

        return md.open_db(self.state_dir)

    def open_db_readonly(self):
        from . import metadata as md

        return md.open_db_readonly(self.state_dir)

    def vectors(self, dim: int, writer: bool = True):
        from .vectors import VectorStore

        return VectorStore(self.state_dir, dim)

    def notify(self, what: str = "") -> None:
        pass  # one mount per state dir: nobody else to tell

    def listen(self, on_change, stop) -> None:
        pass  # nor anybody to hear

    def describe(self) -> str:
        return "embedded (SQLite and FAISS in the state dir)"

    def checkpoint(self, db) -> None:
        # a reader's snapshot held during a burst keeps SQLite's own checkpoints from truncating
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def record(self, state_dir: Path, db, key: str, value: str) -> None:
        from . import metadata as md

        with md.write(db):  # (the index is the state dir's database: the caller's connection will do)
            md.set_meta(db, key, value)


class PostgresIndex(PgIndex):
    def open_db(self):
        return self.connect()

    def open_db_readonly(self):
        return self.connect()

    def vectors(self, dim: int, writer: bool = True):
        """The folder's vectors; a reader (``writer=False``) never creates or changes the column."""
        from .pgvectors import PgVectorStore

        return PgVectorStore(self, dim, create=writer)

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
