"""A damaged state database, healed while the mount serves.

Whichever thread of a mount meets SQLite's "database disk image is
malformed" (or any other word of damage) reports it here
(:func:`report_damage`); one ``semfs-heal`` thread then keeps a copy of
the damaged file (``semfs.db.corrupt-<time>``), builds a new database
beside it with what the damaged one still gives up (:func:`recover`:
versions whose content is still kept, change notes, saved queries,
summaries, the id counters), and writes it over the damaged one in place
with SQLite's backup (:func:`metadata.overwrite`). Every connection stays
open and reads the new content next: nothing is closed under another
thread, and the file keeps its name, so no connection deletes a WAL that
is not its own. Then it tells the mount (``after``): the indexer drops
its vectors and reads BACKING again, the query service its caches.
Files, chunks and postings come back from BACKING, which is the truth;
what could not be read is said in one line of ``semfs status``.

A mount's start moves a damaged file aside before any connection opens
(:func:`at_start`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from . import catalog
from . import metadata as md

log = logging.getLogger(__name__)

SALVAGE_SECONDS = 10.0  # at most this long reading the damaged database
HEAL_EVERY = 60.0  # at most one heal a minute: a disk that damages every file it is given heals no better faster

# (sha256, pending link) -> whether a version's content is still kept
Present = Callable[[Optional[str], Optional[str]], bool]


def at_start(state_dir: Path, present: Present) -> Optional[str]:
    """Before anything opens the database of ``state_dir`` (with the state lock held): a damaged
    one is moved aside and a new one started with what it still gives up (the line ``semfs
    status`` shows for it is returned). Creates and migrates the database either way."""
    _remove_new(Path(state_dir))  # (a heal cut short by a crash)
    aside = md.check_db(state_dir)
    db = md.open_db(state_dir)
    try:
        if aside is None:
            return None
        line = recover(aside, db, present, aside)
        log.warning("%s", line)
        return line
    finally:
        db.close()


def recover(damaged: Path, db, present: Present, aside: Optional[Path]) -> str:
    """Copy into ``db`` (a new database) what the damaged one at ``damaged`` still gives up;
    returns the line ``semfs status`` shows for it (meta ``healed``), which names ``aside``,
    the damaged file's copy, if there is one."""
    deadline = time.monotonic() + SALVAGE_SECONDS
    when = time.strftime("%Y-%m-%d %H:%M")
    try:
        old = sqlite3.connect(str(damaged), timeout=5)  # (read-write: its WAL holds the latest rows)
    except sqlite3.Error as e:
        log.warning("could not open the damaged database %s to salvage it: %s", damaged, e)
        old = None
    try:
        with md.write(db):
            versions, saved, lost = 0, 0, True
            if old is not None:
                versions, lost_versions = catalog.salvage(old, db, deadline, present)
                saved, lost_saved = md.salvage(old, db, deadline)
                lost = lost_versions or lost_saved
            line = _line(when, aside, versions, saved, lost)
            md.set_meta(db, "healed", line)
    finally:
        if old is not None:
            old.close()
    return line


def _line(when: str, aside: Optional[Path], versions: int, saved: int, lost: bool) -> str:
    got = f"{_many(versions, 'version')} and {_many(saved, 'saved query', 'saved queries')} recovered"
    kept = f"the damaged file is {aside.name}" if aside is not None else "the damaged file could not be kept"
    if lost:
        return (
            f"the index database was damaged and rebuilt at {when}: {got}; others kept before then "
            f"could not be read (their contents stay in blobs/; {kept})"
        )
    return f"the index database was damaged and rebuilt at {when}: {got}, none lost ({kept})"


def _many(n: int, one: str, more: str = "") -> str:
    return f"{n:,} {one if n == 1 else more or one + 's'}"


class Healer:
    """Heals the database of one state dir for a mount (one per daemon)."""

    def __init__(self, state_dir: Path, present: Present) -> None:
        self.state_dir = Path(state_dir)
        self.present = present
        self.after: list[Callable[[], None]] = []  # told once the new database is there
        self._lock = threading.Lock()
        self._busy = False
        self._last = float("-inf")
        self._gave_up = False  # a heal failed (a damaged header, say): the next mount's start heals it
        self.idle = threading.Event()  # set while no heal runs
        self.idle.set()

    def seen(self, e: BaseException) -> bool:
        """Whether ``e`` says the database is damaged; a heal is started if none is running
        (and none ran within the minute)."""
        if not md.is_damage(e):
            return False
        with self._lock:
            if self._busy or self._gave_up or time.monotonic() - self._last < HEAL_EVERY:
                return True
            self._busy = True
            self.idle.clear()
        threading.Thread(target=self._heal, args=(str(e),), name="semfs-heal", daemon=True).start()
        return True

    def _heal(self, why: str) -> None:
        t0 = time.monotonic()
        path = self.state_dir / md.DB_NAME
        new_path = _new_path(self.state_dir)
        log.warning("index database %s is damaged (%s): rebuilding it from the backing folder", path, why)
        try:
            aside = md.copy_aside(path)
            new = md.open_file(new_path)
            try:
                line = recover(path, new, self.present, aside)
                md.overwrite(path, new)
                log.warning("%s", line)
            finally:
                new.close()
                _remove_new(self.state_dir)  # (written over the damaged one, or failed: not kept either way)
            md.drop_vectors(self.state_dir)
            for fn in self.after:
                fn()
            log.warning("the index database is new (%.1f s); BACKING is read again", time.monotonic() - t0)
        except Exception:
            log.exception("could not heal the damaged index database; the next mount rebuilds it")
            self._gave_up = True  # (not again each minute: each try keeps a copy of the file)
        finally:
            with self._lock:
                self._busy = False
                self._last = time.monotonic()
                self.idle.set()


def _new_path(state_dir: Path) -> Path:
    return state_dir / (md.DB_NAME + ".heal")  # the new database while a heal builds it


def _remove_new(state_dir: Path) -> None:
    new = _new_path(state_dir)
    for name in (new, Path(f"{new}-wal"), Path(f"{new}-shm")):
        name.unlink(missing_ok=True)


_healers: dict[str, Healer] = {}


def arm(healer: Healer) -> None:
    """Damage reported for ``healer``'s state dir is healed by it (a mount's daemon)."""
    _healers[str(healer.state_dir)] = healer
    md.served.add(str(healer.state_dir / md.DB_NAME))


def disarm(healer: Healer) -> None:
    _healers.pop(str(healer.state_dir), None)
    md.served.discard(str(healer.state_dir / md.DB_NAME))


def report_damage(state_dir: Path, e: BaseException) -> bool:
    """Whether ``e`` says the database of ``state_dir`` is damaged (it is then healed, when a
    mount of it runs in this process)."""
    healer = _healers.get(str(Path(state_dir)))
    if healer is not None:
        return healer.seen(e)
    return md.is_damage(e)


def wait_healed(state_dir: Path, timeout: float) -> bool:
    """Whether no heal of the database of ``state_dir`` runs in this process, waiting up to
    ``timeout`` s for one that does."""
    healer = _healers.get(str(Path(state_dir)))
    return healer is None or healer.idle.wait(timeout)
