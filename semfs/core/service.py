"""What the CLI asks of an index: build it, search it, describe it."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import Busy, InvalidRequest, NotFound, SemfsError
from ..stores import metadata as md
from ..stores.catalog import Catalog
from .mounts import lock_holder

if TYPE_CHECKING:  # numpy, torch and FAISS come with these: only the commands that search pay for them
    from ..models.embedder import Embedder
    from .index.indexer import Progress
    from .query.search import Hit
    from .versions.keeper import Version
from .state import resolve_state_dir


class IndexUnavailable(NotFound):
    """The index cannot be used: missing, or built with another embedder."""


def _backing(path: str) -> Path:
    b = Path(os.path.abspath(os.path.expanduser(path)))
    if not b.is_dir():
        raise InvalidRequest(f"not a directory: {b}")
    return b.resolve()


def index_folder(
    backing: str,
    embedder: Embedder,
    state_dir: Optional[str] = None,
    progress: Optional[Callable[[Progress], None]] = None,
) -> tuple[Path, Progress]:
    """Bring the index of ``backing`` up to date now (not while it is mounted)."""
    b = _backing(backing)
    s = resolve_state_dir(b, state_dir)
    from .index.indexer import Indexer

    holder = lock_holder(s)
    if holder is not None:
        raise Busy(f"{b} is mounted at {holder.mountpoint}: its daemon keeps the index up to date")
    return s, Indexer(b, s, embedder).run_once(progress)


class Index:
    """A read-side view of one backing folder's index."""

    def __init__(self, backing: str, embedder: Embedder, state_dir: Optional[str] = None) -> None:
        from ..stores.vectors import VectorStore
        from .query.search import Searcher

        self.backing = _backing(backing)
        self.state_dir = resolve_state_dir(self.backing, state_dir)
        self.db = md.open_db_readonly(self.state_dir)
        if self.db is None:
            raise NotFound(f"{self.backing} has no index yet: run 'semfs index {self.backing}' or mount it")
        self.vectors = VectorStore(self.state_dir, embedder.dim)
        if md.get_meta(self.db, "embedder") not in (None, embedder.name):
            raise IndexUnavailable(
                f"the index was built with the {md.get_meta(self.db, 'embedder')} embedder, not {embedder.name}"
            )
        self.searcher = Searcher(
            self.backing, self.db, self.vectors, embedder, connect=lambda: md.open_db_readonly(self.state_dir)
        )

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        return self.searcher.search(query, k=k, mode=mode)


def run_query(
    backing: str, prompt: str, embedder: Embedder, k: int, state_dir: Optional[str] = None, use_llm: bool = True
):
    """(structured query, note on how it was read, hits) for ``prompt``, as a query folder lists it."""
    from .query.prompts import parse_llm, parse_rules
    from .query.queries import merge_readings

    idx = Index(backing, embedder, state_dir)
    parsed, note = parse_rules(prompt, backing=idx.backing), None
    if use_llm:
        try:
            llm, _ = open_llm("default", preload=False)
            parsed = merge_readings(parsed, parse_llm(prompt, llm, timeout=60.0))  # keywords; rules for the rest
        except SemfsError as e:
            note = f"read by rules only: {e}"
    accept = parsed.accepts if parsed.has_filters else None
    return parsed, note, idx.searcher.search(parsed.text, k=k, accept=accept)


@dataclass(frozen=True)
class IndexStats:
    files: int
    indexed: int
    failed: int
    queued: int
    chunks: int
    bytes_on_disk: int
    failures: list[tuple[str, str]]
    llm: Optional[str] = None
    indexer: Optional[str] = None
    versions: Optional[str] = None  # a versioning failure, if one is recorded
    kept: tuple[int, int, int] = (0, 0, 0)  # versions, files they belong to, bytes of blobs and pending links
    policy: Optional[object] = None  # retention.Policy
    embedder: Optional[str] = None  # the mount's embedder worker: ready, restarting, off (and why)
    vectors: Optional[int] = None  # chunks with a vector in the last saved vector index
    with_text: int = 0  # chunks that should have one


def index_stats(state_dir: Path) -> Optional[IndexStats]:
    db = md.open_db_readonly(state_dir)
    if db is None:
        return None
    try:
        c = md.counts(db)
        fails = md.failures(db)
        llm = md.get_meta(db, "llm")
        embedder = md.get_meta(db, "embedder_worker")
        vectors = md.get_meta(db, "vectors")
        indexer = md.get_meta(db, "indexer")
        versions = md.get_meta(db, "versions")
        n_versions, n_paths = Catalog(lambda: db).counts()
        from .versions.retention import load_policy

        policy = load_policy(db)
    finally:
        db.close()
    kept_bytes = 0
    for sub in ("blobs", "pending"):
        for dirpath, _, names in os.walk(state_dir / sub):
            for name in names:
                try:
                    kept_bytes += os.lstat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
    size = 0
    from ..stores.vectors import INDEX_NAME

    for name in (md.DB_NAME, md.DB_NAME + "-wal", INDEX_NAME):
        try:
            size += (state_dir / name).stat().st_size
        except FileNotFoundError:
            pass
    return IndexStats(
        c["files"],
        c["indexed"],
        c["failed"],
        c["queued"],
        c["chunks"],
        size,
        fails,
        llm,
        indexer,
        versions,
        (n_versions, n_paths, kept_bytes),
        policy,
        embedder,
        int(vectors) if vectors is not None else None,
        c["with_text"],
    )


def save_query(backing: str, name: str, prompt: str, state_dir: Optional[str] = None) -> Path:
    """Save ``prompt`` as ``query/<name>/`` of the mounts of ``backing``; returns the state dir."""
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise InvalidRequest(f"invalid name for a saved query: {name!r} (no '/', not starting with '.')")
    if len(name.encode()) > 255:
        raise InvalidRequest("the name of a saved query must fit in 255 bytes; the prompt itself may be longer")
    if not prompt.strip():
        raise InvalidRequest("the prompt is empty")
    b = _backing(backing)
    s = resolve_state_dir(b, state_dir)
    db = md.open_db(s)
    try:
        md.save_query(db, name, prompt)
    finally:
        db.close()
    return s


@dataclass
class Located:
    backing: Path
    rel: str  # the path relative to the backing folder
    mountpoint: Optional[Path]  # if mounted
    state_dir: Path  # the mount's own (its --state-dir, if it was given one), else the default


def _locate(path: str, backing: Optional[str] = None) -> Located:
    """Where a path through a mount, or in a backing folder, belongs."""
    from .mounts import status

    p = Path(os.path.abspath(os.path.expanduser(path)))
    if backing is not None:
        b = _backing(backing)
        if b not in p.parents:
            p = b / path  # a path relative to the backing folder
        rec = next((st.record for st in status() if st.record and Path(st.record.backing) == b), None)
        state = Path(rec.state_dir) if rec is not None else resolve_state_dir(b)
        return Located(b, p.relative_to(b).as_posix(), Path(rec.mountpoint) if rec else None, state)
    for st in status():
        rec = st.record
        if rec is None or st.state != "mounted":
            continue
        for root in (Path(rec.mountpoint), Path(rec.backing)):
            if root in p.parents:
                return Located(
                    Path(rec.backing), p.relative_to(root).as_posix(), Path(rec.mountpoint), Path(rec.state_dir)
                )
    raise NotFound(f"{p} is not in a mounted folder: name its backing folder with --backing")


def unified_diff(a: bytes, b: bytes, a_name: str, b_name: str) -> str:
    """A unified diff of two contents, or one line saying they are binary."""
    try:
        lines_a, lines_b = a.decode().splitlines(keepends=True), b.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary content: {len(a)} bytes in {a_name}, {len(b)} bytes in {b_name}\n"
    return "".join(difflib.unified_diff(lines_a, lines_b, a_name, b_name))


def _live(vs, rel: str) -> bytes:
    live = vs.backing / rel
    return live.read_bytes() if live.is_file() else b""


def diff(path: str, backing: Optional[str] = None, v1: Optional[int] = None, v2: Optional[int] = None) -> str:
    """The diff of ``path`` from version ``v1`` (default: the newest) to ``v2`` (default: now)."""
    vs, rel, _ = versions_of(path, backing)
    hist = vs.history(rel)
    if not hist:
        raise NotFound(f"no history for {rel}")
    first = vs.pick(rel, version=v1) if v1 is not None else hist[-1]
    a = vs.content(first)
    if v2 is not None:
        b, b_name = vs.content(vs.pick(rel, version=v2)), f"version {v2}/{rel}"
    else:
        b, b_name = _live(vs, rel), f"now/{rel}"
    return unified_diff(a, b, f"version {first.version}/{rel}", b_name)


@dataclass
class Change:
    version: int
    time: float
    size: int
    origin: str
    note: str  # what the change did: the model's words, or a diff stat


def history(
    path: str, backing: Optional[str] = None, summaries: bool = False, llm_spec: str = "default"
) -> tuple[list[Change], list[str]]:
    """The kept versions of ``path`` with what each change did; and notes for the user
    (why there are no model summaries)."""
    from ..models.llm import LLMUnavailable
    from .versions import notes as change_notes

    vs, rel, _ = versions_of(path, backing)
    if not vs.history(rel):
        raise NotFound(f"no history for {rel}")
    llm, name, notes = None, "none", []
    if summaries:
        try:
            llm, name = open_llm(llm_spec)
        except LLMUnavailable as e:
            notes.append(f"no model ({e}): changes shown as diff stats")
        if llm is None and llm_spec == "off":
            notes.append("--llm off: changes shown as diff stats")
    rows = []
    for v, before, after in change_notes.pairs(vs, rel):
        try:
            text, _ = change_notes.note(vs.catalog, llm, name, before, after)
        except SemfsError as e:  # the model failed on this one: say what is known
            text = f"{change_notes.diff_stat(before, after)} (no summary: {e})"
        rows.append(Change(v.version, v.time, v.size, v.origin, text))
    return rows, notes


def open_llm(spec: str = "default", preload: bool = True):
    """The one way the CLI builds its in-process LLM from an ``--llm`` option (a GGUF path,
    'default' or 'off'): (the model, its name); (None, 'none') for 'off'. With ``preload``,
    loaded now (raises LLMUnavailable if it cannot be); else on first use, so a cached
    answer costs no load."""
    from ..models.llm import LLMUnavailable, LocalLLM, model_path
    from .state import semfs_home

    path = model_path(spec, semfs_home())
    if path is None:
        return None, "none"
    if not path.is_file():
        raise LLMUnavailable(f"LLM model file not found: {path}")
    llm = LocalLLM(path)
    if preload:
        llm.preload()
    return llm, path.name


def summarise_file(path: str, backing: Optional[str] = None, use_llm: bool = True) -> str:
    """The summary of ``path``, a file in a backing folder or a mount, cached in that folder's state."""
    from .query.summaries import summarise

    loc = _locate(path, backing)
    b, rel = loc.backing, loc.rel
    p = b / rel
    if not p.is_file():
        raise InvalidRequest(f"not a file: {p}")
    db = md.open_db(loc.state_dir)
    try:
        llm, name = open_llm("default" if use_llm else "off", preload=False)
        return summarise(b, rel, db, llm, name)
    finally:
        db.close()


def versions_of(path: str, backing: Optional[str] = None):
    """(Versions store, path relative to the backing folder, mountpoint or None)."""
    from .versions.keeper import Versions

    loc = _locate(path, backing)
    return Versions(loc.backing, loc.state_dir), loc.rel, loc.mountpoint


def rollback(
    path: str,
    backing: Optional[str] = None,
    version: Optional[int] = None,
    steps: Optional[int] = None,
    at: Optional[float] = None,
    dry_run: bool = False,
    force: bool = False,
) -> tuple[Optional[str], Version]:
    """Restore ``path`` to a kept version; returns (with ``dry_run``, the unified diff from
    now to it, else None; the version)."""
    vs, rel, mnt = versions_of(path, backing)
    v = vs.pick(rel, version=version, steps=steps, at=at)
    old = vs.content(v)  # raises on a missing or damaged blob, before anything is touched
    live = vs.backing / rel
    if dry_run:  # (a diff of a large file takes longer than the restore itself)
        return unified_diff(_live(vs, rel), old, f"now/{rel}", f"version {v.version}/{rel}"), v
    if not force:
        from .versions.openfiles import writers

        held = writers([live] + ([mnt / rel] if mnt is not None else []))
        if held:
            who = ", ".join(f"pid {pid} ({name})" for pid, name in sorted(held.items()))
            raise Busy(f"{rel} is open for writing by {who}: close it first, or use --force")
    if mnt is not None:
        # through the mount: the current content is kept as a version, and the index hears of it
        target = mnt / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            f.write(old)
    else:
        vs.keep(rel, "rollback")  # first, so a crash mid-write loses nothing
        live.parent.mkdir(parents=True, exist_ok=True)
        with open(live, "wb") as f:  # in place: the file keeps its inode, mode and owner
            f.write(old)
    return None, v


def folder_versions(path: str):
    """The versions of a backing folder, named by itself or by a mountpoint of it."""
    from .mounts import status
    from .versions.keeper import Versions

    p = Path(os.path.abspath(os.path.expanduser(path)))
    for st in status():
        rec = st.record
        if rec is not None and st.state == "mounted" and p in (Path(rec.mountpoint), Path(rec.backing)):
            return Versions(Path(rec.backing), Path(rec.state_dir))
    b = _backing(path)
    s = resolve_state_dir(b)
    if not (s / md.DB_NAME).exists():
        raise NotFound(f"{b} has no versions: it has not been mounted")
    return Versions(b, s)


def gc(
    path: str,
    keep: Optional[int] = None,
    days: Optional[float] = None,
    max_bytes: Optional[int] = None,
    dry_run: bool = False,
):
    """Prune the versions of a folder; returns (report, policy). Options given become its saved policy."""
    import dataclasses

    from .versions import retention

    if keep is not None and keep < 1:
        raise InvalidRequest("--keep must be at least 1")
    if days is not None and days < 0:
        raise InvalidRequest("--days cannot be negative")
    if max_bytes is not None and max_bytes < 0:
        raise InvalidRequest("--max-size cannot be negative")
    vs = folder_versions(path)
    db = vs.connection()
    saved = retention.load_policy(db)
    given: dict[str, Any] = {
        k: v for k, v in (("keep", keep), ("days", days), ("max_bytes", max_bytes)) if v is not None
    }
    policy = dataclasses.replace(saved, **given)
    if policy != saved and not dry_run:
        retention.save_policy(db, policy)
    return retention.collect(vs, policy, dry_run=dry_run), policy
