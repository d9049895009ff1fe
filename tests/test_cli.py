"""CLI errors: each bad request gets one clear line, a non-zero exit, and changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from click.testing import CliRunner

from semfs.cli import cli
from semfs.core import mounts

from helpers import start_mount, wait_for


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def assert_error(result, *needles):
    assert result.exit_code != 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def dirs(tmp_path):
    b, m = tmp_path / "b", tmp_path / "m"
    b.mkdir()
    m.mkdir()
    (b / "keep.txt").write_text("keep")
    return b, m


def test_backing_missing(dirs, tmp_path):
    _, m = dirs
    assert_error(run("mount", tmp_path / "nope", m), "backing folder does not exist")
    assert not os.path.ismount(m)


def test_backing_not_a_directory(dirs):
    b, m = dirs
    assert_error(run("mount", b / "keep.txt", m), "not a directory")


def test_mountpoint_missing(dirs, tmp_path):
    b, _ = dirs
    assert_error(run("mount", b, tmp_path / "nomnt"), "mountpoint does not exist", "mkdir")
    assert not (tmp_path / "nomnt").exists()


def test_mountpoint_not_empty(dirs):
    b, m = dirs
    (m / "something").write_text("x")
    assert_error(run("mount", b, m), "mountpoint is not empty")
    assert (m / "something").read_text() == "x"


def test_mountpoint_inside_backing(dirs):
    b, _ = dirs
    (b / "inner").mkdir()
    assert_error(run("mount", b, b / "inner"), "inside the backing folder")
    assert_error(run("mount", b, b), "inside the backing folder")


def test_state_dir_inside_backing(dirs):
    b, m = dirs
    assert_error(run("mount", "--state-dir", b / ".semfs", b, m), "state dir", "inside the backing folder")
    assert not (b / ".semfs").exists()


def test_state_dir_from_environment(dirs, monkeypatch, tmp_path):
    b, m = dirs
    monkeypatch.setenv("SEMFS_STATE_DIR", str(b / "state"))
    assert_error(run("mount", b, m), "state dir")


def test_no_dev_fuse(dirs, monkeypatch, tmp_path):
    b, m = dirs
    monkeypatch.setattr(mounts, "DEV_FUSE", str(tmp_path / "no-such-device"))
    assert_error(run("mount", b, m), "FUSE is not available", "modprobe fuse")


def test_fuse_library_missing(dirs, monkeypatch):
    b, m = dirs
    monkeypatch.setattr(mounts, "find_fuse_library", lambda: None)
    assert_error(run("mount", b, m), "libfuse3", "apt-get install fuse3")


def test_unmount_not_mounted(dirs):
    _, m = dirs
    assert_error(run("unmount", m), "not mounted")


def test_unmount_refuses_other_filesystems_as_root(tmp_path):
    m = tmp_path / "other"
    m.mkdir()
    b = tmp_path / "ob"
    b.mkdir()
    subprocess.run(["mount", "--bind", str(b), str(m)], check=True)
    try:
        assert_error(run("unmount", m), "not a semfs mount")
        assert mounts.mount_fstype(m) is not None
    finally:
        subprocess.run(["umount", str(m)], check=True)


def test_already_mounted(dirs, tmp_path):
    b, m = dirs
    mnt = start_mount(b, m)
    try:
        assert_error(run("mount", b, m), "already mounted")
        other = tmp_path / "m2"
        other.mkdir()
        # the same backing folder twice would share one state dir
        assert_error(run("mount", b, other), "already mounted", str(m))
        assert not os.path.ismount(other)
    finally:
        mnt.unmount()


def test_background_mount_status_unmount(dirs, semfs_home):
    b, m = dirs
    r = run("mount", b, m)
    assert r.exit_code == 0, r.output
    assert os.path.ismount(m)
    assert (m / "keep.txt").read_text() == "keep"
    st = run("status", m)
    assert st.exit_code == 0
    assert f"{m}: mounted" in st.output
    assert f"backing:   {b}" in st.output
    assert "pid:" in st.output and f"state dir: {semfs_home}" in st.output
    pid = int(st.output.split("pid:")[1].split()[0])
    assert f"{m}: mounted" in run("status").output
    r = run("unmount", m)
    assert r.exit_code == 0, r.output
    assert not os.path.ismount(m)
    wait_for(lambda: not _alive(pid), what="daemon exit")
    assert "no semfs mounts" in run("status").output
    assert "not mounted" in run("status", m).output


def _alive(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill9_leaving_stale_mount(b, m):
    r = run("mount", b, m)
    assert r.exit_code == 0, r.output
    pid = int(run("status", m).output.split("pid:")[1].split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), what="daemon death")
    with pytest.raises(OSError) as e:
        os.listdir(m)
    assert "Transport endpoint is not connected" in str(e.value)


def test_stale_mount_is_cleared_by_mount(dirs):
    b, m = dirs
    _kill9_leaving_stale_mount(b, m)
    assert "stale" in run("status", m).output
    r = run("mount", b, m)
    assert r.exit_code == 0, r.output
    try:
        assert (m / "keep.txt").read_text() == "keep"
    finally:
        assert run("unmount", m).exit_code == 0


def test_stale_mount_is_cleared_by_unmount(dirs):
    b, m = dirs
    _kill9_leaving_stale_mount(b, m)
    r = run("unmount", m)
    assert r.exit_code == 0, r.output
    assert "stale" in r.output
    assert not os.path.ismount(m)
    assert os.listdir(m) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_unmount_cleanly(dirs, sig):
    b, m = dirs
    mnt = start_mount(b, m)
    try:
        (m / "written.txt").write_text("before the signal")
        mnt.proc.send_signal(sig)
        assert mnt.proc.wait(timeout=20) == 0
        assert not os.path.ismount(m)
        assert (b / "written.txt").read_text() == "before the signal"
    finally:
        mnt.unmount()


def test_odd_backing_path(tmp_path):
    b = tmp_path / "my notes, ünï\\cöde"
    m = tmp_path / "mount point"
    b.mkdir()
    m.mkdir()
    (b / "a.txt").write_text("a")
    r = run("mount", b, m)
    assert r.exit_code == 0, r.output
    try:
        assert (m / "a.txt").read_text() == "a"
        assert f"{m}: mounted" in run("status", m).output
    finally:
        assert run("unmount", m).exit_code == 0


def test_search_bad_input(tmp_path):
    b = tmp_path / "b"
    b.mkdir()
    assert_error(run("search", b, "anything"), "has no index yet", "semfs index")
    assert_error(run("search", tmp_path / "nope", "x"), "not a directory")
    assert run("search", b).exit_code == 2  # neither prompt nor --queries
    assert "empty" in run("search", b, "   ").output
    assert run("search", b, "x", "-k", "0").exit_code == 2


def test_index_then_search_and_queries_file(tmp_path):
    b = tmp_path / "b"
    (b / "sub").mkdir(parents=True)
    (b / "sub" / "wing.txt").write_text("lift and drag of a swept wing")
    (b / "soup.md").write_text("red lentil soup")
    r = run("index", b)
    assert r.exit_code == 0, r.output
    assert "indexed 2 changed files" in r.output
    assert run("index", b).output.startswith("indexed 0 changed files")  # nothing changed
    out = run("search", b, "swept wing drag", "--json", "-k", "1").output.splitlines()
    obj = json.loads(out[0])
    assert len(out) == 1 and obj["path"] == "sub/wing.txt" and "swept wing" in obj["snippet"]
    assert isinstance(obj["score"], float)
    qf = tmp_path / "q.txt"
    qf.write_text("lentil soup\n\nswept wing\n")
    lines = [json.loads(x) for x in run("search", b, "--queries", qf, "--json", "-k", "1").output.splitlines()]
    assert [(x["query"], x["path"]) for x in lines] == [("lentil soup", "soup.md"), ("swept wing", "sub/wing.txt")]
    text = run("search", b, "lentil").output
    assert "soup.md" in text
    st = run("status", b).output
    assert "backing folder, not mounted" in st and "2 files indexed, 0 queued, 0 failed" in st


def test_index_refuses_a_mounted_folder(dirs):
    b, m = dirs
    mnt = start_mount(b, m)
    try:
        assert_error(run("index", b), "is mounted at", "daemon keeps the index up to date")
    finally:
        mnt.unmount()


def test_every_command_finds_a_mounts_own_state_dir(tmp_path):
    """A mount with --state-dir: each command, given the mountpoint, a path in it or the
    backing folder, uses the mount's state (issue 12, item 7)."""
    b, m, state = tmp_path / "b", tmp_path / "m", tmp_path / "elsewhere" / "state"
    mnt = start_mount(b, m, "--state-dir", str(state))
    try:
        (m / "poem.txt").write_text("roses are red\n")
        (m / "poem.txt").write_text("roses are red\nviolets are blue\n")
        wait_for(lambda: "poem.txt" in run("search", m, "violets").output, what="indexed")
        for where in (m, b):
            st = run("status", where)
            assert st.exit_code == 0 and f"{m}: mounted" in st.output, st.output
            assert f"state dir: {state}" in st.output and "1 files indexed" in st.output, st.output
            assert "versions:  1 version of 1 file," in st.output, st.output
            r = run("search", where, "violets")
            assert r.exit_code == 0 and "poem.txt" in r.output, r.output
            r = run("query", where, "violets")
            assert r.exit_code == 0 and "poem.txt" in r.output, r.output
            assert_error(run("index", where), "mounted at", "daemon keeps the index up to date")
            r = run("gc", where, "--dry-run")
            assert r.exit_code == 0 and "would prune 0 versions" in r.output, r.output
        for f in (m / "poem.txt", b / "poem.txt"):
            r = run("history", f)
            assert r.exit_code == 0 and "truncate" in r.output, r.output
            r = run("diff", f)
            assert r.exit_code == 0 and "+violets are blue" in r.output, r.output
            r = run("rollback", f, "--steps", "1", "--dry-run")
            assert r.exit_code == 0 and "-violets are blue" in r.output, r.output
            r = run("summary", f, "--no-llm")
            assert r.exit_code == 0 and "roses are red" in r.output, r.output
        r = run("query", m, "--save", "flowers", "roses")
        assert r.exit_code == 0, r.output
        assert "flowers" in os.listdir(m / "query")
    finally:
        mnt.unmount()
    # unmounted: the backing folder and --state-dir (or SEMFS_STATE_DIR) name the same state
    st = run("status", b, "--state-dir", state)
    assert "backing folder, not mounted" in st.output and "1 files indexed" in st.output, st.output
    r = run("search", b, "violets", "--state-dir", state)
    assert r.exit_code == 0 and "poem.txt" in r.output, r.output
    r = run("history", b / "poem.txt", "--backing", b, "--state-dir", state)
    assert r.exit_code == 0 and "truncate" in r.output, r.output
    assert_error(run("search", b, "violets"), "has no index yet")
