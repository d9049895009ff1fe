"""Faults the drive survives (issue 22): the open-file limit, a full disk held full, deletes on it."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from typing import Optional

import pytest
from click.testing import CliRunner

from semfs.cli import cli

from helpers import damage, force_unmount, root_pages, start_mount, wait_for


def status(mnt) -> str:
    return CliRunner().invoke(cli, ["status", str(mnt)]).output


def found(mnt, word: str) -> list[str]:
    return [n for n in os.listdir(mnt / "query" / word) if not n.startswith(".")]


def found_now(mnt, word: str) -> Optional[list[str]]:
    """:func:`found`, or None while the search fails (a damaged database, until it is healed)."""
    try:
        return found(mnt, word)
    except OSError:
        return None


def mount_under(shell: str, backing, mnt, *extra: str) -> subprocess.Popen:
    """``semfs mount --foreground`` started by bash after ``shell`` (a ulimit, say)."""
    backing.mkdir(exist_ok=True)
    mnt.mkdir(exist_ok=True)
    cmd = " ".join([f"{shell};", "exec", sys.executable, "-m", "semfs", "mount", "--foreground", *extra])
    proc = subprocess.Popen(["bash", "-c", f'{cmd} "$0" "$1"', str(backing), str(mnt)], stdin=subprocess.DEVNULL)
    wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None, what="mount")
    assert proc.poll() is None, proc.returncode
    return proc


def stop(proc: subprocess.Popen, mnt) -> None:
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    force_unmount(mnt)


def test_a_daemon_started_under_a_low_open_file_limit_serves_a_thousand_open_files(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 2200, hard  # what this test needs of the machine for its own side
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    backing, mnt = tmp_path / "b", tmp_path / "m"
    proc = mount_under("ulimit -Sn 256", backing, mnt)
    held = []
    try:
        for i in range(1000):
            f = open(mnt / f"f{i:04}.txt", "w")
            f.write(f"open file number {i} says zebra{i}\n")
            f.flush()
            held.append(f)
        other = subprocess.run(  # another process creates files meanwhile
            ["bash", "-c", f"for i in $(seq 1 50); do echo quagga $i > {mnt}/o$i.txt || exit 1; done"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        for f in held:
            f.close()
        held.clear()
        wait_for(lambda: "1050 files indexed, 0 queued" in status(mnt), timeout=120, what="all indexed")
        assert found(mnt, "zebra999") == ["01-f0999.txt"] and found(mnt, "quagga")
    finally:
        for f in held:
            f.close()
        stop(proc, mnt)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def small_disk(tmp_path, mb: int):
    """An ext4 filesystem of ``mb`` MB on a loop device, mounted at ``tmp_path / "disk"`` (no
    blocks reserved for root, so the disk is as full for the daemon as for its user)."""
    image, top = tmp_path / "disk.img", tmp_path / "disk"
    top.mkdir()
    with open(image, "wb") as f:
        f.truncate(mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
    r = subprocess.run(["mount", "-o", "loop", str(image), str(top)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device to make a small disk with: {r.stderr.strip()}")
    try:
        yield top
    finally:
        subprocess.run(["umount", "-l", str(top)])


def test_a_full_disk_held_full_then_freed_as_root(tmp_path):
    """BACKING and the state dir on one 24 MB loop-mounted ext4, filled through the mount and
    held full past the old give-up point (20 failed rounds): the mount serves, a delete through
    it succeeds and frees the space (no version is kept under the reserve), and a file written
    once there is room is found within seconds."""
    with small_disk(tmp_path, 24) as top:
        full_disk_held_then_freed(tmp_path, top)


def full_disk_held_then_freed(tmp_path, top) -> None:
    backing, mnt, state = top / "b", tmp_path / "m", top / "state"
    proc = None
    try:
        backing.mkdir()
        (backing / "notes.txt").write_text("the walrus files\n")
        proc = mount_under("true", backing, mnt, "--no-llm", "--state-dir", str(state))
        wait_for(lambda: found(mnt, "walrus") == ["01-notes.txt"], what="indexed")
        big = mnt / "big.bin"
        with open(big, "wb") as f:
            try:
                while True:
                    f.write(os.urandom(1 << 20))
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        said = set()
        for n in range(25):  # changes the indexer must record while no byte can be written
            os.utime(mnt / "notes.txt")
            time.sleep(1)
            said.add("waiting: no space left" in status(mnt))
        assert True in said, status(mnt)
        assert (mnt / "notes.txt").read_text() == "the walrus files\n"  # served throughout
        size = big.stat().st_size
        before = os.statvfs(top).f_bavail * os.statvfs(top).f_frsize
        os.unlink(big)  # through the mount, on a full disk
        after = os.statvfs(top).f_bavail * os.statvfs(top).f_frsize
        assert after - before > size * 0.9, (before, after, size)
        (mnt / "fresh.txt").write_text("a narwhal arrived after the disk was freed\n")
        wait_for(lambda: found(mnt, "narwhal") == ["01-fresh.txt"], timeout=15, what="found once there is room")
        wait_for(lambda: "waiting" not in status(mnt), timeout=10, what="the waiting cleared")
    finally:
        if proc is not None:
            stop(proc, mnt)


def indexed_once(backing, mnt, texts: list[str], until: str) -> None:
    """``texts`` as files ``n00.txt``... of ``backing``, mounted until ``semfs status`` says
    ``until``, then unmounted (the state saved)."""
    backing.mkdir()
    for i, text in enumerate(texts):
        (backing / f"n{i:02}.txt").write_text(text)
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: until in status(mnt), timeout=60, what=until)
    finally:
        m.unmount()


def test_a_damaged_page_of_the_database_is_found_and_rebuilt(tmp_path, semfs_home):
    backing, mnt = tmp_path / "b", tmp_path / "m"
    texts = [f"note {i} of the ledger, word{i} " + "filler text " * 60 for i in range(80)]
    indexed_once(backing, mnt, texts, until="80 files indexed, 0 queued")
    state = next(p.parent for p in semfs_home.rglob("semfs.db"))
    assert (state / "semfs.db").stat().st_size > 13 * 4096
    damage(state / "semfs.db")
    r = CliRunner().invoke(cli, ["search", str(backing), "word7"])
    assert r.exit_code == 1 and "damaged" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: found(mnt, "word42") == ["01-n42.txt"], timeout=60, what="rebuilt from BACKING")
        assert list(state.glob("semfs.db.corrupt-*"))  # moved aside, not deleted
        # ... and its vectors re-embedded: their ids were the old database's chunk ids
        wait_for(lambda: "80 of 80 files embedded" in status(mnt), timeout=60, what="embedded again")
        assert found(mnt, "word42") == ["01-n42.txt"]
        assert "80 files indexed, 0 queued, 0 failed" in status(mnt)
    finally:
        m.unmount()
    r = CliRunner().invoke(cli, ["search", str(backing), "word7"])
    assert r.exit_code == 0 and "n07.txt" in r.output, r.output
    damage(state / "semfs.db")  # and semfs index heals it too, with the mount away
    r = CliRunner().invoke(cli, ["index", str(backing)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["search", str(backing), "word7"])
    assert r.exit_code == 0 and "n07.txt" in r.output, r.output


def test_a_vector_file_with_bytes_flipped_inside_is_embedded_again(tmp_path, semfs_home):
    backing, mnt = tmp_path / "b", tmp_path / "m"
    texts = [f"note {i} about topic{i} " + "more words here " * 30 for i in range(40)]
    indexed_once(backing, mnt, texts, until="40 of 40 files embedded")  # (the vectors saved at unmount)
    segment = max(semfs_home.rglob("seg-*.vec"), key=lambda p: p.stat().st_size)
    with open(segment, "r+b") as f:  # 4 KB of random bytes among its vectors, its size unchanged
        f.seek(segment.stat().st_size - 8192)
        f.write(os.urandom(4096))
    log = tmp_path / "mount.log"
    m = start_mount(backing, mnt, log=log)
    try:
        wait_for(lambda: "vectors are embedded again" in log.read_text(), timeout=30, what="the damage found")
        wait_for(lambda: "40 of 40 files embedded" in status(mnt), timeout=60, what="embedded again")
        assert found(mnt, "topic17")[0] == "01-n17.txt"
    finally:
        m.unmount()
    shutil.rmtree(segment.parent)  # status says what is searchable by meaning now, not what the record said
    assert "meaning:   0 of 40 files embedded" in status(backing), status(backing)


def test_a_database_moved_aside_takes_its_vectors_with_it(tmp_path):
    """The vector file's ids are the damaged database's chunk ids, which the rebuilt one gives
    to other chunks: it goes with the database, and every chunk is embedded again."""
    from semfs.stores import metadata as md

    md.open_db(tmp_path).close()
    db = md.open_db(tmp_path)
    with md.write(db):
        db.execute("CREATE TABLE filler (x TEXT)")
        db.conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(200)])
    db.close()
    (tmp_path / "vectors.faiss").write_bytes(b"the old ids")  # (the one file of before segments)
    (tmp_path / "vectors").mkdir()
    (tmp_path / "vectors" / "manifest.json").write_text("{}")
    damage(tmp_path / "semfs.db", pages=(3, 4, 5))
    assert md.check_db(tmp_path) is not None
    assert not (tmp_path / "vectors.faiss").exists() and not (tmp_path / "vectors").exists()
    assert list(tmp_path.glob("semfs.db.corrupt-*"))


def test_damage_met_while_mounted_is_healed_while_the_mount_serves(tmp_path, semfs_home):
    """Pages of the files, chunks and postings damaged under a running mount: the next read of
    them moves the database aside, the mount reads BACKING again while it serves, and the
    versions and saved queries the damaged file still gives up are kept."""
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    for i in range(40):
        (backing / f"n{i:02}.txt").write_text(f"note {i} of the ledger, word{i} " + "filler text " * 60)
    log = tmp_path / "mount.log"
    m = start_mount(backing, mnt, log=log)
    try:
        wait_for(lambda: "40 files indexed, 0 queued" in status(mnt), timeout=60, what="indexed")
        (mnt / "n03.txt").write_text("note 3 rewritten: the old words are a version now\n")
        (mnt / "query" / "ledger word5").mkdir()  # a saved query
        r = CliRunner().invoke(cli, ["gc", str(mnt), "--keep", "7"])  # a policy of the user's
        assert r.exit_code == 0, r.output
        wait_for(lambda: os.listdir(mnt / "history" / "n03.txt"), what="the version recorded")
        wait_for(lambda: found(mnt, "rewritten") == ["01-n03.txt"], what="the change indexed")
        state = next(p.parent for p in semfs_home.rglob("semfs.db"))
        db = state / "semfs.db"
        conn = sqlite3.connect(db)  # the pages as they are now, then damaged where the mount reads them next
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        damage(db, pages=root_pages(db, "files", "chunks", "lex_postings", "lex_postings_term"))
        (mnt / "fresh.txt").write_text("a narwhal arrived after the damage\n")
        found_now(mnt, "word7")  # meets the damage: answered from the new database, or EIO once
        wait_for(lambda: found_now(mnt, "narwhal") == ["01-fresh.txt"], timeout=90, what="healed and indexed again")
        wait_for(lambda: found_now(mnt, "word7") == ["01-n07.txt"], timeout=60, what="BACKING read again")
        assert list(state.glob("semfs.db.corrupt-*"))  # moved aside, not deleted
        said = status(mnt)
        assert "healed:    the index database was damaged and rebuilt" in said, said
        assert "1 version and 1 saved query recovered" in said, said
        assert (mnt / "n03.txt").read_text().startswith("note 3 rewritten")  # the mount served throughout
        assert "ledger word5" in os.listdir(mnt / "query")
        assert "keeping the newest 7" in said, said  # the user's policy
        (old,) = os.listdir(mnt / "history" / "n03.txt")
        assert (mnt / "history" / "n03.txt" / old).read_text().startswith("note 3 of the ledger")
        assert "the index database is new" in log.read_text() and "Fatal Python error" not in log.read_text()
    finally:
        m.unmount()


def test_what_a_damaged_database_still_gives_up_is_recovered_and_the_rest_said(tmp_path):
    """A leaf of the versions table damaged: the versions on the other leaves come back (those
    whose content is still kept), and the line for ``semfs status`` says some could not be read."""
    from semfs.stores import healing, local
    from semfs.stores import metadata as md

    db = md.open_db(tmp_path)
    with md.write(db):
        db.conn.executemany(
            "INSERT INTO versions (path, version, sha256, pending, size, mtime_ns, time, origin) "
            "VALUES (?, 1, ?, NULL, 1, 1, 1.0, 'write')",
            [(f"folder/a rather long file name to fill pages {i:04}.txt", f"{i:064x}") for i in range(600)],
        )
        db.execute("INSERT INTO saved_queries VALUES ('budget', 'budget meeting', 1.0)")
    db.close()
    conn = sqlite3.connect(tmp_path / "semfs.db")
    leaves = [p for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'versions' AND pagetype = 'leaf'")]
    conn.close()
    assert len(leaves) > 4
    damage(tmp_path / "semfs.db", pages=[leaves[2] - 1])
    aside = md.check_db(tmp_path)
    assert aside is not None
    new = md.open_db(tmp_path)
    try:
        line = healing.recover(aside, new, lambda sha, pending: int(sha, 16) != 7, aside)  # one's content is gone
        paths = [r[0] for r in new.execute("SELECT path FROM versions")]
        assert local.saved_queries(new) == [("budget", "budget meeting")]
    finally:
        new.close()
    assert 500 < len(paths) < 599 and not any(p.endswith("0007.txt") for p in paths), len(paths)
    assert paths[-1].endswith("0599.txt")  # past the damaged leaf
    assert f"{len(paths)} versions and 1 saved query recovered; others kept before then could not be read" in line


def test_a_damaged_header_met_while_mounted_is_healed_by_the_next_mount(tmp_path, semfs_home):
    """Page 1 cannot be written over in place: the mount says so once, goes on serving files
    (searches fail), keeps one copy of the damaged file, and its next start heals it."""
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    for i in range(10):
        (backing / f"n{i:02}.txt").write_text(f"note {i}, word{i}\n")
    log = tmp_path / "mount.log"
    m = start_mount(backing, mnt, log=log)
    try:
        wait_for(lambda: "10 files indexed, 0 queued" in status(mnt), timeout=60, what="indexed")
        state = next(p.parent for p in semfs_home.rglob("semfs.db"))
        conn = sqlite3.connect(state / "semfs.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        damage(state / "semfs.db", pages=(0,))
        (mnt / "fresh.txt").write_text("a narwhal\n")
        wait_for(lambda: "could not heal" in log.read_text() or found_now(mnt, "narwhal"), timeout=30, what="met")
        for _ in range(3):
            found_now(mnt, "word3")
        assert (mnt / "n03.txt").read_text() == "note 3, word3\n" and (backing / "fresh.txt").exists()
        assert log.read_text().count("could not heal") <= 1
        assert len(list(state.glob("semfs.db.corrupt-*[0-9]"))) <= 1
    finally:
        m.unmount()
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: found_now(mnt, "narwhal") == ["01-fresh.txt"], timeout=60, what="healed at the mount's start")
        assert found(mnt, "word3") == ["01-n03.txt"]
    finally:
        m.unmount()


def test_damaged_copies_are_kept_three_at_most(tmp_path):
    """A disk that damages every database it is given fills with no more than three copies."""
    from semfs.stores import metadata as md

    for i in range(4):
        old = tmp_path / f"semfs.db.corrupt-2026010{i}-000000"
        old.write_bytes(b"x")
        os.utime(old, (i, i))
    (tmp_path / "semfs.db").write_bytes(b"not a database, but damaged")
    aside = md.move_aside(tmp_path / "semfs.db", "a test")
    left = sorted(p.name for p in tmp_path.glob("semfs.db.corrupt-*"))
    assert left == ["semfs.db.corrupt-20260102-000000", "semfs.db.corrupt-20260103-000000", aside.name], left
