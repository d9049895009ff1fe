"""Retention and `semfs gc`: what goes, what stays, and orphans left by a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from click.testing import CliRunner

from semfs.cli import cli
from semfs.core.state import default_state_dir
from semfs.core.versions import retention
from semfs.core.versions.keeper import Versions
from semfs.core.versions.retention import Policy


def make(tmp_path) -> Versions:
    backing = tmp_path / "b"
    backing.mkdir()
    return Versions(backing, default_state_dir(backing.resolve()))


def edit(vs: Versions, rel: str, texts: list[str], when: list[float]) -> None:
    """Write each text in turn, keeping the one before as a version at the given time."""
    f = vs.backing / rel
    for text, t in zip(texts, when):
        if f.exists():
            vs.keep(rel, "write")
            vs._db().execute("UPDATE versions SET time = ? WHERE id = (SELECT max(id) FROM versions)", [t])
            vs._db().conn.commit()
        f.write_text(text)
        os.utime(f, ns=(int(t * 1e9) + 1, int(t * 1e9) + 1))  # a new mtime: a new version


def numbers(vs: Versions, rel: str) -> list[int]:
    return [v.version for v in vs.history(rel)]


def test_keep_newest_and_recent(tmp_path):
    vs = make(tmp_path)
    now = time.time()
    day = 86400
    edit(vs, "a.txt", [f"a{i}" * 100 for i in range(8)], [now - (40 - i) * day for i in range(8)])  # all old
    edit(vs, "b.txt", [f"b{i}" * 100 for i in range(5)], [now - i for i in range(5, 0, -1)])  # all recent
    assert numbers(vs, "a.txt") == list(range(1, 8)) and numbers(vs, "b.txt") == [1, 2, 3, 4]
    dry = retention.collect(vs, Policy(keep=3, days=30), now=now, dry_run=True, grace=0)
    assert (dry.versions, dry.paths) == (4, 1) and numbers(vs, "a.txt") == list(range(1, 8))
    r = retention.collect(vs, Policy(keep=3, days=30), grace=0)
    assert numbers(vs, "a.txt") == [5, 6, 7]  # the newest 3
    assert numbers(vs, "b.txt") == [1, 2, 3, 4]  # young: all stay
    assert r.versions == 4 and r.blobs == 4 and r.bytes_freed > 0
    assert vs.content(vs.history("a.txt")[0]) == b"a4" * 100  # what stays still reads


def test_size_budget_prunes_oldest_first(tmp_path):
    vs = make(tmp_path)
    now = time.time()
    texts = [os.urandom(20_000).hex() for _ in range(6)]  # incompressible enough: ~20 KB+ each
    edit(vs, "big.txt", texts, [now - 100 + i for i in range(6)])
    sizes = [vs.blobs.path(v.sha256).stat().st_size for v in vs.history("big.txt")]
    budget = sum(sizes[-2:])
    r = retention.collect(vs, Policy(keep=100, days=365, max_bytes=budget), grace=0)
    assert numbers(vs, "big.txt") == [4, 5] and r.bytes_kept <= budget


def test_shared_blobs_stay_while_referred_to(tmp_path):
    vs = make(tmp_path)
    now = time.time()
    old = now - 100 * 86400
    edit(vs, "x.txt", ["same", "other", "last"], [old, old + 1, old + 2])
    edit(vs, "y.txt", ["same", "y2"], [now - 5, now - 4])  # young: stays, and shares the blob of "same"
    retention.collect(vs, Policy(keep=1, days=30), grace=0)
    assert numbers(vs, "x.txt") == [2]
    assert vs.content(vs.history("y.txt")[0]) == b"same"


def test_orphan_blob_from_kill_9_between_blob_and_row(tmp_path):
    """A real SIGKILL after the blob is written and before its row: history still works, gc cleans up."""
    vs = make(tmp_path)
    f = vs.backing / "doc.txt"
    f.write_text("kept properly")
    assert vs.keep("doc.txt", "write") == 1
    f.write_text("content whose row never comes")
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from semfs.core.versions.keeper import Versions
        from semfs.stores import metadata as md
        md.write = lambda db: os.kill(os.getpid(), signal.SIGKILL)  # dies right after the blob is stored
        Versions(Path({str(vs.backing)!r}), Path({str(vs.state_dir)!r})).keep("doc.txt", "write")
        """
    )
    p = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert p.returncode == -9
    blobs = set(vs.blobs.names())
    assert len(blobs) == 2  # the orphan is there
    assert [v.version for v in vs.history("doc.txt")] == [1]
    assert vs.content(vs.history("doc.txt")[0]) == b"kept properly"
    young = retention.collect(vs)  # within the grace period: left alone (its row might still come)
    assert young.blobs == 0 and young.waiting == 1 and set(vs.blobs.names()) == blobs
    r = retention.collect(vs, now=time.time() + retention.GRACE + 1)
    assert r.blobs == 1 and len(list(vs.blobs.names())) == 1
    assert vs.content(vs.history("doc.txt")[0]) == b"kept properly"
    assert vs.keep("doc.txt", "write") == 2  # and versioning goes on


def test_gc_cli(tmp_path):
    vs = make(tmp_path)
    now = time.time()
    edit(vs, "a.txt", [f"v{i}" for i in range(6)], [now - 400 * 86400 + i for i in range(6)])
    b = str(vs.backing)
    r = CliRunner().invoke(cli, ["gc", b, "--keep", "2", "--dry-run"])
    assert r.exit_code == 0 and "would prune 3 versions of 1 file and" in r.output, r.output
    assert len(vs.history("a.txt")) == 5
    r = CliRunner().invoke(cli, ["gc", b, "--keep", "2", "--max-size", "10M"])
    assert r.exit_code == 0 and "pruned 3 versions" in r.output and "newest 2 versions" in r.output, r.output
    r = CliRunner().invoke(cli, ["gc", b])  # the policy was saved
    assert r.exit_code == 0 and "pruned 0 versions" in r.output and "newest 2 versions" in r.output
    assert "10.0 MB" in r.output and "under 5% free" in r.output  # the default reserve
    r = CliRunner().invoke(cli, ["gc", b, "--reserve", "3G"])
    assert r.exit_code == 0 and "none is kept while the disk has under 3.0 GB free" in r.output, r.output
    assert retention.load_policy(vs.connection()).reserve == 3 << 30  # saved, for the mount's next pass
    for args, needle in (
        (["--reserve", "-1"], "cannot be negative"),
        (["--keep", "0"], "--keep must be at least 1"),
        (["--max-size", "lots"], "not a size"),
        (["--days", "-1"], "cannot be negative"),
    ):
        r = CliRunner().invoke(cli, ["gc", b, *args])
        assert r.exit_code != 0 and needle in r.output, (args, r.output)
    r = CliRunner().invoke(cli, ["gc", str(tmp_path / "never")])
    assert r.exit_code == 1 and r.output.count("\n") == 1


def test_pieces_shared_by_a_kept_version_stay(tmp_path):
    from test_blobs import text_of

    vs = make(tmp_path)
    now = time.time()
    v1 = text_of(3 << 20).decode()
    v2 = v1[: 1 << 20] + "an edit" + v1[(1 << 20) + 3 :]
    v3 = v2[: 2 << 20] + "another edit" + v2[(2 << 20) + 3 :]
    old = now - 100 * 86400
    edit(vs, "big.txt", [v1, v2, v3], [old, old + 1, old + 2])  # versions 1 (v1) and 2 (v2)
    before = vs.blobs.size_on_disk()
    one = sum(vs.blobs.path(p).stat().st_size for p in vs.blobs.pieces(vs.history("big.txt")[0].sha256))
    assert before < 1.2 * one  # two versions, stored little more than once
    r = retention.collect(vs, Policy(keep=1, days=1), grace=0)
    assert r.versions == 1 and 0 < r.bytes_freed < before / 5  # only what v1 did not share with v2
    (kept,) = vs.history("big.txt")
    assert vs.content(kept) == v2.encode()
    assert r.bytes_kept == vs.blobs.size_on_disk()
