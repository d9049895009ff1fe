"""State is private to its owner: folders 0700, files 0600, whatever the umask.

The daemon runs with ``umask(0)``, because the kernel has already applied
each caller's umask to the modes of files created through the mount. So
nothing in the state dir may rely on the umask: folders are made with
:func:`private_dir`, files with mode 0600 (``tempfile.mkstemp`` does,
SQLite's ``-wal`` and ``-shm`` copy the database's mode), and
:func:`tighten` brings an existing state dir in line at mount.

Caveat: ``pending/`` holds hard links to files of the backing folder,
waiting to be stored as versions. They are the user's own inodes, so their
modes are left as they are; the 0700 folders around them keep them private.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
USER_INODES = "pending"  # hard links to backing files: never chmod'ed


def private_dir(path: Path) -> Path:
    """``path`` as a folder, made 0700 with any missing parents (which are made 0700 too)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:
            pass
        os.chmod(p, DIR_MODE)  # (mkdir's mode passes through the umask)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path} is not a folder")
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Make an existing file of ours 0600."""
    if stat.S_IMODE(os.lstat(path).st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE, follow_symlinks=False)


def tighten(root: Path) -> int:
    """Folders 0700 and files 0600 under ``root`` (never following a link); returns how many changed."""
    changed = 0
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name, want in [(d, DIR_MODE) for d in dirnames] + [(f, FILE_MODE) for f in filenames]:
            full = os.path.join(dirpath, name)
            if want == FILE_MODE and rel.split(os.sep)[0] == USER_INODES:
                continue
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == want:
                continue
            os.chmod(full, want)
            changed += 1
    if stat.S_IMODE(os.lstat(root).st_mode) != DIR_MODE:
        os.chmod(root, DIR_MODE)
        changed += 1
    return changed
