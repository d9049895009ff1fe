"""Where a path given to the CLI belongs: its backing folder, its mount, its state dir.

Every command that takes a path accepts a mountpoint, a path inside a
mount, or a backing folder (or a path inside one), and finds the state
dir the same way: the running mount's record first, then ``--state-dir``
/ ``SEMFS_STATE_DIR``, then the default for that backing folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InvalidRequest, NotFound
from .state import MountRecord, resolve_state_dir


def backing_folder(path: str) -> Path:
    b = Path(os.path.abspath(os.path.expanduser(path)))
    if not b.is_dir():
        raise InvalidRequest(f"not a directory: {b}")
    return b.resolve()


@dataclass
class Located:
    backing: Path
    rel: str  # the path relative to the backing folder ("" for the folder itself)
    mountpoint: Optional[Path]  # if mounted
    state_dir: Path  # the mount's own (its --state-dir, if it was given one), else as the caller chose
    daemon_pid: Optional[int] = None  # the mount's daemon, if mounted


def _rel(p: Path, root: Path) -> str:
    return "" if p == root else p.relative_to(root).as_posix()


def _mount_of(p: Path) -> Optional[tuple[MountRecord, Path]]:
    """The running mount whose mountpoint or backing folder holds ``p`` (or is ``p``), and which of the two."""
    from .mounts import status

    for st in status():
        rec = st.record
        if rec is None or st.state != "mounted":
            continue
        for root in (Path(rec.mountpoint), Path(rec.backing)):
            if p == root or root in p.parents:
                return rec, root
    return None


def _located(rec: MountRecord, p: Path, root: Path) -> Located:
    return Located(Path(rec.backing), _rel(p, root), Path(rec.mountpoint), Path(rec.state_dir), rec.pid)


def place(path: str, state_dir: Optional[str] = None) -> Located:
    """A folder the CLI was given (mountpoint, backing folder, or a folder inside either) and its state."""
    p = Path(os.path.abspath(os.path.expanduser(path)))
    found = _mount_of(p)
    if found is not None:
        return _located(found[0], p, found[1])
    b = backing_folder(path)
    return Located(b, "", None, resolve_state_dir(b, state_dir))


def locate(path: str, backing: Optional[str] = None, state_dir: Optional[str] = None) -> Located:
    """Where a file through a mount, or in a backing folder, belongs."""
    p = Path(os.path.abspath(os.path.expanduser(path)))
    if backing is not None:
        b = backing_folder(backing)
        if b not in p.parents:
            p = b / path  # a path relative to the backing folder
        found = _mount_of(b)
        if found is not None and Path(found[0].backing) == b:
            return _located(found[0], p, b)
        return Located(b, _rel(p, b), None, resolve_state_dir(b, state_dir))
    found = _mount_of(p)
    if found is None or p == found[1]:
        raise NotFound(f"{p} is not in a mounted folder: name its backing folder with --backing")
    return _located(found[0], p, found[1])
