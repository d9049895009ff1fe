"""The Makefile's set-up as an ordinary user: no root, no sudo, one line when a package is missing;
a .venv from a Python every user can run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _make(folder: Path, path: str) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": "/nonexistent"}
    return subprocess.run(
        ["/usr/bin/make", "-s", "system-deps"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


def test_system_deps_as_an_ordinary_user(tmp_path):
    assert os.geteuid() != 0  # run by the suite as its unprivileged user
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    # fuse3 is installed here; ldconfig is in /sbin, which an ordinary user's PATH lacks
    ok = _make(tmp_path, "/usr/bin:/bin")
    assert ok.returncode == 0 and ok.stdout == "" and "sudo" not in ok.stderr, ok.stderr
    # nothing found at all: one line naming the package and the command, and make stops
    missing = _make(tmp_path, "/nonexistent")
    assert missing.returncode != 0
    assert "semfs needs Debian's fuse3 package" in missing.stderr
    assert "sudo apt-get install fuse3" in missing.stderr


def test_the_venv_comes_from_a_python_every_user_can_run(open_tmp):
    private = open_tmp / "home"
    private.mkdir(mode=0o700)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--copies", "--without-pip", str(private / "v")], check=True)
    python = private / "v" / "bin" / "python3"

    def chosen() -> str:
        env = dict(os.environ, PYTHON=str(python))
        r = subprocess.run(["sh", str(REPO / "scripts" / "shared_python.sh")], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert chosen() != str(python)  # inside a folder closed to others (as pyenv under /root)
    os.chmod(private, 0o755)
    assert chosen() == str(python)  # the same interpreter, once others may reach it
