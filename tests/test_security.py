"""Multi-user safety: through a root daemon's --allow-other mount, an unprivileged user
sees in the virtual folders only what it could read through the mirror, and nothing of
the state dir.

Every check runs as user nobody (``setpriv --reuid=65534 --regid=65534 --clear-groups``)
in a child process, against a real mount whose daemon runs as root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import start_mount, wait_for

NOBODY = 65534

PROBE = r"""
import errno, json, os, sys
mnt = sys.argv[1]
out = {}
def do(label, fn):
    try:
        out[label] = fn()
    except OSError as e:
        out[label] = errno.errorcode[e.errno]
def read(p):
    with open(os.path.join(mnt, p), "rb") as f:
        return f.read().decode("utf-8", "replace")
def ls(p):
    return sorted(os.listdir(os.path.join(mnt, p)))
for label, what in json.loads(sys.argv[2]).items():
    kind, path = what
    if kind == "read":
        do(label, lambda: read(path))
    elif kind == "ls":
        do(label, lambda: ls(path))
    elif kind == "readlink":
        do(label, lambda: os.readlink(os.path.join(mnt, path)))
    elif kind == "write":
        def w(p=path):
            with open(os.path.join(mnt, p), "w") as f:
                f.write("the launch code of nobody: notes on the rocket engine test")
            os.chmod(os.path.join(mnt, p), 0o600)
            return "ok"
        do(label, w)
print(json.dumps(out))
"""


def as_nobody(mnt: Path, checks: dict) -> dict:
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python, "this test needs a python3 in /usr/bin or /bin that any user can run"
    res = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", PROBE, str(mnt), json.dumps(checks)],
        capture_output=True, text=True, cwd="/",
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture
def shared_mount():
    """A root daemon's --allow-other mount of a folder with a secret, a private folder and a shared one."""
    top = Path(tempfile.mkdtemp(prefix="semfs-sec-"))
    os.chmod(top, 0o755)
    backing, mnt = top / "backing", top / "mnt"
    backing.mkdir()
    os.chmod(backing, 0o755)
    (backing / "public.txt").write_text("Public notes: the launch code ceremony is on Friday, rocket engine tests after.")
    (backing / "secret.txt").write_text("draft")
    os.chmod(backing / "secret.txt", 0o600)
    (backing / "private").mkdir(mode=0o700)
    (backing / "private" / "diary-of-bob.txt").write_text("Dear diary: I know the launch code of the rocket engine.")
    (backing / "shared").mkdir()
    os.chmod(backing / "shared", 0o1777)
    m = start_mount(backing, mnt, "--allow-other", "--state-dir", str(top / "state"))
    try:
        os.chmod(mnt, 0o755)
        for text in ("The launch code is 4471; the rocket engine fires at dawn.", "The launch code is 9902; rocket engine."):
            (mnt / "secret.txt").write_text(text)  # kept versions of a 0600 file
        q = mnt / "query" / "launch code rocket engine"
        wait_for(lambda: len([n for n in os.listdir(q) if not n.startswith(".")]) == 3, what="root sees all three")
        wait_for(lambda: len(os.listdir(mnt / "history" / "secret.txt")) >= 2, what="versions kept")
        time.sleep(1.2)  # past the kernel's entry cache of root's lookups
        yield top, backing, mnt
    finally:
        m.unmount()
        shutil.rmtree(top, ignore_errors=True)


def test_nobody_sees_nothing_of_files_it_cannot_read(shared_mount):
    top, backing, mnt = shared_mount
    versions = sorted(os.listdir(mnt / "history" / "secret.txt"))
    root_names = [n for n in os.listdir(mnt / "query" / "launch code rocket engine") if not n.startswith(".")]
    time.sleep(1.2)
    got = as_nobody(mnt, {
        "1 read secret": ["read", "secret.txt"],
        "1 list private": ["ls", "private"],
        "2 read a version": ["read", f"history/secret.txt/{versions[0]}"],
        "2 list versions": ["ls", "history/secret.txt"],
        "3 summary of secret": ["read", "summary/secret.txt"],
        "3 summary of diary": ["read", "summary/private/diary-of-bob.txt"],
        "4 summary of private": ["ls", "summary/private"],
        "4 similar of private": ["ls", "similar/private"],
        "4 history root": ["ls", "history"],
        "5 query": ["ls", "query/launch code rocket engine"],
        "5 results": ["read", "query/launch code rocket engine/.results.json"],
        "5 a guessed name": ["readlink", f"query/launch code rocket engine/{[n for n in root_names if 'secret' in n][0]}"],
        "6 similar results": ["read", "similar/public.txt/.results.json"],
        "6 similar of secret": ["ls", "similar/secret.txt"],
    })
    assert got["1 read secret"] == "EACCES" and got["1 list private"] == "EACCES"  # the mirror, as before
    for label in ("2 read a version", "2 list versions", "3 summary of secret", "3 summary of diary",
                  "4 summary of private", "4 similar of private", "5 a guessed name", "6 similar of secret"):
        assert got[label] == "ENOENT", (label, got[label])
    assert got["4 history root"] == []  # secret.txt's history is not there for nobody
    assert got["5 query"] == [".results.json", "01-public.txt"]
    for label in ("5 results", "6 similar results"):
        paths = [r["path"] for r in json.loads(got[label])]
        assert "secret.txt" not in paths and "private/diary-of-bob.txt" not in paths, (label, paths)
        assert "4471" not in got[label] and "diary" not in got[label]
    # root, meanwhile, still sees all of it
    assert len(root_names) == 3 and len(versions) >= 2


def test_nobody_sees_its_own_files_everywhere(shared_mount):
    top, backing, mnt = shared_mount
    got = as_nobody(mnt, {"write": ["write", "shared/mine.txt"]})
    assert got["write"] == "ok"
    as_nobody(mnt, {"write again": ["write", "shared/mine.txt"]})  # a version of its own file
    assert os.stat(backing / "shared" / "mine.txt").st_uid == NOBODY

    def sees_it() -> bool:
        r = as_nobody(mnt, {"q": ["ls", "query/rocket engine test of nobody"]})["q"]
        return isinstance(r, list) and "01-mine.txt" in r

    wait_for(sees_it, what="nobody's file in its query folder")
    time.sleep(1.2)
    got = as_nobody(mnt, {
        "similar": ["ls", "similar/shared/mine.txt"],
        "summary": ["read", "summary/shared/mine.txt"],
        "summary dir": ["ls", "summary/shared"],
        "history": ["ls", "history/shared/mine.txt"],
        "history root": ["ls", "history"],
        "similar of public": ["ls", "similar/public.txt"],
    })
    assert ".results.json" in got["similar"]
    assert "the launch code of nobody" in got["summary"]
    assert got["summary dir"] == ["mine.txt"]
    assert len(got["history"]) == 1 and got["history"][0].startswith("0001 ")
    assert got["history root"] == ["shared"]
    assert "01-mine.txt" in got["similar of public"] or "01-public.txt" not in got["similar of public"]


def test_state_dir_is_private(shared_mount):
    top, backing, mnt = shared_mount
    state = top / "state"
    for dirpath, dirnames, filenames in os.walk(state):
        for d in dirnames:
            mode = stat.S_IMODE(os.lstat(os.path.join(dirpath, d)).st_mode)
            assert mode == 0o700, (os.path.join(dirpath, d), oct(mode))
        for f in filenames:
            mode = stat.S_IMODE(os.lstat(os.path.join(dirpath, f)).st_mode)
            assert mode == 0o600, (os.path.join(dirpath, f), oct(mode))
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    got = as_nobody(top, {"db": ["read", "state/semfs.db"], "list": ["ls", "state"]})
    assert got == {"db": "EACCES", "list": "EACCES"}
