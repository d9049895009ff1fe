"""What is never indexed: trash, version-control internals, caches, editor droppings, and the user's rules.

The built-in rules cover trash folders (``.Trash``, ``.Trash-<uid>``,
``*.trashinfo``), ``.git``/``.hg``/``.svn``, ``__pycache__`` and
``node_modules``, and editor swap and backup files. A ``.semfsignore``
at the top of the backing folder adds rules in gitignore syntax (read
with ``pathspec``); it is read again whenever it changes, at most once a
second.

A file moved into the trash thus leaves the index as if deleted, and
its versions stay where it was (``history/<its old path>/``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pathspec

IGNORE_FILE = ".semfsignore"
BUILT_IN = [
    ".Trash/",
    ".Trash-*/",
    "*.trashinfo",
    ".git/",
    ".hg/",
    ".svn/",
    "__pycache__/",
    "node_modules/",
    ".*.sw[po]",
    "*~",
    ".#*",
]
_RECHECK = 1.0  # seconds between looks at .semfsignore


class IgnoreRules:
    def __init__(self, backing: Path) -> None:
        self.path = Path(backing) / IGNORE_FILE
        self._lock = threading.Lock()
        self._stamp: object = None
        self._checked = 0.0
        self._spec = pathspec.GitIgnoreSpec.from_lines(BUILT_IN)
        self.version = 0  # moves on whenever the user's rules change
        self._refresh()

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp: object = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        lines = list(BUILT_IN)
        if stamp is not None:
            try:
                lines += self.path.read_text(errors="replace").splitlines()
            except OSError:
                pass
        self._spec = pathspec.GitIgnoreSpec.from_lines(lines)
        self._stamp = stamp
        self.version += 1

    def recheck(self) -> None:
        """Read ``.semfsignore`` again if it changed (looked at no more than once a second)."""
        now = time.monotonic()
        if now - self._checked > _RECHECK:
            with self._lock:
                if now - self._checked > _RECHECK:
                    self._refresh()
                    self._checked = now

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether the path ``rel`` (relative to the backing folder) is never indexed."""
        self.recheck()
        return self._spec.match_file(rel + "/" if is_dir else rel)
