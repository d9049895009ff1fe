"""Fixtures: real FUSE mounts of temporary backing folders.

A mount is a ``semfs mount --foreground`` subprocess; the fixture waits
for ``os.path.ismount`` and always unmounts in teardown, even when the
test failed, killing the daemon if it does not go away by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from semfs.core.events import ChangeEvent, EventBus
from semfs.core.mounts import prepare_mount


def wait_for(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def force_unmount(mnt: Path) -> None:
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)


@pytest.fixture(autouse=True)
def semfs_home(tmp_path, monkeypatch):
    """Keep every test's state and mount records in its own tmp dir."""
    home = tmp_path / "semfs-home"
    monkeypatch.setenv("SEMFS_HOME", str(home))
    monkeypatch.delenv("SEMFS_STATE_DIR", raising=False)
    # Mounts index with the fast hashing embedder unless a test asks for the real model.
    monkeypatch.setenv("SEMFS_EMBEDDER", "hash")
    # ... and read prompts by rules, unless a test asks for the LLM.
    monkeypatch.setenv("SEMFS_LLM", "off")
    return home


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


def start_mount(backing: Path, mnt: Path, *extra: str) -> Mount:
    backing.mkdir(parents=True, exist_ok=True)
    mnt.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "semfs", "mount", "--foreground", *extra, str(backing), str(mnt)],
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None, what="mount")
    except AssertionError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise AssertionError(f"semfs mount exited with {proc.returncode}")
    return Mount(backing, mnt, proc)


@pytest.fixture
def mount(tmp_path):
    """A live mount of an empty backing folder: (backing, mountpoint) paths."""
    m = start_mount(tmp_path / "backing", tmp_path / "mnt")
    try:
        yield m
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


@pytest.fixture
def inproc_mount(tmp_path):
    """A mount served by a thread of this process, with its events recorded."""
    from semfs.fs.daemon import serve

    backing, mnt = tmp_path / "backing", tmp_path / "mnt"
    backing.mkdir()
    mnt.mkdir()
    bus, rec = EventBus(), Recorder()
    bus.subscribe(rec)
    spec = prepare_mount(str(backing), str(mnt))
    cwd = os.getcwd()
    t = threading.Thread(target=serve, args=(spec,), kwargs={"bus": bus}, daemon=True)
    t.start()
    wait_for(lambda: os.path.ismount(mnt), what="in-process mount")
    os.chdir(cwd)  # libfuse's fuse_main moves the whole process to /
    try:
        yield backing, mnt, rec
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        t.join(timeout=20)
        force_unmount(mnt)


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


@pytest.fixture
def open_tmp():
    """A temporary folder nobody can reach (pytest's own tmp dirs are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="semfs-open-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
