"""Versions through a real mount: every overwrite, replace and delete keeps the content before it."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess

import pytest
from click.testing import CliRunner

from semfs.cli import cli
from semfs.core.versions.keeper import Versions
from semfs.core.versions.openfiles import writers

from helpers import REFUSED, start_mount, wait_for


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def history(m, rel) -> list[tuple[int, str]]:
    r = run("history", m.mnt / rel)
    assert r.exit_code == 0, r.output
    return [(int(line.split()[0]), line.split()[4]) for line in r.output.splitlines()[1:]]


def test_overwrites_keep_the_content_before(mount):
    f = mount.mnt / "notes.txt"
    f.write_text("one\n")
    f.write_text("two\n")
    with open(f, "a") as h:
        h.write("three\n")
    assert history(mount, "notes.txt") == [(1, "truncate"), (2, "write")]
    assert "versions:  2 versions of 1 file," in run("status", mount.mnt).output
    assert run("diff", f, 1, 2).output.splitlines()[-2:] == ["-one", "+two"]
    assert "+three" in run("diff", f).output  # newest version to now
    r = run("rollback", f, "--steps", "2", "--dry-run")
    assert "-two" in r.output and "+one" in r.output and f.read_text() == "two\nthree\n"
    assert run("rollback", f, "--version", 1).exit_code == 0
    assert f.read_text() == "one\n" and (mount.backing / "notes.txt").read_text() == "one\n"
    assert history(mount, "notes.txt")[-1] == (3, "truncate")  # the restore kept what it replaced


def test_atomic_save_delete_and_restore(mount):
    f = mount.mnt / "doc.md"
    f.write_text("draft 1")
    (mount.mnt / ".doc.md.tmp").write_text("draft 2")
    os.replace(mount.mnt / ".doc.md.tmp", f)  # an editor's save
    assert history(mount, "doc.md") == [(1, "rename")]
    os.unlink(f)
    assert history(mount, "doc.md") == [(1, "rename"), (2, "delete")]
    assert run("rollback", mount.mnt / "doc.md", "--steps", 1).exit_code == 0  # recreates it
    assert f.read_text() == "draft 2"


def test_history_follows_renames(mount):
    (mount.mnt / "a.txt").write_text("v1")
    (mount.mnt / "a.txt").write_text("v2")
    os.mkdir(mount.mnt / "d")
    os.rename(mount.mnt / "a.txt", mount.mnt / "d" / "b.txt")
    assert history(mount, "d/b.txt") == [(1, "truncate")]
    os.rename(mount.mnt / "d", mount.mnt / "e")
    assert history(mount, "e/b.txt") == [(1, "truncate")]


def test_restore_reaches_search(mount):
    f = mount.mnt / "plan.txt"
    f.write_text("zeppelin itinerary")
    f.write_text("submarine itinerary")

    def found(word):
        r = run("search", mount.backing, word, "--mode", "bm25", "--json")
        return [json.loads(x)["path"] for x in r.output.splitlines()] if r.exit_code == 0 else []

    wait_for(lambda: found("submarine") == ["plan.txt"], what="indexed")
    assert run("rollback", f, "--steps", 1).exit_code == 0
    wait_for(lambda: found("zeppelin") == ["plan.txt"] and found("submarine") == [], what="restored content indexed")


def test_binary_files_and_identical_content(mount):
    f = mount.mnt / "img.bin"
    blob = bytes(range(256)) * 100
    f.write_bytes(blob)
    f.write_bytes(blob)  # same content again: one version, stored once
    f.write_bytes(b"\x00new")
    assert [v for v, _ in history(mount, "img.bin")] == [1]
    assert run("rollback", f, "--version", 1).exit_code == 0 and f.read_bytes() == blob


def test_bad_rollbacks(mount, tmp_path):
    f = mount.mnt / "x.txt"
    r = run("rollback", f, "--steps", 1)
    assert r.exit_code == 1 and "no history for x.txt" in r.output
    f.write_text("a")
    f.write_text("b")
    assert "--steps must be 1..1" in run("rollback", f, "--steps", 5).output
    assert "no version 9" in run("rollback", f, "--version", 9).output
    assert "has no version from before" in run("rollback", f, "--at", "1990-01-01").output
    assert run("rollback", f).exit_code == 2 and run("rollback", f, "--at", "yesterday").exit_code == 2
    assert f.read_text() == "b"


def test_damaged_version_is_refused_and_others_still_work(mount):
    f = mount.mnt / "d.txt"
    for text in ("first", "second", "third"):
        f.write_text(text)
    from semfs.core.state import default_state_dir

    vs = Versions(mount.backing, default_state_dir(mount.backing.resolve()))
    v1, v2 = vs.history("d.txt")
    vs.blobs.path(v1.sha256).write_bytes(b"rot")
    r = run("rollback", f, "--version", 1)
    assert r.exit_code == 1 and "damaged" in r.output and f.read_text() == "third"
    assert run("rollback", f, "--version", 2).exit_code == 0 and f.read_text() == "second"


def test_a_failing_version_store_never_blocks_a_write(tmp_path, monkeypatch):
    backing = tmp_path / "b"
    backing.mkdir()
    (backing / "f.txt").write_text("old")
    vs = Versions(backing, tmp_path / "s")

    def full(src):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(vs.blobs, "put_file", full)
    assert vs.keep("f.txt", "write") is None  # no exception for the caller
    from semfs.stores import metadata as md

    assert md.get_meta(vs._db(), "versions").startswith("failing: could not keep a version of f.txt")


def test_mount_without_versions(tmp_path):
    m = start_mount(tmp_path / "b", tmp_path / "m", "--no-versions")
    try:
        (m.mnt / "a.txt").write_text("1")
        (m.mnt / "a.txt").write_text("2")
        assert "no history" in run("history", m.mnt / "a.txt").output
    finally:
        m.unmount()


def test_deletes_are_kept_by_hard_link_then_stored(tmp_path):
    backing = tmp_path / "b"
    backing.mkdir()
    f = backing / "gone.txt"
    f.write_text("last words")
    vs = Versions(backing, tmp_path / "s")
    vs._kick = lambda: None  # no background thread: each step by hand
    assert vs.keep("gone.txt", "delete") is None  # journaled: the row comes later
    os.unlink(f)
    (v,) = vs.history("gone.txt")
    assert v.version == 1 and v.sha256 is None and vs.content(v) == b"last words"  # from the pending link
    other = Versions(backing, tmp_path / "s")  # another process (semfs history) sees it too, from the journal
    assert [(v.version, v.origin) for v in other.history("gone.txt")] == [(1, "delete")]
    assert vs.record_journaled() == 1 and (tmp_path / "s" / "pending" / "journal").stat().st_size == 0
    assert vs.settle_pending() == 1
    (v,) = vs.history("gone.txt")
    assert v.sha256 and v.pending is None and vs.content(v) == b"last words"
    assert [p.name for p in (tmp_path / "s" / "pending").iterdir()] == ["journal"]


def test_journaled_deletes_survive_a_crash(tmp_path):
    """The daemon killed after the unlinks, before their rows: the next mount records them."""
    backing = tmp_path / "b"
    backing.mkdir()
    vs = Versions(backing, tmp_path / "s")
    vs._kick = lambda: None  # dies before the background thread ever runs
    for i in range(5):
        (backing / f"f{i}.txt").write_text(f"file {i}")
        vs.keep(f"f{i}.txt", "delete")
        os.unlink(backing / f"f{i}.txt")
    (backing / "f0.txt").write_text("new f0")
    restarted = Versions(backing, tmp_path / "s")
    restarted.recover()
    assert restarted.keep("f0.txt", "write") == 2  # numbered after the journaled one
    for i in range(5):
        first = restarted.history(f"f{i}.txt")[0]
        assert (first.version, first.origin) == (1, "delete") and restarted.content(first) == f"file {i}".encode()
    assert (tmp_path / "s" / "pending" / "journal").stat().st_size == 0


def test_rollback_without_a_mount_keeps_mode(tmp_path):
    from semfs.core.state import default_state_dir

    backing = tmp_path / "b"
    backing.mkdir()
    f = backing / "script.sh"
    f.write_text("echo one\n")
    os.chmod(f, 0o750)
    vs = Versions(backing, default_state_dir(backing.resolve()))
    vs.keep("script.sh", "write")
    f.write_text("echo two\n")
    r = run("rollback", f, "--backing", backing, "--version", 1)
    assert r.exit_code == 0, r.output
    assert f.read_text() == "echo one\n" and (os.stat(f).st_mode & 0o777) == 0o750
    assert [v.origin for v in vs.history("script.sh")] == ["write", "rollback"]


def test_history_folder(mount):
    h = mount.mnt / "history"
    assert os.listdir(h) == []
    (mount.mnt / "sub").mkdir()
    f = mount.mnt / "sub" / "plan.md"
    for text in ("first\n", "second\n", "third\n"):
        f.write_text(text)
    names = sorted(os.listdir(h / "sub" / "plan.md"))
    assert len(names) == 2 and all(re.fullmatch(r"\d{4} \d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.md", n) for n in names), names
    first = h / "sub" / "plan.md" / names[0]
    assert first.read_text() == "first\n" and os.stat(first).st_size == len("first\n")
    assert subprocess.run(["cat", str(first)], capture_output=True).stdout == b"first\n"
    d = subprocess.run(["diff", str(first), str(f)], capture_output=True, text=True)
    assert "< first" in d.stdout and "> third" in d.stdout
    out = mount.backing / "copy.md"
    subprocess.run(["cp", str(first), str(out)], check=True)
    assert out.read_text() == "first\n"
    for attempt in (lambda: open(first, "w"), lambda: os.unlink(first), lambda: os.mkdir(h / "x")):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == REFUSED
    os.unlink(f)  # a deleted file stays listed, with what it held last
    assert os.listdir(h) == ["sub"] and os.listdir(h / "sub") == ["plan.md"]
    last = sorted(os.listdir(h / "sub" / "plan.md"))[-1]
    assert (h / "sub" / "plan.md" / last).read_text() == "third\n"
    with pytest.raises(FileNotFoundError):
        os.stat(h / "sub" / "never.md")


def test_history_describes_each_change(mount):
    f = mount.mnt / "todo.txt"
    f.write_text("buy bread\n")
    f.write_text("buy bread\nbuy milk\ncall Anna\n")
    f.write_text("call Anna\n")
    r = run("history", f)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[-1] == "change"
    assert lines[1].endswith("+2 -0 lines") and lines[2].endswith("+0 -2 lines"), r.output
    r = run("history", f, "--summaries", "--llm", "off")
    assert r.exit_code == 0 and "+2 -0 lines" in r.output and "diff stats" in r.output


def test_history_summaries_by_the_real_model(mount):
    """gemma-3-270m writes a note per change; it is cached by content."""
    f = mount.mnt / "plan.md"
    f.write_text("# Plan\nLaunch: May\n")
    f.write_text("# Plan\nLaunch: July\n")
    r = run("history", f, "--summaries", "--llm", "default")
    assert r.exit_code == 0, r.output
    line = r.output.splitlines()[1]
    assert line.endswith("(+1 -1 lines)") and len(line.split("truncate", 1)[1].strip()) > len("(+1 -1 lines)"), r.output
    from semfs.core.versions.service import versions_of

    vs, _, _ = versions_of(str(f))
    assert vs._db().execute("SELECT count(*) FROM change_notes").fetchone()[0] == 1
    assert run("history", f, "--summaries", "--llm", "default").output == r.output  # from the cache


def test_history_with_a_damaged_version(mount):
    f = mount.mnt / "x.txt"
    for text in ("one\n", "two\n", "three\n"):
        f.write_text(text)
    from semfs.core.versions.service import versions_of

    vs, rel, _ = versions_of(str(f))
    first = vs.history(rel)[0]
    vs.blobs.path(first.sha256).write_bytes(b"garbage")
    r = run("history", f)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()  # (stderr has the library's warning on the damaged blob)
    assert "unreadable" in lines[1] and lines[2].endswith("+1 -1 lines"), r.output
    assert "is damaged" in r.stderr


def test_rollback_while_another_process_writes(mount):
    f = mount.mnt / "log.txt"
    f.write_text("one\n")
    f.write_text("two\n")
    writer = subprocess.Popen(["sh", "-c", f"exec 3>>'{f}'; read x"], stdin=subprocess.PIPE)
    try:
        wait_for(lambda: writer.pid in writers([f]), what="the writer to open the file")
        assert mount.proc.pid in writers([mount.backing / "log.txt"])  # the daemon holds it for the writer
        r = run("rollback", f, "--version", 1)
        assert r.exit_code == 1 and "is open for writing by pid" in r.output and r.output.count("\n") == 1, r.output
        assert f"pid {writer.pid} " in r.output and f"pid {mount.proc.pid} " not in r.output  # ... and is no writer
        assert f.read_text() == "two\n"
        assert run("rollback", f, "--version", 1, "--dry-run").exit_code == 0  # looking is fine
        assert run("rollback", f, "--version", 1, "--force").exit_code == 0
        assert f.read_text() == "one\n"
    finally:
        writer.communicate(b"\n")
    assert run("rollback", f, "--version", 2).exit_code == 0  # closed: no objection


def test_a_full_disk_never_costs_the_user_a_write_as_root(tmp_path):
    """The state dir on a 1 MB tmpfs: keeping a 1.5 MB version fails, the overwrite does not."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(state)], check=True)
    try:
        m = start_mount(tmp_path / "b", tmp_path / "m", "--no-index", "--state-dir", str(state))
        try:
            f = m.mnt / "big.bin"
            f.write_bytes(os.urandom(1_500_000))  # does not compress
            new = os.urandom(1_500_000)
            f.write_bytes(new)  # its version cannot be kept: the write goes ahead
            assert f.read_bytes() == new and (m.backing / "big.bin").read_bytes() == new
            r = run("status", m.mnt)
            assert "below its reserve" in r.output, r.output  # not tried: it would not fit
            (m.mnt / "small.txt").write_text("still works")
            assert (m.backing / "small.txt").read_text() == "still works"
        finally:
            m.unmount()
    finally:
        subprocess.run(["umount", "-l", str(state)])


def test_a_journal_that_cannot_be_written_falls_back_to_a_row(tmp_path, monkeypatch):
    backing = tmp_path / "b"
    backing.mkdir()
    (backing / "f.txt").write_text("precious")
    vs = Versions(backing, tmp_path / "s")
    monkeypatch.setattr(vs, "_journal", lambda entry: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert vs.keep("f.txt", "delete") == 1  # recorded at once instead
    os.unlink(backing / "f.txt")
    (v,) = vs.history("f.txt")
    assert vs.content(v) == b"precious"


def test_take_moves_a_deleted_file_into_the_store(tmp_path):
    backing = tmp_path / "b"
    (backing / "d").mkdir(parents=True)
    vs = Versions(backing, tmp_path / "s")
    vs._kick = lambda: None
    f = backing / "d" / "gone.txt"
    f.write_text("kept by a rename")
    assert vs.take("d/gone.txt") and not f.exists()
    (v,) = vs.history("d/gone.txt")
    assert (v.origin, v.sha256) == ("delete", None) and vs.content(v) == b"kept by a rename"
    linked = backing / "two.txt"
    linked.write_text("two names")
    os.link(linked, backing / "other.txt")
    assert not vs.take("two.txt") and linked.exists()  # a second name would show it: left to unlink
    # nor kept on the way: its content stays under the other name (git's temporary objects)
    assert vs.keep("two.txt", "delete") is None and vs.keep("two.txt", "rename") is None
    assert vs.history("two.txt") == []
    assert vs.keep("two.txt", "write") == 1  # an overwrite in place changes both names: kept
    assert not vs.take("d") and not vs.take("missing.txt")
    vs.record_journaled()
    assert vs.settle_pending() == 1 and vs.content(vs.history("d/gone.txt")[0]) == b"kept by a rename"


def test_history_diff_and_rollback_find_a_mount_with_its_own_state_dir(tmp_path):
    """The CLI takes the state dir from the mount's record, not from the default for its backing folder."""
    m = start_mount(tmp_path / "b", tmp_path / "m", "--state-dir", str(tmp_path / "elsewhere"))
    try:
        f = m.mnt / "poem.txt"
        f.write_text("roses\n")
        f.write_text("violets\n")
        r = run("history", f)
        assert r.exit_code == 0 and "\n      1  " in r.output, r.output
        assert run("diff", f).output.splitlines()[-2:] == ["-roses", "+violets"]
        assert run("rollback", f, "--version", 1).exit_code == 0 and f.read_text() == "roses\n"
        r = run("history", m.backing / "poem.txt", "--backing", m.backing)
        assert r.exit_code == 0 and "\n      2  " in r.output, r.output
    finally:
        m.unmount()


def test_below_the_reserve_versions_yield_oldest_first(tmp_path, monkeypatch):
    """Issue 22, item 3: while the state dir's disk is below its reserve, a change keeps no version
    (so its space is freed) and a prune drops the oldest versions until the disk is above it,
    whatever keep and days say, without waiting out the blobs' grace."""
    from semfs.core.versions import retention

    backing, state = tmp_path / "b", tmp_path / "state"
    backing.mkdir()
    f = backing / "f.bin"
    vs = Versions(backing, state)
    for _ in range(6):
        f.write_bytes(os.urandom(200_000))  # does not compress
        assert vs.keep("f.bin", "write") is not None
    assert len(vs.history("f.bin")) == 6
    st = os.statvfs(state)
    free = st.f_bavail * st.f_frsize
    monkeypatch.setenv("SEMFS_RESERVE", str(free + 500_000))  # half a megabyte short
    assert not vs.room_for(1) and vs.prune_wanted.is_set()
    f.write_bytes(os.urandom(200_000))
    assert vs.keep("f.bin", "write") is None  # nothing kept below the reserve
    report = retention.collect(vs, retention.Policy(keep=10, days=30))
    left = [v.version for v in vs.history("f.bin")]
    assert report.versions >= 3 and report.bytes_freed >= 500_000, report
    assert left == list(range(7 - len(left), 7))  # the newest stayed
    monkeypatch.setenv("SEMFS_RESERVE", "0")
    assert vs.keep("f.bin", "write") is not None  # above it again: kept
