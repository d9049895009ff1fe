"""Where semfs keeps its state, and the registry of running mounts.

The state dir (SQLite, index, logs) of a backing folder defaults to
``$SEMFS_HOME/<hash of the backing path>/`` with ``SEMFS_HOME`` defaulting
to ``$XDG_DATA_HOME/semfs`` (``~/.local/share/semfs``). It can be moved
with ``--state-dir`` / ``SEMFS_STATE_DIR`` but never into the backing
folder, or it would show up inside the mount.

A running mount is described by a small JSON record under
``$SEMFS_HOME/mounts/``, keyed by the mountpoint, so ``semfs status`` and
``semfs unmount`` can find the daemon and the state dir from a mountpoint
alone, whatever state dir was chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..home import semfs_home as semfs_home  # (re-exported: core asks for it beside the state dirs)
from ..stores.atomic import write_atomic


def _key(path: Path) -> str:
    return hashlib.sha256(os.fsencode(path)).hexdigest()[:16]


def default_state_dir(backing: Path) -> Path:
    return semfs_home() / _key(backing)


def resolve_state_dir(backing: Path, explicit: Optional[str] = None) -> Path:
    """The state dir for ``backing``: ``explicit`` if given, else the default."""
    if explicit:
        return Path(os.path.abspath(os.path.expanduser(explicit)))
    return default_state_dir(backing)


@dataclass(frozen=True)
class MountRecord:
    """What a running daemon says about itself."""

    mountpoint: str
    backing: str
    state_dir: str
    pid: int
    started: float


def records_dir() -> Path:
    return semfs_home() / "mounts"


def _record_path(mountpoint: Path) -> Path:
    return records_dir() / f"{_key(mountpoint)}.json"


def save_record(rec: MountRecord) -> None:
    write_atomic(_record_path(Path(rec.mountpoint)), json.dumps(asdict(rec)).encode())


def load_record(mountpoint: Path) -> Optional[MountRecord]:
    return _read_record(_record_path(mountpoint))


def remove_record(mountpoint: Path, pid: Optional[int] = None) -> None:
    """Forget the record of ``mountpoint`` (only if it is ``pid``'s, when given)."""
    path = _record_path(mountpoint)
    rec = _read_record(path)
    if rec is None or (pid is not None and rec.pid != pid):
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def all_records() -> Iterator[MountRecord]:
    d = records_dir()
    if not d.is_dir():
        return
    for p in sorted(d.glob("*.json")):
        rec = _read_record(p)
        if rec is not None:
            yield rec


def _read_record(path: Path) -> Optional[MountRecord]:
    try:
        return MountRecord(**json.loads(path.read_bytes()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
