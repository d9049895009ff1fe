"""Run a mount: in this process (``--foreground``) or as a background daemon.

The background daemon is a fresh ``python -m semfs.fs.daemon`` process in
its own session (no fork of a process that may hold threads or models),
logging to ``<state dir>/semfs.log``. The parent returns once the mount
is live and the daemon has registered itself, or reports the daemon's
last log line if it died first.

libfuse handles SIGINT, SIGTERM and SIGHUP: the loop ends and the
filesystem is unmounted cleanly before the process exits.

The daemon serves FUSE and owns the index, versions and query caches;
the models run in its child processes (:class:`Daemon`), so a model that
crashes, hangs or runs out of memory degrades search and never takes the
mount down. See docs/DESIGN.md for its processes and threads.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..core.events import EventBus
from ..core.mounts import FSTYPE, MountSpec, acquire_state_lock
from ..core.state import MountRecord, load_record, remove_record, save_record
from ..errors import MountError
from ..heap import give_back
from .changes import ChangeTracker

log = logging.getLogger(__name__)

LOG_NAME = "semfs.log"
_LOOP_ENDED_BY_SIGNAL = 8


def _escape_opt(value: str) -> str:
    # libfuse splits -o on commas; a backslash escapes the next character.
    return value.replace("\\", "\\\\").replace(",", "\\,")


SAVED_EVERY = 2.0  # s between looks at whether saved queries need searching again
TOPICS_EVERY = 3.0  # s between looks at whether topics/ needs grouping again
TRIM_EVERY = 300.0  # s between returns of the heap's free pages to the system
QUERY_EMBED_TIMEOUT = 2.0  # a FUSE thread waits this long for a prompt's vector, then lists BM25 results


class Daemon:
    """Everything a mount runs besides libfuse's own threads, in one owner.

    :meth:`start` starts the model workers (child processes), the indexer,
    the query service and the versions' background threads, in that order,
    and returns the FUSE operations; :meth:`stop` stops them in reverse.
    Model code runs only in the workers (:mod:`semfs.models.supervisor`):
    this process never imports torch or llama_cpp.
    """

    def __init__(self, spec: MountSpec, bus: Optional[EventBus] = None) -> None:
        self.spec = spec
        self.bus = bus if bus is not None else EventBus()
        self.workers: dict[str, Any] = {}
        self.indexer: Any = None  # core.index.indexer.Indexer, with an index
        self.queries: Any = None  # core.query.queries.QueryService, with an index
        self.versions: Any = None  # core.versions.keeper.Versions, with versions
        self._stops: list[tuple[str, Callable[[], object]]] = []
        self._stop_event = threading.Event()  # ends the periodic background threads
        self.healer: Any = None  # stores.healing.Healer, from start()
        self.local: Any = None  # stores.local.LocalStore: this machine's tables, one pool for all, from start()

    def _then_stop(self, what: str, fn) -> None:
        self._stops.append((what, fn))

    def stop(self) -> None:
        self._stop_event.set()
        while self._stops:
            what, fn = self._stops.pop()
            try:
                fn()
            except Exception:
                log.exception("stopping %s failed", what)

    def _worker(self, kind: str, config: dict, on_status):
        from ..models.supervisor import Supervised

        load_deadline = float(os.environ.get("SEMFS_WORKER_LOAD_DEADLINE", 180))
        w = Supervised(kind, config, on_status=on_status, load_deadline=load_deadline)
        w.start()
        self.workers[kind] = w
        self._then_stop(f"the {kind} worker", w.stop)
        return w

    def start(self):
        spec = self.spec
        _raise_open_file_limit()
        lock_fd = acquire_state_lock(spec.state_dir)
        self._then_stop("the state lock", lambda: os.close(lock_fd))
        from ..core.state import records_dir
        from ..stores.private import private_dir, tighten

        n = tighten(spec.state_dir)
        if n:
            log.warning(
                "made %d folders and files of the state dir %s private to its owner (0700/0600)", n, spec.state_dir
            )
        private_dir(records_dir())
        # The kernel has already applied the caller's umask to every mode it
        # sends; ours must not apply a second time.
        os.umask(0)
        from ..core.versions.keeper import Versions
        from ..stores import healing

        self.healer = healing.Healer(spec.state_dir, Versions.content_kept(spec.state_dir))
        # checked, created and migrated once, before threads race to; from then on healed in place
        healing.at_start(spec.state_dir, self.healer.present)
        healing.arm(self.healer)
        self._then_stop("healing the database", lambda: healing.disarm(self.healer))
        from ..stores.local import LocalStore

        self.local = LocalStore(spec.state_dir)
        if spec.index:
            self._start_index()
        if spec.versions:
            self._start_versions()
        return self._operations()

    def _start_index(self) -> None:
        spec = self.spec
        # A FUSE thread waiting for the GIL while the indexer computes waits
        # at most this long (default 5 ms) before the interpreter hands it over.
        sys.setswitchinterval(0.0005)
        from ..core.index.indexer import Indexer
        from ..core.query.queries import QueryService
        from ..core.state import semfs_home
        from ..models.embedder import embedder_choice, embedder_identity
        from ..models.onnx_minilm import cache_dir as onnx_dir
        from ..models.remote import RemoteEmbedder

        choice = embedder_choice()
        name, dim = embedder_identity(choice)
        # two requests at once: a prompt's vector need not wait behind an indexing batch
        emb = self._worker(
            "embedder",
            {
                "name": choice,
                "threads": _embed_threads(),
                "concurrency": 2,
                "nice": 10,
                "backend_cache": str(semfs_home() / "backend.json"),
                "home": str(semfs_home()),  # its ONNX graph answers prompts from the worker's first second
                "onnx_cache": str(onnx_dir(semfs_home())),  # so a search from the shell starts in a second
                "samples": _sample_chunks(spec.state_dir),
            },
            on_status=lambda text: _record(spec, "embedder_worker", text),
        )
        from ..stores.backends import index_for

        index = index_for(spec.state_dir)  # as the CLI recorded it: embedded, or a PostgreSQL folder
        self.indexer = Indexer(spec.backing, spec.state_dir, RemoteEmbedder(emb, name, dim), index=index)
        self.bus.subscribe(self.indexer.on_event)
        self.healer.after.append(self.indexer.on_healed)
        self.indexer.start()
        self._then_stop("the indexer", self.indexer.stop)
        indexer = self.indexer
        from ..core.topics.service import Topics

        topics = Topics(spec.state_dir, index, vectors=lambda: indexer.vectors)
        self.queries = QueryService(
            spec.backing,
            spec.state_dir,
            RemoteEmbedder(emb, name, dim, timeout=QUERY_EMBED_TIMEOUT, prompts=True),
            vectors=lambda: indexer.vectors,
            progress=lambda: indexer.progress,
            meaning_behind=indexer.meaning_behind,
            opened=indexer.wait_open,
            llm=self._start_llm(),
            index=index,
            local=self.local,
            topics=topics,
        )
        self._then_stop("the query service", self.queries.close)
        self.healer.after.append(self.queries.on_healed)
        saved = threading.Thread(target=self._refresh_saved, name="semfs-saved", daemon=True)
        saved.start()
        self._then_stop("refreshing saved queries", lambda: saved.join(5))
        grouping = threading.Thread(target=self._keep_topics, args=(topics, index), name="semfs-topics", daemon=True)
        grouping.start()
        self._then_stop("grouping topics", lambda: grouping.join(5))
        # other mounts and workers may change the index too: their news empties our caches
        # (an index that has nobody else returns at once)
        t = threading.Thread(
            target=index.listen, args=(index.changes.bump, self._stop_event), name="semfs-listen", daemon=True
        )
        t.start()
        self._then_stop("listening to the index", lambda: t.join(5))

    def _refresh_saved(self) -> None:
        """Saved queries are searched here when the index changes, never by a listing of them."""
        try:
            while True:
                try:
                    self.queries.refresh_saved()
                except Exception as e:
                    if not self.healer.seen(e):
                        log.exception("could not refresh the saved queries")
                if self._stop_event.wait(SAVED_EVERY):
                    return
        finally:
            self.queries.close()  # this thread's connections

    def _keep_topics(self, topics, index) -> None:
        """topics/ is grouped here when the index changed, or when a regrouping that waited for
        nobody to look at topics/ may go; never by a listing of it. The first grouping waits
        for every file's meaning and for the index to be quiet for a look (a grouping of the
        first few files would stand: between two batches of a walk nothing may be waiting)."""
        done: Optional[int] = None
        seen: Optional[int] = None  # the generation at the last look
        trimmed = time.monotonic()
        try:
            while not self._stop_event.wait(TOPICS_EVERY):
                if time.monotonic() - trimmed > TRIM_EVERY:
                    give_back()
                    trimmed = time.monotonic()
                before, seen = seen, index.generation
                now = seen
                if (now == done and not topics.may_regroup_now()) or (
                    topics.tree is None and (self.indexer.progress or self.indexer.meaning_behind() or now != before)
                ):
                    continue
                try:
                    if topics.refresh() in ("built", "regrouped", "kept"):
                        give_back()  # (a grouping reads every file's vector: hundreds of MB, then free)
                        trimmed = time.monotonic()
                    done = now
                except Exception as e:
                    if not self.healer.seen(e):
                        log.exception("could not group the topics")
        finally:
            topics.close()

    def _start_llm(self):
        """The mount's LLM, loading in its worker; None when it is switched off."""
        from ..core.state import semfs_home
        from ..models.llm import model_path
        from ..models.remote import RemoteLLM

        spec = self.spec
        path = model_path(spec.llm, semfs_home(), assemble=False)  # (the worker assembles it)
        if path is None:
            _record(spec, "llm", "off (--no-llm): summaries show a file's opening, change notes a diff stat")
            return None

        def status(text: str) -> None:
            _record(spec, "llm", f"{text}: {path}" if text.startswith("ready") else text)

        config = {
            "model_path": str(path),
            "threads": max(1, (os.cpu_count() or 2) - 1),  # a summary at nice 0 leaves a core to the mount
            "assemble_default": spec.llm == "default",
            "data_dir": str(semfs_home()),
        }
        worker = self._worker("llm", config, on_status=status)
        llm = RemoteLLM(worker, path, deadline=float(os.environ.get("SEMFS_LLM_DEADLINE", 30)))
        self._then_stop("the LLM queue", llm.stop)
        return llm

    def _start_versions(self) -> None:
        from ..core.versions import notes as change_notes
        from ..core.versions import retention
        from ..core.versions.keeper import Versions

        self.versions = Versions(self.spec.backing, self.spec.state_dir, local=self.local)
        _ = self.versions.tree  # BACKING held from the start, as the mirror holds it
        self.versions.recover()
        try:
            self.versions.reserve = retention.load_policy(self.versions.connection()).reserve
        except Exception as e:
            log.warning("could not read the versions' policy (%s): the default reserve applies", e)
        t = retention.start_background(self.versions, self._stop_event)
        self._then_stop("pruning versions", lambda: t.join(10))
        llm = self.queries.llm if self.queries is not None else None
        if llm is not None:
            t2 = change_notes.start_background(self.versions, llm, llm.model_path.name, self._stop_event)
            self._then_stop("change notes", lambda: t2.join(10))

    def _operations(self):
        from .binding import capabilities, invalidate_path
        from .passthrough import Hooks, Passthrough
        from .semantic import SemanticFS

        spec = self.spec
        record = MountRecord(
            mountpoint=str(spec.mountpoint),
            backing=str(spec.backing),
            state_dir=str(spec.state_dir),
            pid=os.getpid(),
            started=time.time(),
        )
        v = self.versions
        hooks = Hooks(
            before_change=v.keep if v is not None else None,
            after_rename=v.renamed if v is not None else None,
            take_on_unlink=v.take if v is not None else None,
            on_ready=lambda: save_record(record),
            on_failure=self.healer.seen,
            invalidate=invalidate_path,
            capabilities=capabilities(),
        )
        tracker = ChangeTracker(self.bus)
        ops: Passthrough
        if self.queries is not None or v is not None:
            from .access import CallerAccess

            ops = SemanticFS(
                str(spec.backing),
                tracker,
                self.queries,
                v,
                roots=spec.roots,
                access=CallerAccess(str(spec.backing), enforce=spec.allow_other),
                serve_others=spec.allow_other,
                hooks=hooks,
            )
            for name in ops.roots:
                if os.path.lexists(spec.backing / name):
                    log.warning(
                        "%s in the backing folder is hidden by the virtual folder %s/ of the mount",
                        spec.backing / name,
                        name,
                    )
        else:
            ops = Passthrough(str(spec.backing), tracker, serve_others=spec.allow_other, hooks=hooks)
        self._then_stop("the mount record", lambda: remove_record(spec.mountpoint, os.getpid()))
        return ops


def _raise_open_file_limit() -> None:
    """The soft limit on open files up to the hard one: every file held open through the mount
    holds one here too, and a shell's soft limit (often 1024) is far below the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 20 if hard == resource.RLIM_INFINITY else hard  # (the kernel's nr_open default)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            log.info("open files: up to %d (was %d)", want, soft)
        except (OSError, ValueError) as e:
            log.warning("could not raise the open-file limit from %d: %s", soft, e)


def serve(spec: MountSpec, debug: bool = False, bus: Optional[EventBus] = None) -> None:
    """Mount ``spec`` and serve it until unmounted or signalled.

    Change events go to ``bus`` (a new one if not given).
    """
    import faulthandler
    import signal

    from .binding import FUSE

    # a crash, or kill -USR1 <pid> (a mount that seems stuck): every thread's stack into the log
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    daemon = Daemon(spec, bus)
    try:
        ops = daemon.start()
        options = dict(
            foreground=True,
            debug=debug,
            fsname=_escape_opt(f"semfs:{spec.backing}"),
            subtype=FSTYPE.split(".", 1)[1],
            default_permissions=True,
            allow_other=spec.allow_other,
            use_ino=True,
            # Keep a file's pages across opens unless its mtime or size changed.
            auto_cache=True,
            # No FLUSH for read-only handles: close(2) of a reader costs nothing.
            no_rofd_flush=True,
            entry_timeout=1.0,
            attr_timeout=1.0,
            negative_timeout=1.0,
        )
        log.info("mounting %s at %s (state %s)", spec.backing, spec.mountpoint, spec.state_dir)
        try:
            FUSE(ops, str(spec.mountpoint), **options)
        except RuntimeError as e:
            # fuse_main returns 8 when its loop ends through libfuse's own
            # SIGTERM/SIGINT/SIGHUP handler (it has unmounted by then): a clean stop.
            if e.args != (_LOOP_ENDED_BY_SIGNAL,):
                raise MountError(
                    f"libfuse could not serve {spec.mountpoint} (fuse_main returned {e.args[0]})"
                ) from None
            log.info("stopped by a signal")
    finally:
        daemon.stop()
        log.info("unmounted %s", spec.mountpoint)


def _record(spec: MountSpec, key: str, text: str) -> None:
    from ..stores import metadata as md

    md.record_meta(spec.state_dir, key, text)


def _sample_chunks(state_dir, n: int = 32) -> Optional[list[str]]:
    """Real chunks of this folder to calibrate the embedder's backend on, if it has enough."""
    from ..stores import metadata as md
    from ..stores.reads import sample_texts

    db = md.open_db_readonly(state_dir)
    if db is None:
        return None
    try:
        rows = sample_texts(db, n)
    finally:
        db.close()
    return rows if len(rows) >= 8 else None


def _embed_threads() -> int:
    """Threads a model worker computes with: every core (``SEMFS_EMBED_THREADS`` to change).

    The workers run at nice 10, so the FUSE threads (nice 0) take the CPU
    when they need it; leaving a core idle instead made the mount's first
    pass 1.46x slower than ``semfs index`` on 2 cores (docs/BENCHMARKS.md)."""
    try:
        return max(1, int(os.environ.get("SEMFS_EMBED_THREADS", "0")) or (os.cpu_count() or 2))
    except ValueError:
        return os.cpu_count() or 2


def start_background(spec: MountSpec, timeout: float = 30.0) -> int:
    """Start a daemon serving ``spec``; returns its pid once the mount is live."""
    from ..stores.private import private_dir

    private_dir(spec.state_dir)
    log_path = spec.state_dir / LOG_NAME
    args = spec.to_json()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # an older log may be 0644: it holds paths and prompts
    with os.fdopen(fd, "ab") as logf:
        start = logf.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "semfs.fs.daemon", args],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MountError(
                f"the semfs daemon exited before mounting: {_last_line(log_path, start)} (log: {log_path})"
            )
        rec = load_record(spec.mountpoint)
        if rec is not None and rec.pid == proc.pid and os.path.ismount(spec.mountpoint):
            return proc.pid
        time.sleep(0.02)
    proc.terminate()
    raise MountError(f"the semfs daemon did not mount within {timeout:.0f}s (log: {log_path})")


def _last_line(path: Path, start: int) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = MountSpec.from_json(argv[0])
    try:
        serve(spec)
    except MountError as e:
        log.error("%s", e)
        return 1
    except Exception as e:
        log.exception("semfs daemon failed")
        print(f"semfs daemon failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
