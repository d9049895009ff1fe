"""The mirror acts as its caller, beneath BACKING (issue 20).

- Another user swapping its own names for symlinks directly in BACKING,
  while it works through a root daemon's ``--allow-other`` mount, reaches
  nothing outside BACKING: a root-only canary keeps its mode, owner,
  content and times.
- A path under PATH_MAX inside the mount works however long BACKING's own
  path is.
- A file unlinked while open shows 0 links and keeps working; nothing named
  ``.fuse_hidden*`` is ever left in BACKING, so a build-and-git tree goes
  with one ``rm -rf``.
- Every name of a hard-linked file shows a change made through another at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import NOBODY, run_as_nobody, start_mount

# Run as nobody: for `seconds`, one process swaps its names in BACKING for symlinks to the
# canaries and back, while another works on those names through the mount. Prints every
# byte it read through the mount, so the test can tell whether a canary's content leaked.
ATTACK = r"""
import ctypes, errno, os, sys, time
backing, mnt, canary, canary_dir, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
libc = ctypes.CDLL(None, use_errno=True)
B, M = os.path.join(backing, "shared"), os.path.join(mnt, "shared")

def exchange(a, b):
    libc.renameat2(-100, a.encode(), -100, b.encode(), 2)

def make_own():
    for p in ("x", "d/f"):
        try:
            with open(os.path.join(B, p), "w") as f:
                f.write("nobody's own words")
        except OSError:
            pass

os.makedirs(os.path.join(B, "d"), exist_ok=True)
os.symlink(canary, os.path.join(B, "xl"))
os.symlink(canary_dir, os.path.join(B, "dl"))
make_own()
end = time.monotonic() + seconds
if os.fork() == 0:  # the swapper, directly in BACKING
    try:
        while time.monotonic() < end:
            exchange(os.path.join(B, "x"), os.path.join(B, "xl"))  # x: the symlink
            exchange(os.path.join(B, "d"), os.path.join(B, "dl"))  # d/: the symlink to the canary folder
            time.sleep(0.0005)
            exchange(os.path.join(B, "x"), os.path.join(B, "xl"))  # and back
            exchange(os.path.join(B, "d"), os.path.join(B, "dl"))
            make_own()
    finally:
        os._exit(0)

def attempt(fn):
    try:
        fn()
        return 1
    except OSError:
        return 0

def read(p):
    with open(p, "rb") as f:
        sys.stdout.buffer.write(f.read())

def write(p):
    with open(p, "r+b") as f:
        f.write(b"scribbled by nobody")

def tmp(p, name):
    return os.path.join(os.path.dirname(p), name)

ops = 0
while time.monotonic() < end:
    for p in (os.path.join(M, "x"), os.path.join(M, "d", "f")):
        ops += attempt(lambda: os.chmod(p, 0o666))
        ops += attempt(lambda: os.chown(p, os.getuid(), os.getgid()))
        ops += attempt(lambda: os.truncate(p, 3))
        ops += attempt(lambda: read(p))
        ops += attempt(lambda: write(p))
        ops += attempt(lambda: os.utime(p, (1, 1)))
        ops += attempt(lambda: os.setxattr(p, "user.nobody", b"was here"))
        ops += attempt(lambda: os.link(p, tmp(p, "hard")))
        attempt(lambda: os.unlink(tmp(p, "hard")))
        ops += attempt(lambda: os.rename(p, tmp(p, "moved")))
        attempt(lambda: os.rename(tmp(p, "moved"), p))
        ops += attempt(lambda: os.mknod(tmp(p, "fifo"), 0o600 | 0o010000))
        attempt(lambda: os.unlink(tmp(p, "fifo")))
        ops += attempt(lambda: os.unlink(tmp(p, "nothing-here")))
os.wait()
sys.stdout.flush()
sys.stderr.write(f"{ops} operations succeeded\n")
"""


def _fingerprint(p: Path) -> tuple:
    st = os.lstat(p)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)


@pytest.fixture
def allow_other_mount(open_tmp):
    backing, mnt = open_tmp / "backing", open_tmp / "mnt"
    backing.mkdir()
    (backing / "shared").mkdir()
    os.chmod(backing / "shared", 0o1777)
    m = start_mount(backing, mnt, "--allow-other", "--no-llm", "--state-dir", str(open_tmp / "state"))
    os.chmod(mnt, 0o755)
    try:
        yield open_tmp, backing, mnt
    finally:
        m.unmount()


def test_nobody_swapping_symlinks_in_backing_reaches_nothing_outside_as_root(allow_other_mount):
    top, backing, mnt = allow_other_mount
    canary = top / "canary.txt"
    canary.write_text("CANARY-7d1f: root's own secret")
    os.chmod(canary, 0o600)
    canary_dir = top / "canary-dir"
    canary_dir.mkdir(mode=0o700)
    (canary_dir / "f").write_text("CANARY-7d1f in the folder")
    os.chmod(canary_dir / "f", 0o600)
    for p in (canary, canary_dir / "f", canary_dir):
        st = os.lstat(p)
        os.utime(p, ns=(st.st_mtime_ns - 10**11, st.st_mtime_ns))  # atime < mtime: any read moves it
    before = {p: _fingerprint(p) for p in (canary, canary_dir, canary_dir / "f")}
    xattrs = {p: os.listxattr(p) for p in (canary, canary_dir / "f")}

    res = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            shutil.which("python3", path="/usr/bin:/bin") or "python3",
            "-c",
            ATTACK,
            str(backing),
            str(mnt),
            str(canary),
            str(canary_dir),
            "12",
        ],
        capture_output=True,
        cwd="/",
        timeout=120,
    )
    assert res.returncode == 0, res.stderr.decode()
    succeeded = int(res.stderr.decode().split()[0])
    assert succeeded > 500, res.stderr.decode()  # the attack really ran through the mount
    assert b"CANARY" not in res.stdout
    assert {p: _fingerprint(p) for p in before} == before
    assert {p: os.listxattr(p) for p in xattrs} == xattrs
    assert canary.read_text() == "CANARY-7d1f: root's own secret"
    assert sorted(os.listdir(canary_dir)) == ["f"]


def test_nobody_gets_what_the_disk_gives_it_as_root(allow_other_mount):
    """Ownership from the kernel, and the kernel's refusals: as on the disk itself."""
    top, backing, mnt = allow_other_mount
    (backing / "ro").mkdir()
    os.chmod(backing / "ro", 0o555)
    (backing / "shared" / "roots.txt").write_text("root's")
    (backing / "shared" / "setuid").write_text("#!/bin/sh\n")
    os.chmod(backing / "shared" / "setuid", 0o6777)
    script = r"""
import errno, os, sys
m = sys.argv[1]
def do(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print(do(lambda: os.mkdir(os.path.join(m, "shared", "mine"))))
print(do(lambda: open(os.path.join(m, "shared", "mine", "f"), "w").close()))
print(do(lambda: os.mkdir(os.path.join(m, "ro", "x"))))
print(do(lambda: os.unlink(os.path.join(m, "shared", "roots.txt"))))
print(do(lambda: os.chmod(os.path.join(m, "shared", "roots.txt"), 0o666)))
def append():
    with open(os.path.join(m, "shared", "setuid"), "a") as f:
        f.write("echo appended by nobody\n")
print(do(append))
print(do(lambda: os.chmod(os.path.join(m, "shared", "setuid"), 0o6777)))
"""
    out = run_as_nobody(script, str(mnt)).split()
    assert out == ["ok", "ok", "EACCES", "EPERM", "EPERM", "ok", "EPERM"]
    # another user's write drops set-user-ID and set-group-ID, as on the disk
    assert os.stat(backing / "shared" / "setuid").st_mode & 0o7777 == 0o777
    for p in (backing / "shared" / "mine", backing / "shared" / "mine" / "f"):
        assert (os.stat(p).st_uid, os.stat(p).st_gid) == (NOBODY, NOBODY)
    assert (backing / "shared" / "roots.txt").read_text() == "root's"


def _mkdirs_at(dirfd: int, parts: list[str]) -> None:
    for i in range(1, len(parts) + 1):
        os.mkdir("/".join(parts[:i]), dir_fd=dirfd)


def test_a_long_path_inside_the_mount_under_a_long_backing_path(tmp_path):
    deep = tmp_path
    while len(str(deep)) < 200:
        deep = deep / ("b" * min(60, 200 - len(str(deep)) - 1 or 1))
    backing = deep
    assert len(str(backing)) >= 200
    m = start_mount(backing, tmp_path / "mnt", "--no-index", "--no-llm", "--state-dir", str(tmp_path / "state"))
    try:
        parts = ["d" * 199] * 19  # 19 * 200 bytes
        name = "f" * (4000 - 19 * 200 - 1)
        rel = "/".join(parts + [name])
        assert len(rel) == 3999 and len(str(backing)) + 1 + len(rel) > 4096  # beyond PATH_MAX in BACKING
        mfd = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _mkdirs_at(mfd, parts)
            fd = os.open(rel, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=mfd)
            os.write(fd, b"deep down")
            os.close(fd)
            assert os.stat(rel, dir_fd=mfd).st_size == 9
            renamed = "/".join(parts + ["g" * len(name)])
            os.rename(rel, renamed, src_dir_fd=mfd, dst_dir_fd=mfd)
            with pytest.raises(FileNotFoundError):
                os.stat(rel, dir_fd=mfd)
            fd = os.open(renamed, os.O_RDONLY, dir_fd=mfd)
            assert os.read(fd, 100) == b"deep down"
            os.close(fd)
            bfd = os.open(backing, os.O_RDONLY | os.O_DIRECTORY)
            try:
                assert os.stat(renamed, dir_fd=bfd).st_size == 9  # it landed in BACKING
            finally:
                os.close(bfd)
            os.unlink(renamed, dir_fd=mfd)
            with pytest.raises(FileNotFoundError):
                os.stat(renamed, dir_fd=mfd)
        finally:
            os.close(mfd)
    finally:
        m.unmount()


def test_backing_renamed_while_mounted_does_not_redirect_the_mirror(tmp_path):
    backing = tmp_path / "backing"
    backing.mkdir()
    (backing / "a.txt").write_text("the real one")
    m = start_mount(backing, tmp_path / "mnt", "--no-index", "--no-llm", "--state-dir", str(tmp_path / "state"))
    try:
        os.rename(backing, tmp_path / "moved")
        backing.mkdir()
        (backing / "a.txt").write_text("an impostor")
        time.sleep(1.1)  # past the kernel's attribute cache
        assert (m.mnt / "a.txt").read_text() == "the real one"
        (m.mnt / "new.txt").write_text("lands where the folder went")
        assert (tmp_path / "moved" / "new.txt").read_text() == "lands where the folder went"
        assert not (backing / "new.txt").exists()
    finally:
        m.unmount()


def _hidden_in(backing: Path) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(backing) for n in names if n.startswith(".fuse_hidden")]


def test_an_unlinked_open_file_keeps_working_and_leaves_nothing(mount):
    backing, mnt = mount.backing, mount.mnt
    (mnt / "d").mkdir()
    p = mnt / "d" / "open.txt"
    p.write_bytes(b"still here")
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        assert os.fstat(fd).st_nlink == 0
        assert not os.path.lexists(p)
        assert os.pread(fd, 100, 0) == b"still here"
        os.pwrite(fd, b"STILL", 0)
        assert os.pread(fd, 100, 0) == b"STILL here"
        os.fchmod(fd, 0o600)
        assert os.fstat(fd).st_mode & 0o777 == 0o600
        assert _hidden_in(backing) == []
        os.rmdir(mnt / "d")  # its last entry went: the folder goes at once
        assert not (backing / "d").exists()
    finally:
        os.close(fd)
    # renamed over while open: the old content stays readable through its descriptor
    (mnt / "a").write_text("old")
    (mnt / "b").write_text("new")
    fd = os.open(mnt / "a", os.O_RDONLY)
    try:
        os.rename(mnt / "b", mnt / "a")
        assert os.fstat(fd).st_nlink == 0
        assert os.read(fd, 10) == b"old"
        assert (mnt / "a").read_text() == "new"
        assert _hidden_in(backing) == []
    finally:
        os.close(fd)
    assert _hidden_in(backing) == []


def test_build_and_git_then_rm_rf_leaves_nothing(mount):
    if not (shutil.which("git") and shutil.which("cc") and shutil.which("make")):
        pytest.fail("this test needs git, cc and make (Debian's build-essential and git)")
    backing, mnt = mount.backing, mount.mnt
    tree = mnt / "proj"
    tree.mkdir()
    for i in range(12):
        (tree / f"m{i}.c").write_text(f"int f{i}(int x) {{ return x * {i}; }}\n")
    (tree / "main.c").write_text("int f0(int);\nint main(void) { return f0(0); }\n")
    (tree / "Makefile").write_text(
        "OBJS = main.o " + " ".join(f"m{i}.o" for i in range(12)) + "\n"
        "prog: $(OBJS)\n\tar rcs libm.a $(OBJS)\n\t$(CC) -o prog main.o libm.a\n"
    )
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
    )

    def run(*cmd: str) -> None:
        subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, timeout=120)

    run("make", "-j2")
    run("git", "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "one")
    (tree / "m1.c").write_text("int f1(int x) { return x; }\n")
    run("make")
    run("git", "commit", "-qam", "two")
    run("git", "gc", "-q")  # packs, and unlinks loose objects
    # and a file held open while its folder goes, as a compiler's or an editor's might be
    held = os.open(tree / "main.o", os.O_RDONLY)
    try:
        subprocess.run(["rm", "-rf", str(tree)], check=True, capture_output=True, timeout=120)
        assert not os.path.exists(tree) and not (backing / "proj").exists()
        # (its folder is gone, so libfuse can no longer name it for an fstat: ESTALE)
        assert os.pread(held, 4, 0) == b"\x7fELF"
    finally:
        os.close(held)
    assert _hidden_in(backing) == []


def test_every_name_of_a_hard_link_shows_a_change_at_once(mount):
    mnt = mount.mnt
    a, b, c = mnt / "a", mnt / "b", mnt / "c"
    a.write_text("shared content")
    os.stat(a)
    os.link(a, b)
    assert os.lstat(a).st_nlink == 2 and os.lstat(b).st_nlink == 2
    os.link(b, c)
    for p in (a, b, c):
        assert os.lstat(p).st_nlink == 3  # all three cached by the kernel now
    ctime = os.lstat(a).st_ctime_ns
    time.sleep(0.01)
    os.chmod(b, 0o600)
    for p in (a, c):
        st = os.lstat(p)
        assert st.st_mode & 0o777 == 0o600 and st.st_ctime_ns > ctime, p
    os.unlink(c)
    assert os.lstat(a).st_nlink == 2 and os.lstat(b).st_nlink == 2
    os.utime(a, ns=(10**18, 10**18))
    assert os.lstat(b).st_mtime_ns == 10**18
    (mnt / "other").write_text("x")
    os.rename(mnt / "other", b)  # b replaced: a is alone
    assert os.lstat(a).st_nlink == 1
