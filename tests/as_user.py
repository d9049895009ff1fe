"""Run the suite as the person who mounts: an ordinary account, not root.

Root gets through what a user is refused (a ``dr-xr-xr-x`` folder takes
root's mkdir), so a suite run by root proves little for users. When
pytest runs as root (``make test``, CI), the tests whose node id says
``as_root`` run here, and every other test runs in a second pytest, as
user ``semfs-test`` (made with useradd if missing): its daemons, its
clients and its tmp folders all belong to that user. Run as an ordinary
user, everything runs as that user and the ``as_root`` tests are skipped
with the reason.

The child must be able to run this interpreter and read the checkout;
where a folder on the way is closed to others (a checkout or a pyenv
under /root), the user is given search permission on it by an ACL entry,
removed at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from typing import Optional

import pytest

TEST_USER = "semfs-test"
_ROLE = "SEMFS_TEST_ROLE"
_ACL = "system.posix_acl_access"
# POSIX ACL xattr format (linux/posix_acl_xattr.h): version 2, then (tag, perm, id) entries.
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def needs_root(item: pytest.Item) -> bool:
    return "as_root" in item.nodeid


def _is_parent() -> bool:
    return os.geteuid() == 0 and os.environ.get(_ROLE) != "user"


def _test_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", TEST_USER],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(TEST_USER)


def _closed_folders(*paths: str) -> list[str]:
    """Folders on the way to ``paths`` that others may not search."""
    closed: list[str] = []
    for p in paths:
        d = os.path.dirname(os.path.realpath(p)) if not os.path.isdir(p) else os.path.realpath(p)
        while True:
            if not os.stat(d).st_mode & stat.S_IXOTH and d not in closed:
                closed.append(d)
            if d == "/":
                break
            d = os.path.dirname(d)
    return closed


def _grant_search(folder: str, uid: int) -> tuple[int, Optional[bytes]]:
    """An ACL entry letting ``uid`` search ``folder``, added to any it has (no one else gains
    anything); returns what to restore: its mode and its ACL before."""
    mode = os.stat(folder).st_mode
    try:
        before: Optional[bytes] = os.getxattr(folder, _ACL)
    except OSError:  # none (ENODATA), or a filesystem without ACLs (then setxattr says so)
        before = None
    if before is not None:
        entries = [struct.unpack_from("<HHI", before, 4 + 8 * i) for i in range((len(before) - 4) // 8)]
    else:
        g = (mode >> 3) & 7
        entries = [(_USER_OBJ, (mode >> 6) & 7, _NO_ID), (_GROUP_OBJ, g, _NO_ID), (_MASK, g, _NO_ID),
                   (_OTHER, mode & 7, _NO_ID)]  # fmt: skip
    entries = [e for e in entries if not (e[0] == _USER and e[2] == uid)] + [(_USER, 1, uid)]
    if not any(e[0] == _MASK for e in entries):
        entries.append((_MASK, (mode >> 3) & 7, _NO_ID))
    # the kernel wants them ordered by tag, then id
    entries = sorted(((t, p | 1 if t == _MASK else p, i) for t, p, i in entries), key=lambda e: (e[0], e[2]))
    os.setxattr(folder, _ACL, struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))
    return mode, before


def _revoke(folder: str, was: tuple[int, Optional[bytes]]) -> None:
    mode, before = was
    if before is not None:
        os.setxattr(folder, _ACL, before)
    else:
        os.removexattr(folder, _ACL)
        os.chmod(folder, stat.S_IMODE(mode))  # the ACL's mask was shown as the group bits


class AsUser:
    """The parent's half: runs the child pytest once, before its own tests."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.returncode: int | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        if session.config.stash.get(_CHILD_HAS_TESTS, False):
            capman = self.config.pluginmanager.getplugin("capturemanager")
            with capman.global_and_fixture_disabled():
                self.returncode = self._run_child()
        return (yield)

    def _run_child(self) -> int:
        user = _test_user()
        params = self.config.invocation_params
        granted: dict[str, tuple[int, Optional[bytes]]] = {}
        home = tempfile.mkdtemp(prefix="semfs-test-home-")
        os.chown(home, user.pw_uid, user.pw_gid)
        try:
            for folder in _closed_folders(str(params.dir), os.path.realpath(sys.executable), __file__):
                granted[folder] = _grant_search(folder, user.pw_uid)
            env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "SEMFS_HOME")}
            # the checkout is root's: the child may not write pytest's cache in it
            no_cache = [] if "no:cacheprovider" in params.args else ["-p", "no:cacheprovider"]
            env.update({_ROLE: "user", "HOME": home, "USER": TEST_USER, "LOGNAME": TEST_USER})
            print(f"\n== the tests as user {TEST_USER} (uid {user.pw_uid}); then those named as_root, as root ==")
            sys.stdout.flush()
            return subprocess.call(
                ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
                 sys.executable, "-m", "pytest", *no_cache, *params.args],
                cwd=params.dir, env=env, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            for folder, was in granted.items():
                _revoke(folder, was)
            shutil.rmtree(home, ignore_errors=True)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        child = self.returncode
        if child is None or child == pytest.ExitCode.NO_TESTS_COLLECTED:
            return
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED or child != pytest.ExitCode.OK:
            session.exitstatus = child


_CHILD_HAS_TESTS = pytest.StashKey[bool]()


def configure(config: pytest.Config) -> None:
    if _is_parent():
        config.pluginmanager.register(AsUser(config), "semfs-as-user")


def split(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep what this process runs: the as_root tests in the parent, the rest in the child."""
    if _is_parent():
        config.stash[_CHILD_HAS_TESTS] = any(not needs_root(item) for item in items)
        _keep(config, items, needs_root)
    elif os.environ.get(_ROLE) == "user":
        _keep(config, items, lambda item: not needs_root(item))
    else:  # an ordinary user running the suite
        for item in items:
            if needs_root(item):
                item.add_marker(pytest.mark.skip(reason="needs root: `make test` as root runs it"))


def _keep(config: pytest.Config, items: list[pytest.Item], keep) -> None:
    dropped = [item for item in items if not keep(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if keep(item)]
