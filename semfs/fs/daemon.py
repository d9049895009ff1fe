"""Run a mount: in this process (``--foreground``) or as a background daemon.

The background daemon is a fresh ``python -m semfs.fs.daemon`` process in
its own session (no fork of a process that may hold threads or models),
logging to ``<state dir>/semfs.log``. The parent returns once the mount
is live and the daemon has registered itself, or reports the daemon's
last log line if it died first.

libfuse handles SIGINT, SIGTERM and SIGHUP: the loop ends and the
filesystem is unmounted cleanly before the process exits.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from ..core.changes import ChangeTracker
from ..errors import MountError
from ..core.events import EventBus
from ..core.mounts import FSTYPE, VIRTUAL_KINDS, MountSpec, acquire_state_lock
from ..core.state import MountRecord, load_record, remove_record, save_record

log = logging.getLogger(__name__)

LOG_NAME = "semfs.log"
_LOOP_ENDED_BY_SIGNAL = 8


def _escape_opt(value: str) -> str:
    # libfuse splits -o on commas; a backslash escapes the next character.
    return value.replace("\\", "\\\\").replace(",", "\\,")


def serve(spec: MountSpec, debug: bool = False, bus: Optional[EventBus] = None) -> None:
    """Mount ``spec`` and serve it until unmounted or signalled.

    Change events go to ``bus`` (a new one if not given).
    """
    from .binding import FUSE, capabilities, invalidate_path
    from ..core.queries import QueryService
    from .passthrough import Passthrough
    from .semantic import SemanticFS

    lock_fd = acquire_state_lock(spec.state_dir)
    # The kernel has already applied the caller's umask to every mode it
    # sends; ours must not apply a second time.
    os.umask(0)
    from ..stores import metadata as md

    md.open_db(spec.state_dir).close()  # create and migrate it once, before threads race to
    bus = bus if bus is not None else EventBus()
    indexer = None
    queries = versions = None
    if spec.index:
        # A FUSE thread waiting for the GIL while the indexer computes waits
        # at most this long (default 5 ms) before the interpreter hands it over.
        sys.setswitchinterval(0.0005)
        from ..core.indexer import Indexer
        from ..models.embedder import make_embedder

        embedder = make_embedder(threads=_embed_threads())
        indexer = Indexer(spec.backing, spec.state_dir, embedder)
        bus.subscribe(indexer.on_event)
        indexer.start()  # reconciles and loads the model in its own thread
        queries = QueryService(
            spec.backing,
            spec.state_dir,
            embedder,
            vectors=lambda: indexer.vectors,
            generation=lambda: indexer.generation,
            llm=_start_llm(spec),
        )
    if spec.versions:
        from ..core.versions import Versions

        from ..core import retention

        versions = Versions(spec.backing, spec.state_dir)
        versions.recover()
        retention.start_background(versions)
    if versions is not None and queries is not None and queries.llm is not None:
        from ..core import change_notes

        change_notes.start_background(versions, queries.llm, queries.llm.model_path.name)
    if queries is not None or versions is not None:
        ops = SemanticFS(str(spec.backing), ChangeTracker(bus), queries, versions, roots=dict(zip(VIRTUAL_KINDS, spec.roots)))
        for name in ops.roots:
            if os.path.lexists(spec.backing / name):
                log.warning("%s in the backing folder is hidden by the virtual folder %s/ of the mount", spec.backing / name, name)
    else:
        ops = Passthrough(str(spec.backing), ChangeTracker(bus))
    if versions is not None:
        ops.before_change = versions.keep
        ops.after_rename = versions.renamed
        ops.take_on_unlink = versions.take
    record = MountRecord(
        mountpoint=str(spec.mountpoint),
        backing=str(spec.backing),
        state_dir=str(spec.state_dir),
        pid=os.getpid(),
        started=time.time(),
    )
    ops.on_ready = lambda: save_record(record)
    ops.invalidate = invalidate_path
    ops.capabilities = capabilities()
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
            raise MountError(f"libfuse could not serve {spec.mountpoint} (fuse_main returned {e.args[0]})") from None
        log.info("stopped by a signal")
    finally:
        if indexer is not None:
            indexer.stop()
        remove_record(spec.mountpoint, os.getpid())
        os.close(lock_fd)
        log.info("unmounted %s", spec.mountpoint)


def _start_llm(spec: MountSpec):
    """The mount's LLM, loading in the background; None when it is switched off."""
    import threading

    from ..core.state import semfs_home
    from ..models.llm import LocalLLM, default_model_path, ensure_default_model

    if spec.llm == "off":
        _llm_status(spec, "off (--no-llm): prompts are read by rules only")
        return None
    path = default_model_path(semfs_home()) if spec.llm == "default" else Path(spec.llm)
    llm = LocalLLM(path, threads=_embed_threads())

    def load() -> None:
        try:
            if spec.llm == "default":
                ensure_default_model(semfs_home())
            llm.preload()
            _llm_status(spec, f"ready: {path}")
        except Exception as e:
            log.warning("no LLM: %s", e)
            _llm_status(spec, f"unavailable ({e}): prompts are read by rules only")

    threading.Thread(target=load, name="semfs-llm-load", daemon=True).start()
    return llm


def _llm_status(spec: MountSpec, text: str) -> None:
    from ..stores import metadata as md

    md.record_meta(spec.state_dir, "llm", text)


def _embed_threads() -> int:
    # Leave a core to the FUSE threads, so indexing never starves the mount.
    return max(1, (os.cpu_count() or 2) - 1)


def start_background(spec: MountSpec, timeout: float = 30.0) -> int:
    """Start a daemon serving ``spec``; returns its pid once the mount is live."""
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = spec.state_dir / LOG_NAME
    args = json.dumps(
        {
            "backing": str(spec.backing),
            "mountpoint": str(spec.mountpoint),
            "state_dir": str(spec.state_dir),
            "allow_other": spec.allow_other,
            "index": spec.index,
            "roots": list(spec.roots),
            "llm": spec.llm,
            "versions": spec.versions,
        }
    )
    with open(log_path, "ab") as logf:
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
            raise MountError(f"the semfs daemon exited before mounting: {_last_line(log_path, start)} (log: {log_path})")
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
    spec_args = json.loads(argv[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = MountSpec(
        backing=Path(spec_args["backing"]),
        mountpoint=Path(spec_args["mountpoint"]),
        state_dir=Path(spec_args["state_dir"]),
        allow_other=spec_args["allow_other"],
        index=spec_args["index"],
        roots=tuple(spec_args["roots"]),
        llm=spec_args["llm"],
        versions=spec_args["versions"],
    )
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
