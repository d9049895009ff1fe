"""The change hook: what the mount publishes for each kind of change."""

from __future__ import annotations

import os
import subprocess
import time

from semfs.core.events import ChangeEvent, EventBus, EventKind
from semfs.fs.changes import ChangeTracker

from helpers import Recorder, wait_for

W, R, D, T = EventKind.WRITTEN, EventKind.RENAMED, EventKind.DELETED, EventKind.TRUNCATED


def kinds(events):
    return [(e.kind, e.path, e.dest) for e in events]


def test_write_and_close_is_one_event(inproc_mount):
    backing, mnt, rec = inproc_mount
    with open(mnt / "a.txt", "w") as f:
        for i in range(1000):
            f.write(f"line {i}\n")
            f.flush()
        assert rec.take() == []  # nothing until the file is closed
    assert kinds(rec.wait(1)) == [(W, "a.txt", None)]


def test_reading_publishes_nothing(inproc_mount):
    backing, mnt, rec = inproc_mount
    (backing / "r.txt").write_text("r")
    assert (mnt / "r.txt").read_text() == "r"
    os.listdir(mnt)
    os.stat(mnt / "r.txt")
    time.sleep(0.2)
    assert rec.take() == []


def test_create_empty_file_is_written(inproc_mount):
    _, mnt, rec = inproc_mount
    (mnt / "empty").touch()
    assert kinds(rec.wait(1)) == [(W, "empty", None)]


def test_namespace_events(inproc_mount):
    backing, mnt, rec = inproc_mount
    os.mkdir(mnt / "d")
    (mnt / "d" / "f.txt").write_text("f")
    got = rec.wait(2)  # the write's event comes with the (asynchronous) release
    os.rename(mnt / "d" / "f.txt", mnt / "g.txt")
    os.truncate(mnt / "g.txt", 0)
    os.rename(mnt / "d", mnt / "e")
    os.unlink(mnt / "g.txt")
    os.rmdir(mnt / "e")
    got += rec.wait(5)
    assert kinds(got) == [
        (EventKind.DIR_CREATED, "d", None),
        (W, "d/f.txt", None),
        (R, "d/f.txt", "g.txt"),
        (T, "g.txt", None),
        (R, "d", "e"),
        (D, "g.txt", None),
        (EventKind.DIR_REMOVED, "e", None),
    ]
    assert [e.is_dir for e in got if e.kind == R] == [False, True]


def test_file_renamed_while_open_reports_its_new_name(inproc_mount):
    _, mnt, rec = inproc_mount
    with open(mnt / "old.txt", "w") as f:
        f.write("x")
        os.rename(mnt / "old.txt", mnt / "new.txt")
        f.write("y")
    assert kinds(rec.wait(2)) == [(R, "old.txt", "new.txt"), (W, "new.txt", None)]


def test_file_deleted_while_open_is_not_reported_written(inproc_mount):
    backing, mnt, rec = inproc_mount
    with open(mnt / "gone.txt", "w") as f:
        f.write("x")
        os.unlink(mnt / "gone.txt")
        f.write("y")
    assert kinds(rec.wait(1, settle=0.3)) == [(D, "gone.txt", None)]
    # libfuse's hidden stand-in is gone with the last close, and never reported
    wait_for(lambda: os.listdir(backing) == [], what="hidden file removal")


def test_atomic_save_pattern(inproc_mount):
    """Editors write a temp file and rename it over the original."""
    _, mnt, rec = inproc_mount
    (mnt / "doc.md").write_text("v1")
    rec.wait(1)
    (mnt / ".doc.md.swp").write_text("v2")
    rec_swp = rec.wait(1)
    os.replace(mnt / ".doc.md.swp", mnt / "doc.md")
    assert kinds(rec_swp + rec.wait(1)) == [(W, ".doc.md.swp", None), (R, ".doc.md.swp", "doc.md")]
    assert (mnt / "doc.md").read_text() == "v2"


def test_hard_link_and_shell_truncate(inproc_mount):
    _, mnt, rec = inproc_mount
    (mnt / "a").write_text("abc")
    first = rec.wait(1)
    os.link(mnt / "a", mnt / "b")
    subprocess.run(["truncate", "-s", "1", str(mnt / "b")], check=True)
    assert kinds(first + rec.wait(2)) == [(W, "a", None), (W, "b", None), (W, "b", None)]


def test_subscriber_failure_reaches_no_one_else():
    bus = EventBus()
    bus.subscribe(lambda e: 1 / 0)
    seen = Recorder()
    bus.subscribe(seen)
    tracker = ChangeTracker(bus)
    tracker.opened(7, "/x.txt", dirty=True)
    tracker.closed(7)
    assert seen.take() == [ChangeEvent(W, "x.txt")]


def test_unsubscribe():
    bus, seen = EventBus(), Recorder()
    off = bus.subscribe(seen)
    bus.publish(ChangeEvent(D, "a"))
    off()
    bus.publish(ChangeEvent(D, "b"))
    assert [e.path for e in seen.take()] == ["a"]
