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
import time
from pathlib import Path

import pytest

from helpers import NOBODY, run_as_nobody, start_mount, wait_for

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
    return json.loads(run_as_nobody(PROBE, str(mnt), json.dumps(checks)))


@pytest.fixture(params=["embedded", "postgresql"])
def shared_mount(open_tmp, request):
    """A root daemon's --allow-other mount of a folder with a secret, a private folder and a shared one,
    with its index on each backend: what a caller may see is decided the same way on both."""
    top = open_tmp
    index = []
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_index")
        index = ["--index", pg.url, "--folder", pg.folder]
    backing, mnt = top / "backing", top / "mnt"
    backing.mkdir()
    os.chmod(backing, 0o755)
    (backing / "public.txt").write_text(
        "Public notes: the launch code ceremony is on Friday, rocket engine tests after."
    )
    (backing / "secret.txt").write_text("draft")
    os.chmod(backing / "secret.txt", 0o600)
    (backing / "private").mkdir(mode=0o700)
    (backing / "private" / "diary-of-bob.txt").write_text("Dear diary: I know the launch code of the rocket engine.")
    (backing / "shared").mkdir()
    os.chmod(backing / "shared", 0o1777)
    (backing / "shared" / "root-only.txt").write_text("root's own notes")
    os.chmod(backing / "shared" / "root-only.txt", 0o600)
    m = start_mount(backing, mnt, "--allow-other", "--state-dir", str(top / "state"), *index)
    try:
        os.chmod(mnt, 0o755)
        for text in (
            "The launch code is 4471; the rocket engine fires at dawn.",
            "The launch code is 9902; rocket engine.",
        ):
            (mnt / "secret.txt").write_text(text)  # kept versions of a 0600 file
        q = mnt / "query" / "launch code rocket engine"
        three = {"public.txt", "secret.txt", "diary-of-bob.txt"}
        wait_for(
            lambda: three <= {n.split("-", 1)[1] for n in os.listdir(q) if not n.startswith(".")},
            what="root sees all three",
        )
        wait_for(lambda: len(os.listdir(mnt / "history" / "secret.txt")) >= 2, what="versions kept")
        time.sleep(1.2)  # past the kernel's entry cache of root's lookups
        yield top, backing, mnt
    finally:
        m.unmount()


def test_nobody_sees_nothing_of_files_it_cannot_read(shared_mount):
    top, backing, mnt = shared_mount
    versions = sorted(os.listdir(mnt / "history" / "secret.txt"))
    root_names = [n for n in os.listdir(mnt / "query" / "launch code rocket engine") if not n.startswith(".")]
    time.sleep(1.2)
    got = as_nobody(
        mnt,
        {
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
            "5 a guessed name": [
                "readlink",
                f"query/launch code rocket engine/{[n for n in root_names if 'secret' in n][0]}",
            ],
            "6 similar results": ["read", "similar/public.txt/.results.json"],
            "6 similar of secret": ["ls", "similar/secret.txt"],
        },
    )
    assert got["1 read secret"] == "EACCES" and got["1 list private"] == "EACCES"  # the mirror, as before
    for label in (
        "2 read a version",
        "2 list versions",
        "3 summary of secret",
        "3 summary of diary",
        "4 summary of private",
        "4 similar of private",
        "5 a guessed name",
        "6 similar of secret",
    ):
        assert got[label] == "ENOENT", (label, got[label])
    assert got["4 history root"] == []  # secret.txt's history is not there for nobody
    assert got["5 query"] == [".matches", ".results.json", "01-public.txt"]
    for label in ("5 results", "6 similar results"):
        paths = [r["path"] for r in json.loads(got[label])["results"]]
        assert "secret.txt" not in paths and "private/diary-of-bob.txt" not in paths, (label, paths)
        assert "4471" not in got[label] and "diary" not in got[label]
    # root, meanwhile, still sees all of it
    assert len(root_names) >= 3 and len(versions) >= 2


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
    got = as_nobody(
        mnt,
        {
            "similar": ["ls", "similar/shared/mine.txt"],
            "summary": ["read", "summary/shared/mine.txt"],
            "summary dir": ["ls", "summary/shared"],
            "mirror dir": ["ls", "shared"],
            "history": ["ls", "history/shared/mine.txt"],
            "history root": ["ls", "history"],
            "similar of public": ["ls", "similar/public.txt"],
        },
    )
    assert ".results.json" in got["similar"]
    listed = as_nobody(
        mnt,
        {
            "summary top": ["ls", "summary"],
            "similar top": ["ls", "similar"],
            "similar private": ["ls", "similar/private"],
        },
    )
    # the tree as nobody may open it: not secret.txt (0600) nor private/ (0700)
    assert listed == {
        "summary top": ["public.txt", "shared"],
        "similar top": ["public.txt", "shared"],
        "similar private": "ENOENT",
    }
    assert "the launch code of nobody" in got["summary"]
    assert got["summary dir"] == ["mine.txt"]  # not root-only.txt, which the mirror lists but nobody cannot read
    assert got["mirror dir"] == ["mine.txt", "root-only.txt"]
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
        if os.path.relpath(dirpath, state).split(os.sep)[0] == "pending":
            continue  # hard links to the user's own files, waiting to be stored: their modes are the user's
        for f in filenames:
            mode = stat.S_IMODE(os.lstat(os.path.join(dirpath, f)).st_mode)
            assert mode == 0o600, (os.path.join(dirpath, f), oct(mode))
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    got = as_nobody(top, {"db": ["read", "state/semfs.db"], "list": ["ls", "state"]})
    assert got == {"db": "EACCES", "list": "EACCES"}


def test_an_existing_state_dir_is_tightened_on_mount(tmp_path):
    """A state dir left open by an older semfs (0755, a 0644 database, 0777 blob folders)."""
    state = tmp_path / "state"
    (state / "blobs" / "ab").mkdir(parents=True)
    os.chmod(state, 0o755)
    os.chmod(state / "blobs", 0o777)
    os.chmod(state / "blobs" / "ab", 0o777)
    (state / "semfs.log").write_text("old log\n")
    os.chmod(state / "semfs.log", 0o644)
    (state / "blobs" / "elsewhere").symlink_to("/etc")  # never followed, never chmod'ed
    m = start_mount(tmp_path / "b", tmp_path / "m", "--state-dir", str(state))
    try:
        modes = {
            p.relative_to(state).as_posix(): stat.S_IMODE(os.lstat(p).st_mode)
            for p in state.rglob("*")
            if not p.is_symlink()
        }
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
        assert modes["blobs"] == modes["blobs/ab"] == 0o700
        assert modes["semfs.log"] == modes["semfs.db"] == 0o600
        assert stat.S_IMODE(os.stat("/etc").st_mode) == 0o755
    finally:
        m.unmount()


def test_a_folder_swapped_for_a_symlink_never_leads_the_daemon_outside(shared_mount):
    """Row 9: nobody sits in summary/shared/d/, then swaps shared/d for a symlink to a folder
    outside BACKING: neither a root-only file nor one nobody may read is served from there."""
    top, backing, mnt = shared_mount
    outside = top / "outside"
    outside.mkdir()
    os.chmod(outside, 0o755)
    (outside / "readable.txt").write_text("OUTSIDE TEXT that semfs must never read.")
    os.chmod(outside / "readable.txt", 0o644)
    script = r"""
import os, sys
mnt, outside = sys.argv[1], sys.argv[2]
os.mkdir(os.path.join(mnt, "shared", "d"))
os.chdir(os.path.join(mnt, "summary", "shared", "d"))
os.rmdir(os.path.join(mnt, "shared", "d"))
os.symlink(outside, os.path.join(mnt, "shared", "d"))
out = []
for name in ("readable.txt", "../../../../../../etc/shadow"):
    try:
        with open(name, "rb") as f:
            out.append(f.read().decode("utf-8", "replace"))
    except OSError as e:
        out.append("error " + str(e.errno))
print("\x00".join(out))
"""
    readable, shadow = run_as_nobody(script, str(mnt), str(outside)).rstrip("\n").split("\x00")
    assert "OUTSIDE TEXT" not in readable, readable
    assert "root:" not in shadow
    assert (backing / "shared" / "d").is_symlink()


def test_indexer_never_reads_through_a_swapped_folder(tmp_path):
    """Row 10: a path queued for indexing whose folder became a symlink to a root-only
    folder outside BACKING is refused, not indexed."""
    from semfs.core.index.indexer import Indexer
    from semfs.models.embedder import HashEmbedder
    from semfs.stores import metadata as md

    backing, outside = tmp_path / "b", tmp_path / "outside"
    (backing / "d").mkdir(parents=True)
    (backing / "d" / "notes.txt").write_text("ordinary notes")
    outside.mkdir(mode=0o700)
    (outside / "notes.txt").write_text("ROOT ONLY secret outside the backing folder")
    ix = Indexer(backing, tmp_path / "state", HashEmbedder(), debounce=0.0)
    ix.open()
    ix.reconcile()
    while ix.process_due(now=float("inf")):
        pass
    shutil.rmtree(backing / "d")
    (backing / "d").symlink_to(outside)  # swapped after the event, before the read
    with md.write(ix.db):
        md.enqueue(ix.db, ["d/notes.txt"], 0)
    while ix.process_due(now=float("inf")):
        pass
    texts = [r[0] for r in ix.db.execute("SELECT text FROM chunks")]
    assert not any("ROOT ONLY" in t for t in texts), texts
    ix.db.close()


def test_a_pending_version_swapped_for_a_symlink_is_never_stored(tmp_path):
    """Row 11: a pending link replaced by a symlink to a root-only file outside the state dir."""
    from semfs.core.versions.keeper import Versions

    backing, state = tmp_path / "b", tmp_path / "state"
    backing.mkdir()
    (backing / "v.txt").write_bytes(b"\0" * 2000)
    secret = tmp_path / "shadow"
    secret.write_text("root:SECRETHASH:19000:0:99999:7:::\n")
    os.chmod(secret, 0o600)
    vs = Versions(backing, state)
    assert vs.take("v.txt")  # the delete keeps it as a pending link
    (backing / "v.txt").unlink(missing_ok=True)
    (backing / "w.txt").write_bytes(b"\1" * 2000)
    assert vs.take("w.txt")
    links = sorted(p for p in (state / "pending").iterdir() if p.name != "journal")
    assert len(links) == 2
    links[0].unlink()
    links[0].symlink_to(secret)  # a symlink: refused by O_NOFOLLOW
    links[1].unlink()
    os.link(secret, links[1])  # another file by the same name: refused by its inode
    vs.record_journaled()
    while vs.settle_pending():
        pass
    for rel in ("v.txt", "w.txt"):
        for v in vs.history(rel):
            assert b"SECRETHASH" not in vs.content(v)
    blobs = [p for p in (state / "blobs").rglob("*") if p.is_file()]
    assert all(b"SECRETHASH" not in p.read_bytes() for p in blobs)
    assert secret.read_text().startswith("root:")


def test_gc_never_follows_a_symlink_in_the_blob_store(tmp_path):
    """Row 12: blobs/ab -> a folder outside; listing and deleting blobs leave it alone."""
    from semfs.stores.blobs import BlobStore

    store = BlobStore(tmp_path / "state" / "blobs")
    sha, _ = store.put_bytes(b"kept content")
    victim_dir = tmp_path / "elsewhere"
    victim_dir.mkdir()
    name = "ab" + "0" * 62
    (victim_dir / name).write_text("root's file outside the state dir")
    (store.root / "ab").symlink_to(victim_dir)
    assert list(store.names()) == [sha]
    assert store.delete(name) == 0
    assert (victim_dir / name).exists()
    assert store.delete(sha) > 0 and list(store.names()) == []


def _peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_a_huge_sparse_file_is_never_read_whole_for_a_summary(shared_mount):
    """Row 13: a 150 MB sparse file; its summary is refused at once, the daemon does not grow."""
    top, backing, mnt = shared_mount
    with open(backing / "shared" / "big.txt", "wb") as f:
        f.truncate(150 * 1024 * 1024)
    os.chmod(backing / "shared" / "big.txt", 0o644)
    pid = int(
        next(
            line.split()[-1]
            for line in subprocess.run(
                ["pgrep", "-f", f"semfs mount --foreground --allow-other --state-dir {top / 'state'}"],
                capture_output=True,
                text=True,
            ).stdout.split()[:1]
        )
    )
    before = _peak_rss_kb(pid)
    started = time.monotonic()
    got = as_nobody(mnt, {"big": ["read", "summary/shared/big.txt"]})
    assert time.monotonic() - started < 5
    assert "over the" in got["big"] and "limit" in got["big"], got["big"]
    assert _peak_rss_kb(pid) - before < 16 * 1024  # not even the indexer's 64 MB limit was read


def test_names_that_are_not_utf8_do_not_exist_under_virtual_folders(shared_mount):
    """Row 14: ENOENT, quietly, for query/, history/, summary/ and similar/."""
    top, backing, mnt = shared_mount
    for root in (b"query", b"history", b"summary", b"similar"):
        for tail in (b"/\xff\xfe", b"/ok/\xff"):
            with pytest.raises(FileNotFoundError):
                os.listdir(os.fsencode(mnt) + b"/" + root + tail)


def test_cli_as_another_user_says_so_in_one_line(shared_mount):
    """Row 15: `semfs history` by a user who cannot read the mount's state."""
    from click.testing import CliRunner

    from semfs.cli import cli

    top, backing, mnt = shared_mount
    CliRunner().invoke(cli, ["history", str(mnt / "secret.txt")])  # import everything it needs first
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child becomes nobody and runs the command
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            res = CliRunner().invoke(cli, ["history", str(mnt / "public.txt")])
            os.write(w, json.dumps([res.exit_code, res.output, repr(res.exception)]).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        code, output, exc = json.loads(f.read() or '[null, "", ""]')
    os.waitpid(pid, 0)
    assert code == 1, (code, output, exc)
    assert output.count("\n") == 1 and "Traceback" not in output, output
    assert output.startswith("Error: ")


def test_state_made_outside_a_mount_is_private_too(tmp_path):
    """The CLI (no daemon, the caller's umask 022) makes the database, and SQLite its -wal and -shm."""
    from semfs.stores import local
    from semfs.stores import metadata as md

    state = tmp_path / "state"
    old = os.umask(0o022)
    try:
        db = md.open_db(state)
        local.save_query(db, "w", "words")
        modes = {p.name: stat.S_IMODE(os.lstat(p).st_mode) for p in state.rglob("*")}
        db.close()
    finally:
        os.umask(old)
    assert {"semfs.db", "semfs.db-wal", "semfs.db-shm"} <= modes.keys(), modes
    assert {n: oct(m) for n, m in modes.items() if m != 0o600} == {}
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700


def test_a_copy_nobody_may_read_is_neither_listed_nor_named_to_it(open_tmp):
    """Issue 24, item 4: files of one text are one result; to a caller the result is a copy it
    may read, and the copies it may not are named nowhere it can see."""
    top = open_tmp
    backing, mnt = top / "backing", top / "mnt"
    backing.mkdir()
    os.chmod(backing, 0o755)
    text = "Quarterly figures of the zeppelin hangar: the helium bill doubled in spring."
    for name in ("a-root-only.txt", "b-public.txt", "c-public.txt"):
        (backing / name).write_text(text)
    os.chmod(backing / "a-root-only.txt", 0o600)
    m = start_mount(backing, mnt, "--allow-other", "--state-dir", str(top / "state"))
    try:
        os.chmod(mnt, 0o755)
        q = mnt / "query" / "zeppelin helium bill"
        doc = {}

        def one_result() -> bool:
            doc.update(json.loads((q / ".results.json").read_text()))
            return len(doc.get("results", [])) == 1 and len(doc["results"][0].get("also", [])) == 2

        wait_for(one_result, what="the three copies indexed as one result")
        first = doc["results"][0]
        assert {first["path"], *first["also"]} == {"a-root-only.txt", "b-public.txt", "c-public.txt"}
        time.sleep(1.2)
        got = as_nobody(
            mnt,
            {"ls": ["ls", "query/zeppelin helium bill"], "json": ["read", "query/zeppelin helium bill/.results.json"]},
        )
        results = json.loads(got["json"])["results"]
        assert len(results) == 1 and {results[0]["path"], *results[0].get("also", [])} == {
            "b-public.txt",
            "c-public.txt",
        }
        assert "a-root-only" not in got["json"] and got["ls"] == [
            ".matches",
            ".results.json",
            "01-" + results[0]["path"],
        ]
    finally:
        m.unmount()


def test_a_near_copy_stands_in_without_the_lines_nobody_may_read(open_tmp):
    """Issue 24, item 4: a file nobody may read, and a public one of the same text but for a
    line, are one result; to nobody it is the public one, with none of the other's lines."""
    top = open_tmp
    backing, mnt = top / "backing", top / "mnt"
    backing.mkdir()
    os.chmod(backing, 0o755)
    lines = [f"Entry {i}: the zeppelin hangar log, door {i} checked." for i in range(30)]
    (backing / "hangar-public.txt").write_text("\n".join(lines) + "\n")
    (backing / "hangar-root.txt").write_text(
        "\n".join(lines + ["The vault code of the zeppelin hangar is 8812."]) + "\n"
    )
    os.chmod(backing / "hangar-root.txt", 0o600)
    m = start_mount(backing, mnt, "--allow-other", "--state-dir", str(top / "state"))
    try:
        os.chmod(mnt, 0o755)
        q = mnt / "query" / "vault code zeppelin hangar"

        def one_result() -> bool:
            rows = json.loads((q / ".results.json").read_text()).get("results", [])
            return len(rows) == 1 and {rows[0]["path"], *rows[0].get("alike", [])} == {
                "hangar-public.txt",
                "hangar-root.txt",
            }

        wait_for(one_result, what="the two files indexed as one result")
        assert "8812" in (q / ".matches").read_text()  # root reads it
        time.sleep(1.2)
        got = as_nobody(
            mnt,
            {
                "json": ["read", "query/vault code zeppelin hangar/.results.json"],
                "matches": ["read", "query/vault code zeppelin hangar/.matches"],
            },
        )
        rows = json.loads(got["json"])["results"]
        assert [r["path"] for r in rows] == ["hangar-public.txt"] and "alike" not in rows[0]
        assert "8812" not in got["json"] and "8812" not in got["matches"] and "hangar-root" not in got["json"]
    finally:
        m.unmount()


TOPICS_WALK = r"""
import json, os, sys
root = os.path.join(sys.argv[1], "topics")
out = {}
for top, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(top, n)
        out[os.path.relpath(p, root)] = os.readlink(p) if os.path.islink(p) else None
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["embedded", "postgresql"])
def test_topics_show_nobody_only_its_files_and_their_words(open_tmp, backend, request):
    """Issue 25, item 1: a topic exists for a caller only if it may read one of its files, and
    its name holds only words of the files it may read (the grouping read from either index)."""
    top = open_tmp
    index = []
    if backend == "postgresql":
        pg = request.getfixturevalue("pg_index")
        index = ["--index", pg.url, "--folder", pg.folder]
    backing, mnt = top / "backing", top / "mnt"
    backing.mkdir()
    os.chmod(backing, 0o755)
    garden = "tomato compost soil seedlings watering trellis mulch"
    for i in range(6):
        (backing / f"garden-{i}.txt").write_text(f"{garden} row {i}\n")
    airship = "helium hangar airship mooring mast envelope gasbag"
    for i in range(5):  # a subject of files only root may read, its name word in them alone
        (backing / f"secret-{i}.txt").write_text(f"zeppelin zeppelin zeppelin {airship} {i}\n")
        os.chmod(backing / f"secret-{i}.txt", 0o600)
    (backing / "public-airship.txt").write_text(f"{airship} weather\n")  # the same subject, no zeppelin
    (backing / "vault").mkdir(mode=0o700)
    for i in range(4):  # and one nobody may not even look into
        (backing / "vault" / f"v{i}.txt").write_text("bullion ingots bullion ingots bullion ingots vault ledger\n")
    m = start_mount(backing, mnt, "--allow-other", "--state-dir", str(top / "state"), *index)
    try:
        os.chmod(mnt, 0o755)
        wait_for(lambda: len(os.listdir(mnt / "topics")) >= 4, timeout=60, what="three topics")
        names = [n for n in os.listdir(mnt / "topics") if not n.startswith("HOW")]
        (airships,) = [n for n in names if "zeppelin" in n]
        (vault,) = [n for n in names if "bullion" in n or "ingots" in n]
        assert len(os.listdir(mnt / "topics" / airships)) == 6  # root sees all of it
        time.sleep(1.2)
        seen = json.loads(run_as_nobody(TOPICS_WALK, str(mnt)))
        assert "zeppelin" not in json.dumps(seen) and "secret-" not in json.dumps(seen), seen
        assert not any(vault in p or "bullion" in p or "ingots" in p or "v0" in p for p in seen), seen
        shown = {p.split("/")[0] for p in seen if "/" in p}
        assert len(shown) == 2, seen  # the garden and, by the words nobody may read, the airships
        (mine,) = [n for n in shown if not n.startswith(("tomato", "compost", "soil", "seedlings"))] or [""]
        links = {p: t for p, t in seen.items() if p.startswith(mine + "/")}
        assert list(links.values()) == ["../../public-airship.txt"], seen
        assert set(mine.split()) <= set(airship.split()) | {"weather"}, mine
        got = as_nobody(mnt, {"guess": ["ls", f"topics/{airships}"], "vault": ["ls", f"topics/{vault}"]})
        assert got == {"guess": "ENOENT", "vault": "ENOENT"}
    finally:
        m.unmount()
