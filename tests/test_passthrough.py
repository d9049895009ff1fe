"""Every filesystem operation through a real mount, checked against the backing dir.

The same scenario runs on a plain native folder and on the mount: each
step must give the same result or the same errno, and afterwards the
mount, its backing folder and the native folder must hold the same tree.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from semfs.fs.virtual.kinds import NAMES as VIRTUAL_KINDS

_libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def renameat2(src: str, dst: str, flags: int) -> None:
    if _libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _st(path: str, follow: bool = False) -> tuple:
    st = os.stat(path, follow_symlinks=follow)
    return (stat.filemode(st.st_mode), st.st_size, st.st_nlink)


def scenario(root: str) -> list:
    """A fixed sequence of operations under ``root``: each step's result or errno name."""
    out: list = []

    def do(label, fn):
        try:
            out.append((label, fn()))
        except OSError as e:
            out.append((label, errno.errorcode[e.errno]))

    def p(*parts):
        return os.path.join(root, *parts)

    def write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644):
        fd = os.open(path, flags, mode)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    # directories and plain files
    do("mkdir", lambda: os.mkdir(p("d"), 0o755))
    do("mkdir exists", lambda: os.mkdir(p("d")))
    do("mkdir in missing", lambda: os.mkdir(p("nope", "x")))
    do("create", lambda: write(p("d", "f.txt"), b"hello world\n"))
    do("create excl exists", lambda: os.open(p("d", "f.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    do("read", lambda: read(p("d", "f.txt")))
    do("read missing", lambda: read(p("d", "missing")))
    do("open dir for write", lambda: os.open(p("d"), os.O_WRONLY))
    do("file as dir", lambda: os.stat(p("d", "f.txt", "x")))
    do("rmdir not empty", lambda: os.rmdir(p("d")))
    do("unlink dir", lambda: os.unlink(p("d")))
    do("rmdir file", lambda: os.rmdir(p("d", "f.txt")))
    do("stat", lambda: _st(p("d", "f.txt")))

    # contents: append, overwrite in place, sparse write, truncation
    do("append", lambda: write(p("d", "f.txt"), b"more\n", os.O_WRONLY | os.O_APPEND))
    do("pwrite", lambda: _pwrite(p("d", "f.txt"), b"HELLO", 0))
    do("sparse", lambda: _pwrite(p("d", "sparse.bin"), b"end", 1 << 20, create=True))
    do("sparse size", lambda: os.stat(p("d", "sparse.bin")).st_size)
    do("sparse head", lambda: read(p("d", "sparse.bin"))[:4])
    do("truncate path", lambda: os.truncate(p("d", "sparse.bin"), 10))
    do("truncate fd", lambda: _ftruncate(p("d", "f.txt"), 5))
    do("read after truncate", lambda: read(p("d", "f.txt")))
    do("truncate grow", lambda: os.truncate(p("d", "f.txt"), 8))
    do("read grown", lambda: read(p("d", "f.txt")))
    do("fsync", lambda: _fsync(p("d", "f.txt")))

    # renames: in place, across dirs, over targets, with flags
    do("mkdir e", lambda: os.mkdir(p("e")))
    do("write g", lambda: write(p("e", "g.txt"), b"g\n"))
    do("rename across", lambda: os.rename(p("d", "f.txt"), p("e", "f.txt")))
    do("rename over file", lambda: os.rename(p("e", "f.txt"), p("e", "g.txt")))
    do("read renamed", lambda: read(p("e", "g.txt")))
    do("rename missing", lambda: os.rename(p("e", "f.txt"), p("e", "h.txt")))
    do("mkdir e/sub", lambda: os.mkdir(p("e", "sub")))
    do("rename dir over nonempty", lambda: os.rename(p("e", "sub"), p("d")))
    do("rename file over dir", lambda: os.rename(p("e", "g.txt"), p("e", "sub")))
    do("rename dir over file", lambda: os.rename(p("e", "sub"), p("e", "g.txt")))
    do("rename into itself", lambda: os.rename(p("e"), p("e", "sub", "e")))
    do("rename dir", lambda: os.rename(p("e", "sub"), p("d", "moved")))
    do("write x", lambda: write(p("d", "x.txt"), b"x"))
    do("noreplace exists", lambda: renameat2(p("e", "g.txt"), p("d", "x.txt"), RENAME_NOREPLACE))
    do("noreplace free", lambda: renameat2(p("e", "g.txt"), p("d", "g.txt"), RENAME_NOREPLACE))
    do("exchange", lambda: renameat2(p("d", "g.txt"), p("d", "x.txt"), RENAME_EXCHANGE))
    do("read exchanged", lambda: (read(p("d", "g.txt")), read(p("d", "x.txt"))))

    # links, symlinks, modes, owners, times
    do("link", lambda: os.link(p("d", "x.txt"), p("d", "hard.txt")))
    do("link exists", lambda: os.link(p("d", "x.txt"), p("d", "hard.txt")))
    do("nlink", lambda: _st(p("d", "hard.txt")))
    do("symlink", lambda: os.symlink("x.txt", p("d", "sym")))
    do("readlink", lambda: os.readlink(p("d", "sym")))
    do("read via symlink", lambda: read(p("d", "sym")))
    do("dangling symlink", lambda: os.symlink("nowhere", p("d", "dangling")))
    do("read dangling", lambda: read(p("d", "dangling")))
    do("symlink loop", lambda: os.symlink("loop", p("d", "loop")))
    do("open loop", lambda: read(p("d", "loop")))
    do("readlink file", lambda: os.readlink(p("d", "x.txt")))
    do("chmod", lambda: os.chmod(p("d", "x.txt"), 0o600))
    do("mode", lambda: _st(p("d", "x.txt")))
    do("chmod dir", lambda: os.chmod(p("d", "moved"), 0o700))
    do("chown", lambda: os.chown(p("d", "x.txt"), 1234, 5678))
    do("owner", lambda: (os.stat(p("d", "x.txt")).st_uid, os.stat(p("d", "x.txt")).st_gid))
    do("lchown symlink", lambda: os.lchown(p("d", "sym"), 4321, -1))
    do("symlink owner", lambda: os.lstat(p("d", "sym")).st_uid)
    do("utime", lambda: os.utime(p("d", "x.txt"), ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321)))
    do("times", lambda: (os.stat(p("d", "x.txt")).st_atime_ns, os.stat(p("d", "x.txt")).st_mtime_ns))
    do("utime symlink itself", lambda: os.utime(p("d", "sym"), ns=(10**18, 10**18), follow_symlinks=False))
    do("symlink time", lambda: os.lstat(p("d", "sym")).st_mtime_ns)
    do("mkfifo", lambda: os.mkfifo(p("d", "fifo")))
    do("fifo type", lambda: stat.S_ISFIFO(os.lstat(p("d", "fifo")).st_mode))

    # names: spaces, unicode, newlines, raw bytes, NAME_MAX
    for name in ["with space.txt", "ünïcödé 名前.md", "new\nline", "x" * 255]:
        do(f"name {name[:20]!r}", lambda name=name: write(p(name), name.encode()))
        do(f"read {name[:20]!r}", lambda name=name: read(p(name)))
    do("name 256", lambda: write(p("y" * 256), b"y"))
    raw = os.path.join(os.fsencode(root), b"latin1-\xe9t\xe9")
    do("raw bytes name", lambda: write(raw, b"raw"))
    do("read raw", lambda: read(raw))

    # an open file unlinked or renamed under its reader keeps working
    def unlinked_open():
        fd = os.open(p("d", "tmp"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"abcdef")
            os.unlink(p("d", "tmp"))
            os.ftruncate(fd, 3)
            os.fchmod(fd, 0o640)
            os.write(fd, b"XY")
            st = os.fstat(fd)
            return os.pread(fd, 100, 0), st.st_size, stat.filemode(st.st_mode), os.path.exists(p("d", "tmp"))
        finally:
            os.close(fd)

    do("unlinked open", unlinked_open)

    def renamed_open():
        fd = os.open(p("d", "r1"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"one")
            os.rename(p("d", "r1"), p("e", "r2"))
            os.write(fd, b"two")
        finally:
            os.close(fd)
        return read(p("e", "r2"))

    do("renamed open", renamed_open)

    # removal
    do("unlink", lambda: os.unlink(p("d", "hard.txt")))
    do("unlink missing", lambda: os.unlink(p("d", "hard.txt")))
    do("rmdir", lambda: os.rmdir(p("d", "moved")))
    do("listdir", lambda: sorted(os.listdir(p("d"))))
    do("listdir root", lambda: sorted(n for n in os.listdir(root) if n not in VIRTUAL_KINDS))
    do("statvfs namemax", lambda: os.statvfs(p("d")).f_namemax)
    return out


def _pwrite(path, data, offset, create=False):
    fd = os.open(path, os.O_WRONLY | (os.O_CREAT if create else 0), 0o644)
    try:
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _ftruncate(path, n):
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, n)
    finally:
        os.close(fd)


def _fsync(path):
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)


VIRTUAL_ROOTS = tuple(k.encode() for k in VIRTUAL_KINDS)


def snapshot(root) -> dict:
    """Everything a user could tell apart in a tree, but for inode numbers and times set by the clock.

    The mount's virtual folders are left out: they are not in the backing folder.
    """
    root = os.fsencode(root)
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in VIRTUAL_ROOTS]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            entry = [stat.filemode(st.st_mode), st.st_nlink, st.st_uid, st.st_gid]
            if stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                entry += [st.st_size, hashlib.sha256(open(full, "rb").read()).hexdigest()]
            snap[os.path.relpath(full, root)] = entry
    return snap


def test_scenario_matches_native_folder(mount, tmp_path):
    native = tmp_path / "native"
    native.mkdir()
    expected = scenario(str(native))
    got = scenario(str(mount.mnt))
    for want, have in zip(expected, got):
        assert have == want
    assert len(got) == len(expected)
    assert snapshot(mount.backing) == snapshot(native)
    # The kernel caches attributes for attr_timeout (1 s), per name: after
    # "unlink hard.txt" the other name of that inode shows nlink 2 until then.
    time.sleep(1.1)
    assert snapshot(mount.mnt) == snapshot(mount.backing)


def test_backing_changes_show_in_mount(mount):
    (mount.backing / "outside.txt").write_text("written without semfs")
    (mount.backing / "sub").mkdir()
    assert (mount.mnt / "outside.txt").read_text() == "written without semfs"
    assert sorted(os.listdir(mount.mnt)) == [
        "history",
        "join",
        "outside.txt",
        "query",
        "similar",
        "sub",
        "summary",
        "topics",
    ]
    assert (mount.mnt / "sub").is_dir()


def test_writes_land_in_backing_at_once(mount):
    with open(mount.mnt / "live.txt", "w") as f:
        f.write("first")
        f.flush()
        assert (mount.backing / "live.txt").read_text() == "first"
        f.write(" second")
    assert (mount.backing / "live.txt").read_text() == "first second"


def test_inode_numbers_are_the_backing_ones(mount):
    (mount.mnt / "a").write_text("a")
    os.link(mount.mnt / "a", mount.mnt / "b")
    assert os.stat(mount.mnt / "a").st_ino == os.stat(mount.backing / "a").st_ino
    assert os.stat(mount.mnt / "a").st_ino == os.stat(mount.mnt / "b").st_ino
    listed = {e.name: e.inode() for e in os.scandir(mount.mnt)}
    assert listed["a"] == os.stat(mount.backing / "a").st_ino


def test_statfs_reports_backing_filesystem(mount):
    a, b = os.statvfs(mount.mnt), os.statvfs(mount.backing)
    assert (a.f_bsize, a.f_blocks, a.f_files, a.f_namemax) == (b.f_bsize, b.f_blocks, b.f_files, b.f_namemax)


def test_large_file_round_trip(mount):
    data = os.urandom(3 << 20) + b"tail"
    (mount.mnt / "big.bin").write_bytes(data)
    assert (mount.backing / "big.bin").read_bytes() == data
    with open(mount.mnt / "big.bin", "rb") as f:
        f.seek(1 << 20)
        assert f.read(10) == data[1 << 20 : (1 << 20) + 10]
    assert (mount.mnt / "big.bin").read_bytes() == data


def _xattr_outcome(path: Path):
    try:
        os.setxattr(path, "user.semfs.test", b"value")
        return ("ok", os.getxattr(path, "user.semfs.test"), "user.semfs.test" in os.listxattr(path))
    except OSError as e:
        return ("error", errno.errorcode[e.errno])


def test_extended_attributes_follow_backing_support(mount):
    (mount.mnt / "x.txt").write_text("x")
    (mount.backing / "native.txt").write_text("n")
    native = _xattr_outcome(mount.backing / "native.txt")
    through = _xattr_outcome(mount.mnt / "x.txt")
    assert through == native
    if native[0] == "ok":
        assert os.getxattr(mount.backing / "x.txt", "user.semfs.test") == b"value"
        os.removexattr(mount.mnt / "x.txt", "user.semfs.test")
        assert "user.semfs.test" not in os.listxattr(mount.backing / "x.txt")
        with pytest.raises(OSError) as e:
            os.getxattr(mount.mnt / "x.txt", "user.semfs.test")
        assert e.value.errno == errno.ENODATA


def test_touch_leaves_omitted_time_alone(mount):
    f = mount.mnt / "t.txt"
    f.write_text("t")
    os.utime(f, ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))
    subprocess.run(["touch", "-m", "-d", "2001-02-03 04:05:06", str(f)], check=True)
    st = os.stat(mount.backing / "t.txt")
    assert st.st_atime_ns == 1_000_000_000_000_000_000  # UTIME_OMIT kept atime
    assert st.st_mtime_ns != 1_100_000_000_000_000_000


def test_large_directory_listing_spans_many_replies(mount):
    # ~3000 long names fill many READDIRPLUS buffers: each reply resumes at
    # the offset the previous one ended with, and nothing repeats or drops.
    names = {f"{i:05d}-" + "n" * 200 for i in range(3000)}
    for n in names:
        (mount.backing / n).write_bytes(b"")
    listed = [n for n in os.listdir(mount.mnt) if n not in VIRTUAL_KINDS]
    assert len(listed) == len(names) and set(listed) == names
    with os.scandir(mount.mnt) as it:
        kinds = {e.name: (e.is_file(), e.inode()) for e in it if e.name not in VIRTUAL_KINDS}
    assert all(is_file for is_file, _ in kinds.values())
    some = sorted(names)[1234]
    assert kinds[some][1] == os.stat(mount.backing / some).st_ino
    assert os.stat(mount.mnt / some).st_size == 0
