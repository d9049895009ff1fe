"""Checking, describing and tearing down semfs mounts.

Everything here runs before FUSE is involved or after it is gone, so it
can give the user a clear one-line error while nothing has been touched.
Mounting itself lives in ``semfs.fs.daemon``.

Caveats: a mount left by a killed daemon answers every ``stat`` with
ENOTCONN ("Transport endpoint is not connected"); it is cleared with a
lazy unmount (``fusermount3 -u -z``), which only detaches it, so a process
still sitting inside it keeps the old, dead view.
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import FuseUnavailable, MountError
from ..stores.private import private_dir
from .state import MountRecord, all_records, load_record, remove_record, resolve_state_dir

FSTYPE = "fuse.semfs"
DEV_FUSE = "/dev/fuse"
INSTALL_HINT = "install it with: sudo apt-get install fuse3"


def find_fuse_library() -> Optional[str]:
    return os.environ.get("FUSE_LIBRARY_PATH") or ctypes.util.find_library("fuse3")


def check_fuse_available() -> None:
    """Raise :class:`FuseUnavailable` unless this machine can mount FUSE."""
    dev = DEV_FUSE
    if not os.path.exists(dev):
        raise FuseUnavailable(
            f"FUSE is not available: {dev} is missing "
            "(load the kernel module with 'modprobe fuse'; in a container, pass --device /dev/fuse)"
        )
    if find_fuse_library() is None:
        raise FuseUnavailable(f"the FUSE library (libfuse3) is not installed: {INSTALL_HINT}")
    if shutil.which("fusermount3") is None:
        raise FuseUnavailable(f"fusermount3 is not installed: {INSTALL_HINT}")


def probe(path: Path) -> str:
    """'mounted', 'stale' (dead FUSE daemon), 'free' (exists, not a mountpoint) or 'missing'."""
    try:
        os.stat(path)
        # stat() may be answered from the kernel's attribute cache for a
        # moment after the daemon died; statfs always asks the daemon.
        os.statvfs(path)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            return "stale"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "missing"
        raise MountError(f"cannot access {path}: {e.strerror}") from None
    # ismount() misses bind mounts of the same filesystem; mountinfo does not
    return "mounted" if os.path.ismount(path) or mount_fstype(path) is not None else "free"


def mount_fstype(path: Path) -> Optional[str]:
    """The filesystem type mounted at ``path`` (from /proc/self/mountinfo), or None."""
    target = os.fsencode(path)
    fstype = None
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ")
            sep = fields.index(b"-")
            if _unescape(fields[4]) == target:
                fstype = fields[sep + 1].decode()  # the last one is on top
    return fstype


def _unescape(field: bytes) -> bytes:
    # mountinfo writes space, tab, newline and backslash as \ooo octal
    out, i = bytearray(), 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def clear_stale(path: Path) -> None:
    """Detach a dead FUSE mount at ``path``."""
    res = subprocess.run(["fusermount3", "-u", "-z", os.fsencode(path)], capture_output=True)
    if res.returncode != 0 and probe(path) == "stale":
        raise MountError(f"cannot clear the stale mount at {path}: {_last_line(res.stderr)}")


@dataclass(frozen=True)
class MountSpec:
    """A checked request to mount ``backing`` at ``mountpoint``."""

    backing: Path
    mountpoint: Path
    state_dir: Path
    allow_other: bool = False
    index: bool = True  # keep the search index up to date while mounted
    # a virtual folder kind -> its root's name (the CLI names every kind of fs.virtual.kinds;
    # a kind not named is named by itself)
    roots: dict[str, str] = dataclasses.field(default_factory=dict)
    llm: str = "default"  # "default" (the bundled model), "off", or a GGUF path
    versions: bool = True  # keep the content each change destroys

    def to_json(self) -> str:
        """The spec as one JSON object, for the daemon's command line."""
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> "MountSpec":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        raw = json.loads(text)
        unknown = raw.keys() - fields.keys()
        if unknown:
            raise MountError(f"unknown mount options: {', '.join(sorted(unknown))}")
        for name in ("backing", "mountpoint", "state_dir"):
            raw[name] = Path(raw[name])
        raw["roots"] = dict(raw.get("roots", {}))
        return cls(**raw)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def prepare_mount(
    backing: str,
    mountpoint: str,
    state_dir: Optional[str] = None,
    allow_other: bool = False,
    index: bool = True,
    roots: Optional[dict[str, str]] = None,
    llm: str = "default",
    versions: bool = True,
    index_url: Optional[str] = None,
    index_folder: Optional[str] = None,
) -> MountSpec:
    """Check a mount request and clear a stale mount in the way.

    Returns the resolved :class:`MountSpec`; raises :class:`MountError` with
    a one-line message, having changed nothing (but a stale mount), if the
    request cannot work.
    """
    check_fuse_available()

    b = Path(os.path.abspath(os.path.expanduser(backing)))
    if not b.exists():
        raise MountError(f"backing folder does not exist: {b}")
    if not b.is_dir():
        raise MountError(f"backing folder is not a directory: {b}")
    b = b.resolve()

    m = Path(os.path.abspath(os.path.expanduser(mountpoint)))
    state = probe(m)
    if state == "stale":
        clear_stale(m)
        state = probe(m)
    if state == "missing":
        raise MountError(f"mountpoint does not exist: {m} (create it with: mkdir -p '{m}')")
    if state == "mounted":
        raise MountError(f"already mounted: {m} (unmount it with: semfs unmount '{m}')")
    if not m.is_dir():
        raise MountError(f"mountpoint is not a directory: {m}")
    m = m.resolve()
    if _inside(m, b):
        raise MountError(f"mountpoint {m} is inside the backing folder {b}: the mount would contain itself")
    if any(os.scandir(m)):
        raise MountError(f"mountpoint is not empty: {m}")

    s = resolve_state_dir(b, state_dir)
    if _inside(s.resolve(), b):
        raise MountError(f"state dir {s} is inside the backing folder {b}: it would show up in the mount")
    holder = lock_holder(s)
    if holder is not None:
        where = f" at {holder.mountpoint} (pid {holder.pid})" if holder.pid else ""
        raise MountError(f"{b} is already mounted{where}: one mount per backing folder")
    roots = dict(roots or {})
    names = list(roots.values())
    for name in names:
        if not name or "/" in name or name in (".", "..") or names.count(name) > 1:
            raise MountError(f"invalid virtual folder name: {name!r}")
    if llm not in ("default", "off"):
        llm = os.path.abspath(os.path.expanduser(llm))
        if not os.path.isfile(llm):
            raise MountError(f"LLM model file not found: {llm}")
    if index:
        from ..stores import backends

        url, folder = backends.chosen(index_url, index_folder, b)
        backends.index_for(s, url, folder)  # reachable (a one-line error if not), and recorded for the daemon
    return MountSpec(
        backing=b,
        mountpoint=m,
        state_dir=s,
        allow_other=allow_other,
        index=index,
        roots=roots,
        llm=llm,
        versions=versions,
    )


# -- the state lock: held by a running daemon for as long as it serves ----


def _lock_path(state_dir: Path) -> Path:
    return state_dir / "daemon.lock"


def acquire_state_lock(state_dir: Path) -> int:
    """Take the exclusive lock on ``state_dir``; returns the fd to keep open."""
    private_dir(state_dir)
    fd = os.open(_lock_path(state_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MountError(f"state dir {state_dir} is in use by another semfs daemon") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def lock_holder(state_dir: Path) -> Optional[MountRecord]:
    """The record of the daemon holding ``state_dir``, if one does."""
    try:
        fd = os.open(_lock_path(state_dir), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        for rec in all_records():
            if Path(rec.state_dir) == state_dir:
                return rec
        return MountRecord(mountpoint="?", backing="?", state_dir=str(state_dir), pid=0, started=0.0)
    finally:
        os.close(fd)
    return None


# -- status and unmount ----------------------------------------------------


@dataclass(frozen=True)
class MountStatus:
    mountpoint: Path
    state: str  # mounted, stale, not mounted
    record: Optional[MountRecord]


def status(mountpoint: Optional[str] = None) -> list[MountStatus]:
    """Status of one mountpoint, or of every mount semfs knows about."""
    if mountpoint is not None:
        m = Path(os.path.abspath(os.path.expanduser(mountpoint)))
        rec = load_record(m)
        if rec is None:  # a backing folder names its mount too
            real = Path(os.path.realpath(m))
            rec = next((r for r in all_records() if Path(r.backing) == real), None)
            if rec is not None:
                m = Path(rec.mountpoint)
        return [_status_of(m, rec)]
    return [_status_of(Path(rec.mountpoint), rec) for rec in all_records()]


def _status_of(m: Path, rec: Optional[MountRecord]) -> MountStatus:
    state = probe(m)
    if state == "mounted" and mount_fstype(m) != FSTYPE:
        state = "not mounted"  # something else is mounted there
    elif state in ("free", "missing"):
        state = "not mounted"
    if rec is not None and state == "not mounted" and not _alive(rec.pid):
        remove_record(m, rec.pid)  # left by a daemon that was killed
        rec = None
    return MountStatus(mountpoint=m, state=state, record=rec)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unmount(mountpoint: str, timeout: float = 30.0) -> str:
    """Unmount a semfs mount and wait for its daemon to finish; returns a message."""
    m = Path(os.path.abspath(os.path.expanduser(mountpoint)))
    state = probe(m)
    rec = load_record(m)
    if state == "stale":
        clear_stale(m)
        if rec is not None:
            remove_record(m, rec.pid)
        return f"cleared a stale mount at {m} (its daemon had died)"
    if state != "mounted":
        raise MountError(f"not mounted: {m}")
    if mount_fstype(m) != FSTYPE:
        raise MountError(f"not a semfs mount: {m} (it is {mount_fstype(m)})")
    res = subprocess.run(["fusermount3", "-u", os.fsencode(m)], capture_output=True)
    if res.returncode != 0:
        raise MountError(f"cannot unmount {m}: {_last_line(res.stderr)}")
    if rec is not None:
        deadline = time.monotonic() + timeout
        while _alive(rec.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
            _reap(rec.pid)
    return f"unmounted {m}"


def _reap(pid: int) -> None:
    # The daemon may be our own child (tests, --foreground in a thread).
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"
