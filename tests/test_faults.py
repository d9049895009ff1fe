"""Faults the drive survives (issue 22): the open-file limit, a full disk held full, deletes on it."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import time

from click.testing import CliRunner

from semfs.cli import cli

from helpers import force_unmount, start_mount, wait_for


def status(mnt) -> str:
    return CliRunner().invoke(cli, ["status", str(mnt)]).output


def found(mnt, word: str) -> list[str]:
    return [n for n in os.listdir(mnt / "query" / word) if not n.startswith(".")]


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


def test_a_full_disk_held_full_then_freed_as_root(tmp_path):
    """BACKING and the state dir on one 24 MB tmpfs, filled through the mount and held full past
    the old give-up point (20 failed rounds): the mount serves, a delete through it succeeds and
    frees the space (no version is kept under the reserve), and a file written once there is
    room is found within seconds."""
    top = tmp_path / "disk"
    top.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(top)], check=True)
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
        subprocess.run(["umount", "-l", str(top)])


def damage(db, pages=(10, 11, 12)) -> None:
    """Random bytes over whole pages of an SQLite file (4096-byte pages, semfs's default)."""
    with open(db, "r+b") as f:
        for page in pages:
            f.seek(page * 4096)
            f.write(os.urandom(4096))


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
    vectors = next(semfs_home.rglob("vectors.faiss"))
    assert vectors.read_bytes()[-44:-32] == b"semfs-sha256"
    with open(vectors, "r+b") as f:  # 4 KB of random bytes inside, its size unchanged
        f.seek(vectors.stat().st_size // 2)
        f.write(os.urandom(4096))
    log = tmp_path / "mount.log"
    m = start_mount(backing, mnt, log=log)
    try:
        wait_for(lambda: "re-embedding every chunk" in log.read_text(), timeout=30, what="the damage found")
        wait_for(lambda: "40 of 40 files embedded" in status(mnt), timeout=60, what="embedded again")
        assert found(mnt, "topic17")[0] == "01-n17.txt"
    finally:
        m.unmount()
    vectors.unlink()  # status says what is searchable by meaning now, not what the record said
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
    (tmp_path / "vectors.faiss").write_bytes(b"the old ids")
    damage(tmp_path / "semfs.db", pages=(3, 4, 5))
    assert not md.check_db(tmp_path)
    assert not (tmp_path / "vectors.faiss").exists() and list(tmp_path.glob("semfs.db.corrupt-*"))
