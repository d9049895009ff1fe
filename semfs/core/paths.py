"""Where a path given to the CLI belongs: its backing folder, its mount, its state dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InvalidRequest, NotFound
from .state import resolve_state_dir


def backing_folder(path: str) -> Path:
    b = Path(os.path.abspath(os.path.expanduser(path)))
    if not b.is_dir():
        raise InvalidRequest(f"not a directory: {b}")
    return b.resolve()


@dataclass
class Located:
    backing: Path
    rel: str  # the path relative to the backing folder
    mountpoint: Optional[Path]  # if mounted
    state_dir: Path  # the mount's own (its --state-dir, if it was given one), else the default
    daemon_pid: Optional[int] = None  # the mount's daemon, if mounted


def locate(path: str, backing: Optional[str] = None) -> Located:
    """Where a path through a mount, or in a backing folder, belongs."""
    from .mounts import status

    p = Path(os.path.abspath(os.path.expanduser(path)))
    if backing is not None:
        b = backing_folder(backing)
        if b not in p.parents:
            p = b / path  # a path relative to the backing folder
        rec = next((st.record for st in status() if st.record and Path(st.record.backing) == b), None)
        state = Path(rec.state_dir) if rec is not None else resolve_state_dir(b)
        return Located(
            b, p.relative_to(b).as_posix(), Path(rec.mountpoint) if rec else None, state, rec.pid if rec else None
        )
    for st in status():
        rec = st.record
        if rec is None or st.state != "mounted":
            continue
        for root in (Path(rec.mountpoint), Path(rec.backing)):
            if root in p.parents:
                return Located(
                    Path(rec.backing),
                    p.relative_to(root).as_posix(),
                    Path(rec.mountpoint),
                    Path(rec.state_dir),
                    rec.pid,
                )
    raise NotFound(f"{p} is not in a mounted folder: name its backing folder with --backing")
