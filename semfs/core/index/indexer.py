"""Keep the index in step with the backing folder.

Change events from the mount land in an in-memory deque (the FUSE thread
only appends), and a background worker thread does everything else:

- renames and deletes are applied to the metadata at once (re-keying rows,
  no re-embedding; removing chunks and vectors);
- written/truncated paths go to the durable queue in SQLite with a due time
  ``debounce`` seconds ahead, pushed back by every later event, so an
  editor's save burst or a run of appends is indexed once;
- due paths are checked against the disk: same size and mtime, or same
  sha256, means nothing to embed; otherwise the file is extracted,
  chunked, and its chunks embedded in batches across files.

The embedder runs in a worker process that may be loading, restarting
after a crash, or off (:mod:`semfs.models.supervisor`). A file is never
held back for it: its text, chunks and BM25 postings are written, so its
words are searchable at once, and its vectors are added by
:meth:`Indexer.backfill` once the embedder answers again (from the chunk
text stored in SQLite: nothing queued is lost, and nothing is read twice).

At start the worker repairs the vector index against SQLite (vectors of
deleted chunks removed, missing vectors embedded by the backfill) and
reconciles the whole backing folder by size and mtime, so
changes made while unmounted, or events lost to a kill -9, are picked up.
It walks the folder again every ``reconcile_every`` seconds for changes
other programs make to the backing folder directly (they send no events).
A path processed twice is harmless: its chunks are replaced, not added.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ...errors import ModelUnavailable
from ...models.embedder import Embedder, is_ready
from ...stores import lexical
from ...stores import metadata as md
from ...stores.backends import Backend, EmbeddedIndex
from ...stores.healing import report_damage
from ...stores.pg import transient_errors
from ..events import ChangeEvent
from ..ignore import IgnoreRules
from . import intake, words
from .meaning import embed_claimed
from .words import waits_for

_TRANSIENT = (sqlite3.OperationalError, OSError)  # worth trying again: locked, disk full

log = logging.getLogger(__name__)

SAVE_EVERY = 30.0  # seconds between vector index saves while busy
CHECKPOINT_EVERY = 60.0  # s between WAL checkpoints while the indexer is idle
WAIT_RETRY = 1.0  # s between tries while the disk is full or no file can be opened
BUSY_FOR = 2.0  # seconds after a change through the mount during which embedding takes one thread
RECONCILE_EVERY = 300.0  # seconds between walks of the backing folder while mounted


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    chunks: int = 0
    phase: str = "words"  # then "meaning"
    embedded: int = 0  # chunks embedded in the meaning phase
    to_embed: int = 0


class Indexer:
    def __init__(
        self,
        backing: Path,
        state_dir: Path,
        embedder: Embedder,
        debounce: float = 0.5,
        reconcile_every: float = RECONCILE_EVERY,
        batch_files: int = 256,
        batch_chunks: int = 512,
        index: Optional[Backend] = None,
    ) -> None:
        self.backing = Path(backing)
        self.state_dir = Path(state_dir)
        self.store: Backend = index or EmbeddedIndex(self.state_dir)
        self.worker_id = f"mount:{socket.gethostname()}:{os.getpid()}"  # its claims on a shared index
        self.embedder = embedder
        self.debounce = debounce
        self.reconcile_every = reconcile_every
        self.batch_files = batch_files
        self.batch_chunks = batch_chunks
        self._pending: collections.deque[ChangeEvent] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.work: Any = None  # chunks without vectors (the index's EmbeddingWork), once open()
        self._meaning_wake = threading.Event()
        self._meaning_thread: Optional[threading.Thread] = None
        self._opened = threading.Event()
        self._open_tried = threading.Event()
        self._healed = threading.Event()  # the state database was damaged and is new: start again
        self.last_event = 0.0  # when a change came through the mount last (monotonic)
        self._rate: Optional[float] = None  # chunks embedded per second, smoothed
        self._noted = 0.0  # when the meaning's progress was last recorded
        self.db: Any = None  # the stores open in the worker thread (open())
        self.vectors: Any = None  # VectorStore, once open()
        self.ignore = IgnoreRules(self.backing)
        self._rules_seen = 0  # the ignore rules' version the last walk applied
        self.idle = threading.Event()  # set while nothing is pending or due
        # (files indexed, files known) while the words are behind, None once they have caught up:
        # query folders say so instead of "nothing matches" (read by FUSE threads, set by this one);
        # (0, 0) until the stores are open and, for an empty index, until the first walk is done
        self.progress: Optional[tuple[int, int]] = (0, 0)
        self._progress_at = 0.0
        self._waiting: Optional[str] = None  # what indexing waits for (a full disk), said once

    # -- the hook: called on FUSE threads, must not block --------------------

    def on_event(self, event: ChangeEvent) -> None:
        self.last_event = time.monotonic()
        self.idle.clear()
        self._pending.append(event)
        self._wake.set()

    # -- lifecycle ---------------------------------------------------------

    def open(self) -> None:
        """Open the stores (in the calling thread) and repair the vectors."""
        self.db = self.store.open_db()
        self.vectors = self.store.vectors(self.embedder.dim)
        self.work = self.store.work(self.vectors)
        rebuilt = md.get_meta(self.db, "embedder") not in (None, self.embedder.name) or self.vectors.rebuilt
        if rebuilt:
            log.warning("vector index rebuilt for embedder %s: re-embedding all chunks", self.embedder.name)
        self._begin(drop_vectors=rebuilt)
        if md.backlog(self.db)[0]:
            self.progress = None  # a remount: its index answers while the walk looks for changes

    def _begin(self, drop_vectors: bool) -> None:
        """A run's start on open stores (a mount, ``semfs index``, a healed database): the vectors
        are repaired against the chunks (those missing, after a crash or with a new embedder, are
        embedded by backfill(); with ``drop_vectors``, all of them)."""
        self._status("indexer", "running")
        if drop_vectors:
            self.vectors.remove(self.vectors.ids())
            self.store.changes.bump()
        with md.write(self.db):
            md.set_meta(self.db, "embedder", self.embedder.name)
        self.work.want_all()
        self.vectors.save()

    def backfill(self, limit: Optional[int] = None, prog: Optional[Progress] = None, progress=None, db=None) -> int:
        """Embed chunks that have no vector yet: every file's words are written first, and its
        meaning follows here (also after the embedder was away, or a crash), in batches claimed
        from the index's work (this mount's chunks, or on a shared index any mount's). ``db``: the
        calling thread's connection (the mount's meaning thread has its own).

        Returns how many it embedded; raises ModelUnavailable if the embedder is (still) away.
        """
        db = db or self.db
        wanted = self.work.wanted
        if prog is not None and wanted:
            left, _ = self.work.waiting(db)
            if left:
                log.info("embedding %d chunks", left)
            prog.phase, prog.to_embed = "meaning", prog.embedded + left
        done = 0
        while (limit is None or done < limit) and not self._stopping.is_set():
            got = embed_claimed(self.work, self.embedder, self.worker_id, self.batch_chunks, self._embed_options(), db)
            if not got.claimed:
                break
            self._note_rate(got.claimed, got.seconds)
            done += got.claimed
            self._bump()
            if limit is None and self.vectors.due():  # (a mount's meaning thread does this itself)
                self.vectors.maintain()
            if prog is not None:
                prog.phase = "meaning"
                prog.embedded += got.claimed
                prog.to_embed = max(prog.to_embed, prog.embedded)
                if progress is not None:
                    progress(prog)
        ran_dry = wanted and not self.work.wanted  # (the last of this mount's backlog: said at once)
        if done or limit is None or ran_dry:
            self._note_meaning(db, force=limit is None or ran_dry)
        return done

    def _note_rate(self, chunks: int, seconds: float) -> None:
        rate = chunks / max(seconds, 1e-6)
        self._rate = rate if self._rate is None else 0.8 * self._rate + 0.2 * rate

    def _note_meaning(self, db, force: bool = False) -> None:
        """For ``semfs status``: how many files have all their vectors, and the time left at the current rate."""
        if not force and time.monotonic() - self._noted < 2.0:
            return
        self._noted = time.monotonic()
        files = md.files_with_text(db)
        n_left, waiting = self.work.waiting(db)
        text = json.dumps({"files": files, "embedded": files - waiting, "chunks_left": n_left, "rate": self._rate})
        self._status("meaning", text, db)

    def _checkpoint(self) -> None:
        """Fold what was written back into the index while nothing is written (SQLite's WAL)."""
        try:
            self.store.checkpoint(self.db)
        except Exception as e:
            log.info("could not checkpoint the index's WAL: %s", e)

    def _try_status(self, key: str, value: str) -> None:
        try:
            self._status(key, value)
        except Exception as e:  # the disk that is full holds the status too
            log.info("could not record %s=%r: %s", key, value, e)

    def _status(self, key: str, value: str, db=None) -> None:
        """A word for ``semfs status``, kept in the state dir (a shared index is every mount's)."""
        self.store.record(self.state_dir, db or self.db, key, value)

    def _embed_options(self) -> dict:
        """While someone writes through the mount, embed with one thread (the worker's others are
        idle, so the writer's FUSE threads find a free core); when it is quiet, with all of them."""
        if not getattr(self.embedder, "takes_threads", False):
            return {}
        return {"threads": 1 if time.monotonic() - self.last_event < BUSY_FOR else None}

    def wait_open(self, timeout: float) -> bool:
        """Whether the stores are open, waiting up to ``timeout`` s for the attempt."""
        self._open_tried.wait(timeout)
        return self._opened.is_set()

    def meaning_behind(self) -> int:
        """Chunks of this index whose vectors are not computed yet (for query folders' notes;
        0 on a shared index, whose backlog is every mount's)."""
        return len(self.work) if self.work is not None else 0

    def on_healed(self) -> None:
        """The database was damaged and holds a new one now (:mod:`semfs.stores.healing`): the
        indexer thread drops the vectors (their ids are the old chunks') and reads BACKING again."""
        if self.store.in_state_db:  # (else only this machine's own tables were healed)
            self._healed.set()
            self._wake.set()

    def _start_again(self) -> None:
        self._healed.clear()
        self.progress = (0, 0)  # query folders say the index is being built
        self._begin(drop_vectors=True)  # (their ids are the old database's chunks)
        self.reconcile()
        self._count_backlog()

    @property
    def generation(self) -> int:
        """The index's change generation (the port's: bumped here and by other mounts' news)."""
        return self.store.generation

    def _bump(self) -> None:
        self.store.changed()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="semfs-indexer", daemon=True)
        self._thread.start()
        self._meaning_thread = threading.Thread(target=self._run_meaning, name="semfs-meaning", daemon=True)
        self._meaning_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker; events not yet processed stay queued in SQLite, chunks not yet
        embedded are embedded by the next mount."""
        self._stopping.set()
        self._wake.set()
        self._meaning_wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            # Linux schedules threads one by one: yield the CPU to the FUSE
            # threads, so writes through the mount stay fast while we embed.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
        try:
            try:
                self.open()
            finally:
                self._open_tried.set()  # queries stop waiting for it, opened or not
            self._opened.set()
            self.reconcile()
            self._count_backlog()
            self._loop()
        except Exception as e:
            # The mount goes on without indexing; the next mount reconciles.
            log.exception("indexer stopped")
            self._record_failure(f"stopped: {type(e).__name__}: {e} (see semfs.log)")
        finally:
            self._stopping.set()
            self._meaning_wake.set()
            if self._meaning_thread is not None:
                self._meaning_thread.join(30.0)  # its last vectors go into the save below
            if self.db is not None:
                try:
                    self._drain_events()
                    if self.vectors.save():
                        self._note_vectors()
                except Exception:
                    log.exception("could not save the index on stop")
                self.db.close()

    def _run_meaning(self) -> None:
        """The mount's meaning thread: embeds what the indexer thread wrote, so a file's words never
        wait on the embedder (a slow batch, a worker restarting, a hung request)."""
        while not self._opened.wait(0.5):
            if self._stopping.is_set():
                return
        db = self.store.open_db()
        try:
            while not self._stopping.is_set():
                worked = 0
                if self.work.wanted and is_ready(self.embedder):
                    try:
                        worked = self.backfill(limit=self.batch_chunks, db=db)
                    except ModelUnavailable as e:
                        log.info("vectors wait for the embedder: %s", e)
                    except Exception as e:
                        if not report_damage(self.state_dir, e):
                            log.exception("embedding failed; trying again")
                        self._stopping.wait(2.0)
                        db = self._reopen(db)
                if self.vectors.due():  # here, where a build of minutes delays only the meaning
                    try:
                        self.vectors.maintain()
                    except Exception:
                        log.exception("could not rebuild the vector index; searching the old one")
                    if self.vectors.take_lost():  # a damaged segment dropped: its chunks are embedded again
                        self.work.want_all()
                if not worked and not is_ready(self.embedder) and hasattr(self.embedder, "wait_ready"):
                    self.embedder.wait_ready(0.5)  # from its first second, not up to half a second later
                elif not worked:
                    self._meaning_wake.wait(0.5)
                    self._meaning_wake.clear()
        finally:
            db.close()

    def _note_vectors(self) -> None:
        """How many vectors the saved index holds, for ``semfs status`` (SQLite knows how many it wants)."""
        self._status("vectors", str(len(self.vectors)))

    def _record_failure(self, text: str) -> None:
        try:
            md.record_meta(self.state_dir, "indexer", text)
        except Exception:
            log.exception("could not record the indexer's failure")

    def _loop(self) -> None:
        last_save = last_walk = time.monotonic()
        last_checkpoint = 0.0
        failures = 0
        damaged = False  # said once a spell
        while not self._stopping.is_set():
            try:
                if self._healed.is_set():
                    self._start_again()
                    last_walk = time.monotonic()
                self.ignore.recheck()  # a changed .semfsignore means a walk now
                if time.monotonic() - last_walk > self.reconcile_every or self.ignore.version != self._rules_seen:
                    # Programs writing to the backing folder directly send no
                    # events; a periodic walk finds their changes by size and mtime.
                    self.reconcile()
                    last_walk = time.monotonic()
                self._drain_events()
                worked = self.process_due()
                if worked:
                    self._note_progress(worked)
                if time.monotonic() - last_save > SAVE_EVERY or (not worked and not self._pending):
                    if self.vectors.save():
                        last_save = time.monotonic()
                        self._note_vectors()
                failures, damaged = 0, False
                if self._waiting is not None:
                    log.warning("indexing resumed (it waited: %s)", self._waiting)
                    self._waiting = None
                    self._try_status("indexer", "running")
            except Exception as e:
                failures, damaged, walk = self._failed_round(e, failures, damaged)
                if walk:
                    last_walk = 0.0
                continue
            if worked:
                continue
            try:
                nxt = self.store.next_due(self.db)
            except (sqlite3.DatabaseError,) + transient_errors():
                nxt = None  # a shared index gone away, a damaged database: the next round finds out
            self._note_progress(0, nxt)
            if nxt is None and not self._pending:
                self.idle.set()
                if time.monotonic() - last_checkpoint > CHECKPOINT_EVERY:
                    last_checkpoint = time.monotonic()
                    self._checkpoint()
            timeout = min(5.0, self.reconcile_every) if nxt is None else max(0.0, min(5.0, nxt - time.time()))
            self._wake.wait(timeout)
            self._wake.clear()

    def _failed_round(self, e: Exception, failures: int, damaged: bool) -> tuple[int, bool, bool]:
        """After a round that raised ``e``: wait before the next one, or raise if the index's
        policy gives up. Returns (failures in a row, damage said, whether to walk once it passes)."""
        if report_damage(self.state_dir, e):
            # healed in place by the daemon (stores.healing): the round is tried again,
            # not counted as a failure
            if not damaged:
                log.warning("indexing met a damaged database: %s", e)
            self._stopping.wait(WAIT_RETRY)
            return failures, True, False
        waiting = waits_for(e)
        if waiting is not None:
            # A full disk or the open-file limit: wait as long as the mount lives,
            # and walk once it passes (changes it could not queue are found so).
            if self._waiting != waiting:
                log.warning("indexing waits: %s (%s)", waiting, e)
                self._waiting = waiting
                self._try_status("indexer", f"waiting: {waiting}")
            self._stopping.wait(WAIT_RETRY)
            return failures, damaged, True
        # A busy database, a file that vanished mid-read: the worker waits and
        # tries again (the queue is durable); an embedded index gives up after many
        # failures in a row (a bug, not the machine), a server's waits for it.
        failures += 1
        log.exception("indexing failed (%d in a row); retrying", failures)
        give_up = self.store.give_up_after
        if give_up is not None and failures >= give_up:
            raise e
        self.db = self._reopen(self.db)  # (a server that went away: a new connection once it is back)
        self._stopping.wait(min(self.store.retry_cap, 0.5 * 2 ** min(failures, 6)))
        return failures, damaged, False

    def _note_progress(self, worked: int, next_due: Optional[float] = None) -> None:
        """After a round that took ``worked`` paths; with none, ``next_due`` is when the queue is due next."""
        if not worked:
            if next_due is None:
                self.progress = None  # caught up
            return
        if time.monotonic() - self._progress_at < 1.0:  # (two counts: at most once a second)
            return
        self._progress_at = time.monotonic()
        self._count_backlog()

    def _count_backlog(self) -> None:
        files, queued = md.backlog(self.db)
        self.progress = (files, files + queued) if queued else None

    def _reopen(self, db):
        """``db`` again if it still works, else a new connection if the server is back (else
        the broken one: the next use fails and the caller tries again later)."""
        if not getattr(db, "broken", False):
            return db
        try:
            new = self.store.open_db()
        except Exception as e:
            log.info("the index is still unreachable: %s", e)
            return db
        try:
            db.close()
        except Exception:
            pass
        return new

    def run_once(self, progress: Optional[Callable[[Progress], None]] = None) -> Progress:
        """Reconcile and index everything now, in this thread (``semfs index``)."""
        self.open()
        try:
            total = self.reconcile()
            prog = Progress(total=total)
            while True:
                n = self.process_due(now=float("inf"), prog=prog)
                if progress:
                    progress(prog)
                if not n:
                    break
            self.backfill(prog=prog, progress=progress)
            for _ in range(64):  # exact or IVF by size, merged, checked
                if not self.vectors.maintain():
                    break
            self.vectors.save()
            self._note_vectors()
            return prog
        finally:
            self.db.close()

    # -- events ------------------------------------------------------------

    def _drain_events(self) -> None:
        if not self._pending:
            return
        removed: list[int] = []
        due = time.time() + self.debounce
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        try:
            with md.write(self.db):
                for ev in batch:
                    removed += intake.apply(self.db, ev, due, self.ignore)
        except _TRANSIENT + transient_errors():
            self._pending.extendleft(reversed(batch))  # rolled back (locked, disk full): not one of them is lost
            raise
        except Exception:
            # not the database's state but an event it cannot take: one bad event
            # must not hold back the rest for ever, so each goes on its own
            removed = []
            for ev in batch:
                try:
                    with md.write(self.db):
                        removed += intake.apply(self.db, ev, due, self.ignore)
                except _TRANSIENT + transient_errors():
                    self._pending.extendleft(reversed(batch[batch.index(ev) :]))
                    raise
                except Exception:
                    log.exception("dropped a change event the index cannot take (the next reconcile covers it): %r", ev)
        self.vectors.remove(removed)
        lexical.maintain(self.db)  # deletes may leave a segment mostly dead
        self._bump()

    # -- reconcile ---------------------------------------------------------

    def reconcile(self) -> int:
        """Queue files changed or added in the backing folder; forget removed ones. Returns the number queued."""
        self._rules_seen = self.ignore.version
        walked = intake.walk(self.db, self.backing, self.ignore)
        self.vectors.remove(walked.removed)
        if walked.removed:
            self._bump()
        return walked.queued

    # -- indexing ----------------------------------------------------------

    def process_due(self, now: Optional[float] = None, prog: Optional[Progress] = None) -> int:
        """Index one batch of due paths; returns how many paths it took off the queue."""
        taken = time.time()
        paths = self.store.take_due(self.db, taken if now is None else now, self.batch_files)
        if not paths:
            return 0
        work: list[words.Work] = []
        finished: list[str] = []
        removed: list[int] = []
        n_chunks = 0
        with md.write(self.db):
            for rel in paths:
                item, gone = words.prepare(self.db, self.backing, rel, self.ignore)
                removed += gone
                if item is None:
                    finished.append(rel)
                    continue
                work.append(item)
                n_chunks += len(item.chunks)
                if n_chunks >= self.batch_chunks:
                    break
            lexical.post_pending(self.db)  # files recorded with an error keep their names searchable
        with md.write(self.db):
            written = words.write(self.db, work)
            finished += [w.rel for w in work]
            md.done(self.db, finished, before=taken)  # not a path queued again meanwhile (by another mount)
        self.store.release(self.db, set(paths) - set(finished))  # left for the next batch: by whichever mount
        self.vectors.remove(removed + written.removed)
        lexical.maintain(self.db)
        self._bump()
        if written.new:  # words first: searchable by them now; their meaning follows in backfill()
            self.work.add(written.new)
            self._meaning_wake.set()
        if prog is not None:
            prog.done += len(finished)
            prog.chunks += n_chunks
        return len(finished)
