"""Everyday shell tools inside the mount, checked against the backing folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from test_passthrough import snapshot

from semfs.fs.virtual.kinds import NAMES


def sh(cmd: str, cwd: Path) -> str:
    res = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, f"{cmd}: {res.stderr}"
    return res.stdout


def make_tree(root: Path) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    for i in range(20):
        (root / "src" / "pkg" / f"mod{i}.py").write_text(f"VALUE = {i}\n" * (i + 1))
    (root / "src" / "notes with spaces.md").write_text("# Notes\nhello\n")
    os.symlink("pkg/mod1.py", root / "src" / "link.py")
    os.link(root / "src" / "pkg" / "mod2.py", root / "src" / "hard.py")


def test_cp_mv_rm(mount, tmp_path):
    src = tmp_path / "src-tree"
    src.mkdir()
    make_tree(src)
    sh(f"cp -a '{src}/src' ./copied", mount.mnt)
    assert snapshot(mount.backing / "copied") == snapshot(src / "src")
    sh("cp -r copied copied2 && mv copied2 moved && mv moved/pkg moved/pkg2", mount.mnt)
    assert sorted(os.listdir(mount.backing / "moved")) == ["hard.py", "link.py", "notes with spaces.md", "pkg2"]
    sh("rm -r moved", mount.mnt)
    assert not (mount.backing / "moved").exists()
    assert sorted(os.listdir(mount.mnt)) == ["copied", "history", "join", "query", "similar", "summary", "topics"]


def test_tar_round_trip(mount, tmp_path):
    src = tmp_path / "src-tree"
    src.mkdir()
    make_tree(src)
    sh(f"tar -C '{src}' -cf '{tmp_path}/in.tar' src", tmp_path)
    sh(f"tar -xpf '{tmp_path}/in.tar'", mount.mnt)
    assert snapshot(mount.backing / "src") == snapshot(src / "src")
    sh(f"tar -cf '{tmp_path}/out.tar' src", mount.mnt)
    out = tmp_path / "out"
    out.mkdir()
    sh(f"tar -xpf '{tmp_path}/out.tar'", out)
    assert snapshot(out / "src") == snapshot(src / "src")


def test_sed_in_place(mount):
    (mount.mnt / "conf.ini").write_text("name = old\nkeep = yes\n")
    sh("sed -i 's/old/new/' conf.ini", mount.mnt)
    assert (mount.backing / "conf.ini").read_text() == "name = new\nkeep = yes\n"
    assert sorted(os.listdir(mount.backing)) == ["conf.ini"]  # sed's temp file is gone


def test_git_init_and_commit(mount):
    git = "git -c user.name=semfs -c user.email=semfs@example.invalid -c init.defaultBranch=main"
    (mount.mnt / "README.md").write_text("hello\n")
    sh(f"{git} init -q . && {git} add README.md && {git} commit -qm first", mount.mnt)
    (mount.mnt / "README.md").write_text("hello again\n")
    sh(f"{git} commit -qam second && {git} gc -q", mount.mnt)
    log = sh("git log --format=%s", mount.backing)
    assert log.split() == ["second", "first"]
    assert sh("git status --porcelain", mount.backing) == ""
    assert sh("git fsck --strict 2>&1", mount.mnt).strip() == ""
    sh(f"{git} checkout -q HEAD~1", mount.mnt)
    assert (mount.backing / "README.md").read_text() == "hello\n"


def test_find_and_grep(mount):
    make_tree(mount.backing)
    found = sh("find . -name '*.py' -type f | sort", mount.mnt).split()
    native = sh("find . -name '*.py' -type f | sort", mount.backing).split()
    assert found == native and len(found) == 21
    assert sh("grep -rl 'VALUE = 7' . | sort", mount.mnt) == sh("grep -rl 'VALUE = 7' . | sort", mount.backing)


def test_du_and_df(mount):
    make_tree(mount.backing)
    # the virtual folders take no blocks; their links and hint file have an apparent size, of course
    assert sh("du -s -B1 .", mount.mnt).split()[0] == sh("du -s -B1 .", mount.backing).split()[0]
    virtual = " ".join(f"--exclude=./{k}" for k in NAMES)
    assert (
        sh(f"du -s --apparent-size -B1 {virtual} .", mount.mnt).split()[0]
        == sh("du -s --apparent-size -B1 .", mount.backing).split()[0]
    )
    assert shutil.disk_usage(mount.mnt).total == shutil.disk_usage(mount.backing).total
