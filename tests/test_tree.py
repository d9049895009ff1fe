"""core.beneath.Tree: names beneath a folder held by descriptor, through no symlink."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from semfs.core.beneath import Tree, proc_path


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_text("outside")
    os.symlink(tmp_path / "outside", root / "out")  # a folder on the way that leads out
    os.symlink("d/f", root / "rel")  # a last name that is a symlink
    t = Tree(str(root))
    yield t
    t.close()


def test_names_resolve_beneath_and_not_through_symlinks(tree):
    assert tree.lstat("d/f").st_size == len("inside")
    assert stat.S_ISDIR(tree.lstat("").st_mode)
    with pytest.raises(OSError) as e:
        tree.lstat("out/f")
    assert e.value.errno == errno.ELOOP
    with pytest.raises(OSError) as e:
        tree.open("rel", os.O_RDONLY)
    assert e.value.errno == errno.ELOOP
    with tree.reader("d/f") as f:
        assert f.read() == b"inside"
    with pytest.raises(OSError):
        tree.reader("out/f")


def test_a_handle_is_the_name_itself(tree):
    fd = tree.handle("rel")
    try:
        assert stat.S_ISLNK(os.fstat(fd).st_mode)
        assert os.readlink(proc_path(fd)).endswith("rel")  # the magic link names the symlink, not d/f
    finally:
        os.close(fd)


def test_the_folder_is_held_by_descriptor(tree, tmp_path):
    os.rename(tmp_path / "root", tmp_path / "moved")
    (tmp_path / "root").mkdir()
    assert tree.lstat("d/f").st_size == len("inside")  # still the folder it opened
    d, name = tree.parent("top-level")
    assert (d, name) == (tree.fd, "top-level")
