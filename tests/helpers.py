"""Helpers the tests share: waiting, real mounts, recorded events, running as nobody.

Fixtures live in conftest.py; tests import these from here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

from semfs.core.events import ChangeEvent


def wait_for(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def force_unmount(mnt: Path) -> None:
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)


class Mount:
    def __init__(self, backing: Path, mnt: Path, proc: subprocess.Popen):
        self.backing, self.mnt, self.proc = backing, mnt, proc

    def unmount(self) -> None:
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        force_unmount(self.mnt)


def start_mount(backing: Path, mnt: Path, *extra: str, log: Optional[Path] = None) -> Mount:
    """A foreground mount; its log goes to ``log`` if given (else to the test's stderr)."""
    backing.mkdir(parents=True, exist_ok=True)
    mnt.mkdir(parents=True, exist_ok=True)
    err = open(log, "ab") if log is not None else None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "semfs", "mount", "--foreground", *extra, str(backing), str(mnt)],
            stdin=subprocess.DEVNULL,
            stderr=err,
        )
    finally:
        if err is not None:
            err.close()
    try:
        wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None, what="mount")
    except AssertionError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise AssertionError(f"semfs mount exited with {proc.returncode}")
    return Mount(backing, mnt, proc)


@contextlib.contextmanager
def minilm_demo(tmp_path: Path, monkeypatch) -> Iterator[tuple[Path, Path]]:
    """The demo folder copied and mounted with the real MiniLM: (backing, mountpoint), unmounted after."""
    monkeypatch.setenv("SEMFS_EMBEDDER", "minilm")
    backing, mnt = tmp_path / "demo", tmp_path / "m"
    shutil.copytree(Path(__file__).parent.parent / "demo", backing)
    m = start_mount(backing, mnt)
    try:
        yield backing, mnt
    finally:
        m.unmount()


class Recorder:
    """Collects change events published by an in-process mount."""

    def __init__(self) -> None:
        self.events: list[ChangeEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: ChangeEvent) -> None:
        with self._lock:
            self.events.append(event)

    def take(self) -> list[ChangeEvent]:
        with self._lock:
            out, self.events = self.events, []
        return out

    def wait(self, n: int, settle: float = 0.1) -> list[ChangeEvent]:
        """The events once ``n`` have arrived, plus any that follow within ``settle`` s.

        The kernel sends RELEASE after close(2) has returned, so "written"
        events arrive a moment after the writer is done.
        """
        wait_for(lambda: len(self.events) >= n, timeout=10, what=f"{n} change events")
        time.sleep(settle)
        return self.take()


NOBODY = 65534


def run_as_nobody(script: str, *args: str) -> str:
    """Run a Python ``script`` as user nobody, with no groups; returns what it printed.

    The system python3, not ours: our interpreter may live under /root, out of nobody's reach.
    """
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python, "this test needs a python3 in /usr/bin or /bin that any user can run"
    res = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


# What a write into a virtual folder gets: the kernel refuses it by the folder's r-x mode before
# semfs is asked (EACCES); root passes the mode check, and semfs answers EROFS.
REFUSED = errno.EROFS if os.geteuid() == 0 else errno.EACCES


def damage(db, pages=(10, 11, 12)) -> None:
    """Random bytes over whole pages of an SQLite file (4096-byte pages, semfs's default)."""
    with open(db, "r+b") as f:
        for page in pages:
            f.seek(page * 4096)
            f.write(os.urandom(4096))


def root_pages(db, *tables: str) -> list[int]:
    """The pages where ``tables`` begin (a table's root: damage there loses all of it)."""
    conn = sqlite3.connect(db)
    try:
        q = ",".join("?" * len(tables))
        return [r[0] - 1 for r in conn.execute(f"SELECT rootpage FROM sqlite_master WHERE name IN ({q})", tables)]
    finally:
        conn.close()
