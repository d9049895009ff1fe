"""The Makefile's set-up as an ordinary user: no root, no sudo, one line when a package is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers import NOBODY

REPO = Path(__file__).resolve().parent.parent


def _make_as_nobody(folder: Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "/usr/bin/setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "/usr/bin/make",
            "-s",
            "system-deps",
        ],
        cwd=folder,
        env={"PATH": path, "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_system_deps_as_an_ordinary_user(open_tmp):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, open_tmp / name)
    # fuse3 is installed here; ldconfig is in /sbin, which an ordinary user's PATH lacks
    ok = _make_as_nobody(open_tmp, "/usr/bin:/bin")
    assert ok.returncode == 0 and ok.stdout == "" and "sudo" not in ok.stderr, ok.stderr
    # nothing found at all: one line naming the package and the command, and make stops
    missing = _make_as_nobody(open_tmp, "/nonexistent")
    assert missing.returncode != 0
    assert "semfs needs Debian's fuse3 package" in missing.stderr
    assert "sudo apt-get install fuse3" in missing.stderr
