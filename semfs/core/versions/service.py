"""What the CLI asks of versions: history, diff, rollback, pruning."""

from __future__ import annotations

import dataclasses
import difflib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ...errors import Busy, InvalidRequest, NotFound, SemfsError
from ...stores import metadata as md
from ..paths import locate, place
from ..query.service import open_llm

if TYPE_CHECKING:
    from .keeper import Version, Versions


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


def diff(
    path: str,
    backing: Optional[str] = None,
    v1: Optional[int] = None,
    v2: Optional[int] = None,
    state_dir: Optional[str] = None,
) -> str:
    """The diff of ``path`` from version ``v1`` (default: the newest) to ``v2`` (default: now)."""
    vs, rel, _ = versions_of(path, backing, state_dir)
    hist = vs.history(rel)
    if not hist:
        raise NotFound(f"no history for {rel}")
    first = pick(vs, rel, version=v1) if v1 is not None else hist[-1]
    a = vs.content(first)
    if v2 is not None:
        b, b_name = vs.content(pick(vs, rel, version=v2)), f"version {v2}/{rel}"
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
    path: str,
    backing: Optional[str] = None,
    summaries: bool = False,
    llm_spec: str = "default",
    state_dir: Optional[str] = None,
) -> tuple[list[Change], list[str]]:
    """The kept versions of ``path`` with what each change did; and notes for the user
    (why there are no model summaries)."""
    from ...models.llm import LLMUnavailable
    from . import notes as change_notes

    vs, rel, _ = versions_of(path, backing, state_dir)
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


def versions_of(path: str, backing: Optional[str] = None, state_dir: Optional[str] = None):
    """(Versions store, path relative to the backing folder, mountpoint or None)."""
    loc = locate(path, backing, state_dir)
    return _versions(loc), loc.rel, loc.mountpoint


def _versions(loc):
    from .keeper import Versions

    return Versions(loc.backing, loc.state_dir)


def rollback(
    path: str,
    backing: Optional[str] = None,
    version: Optional[int] = None,
    steps: Optional[int] = None,
    at: Optional[float] = None,
    dry_run: bool = False,
    force: bool = False,
    state_dir: Optional[str] = None,
) -> tuple[Optional[str], Version]:
    """Restore ``path`` to a kept version; returns (with ``dry_run``, the unified diff from
    now to it, else None; the version)."""
    loc = locate(path, backing, state_dir)  # (once: it reads every mount record)
    vs, rel, mnt = _versions(loc), loc.rel, loc.mountpoint
    v = pick(vs, rel, version=version, steps=steps, at=at)
    old = vs.content(v)  # raises on a missing or damaged blob, before anything is touched
    live = vs.backing / rel
    if dry_run:  # (a diff of a large file takes longer than the restore itself)
        return unified_diff(_live(vs, rel), old, f"now/{rel}", f"version {v.version}/{rel}"), v
    if not force:
        from .openfiles import writers

        held = writers([live] + ([mnt / rel] if mnt is not None else []))
        # The mount's daemon holds the backing file for whoever writes through the mount,
        # and lets go a moment after that process closes it (FUSE's release is asynchronous):
        # it is not a writer of its own, and the restore goes through it anyway.
        held.pop(loc.daemon_pid or -1, None)
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


def folder_versions(path: str, state_dir: Optional[str] = None):
    """The versions of a backing folder, named by itself or by a mountpoint of it."""
    from .keeper import Versions

    loc = place(path, state_dir)
    if loc.rel:
        raise InvalidRequest(f"{path} is inside {loc.mountpoint or loc.backing}: name the folder itself")
    if not (loc.state_dir / md.DB_NAME).exists():
        raise NotFound(f"{loc.backing} has no versions: it has not been mounted")
    return Versions(loc.backing, loc.state_dir)


def gc(
    path: str,
    keep: Optional[int] = None,
    days: Optional[float] = None,
    max_bytes: Optional[int] = None,
    dry_run: bool = False,
    state_dir: Optional[str] = None,
    reserve: Optional[int] = None,
):
    """Prune the versions of a folder; returns (report, policy). Options given become its saved policy."""

    from . import retention

    if keep is not None and keep < 1:
        raise InvalidRequest("--keep must be at least 1")
    if days is not None and days < 0:
        raise InvalidRequest("--days cannot be negative")
    if max_bytes is not None and max_bytes < 0:
        raise InvalidRequest("--max-size cannot be negative")
    if reserve is not None and reserve < 0:
        raise InvalidRequest("--reserve cannot be negative")
    vs = folder_versions(path, state_dir)
    db = vs.connection()
    saved = retention.load_policy(db)
    given: dict[str, Any] = {
        k: v
        for k, v in (("keep", keep), ("days", days), ("max_bytes", max_bytes), ("reserve", reserve))
        if v is not None
    }
    policy = dataclasses.replace(saved, **given)
    if policy != saved and not dry_run:
        retention.save_policy(db, policy)
    return retention.collect(vs, policy, dry_run=dry_run), policy


def pick(
    vs: "Versions", rel: str, version: Optional[int] = None, steps: Optional[int] = None, at: Optional[float] = None
) -> Version:
    """The version a rollback asks for: a number, N steps back from now, or the state at a time."""
    from .keeper import VersionError

    hist = vs.history(rel)
    if not hist:
        raise VersionError(f"no history for {rel}")
    if version is not None:
        for v in hist:
            if v.version == version:
                return v
        raise VersionError(f"{rel} has no version {version} (it has {hist[0].version}..{hist[-1].version})")
    if steps is not None:
        if not 1 <= steps <= len(hist):
            raise VersionError(f"{rel} has {len(hist)} versions: --steps must be 1..{len(hist)}")
        return hist[-steps]
    if at is not None:
        # the content at time `at` is the first version kept after it (it was live until then)
        later = [v for v in hist if v.time > at]
        if not later:
            raise VersionError(f"{rel} has not changed since that time: nothing to roll back to")
        first = hist[0]
        if at < first.mtime_ns / 1e9:
            raise VersionError(
                f"{rel} has no version from before "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(first.mtime_ns / 1e9))}"
            )
        return later[0]
    raise VersionError("say which version: --version, --steps or --at")
