"""Permissions through an --allow-other mount, seen by an unprivileged user.

Each check runs as ``nobody`` against the backing folder and against the
mount; both must give the same result (EACCES where the modes or ACLs say
no), and files that user creates through the mount belong to that user.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from helpers import NOBODY, run_as_nobody, start_mount

PROBE = r"""
import errno, json, os, sys
root = sys.argv[1]
out = {}
def do(label, fn):
    try:
        r = fn()
        out[label] = "ok" if r is None or isinstance(r, int) else r
    except OSError as e:
        out[label] = errno.errorcode[e.errno]
def write(p):
    with open(p, "w") as f:
        f.write("by nobody")
do("read public", lambda: open(os.path.join(root, "public.txt")).read())
do("read secret", lambda: open(os.path.join(root, "secret.txt")).read())
do("read acl-granted", lambda: open(os.path.join(root, "granted.txt")).read())
do("list locked", lambda: sorted(os.listdir(os.path.join(root, "locked"))))
do("create in root", lambda: write(os.path.join(root, "new.txt")))
do("write public", lambda: write(os.path.join(root, "public.txt")))
do("unlink public", lambda: os.unlink(os.path.join(root, "public.txt")))
do("create in shared", lambda: write(os.path.join(root, "shared", "mine.txt")))
do("chmod secret", lambda: os.chmod(os.path.join(root, "secret.txt"), 0o644))
print(json.dumps(out, sort_keys=True))
"""


def _acl(entries):
    # system.posix_acl_access: version 2, then (tag, perm, id) entries
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


def populate(root: Path) -> bool:
    """Build the tree; returns whether the filesystem took the ACL."""
    (root / "public.txt").write_text("public")
    (root / "secret.txt").write_text("secret")
    os.chmod(root / "secret.txt", 0o600)
    (root / "granted.txt").write_text("granted")
    os.chmod(root / "granted.txt", 0o600)
    (root / "locked").mkdir(mode=0o700)
    (root / "locked" / "x").write_text("x")
    (root / "shared").mkdir()
    os.chmod(root / "shared", 0o777)
    user_obj, user, group_obj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
    acl = _acl(
        [
            (user_obj, 6, 0xFFFFFFFF),
            (user, 4, NOBODY),
            (group_obj, 0, 0xFFFFFFFF),
            (mask, 4, 0xFFFFFFFF),
            (other, 0, 0xFFFFFFFF),
        ]
    )
    try:
        os.setxattr(root / "granted.txt", "system.posix_acl_access", acl)
        return True
    except OSError:
        return False


def probe(root: Path) -> dict:
    return json.loads(run_as_nobody(PROBE, str(root)))


def test_unprivileged_user_sees_backing_permissions(open_tmp):
    native, backing, mnt = open_tmp / "native", open_tmp / "backing", open_tmp / "mnt"
    for d in (native, backing):
        d.mkdir()
        os.chmod(d, 0o755)
    acl_native = populate(native)
    acl_backing = populate(backing)
    assert acl_native == acl_backing
    m = start_mount(backing, mnt, "--allow-other")
    try:
        os.chmod(mnt, 0o755)
        expected = probe(native)
        got = probe(mnt)
        assert expected["read secret"] == "EACCES" and expected["list locked"] == "EACCES"
        if acl_native:
            assert expected["read acl-granted"] == "granted"
        assert got == expected
        st = os.stat(backing / "shared" / "mine.txt")
        assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
        assert st.st_uid == os.stat(native / "shared" / "mine.txt").st_uid
    finally:
        m.unmount()
