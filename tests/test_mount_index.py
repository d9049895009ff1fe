"""The index kept live by a real mount: writes, renames, deletes, crashes."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

from click.testing import CliRunner

from semfs.cli import cli
from semfs.core.state import default_state_dir
from semfs.stores import metadata as md

from helpers import start_mount, wait_for

DEMO = Path(__file__).resolve().parent.parent / "demo"


def search(backing: Path, query: str, *extra: str) -> list[str]:
    r = CliRunner().invoke(cli, ["search", str(backing), query, "--json", *extra])
    if r.exit_code != 0:
        return []
    return [json.loads(line)["path"] for line in r.output.splitlines()]


def index_counts(backing: Path) -> dict:
    db = md.open_db_readonly(default_state_dir(backing.resolve()))
    if db is None:
        return {}
    try:
        return md.counts(db)
    finally:
        db.close()


def test_writes_renames_deletes_reach_search(tmp_path):
    backing, mnt = tmp_path / "b", tmp_path / "m"
    m = start_mount(backing, mnt)
    try:
        (mnt / "notes").mkdir()
        (mnt / "notes" / "wing.md").write_text("The swept wing stalls at high angles of attack.")
        wait_for(lambda: search(backing, "swept wing stalls") == ["notes/wing.md"], what="indexed write")
        os.rename(mnt / "notes" / "wing.md", mnt / "notes" / "aerofoil.md")
        wait_for(lambda: search(backing, "swept wing stalls") == ["notes/aerofoil.md"], what="renamed")
        os.unlink(mnt / "notes" / "aerofoil.md")
        assert search(backing, "swept wing stalls") == []  # gone at once, whatever the index says
        wait_for(lambda: index_counts(backing).get("files") == 0, what="delete indexed")
        st = CliRunner().invoke(cli, ["status", str(mnt)])
        assert "0 files indexed, 0 queued, 0 failed" in st.output
        assert "llm:       off (--no-llm): summaries show a file's opening, change notes a diff stat" in st.output
    finally:
        m.unmount()


def test_changes_while_unmounted_are_reconciled(tmp_path):
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    (backing / "before.txt").write_text("written before the first mount")
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: search(backing, "before the first mount") == ["before.txt"], what="initial index")
    finally:
        m.unmount()
    (backing / "before.txt").unlink()
    (backing / "offline.txt").write_text("added while nothing was mounted")
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: search(backing, "added while nothing was mounted") == ["offline.txt"], what="reconcile")
        assert search(backing, "written", "--mode", "bm25") == []
    finally:
        m.unmount()


def test_kill_9_with_a_full_queue_loses_nothing(tmp_path):
    backing, mnt = tmp_path / "b", tmp_path / "m"
    m = start_mount(backing, mnt)
    try:
        for i in range(300):
            (mnt / f"doc{i:03d}.txt").write_text(f"document {i} about topic{i}")
        m.proc.send_signal(signal.SIGKILL)  # within the debounce window: events still queued
        m.proc.wait()
    finally:
        m.unmount()
    assert len(os.listdir(backing)) == 300  # every write reached the backing folder
    m = start_mount(backing, mnt)
    try:
        wait_for(
            lambda: index_counts(backing).get("files") == 300 and index_counts(backing).get("queued") == 0,
            timeout=60,
            what="all 300 indexed",
        )
        c = index_counts(backing)
        assert c["chunks"] == 300  # nothing indexed twice
        assert search(backing, "topic123", "--mode", "bm25")[0] == "doc123.txt"
    finally:
        m.unmount()


def test_mount_without_index(tmp_path):
    backing, mnt = tmp_path / "b", tmp_path / "m"
    m = start_mount(backing, mnt, "--no-index")
    try:
        (mnt / "a.txt").write_text("not indexed")
    finally:
        m.unmount()
    assert index_counts(backing).get("files", 0) == 0


def test_real_model_through_the_mount(tmp_path, monkeypatch, semfs_home):
    """all-MiniLM-L6-v2 for real: the demo folder, mounted, searched by meaning (from the shell,
    through the ONNX graph the mount's embedder worker exported when it loaded)."""
    from semfs.models import onnx_minilm

    monkeypatch.setenv("SEMFS_EMBEDDER", "minilm")
    backing, mnt = tmp_path / "demo", tmp_path / "m"
    shutil.copytree(DEMO, backing)
    m = start_mount(backing, mnt)
    try:
        n = sum(len(f) for _, _, f in os.walk(DEMO))
        wait_for(
            lambda: index_counts(backing).get("indexed") == n and index_counts(backing).get("queued") == 0,
            timeout=120,
            what="demo indexed",
        )
        wait_for(lambda: onnx_minilm.is_current(onnx_minilm.cache_dir(semfs_home)), timeout=60, what="graph exported")
        (mnt / "inbox" / "idea.md").write_text("Buy a dehumidifier for the damp basement before winter.")
        wait_for(
            lambda: search(backing, "moisture problems in the cellar", "-k", "1") == ["inbox/idea.md"],
            timeout=60,
            what="new file found by meaning",
        )
        hits = search(backing, "when did we discuss spending and the forecast in march")
        assert hits[0].startswith("meetings/2026-03-")
        assert search(backing, "how to bake bread at home", "-k", "1") == ["recipes/sourdough.md"]
    finally:
        m.unmount()


def test_random_changes_with_queries_alongside_leave_an_exact_index(tmp_path):
    """Writes, overwrites, renames and deletes at random through the mount while another
    thread lists query folders; afterwards BM25 finds exactly the live files holding a word."""
    import random
    import threading

    backing, mnt = tmp_path / "b", tmp_path / "m"
    m = start_mount(backing, mnt)
    words = "wing flow shock boundary layer heat pressure nozzle jet plate cone laminar drag lift".split()
    rnd = random.Random(7)
    errors: list[Exception] = []
    done = threading.Event()

    def lister() -> None:
        r = random.Random(1)
        while not done.is_set():
            try:
                os.listdir(mnt / "query" / r.choice(words))
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                errors.append(e)

    t = threading.Thread(target=lister)
    t.start()
    live: dict[str, str] = {}
    try:
        for _ in range(500):
            name = f"d{rnd.randrange(3)}/f{rnd.randrange(80)}.txt"
            (mnt / name).parent.mkdir(exist_ok=True)
            op = rnd.random()
            if op < 0.7:
                live[name] = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 120)))
                (mnt / name).write_text(live[name])
            elif op < 0.85 and name in live:
                os.unlink(mnt / name)
                del live[name]
            elif name in live:
                new = f"d{rnd.randrange(3)}/g{rnd.randrange(80)}.txt"
                os.rename(mnt / name, mnt / new)
                live[new] = live.pop(name)
        done.set()
        t.join()
        want = {n for n, text in live.items() if "nozzle" in text.split()}
        wait_for(
            lambda: set(search(backing, "nozzle", "-k", "500", "--mode", "bm25")) == want, what="the index to settle"
        )
        assert errors == []
    finally:
        done.set()
        m.unmount()
