"""The indexer and search, driven directly (no mount), with the hashing embedder."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from semfs.core.events import ChangeEvent, EventKind
from semfs.core.index import indexer as indexer_mod
from semfs.core.index import words
from semfs.core.index.indexer import Indexer
from semfs.core.index.service import index_stats
from semfs.core.query.search import Searcher
from semfs.models.embedder import HashEmbedder
from semfs.stores import metadata as md
from semfs.stores import segments

W, R, D = EventKind.WRITTEN, EventKind.RENAMED, EventKind.DELETED


class CountingEmbedder(HashEmbedder):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts, **options):
        self.texts += list(texts)
        return super().embed(texts)


@pytest.fixture(params=["embedded", "postgresql"])
def setup(tmp_path, request):
    """An open indexer on each backend: SQLite and FAISS in the state dir, or PostgreSQL with pgvector."""
    backing, state = tmp_path / "backing", tmp_path / "state"
    backing.mkdir()
    emb = CountingEmbedder()
    index = request.getfixturevalue("pg_index") if request.param == "postgresql" else None
    ix = Indexer(backing, state, emb, debounce=0.0, index=index)
    ix.open()
    yield backing, ix, emb
    ix.db.close()
    if hasattr(ix.vectors, "close"):
        ix.vectors.close()


def drain(ix: Indexer, meaning: bool = True) -> None:
    """What the worker loop does until there is nothing left: apply events, index what is due
    (the words), then, with ``meaning``, embed what has no vector yet."""
    while True:
        ix._drain_events()
        if ix.process_due(now=float("inf")) or ix._pending:
            continue
        if meaning and ix.backfill():
            continue  # (events may have come meanwhile)
        if not ix._pending:
            return


def search(ix: Indexer, q: str, mode: str = "hybrid") -> list[str]:
    return [
        h.path for h in Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search(q, k=10, mode=mode)
    ]


def write(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_index_and_search(setup):
    backing, ix, emb = setup
    write(backing / "notes" / "budget.md", "# Budget\n\nThe quarterly budget review is in March.")
    write(backing / "recipes" / "soup.txt", "Lentil soup with cumin and lemon.")
    (backing / "photo.jpg").write_bytes(b"\xff\xd8\xff\x00" * 50)
    assert ix.reconcile() == 3
    drain(ix)
    assert search(ix, "quarterly budget")[0] == "notes/budget.md"
    assert search(ix, "lentil cumin")[0] == "recipes/soup.txt"
    assert search(ix, "photo", mode="bm25") == ["photo.jpg"]  # binary: found by name
    assert md.counts(ix.db)["queued"] == 0
    kinds = {r.path: r.kind for r in md.iter_files(ix.db)}
    assert kinds == {"notes/budget.md": "markdown", "recipes/soup.txt": "text", "photo.jpg": "binary"}


def test_files_of_identical_content_are_one_result(setup):
    """Issue 24, item 4: copies of one text are listed once, the others named in ``also``,
    on either backend; k counts distinct texts; empty files found by name stay apart."""
    backing, ix, emb = setup
    text = "Avoid an infinite loop in the daemon by handling the HUP event of a client."
    for name in ("libavahi-client3.txt", "avahi-daemon.txt", "libavahi-common3.txt"):
        write(backing / "changelogs" / name, text)
    write(backing / "changelogs" / "avahi-utils.txt", text + "\nAnd one more line.")
    write(backing / "other.txt", "A daemon of another kind: the loop of a music player.")
    write(backing / "empty-hup.txt", "")
    write(backing / "empty-hup-2.txt", "")
    ix.reconcile()
    drain(ix)
    hits = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search("HUP infinite loop", k=3)
    paths = [h.path for h in hits]
    assert len(paths) == 3 and len(set(paths)) == 3
    copies = [h for h in hits if h.path.startswith("changelogs/") and "utils" not in h.path]
    assert len(copies) == 1 and len(copies[0].also) == 2  # one result, two more names for it
    assert {copies[0].path, *copies[0].also} == {
        f"changelogs/{n}" for n in ("libavahi-client3.txt", "avahi-daemon.txt", "libavahi-common3.txt")
    }
    assert "changelogs/avahi-utils.txt" in paths  # a one-line text and a longer one: not near copies
    named = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search("empty hup", k=10, mode="bm25")
    assert {"empty-hup.txt", "empty-hup-2.txt"} <= {h.path for h in named}  # no content to share


def test_near_identical_files_are_one_result_too(setup):
    """Issue 24, item 4: two identical files and one that differs by a line are one result, with
    the other two in ``also``; a file sharing only half its lines stays its own."""
    backing, ix, emb = setup
    entries = [f"  * Fix entry {i}: the zeppelin hangar door number {i} was stuck." for i in range(30)]
    text = "zeppelin (1.2-3) unstable; urgency=medium\n\n" + "\n".join(entries) + "\n"
    write(backing / "zeppelin.txt", text)
    write(backing / "zeppelin-common.txt", text)
    write(backing / "libzeppelin1.txt", text.replace("zeppelin (1.2-3)", "zeppelin (1.2-4)"))
    write(
        backing / "hangar-notes.txt", "\n".join(entries[:6] + [f"  * Other entry {i} of the hangar." for i in range(6)])
    )
    ix.reconcile()
    drain(ix)
    hits = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search(
        "zeppelin hangar door stuck", k=5
    )
    copies = [h for h in hits if "zeppelin" in h.path]
    assert len(copies) == 1 and len(copies[0].also) + len(copies[0].alike) == 2, hits
    assert {copies[0].path, *copies[0].also, *copies[0].alike} == {
        "zeppelin.txt",
        "zeppelin-common.txt",
        "libzeppelin1.txt",
    }
    assert "libzeppelin1.txt" not in copies[0].also  # (also: byte for byte; it is one line apart)
    assert "hangar-notes.txt" in [h.path for h in hits]


def test_unchanged_content_is_never_re_embedded(setup):
    backing, ix, emb = setup
    write(backing / "a.txt", "alpha beta gamma")
    ix.reconcile()
    drain(ix)
    n = len(emb.texts)
    os.utime(backing / "a.txt", ns=(1, 1))  # new mtime, same bytes
    ix.on_event(ChangeEvent(W, "a.txt"))
    drain(ix)
    assert len(emb.texts) == n
    assert md.get_file(ix.db, "a.txt").mtime_ns == 1
    write(backing / "a.txt", "alpha beta delta")
    ix.on_event(ChangeEvent(W, "a.txt"))
    drain(ix)
    assert len(emb.texts) == n + 1
    assert search(ix, "delta") == ["a.txt"]
    assert len(ix.vectors) == md.counts(ix.db)["chunks"] == 1  # the old vector is gone


def test_save_burst_is_indexed_once(tmp_path):
    backing = tmp_path / "b"
    backing.mkdir()
    emb = CountingEmbedder()
    ix = Indexer(backing, tmp_path / "s", emb, debounce=0.3)
    ix.open()
    f = backing / "log.txt"
    for i in range(1000):
        with open(f, "a") as fh:
            fh.write(f"line {i}\n")
        ix.on_event(ChangeEvent(W, "log.txt"))
        if i % 100 == 0:
            ix._drain_events()
            assert ix.process_due() == 0  # not due while writes keep coming
    ix._drain_events()
    time.sleep(0.35)
    assert ix.process_due() == 1
    ix.backfill()
    assert len({t for t in emb.texts}) == len(emb.texts) and emb.texts  # each chunk embedded once
    ix.db.close()


def test_rename_rekeys_without_embedding(setup):
    backing, ix, emb = setup
    write(backing / "d" / "a.txt", "the swept wing")
    write(backing / "b.txt", "replaced target")
    ix.reconcile()
    drain(ix)
    n = len(emb.texts)
    os.replace(backing / "d" / "a.txt", backing / "b.txt")
    ix.on_event(ChangeEvent(R, "d/a.txt", dest="b.txt"))
    drain(ix)
    assert len(emb.texts) == n
    assert search(ix, "swept wing") == ["b.txt"]
    assert search(ix, "replaced target", mode="bm25") == []
    assert len(ix.vectors) == 1
    os.rename(backing / "d", backing / "e")
    write(backing / "e" / "c.txt", "ceiling fan")
    ix.on_event(ChangeEvent(R, "d", dest="e", is_dir=True))
    ix.on_event(ChangeEvent(W, "e/c.txt"))
    drain(ix)
    assert search(ix, "ceiling fan")[0] == "e/c.txt"


def test_file_renamed_while_queued(setup):
    backing, ix, emb = setup
    write(backing / "new.txt", "fresh content")
    ix.on_event(ChangeEvent(W, "draft.txt"))
    os.replace(backing / "new.txt", backing / "final.txt")
    ix.on_event(ChangeEvent(R, "draft.txt", dest="final.txt"))
    drain(ix)
    assert search(ix, "fresh content") == ["final.txt"]
    assert md.get_file(ix.db, "draft.txt") is None


def test_delete_removes_everything_at_once(setup):
    backing, ix, emb = setup
    write(backing / "gone.txt", "secret plans")
    write(backing / "dir" / "x.txt", "dir member")
    ix.reconcile()
    drain(ix)
    os.unlink(backing / "gone.txt")
    ix.on_event(ChangeEvent(D, "gone.txt"))
    os.unlink(backing / "dir" / "x.txt")
    os.rmdir(backing / "dir")
    ix.on_event(ChangeEvent(EventKind.DIR_REMOVED, "dir"))
    ix._drain_events()  # deletes apply when events are drained, before any indexing
    assert search(ix, "secret plans") == [] and search(ix, "dir member") == []
    assert len(ix.vectors) == 0 and md.counts(ix.db)["files"] == 0


def test_deleted_on_disk_is_never_returned(setup):
    backing, ix, emb = setup
    write(backing / "a.txt", "ephemeral words")
    ix.reconcile()
    drain(ix)
    os.unlink(backing / "a.txt")  # the index has not heard of it yet
    assert search(ix, "ephemeral words") == []


def test_file_deleted_mid_indexing(setup, monkeypatch):
    backing, ix, emb = setup
    write(backing / "a.txt", "short lived")
    orig = emb.embed

    def embed_and_delete(texts):
        if (backing / "a.txt").exists():
            os.unlink(backing / "a.txt")
            ix.on_event(ChangeEvent(D, "a.txt"))
        return orig(texts)

    monkeypatch.setattr(emb, "embed", embed_and_delete)
    ix.on_event(ChangeEvent(W, "a.txt"))
    drain(ix)
    assert md.get_file(ix.db, "a.txt") is None and len(ix.vectors) == 0


def test_empty_and_zero_byte_writes(setup):
    backing, ix, emb = setup
    (backing / "empty.txt").write_bytes(b"")
    ix.on_event(ChangeEvent(W, "empty.txt"))
    drain(ix)
    row = md.get_file(ix.db, "empty.txt")
    assert row.kind == "empty" and row.error is None
    assert search(ix, "empty", mode="bm25") == ["empty.txt"]


def test_unreadable_file_is_reported(setup, monkeypatch):
    backing, ix, emb = setup
    write(backing / "locked.txt", "cannot read me")
    real = words._read

    def deny(backing, rel, st):
        if rel == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real(backing, rel, st)

    monkeypatch.setattr(words, "_read", deny)
    ix.reconcile()
    drain(ix)
    assert md.failures(ix.db) == [("locked.txt", "unreadable: Permission denied")]
    monkeypatch.setattr(words, "_read", real)
    ix.reconcile()  # unreadable files are tried again
    drain(ix)
    assert md.failures(ix.db) == [] and search(ix, "cannot read me")[0] == "locked.txt"


def test_symlink_loops_and_special_files(setup):
    backing, ix, emb = setup
    write(backing / "real.txt", "the real thing")
    os.symlink(".", backing / "loop")
    os.symlink("self", backing / "self")
    os.mkfifo(backing / "pipe")
    assert ix.reconcile() == 1
    drain(ix)
    assert [r.path for r in md.iter_files(ix.db)] == ["real.txt"]


def test_reconcile_catches_changes_made_while_away(setup):
    backing, ix, emb = setup
    write(backing / "a.txt", "first version")
    write(backing / "b.txt", "to be removed")
    ix.reconcile()
    drain(ix)
    write(backing / "a.txt", "second version, longer")
    os.unlink(backing / "b.txt")
    write(backing / "c.txt", "brand new")
    assert ix.reconcile() == 2  # a changed, c new; b forgotten at once
    drain(ix)
    assert sorted(r.path for r in md.iter_files(ix.db)) == ["a.txt", "c.txt"]
    assert search(ix, "second version")[0] == "a.txt"


def test_ten_thousand_files(setup):
    backing, ix, emb = setup
    d = backing / "many"
    d.mkdir()
    for i in range(10_000):
        (d / f"f{i:05d}.txt").write_text(f"document number {i}")
    assert ix.reconcile() == 10_000
    drain(ix)
    assert md.counts(ix.db)["files"] == 10_000
    assert len(ix.vectors) == 10_000
    assert "many/f04242.txt" in search(ix, "f04242", mode="bm25")


def test_missing_or_corrupt_vectors_are_rebuilt(tmp_path):
    backing, state = tmp_path / "b", tmp_path / "s"
    backing.mkdir()
    for i in range(5):
        write(backing / f"{i}.txt", f"text number {i} about wings")
    ix = Indexer(backing, state, HashEmbedder(), debounce=0.0)
    ix.open()
    ix.reconcile()
    drain(ix)
    ix.vectors.save()
    ix.db.close()
    (state / segments.DIR / segments.MANIFEST).write_bytes(b"garbage")
    ix2 = Indexer(backing, state, HashEmbedder(), debounce=0.0)
    ix2.open()  # a new index: its vectors are embedded again from the chunk text in SQLite
    assert len(ix2.vectors) == 0
    assert ix2.backfill() == 5
    assert len(ix2.vectors) == 5 and ix2.backfill() == 0
    assert sorted(search(ix2, "wings", mode="dense")) == [f"{i}.txt" for i in range(5)]
    ix2.db.close()
    shutil.rmtree(state / segments.DIR)
    ix3 = Indexer(backing, state, HashEmbedder(), debounce=0.0)
    ix3.open()
    ix3.backfill()
    assert len(ix3.vectors) == 5
    ix3.db.close()


def test_corrupt_database_is_rebuilt_from_backing(tmp_path):
    backing, state = tmp_path / "b", tmp_path / "s"
    backing.mkdir()
    write(backing / "a.txt", "survives corruption")
    state.mkdir()
    (state / md.DB_NAME).write_bytes(b"not sqlite at all" * 100)
    ix = Indexer(backing, state, HashEmbedder(), debounce=0.0)
    prog = ix.run_once()
    assert prog.done == 1
    assert any(p.name.startswith("semfs.db.corrupt-") for p in state.iterdir())
    ix2 = Indexer(backing, state, HashEmbedder())
    ix2.open()
    assert search(ix2, "survives corruption") == ["a.txt"]
    ix2.db.close()


def test_worker_finds_changes_made_behind_the_mounts_back(tmp_path):
    backing = tmp_path / "b"
    backing.mkdir()
    ix = Indexer(backing, tmp_path / "s", HashEmbedder(), debounce=0.0, reconcile_every=0.2)
    ix.start()
    try:
        ix.idle.wait(10)
        write(backing / "direct.txt", "written by another program")  # no event for this
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            db = md.open_db_readonly(ix.state_dir)
            found = db is not None and md.get_file(db, "direct.txt") is not None
            if db is not None:
                db.close()
            if found:
                break
            time.sleep(0.1)
        assert found
    finally:
        ix.stop()


def test_a_dead_indexer_is_reported(tmp_path, monkeypatch):
    backing = tmp_path / "b"
    backing.mkdir()
    ix = Indexer(backing, tmp_path / "s", HashEmbedder())

    def boom():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ix, "reconcile", boom)
    ix.start()
    ix._thread.join(10)

    assert index_stats(tmp_path / "s").indexer == "stopped: RuntimeError: disk on fire (see semfs.log)"


def test_events_survive_a_failed_transaction(setup, monkeypatch):
    backing, ix, emb = setup
    write(backing / "a.txt", "kept safe")
    ix.on_event(ChangeEvent(W, "a.txt"))
    real = md.enqueue
    monkeypatch.setattr(md, "enqueue", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        ix._drain_events()
    monkeypatch.setattr(md, "enqueue", real)
    drain(ix)  # the event was put back, not lost
    assert search(ix, "kept safe") == ["a.txt"]


def test_names_that_are_not_utf8_hold_nothing_back(setup, monkeypatch):
    backing, ix, _ = setup
    bad = os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes: the name comes as surrogates
    write(backing / bad, "surrogate named file")
    write(backing / "good.txt", "a well named file")
    ix.on_event(ChangeEvent(W, bad))
    ix.on_event(ChangeEvent(W, "good.txt"))
    drain(ix)
    assert search(ix, "well named") == ["good.txt"]
    os.rename(backing / bad, backing / "renamed.txt")  # from such a name: indexed as new
    ix.on_event(ChangeEvent(R, bad, "renamed.txt"))
    drain(ix)
    assert search(ix, "surrogate", mode="bm25") == ["renamed.txt"]
    os.rename(backing / "good.txt", backing / bad)  # to such a name: gone from the index
    ix.on_event(ChangeEvent(R, "good.txt", bad))
    drain(ix)
    assert search(ix, "well", mode="bm25") == []
    assert ix.reconcile() == 0  # the walk passes over it too


def test_an_event_the_index_cannot_take_is_dropped_alone(setup, monkeypatch):
    backing, ix, _ = setup
    write(backing / "a.txt", "first file")
    write(backing / "b.txt", "second file")
    from semfs.core.index import intake

    real = intake.apply

    def apply(db, ev, due, ignore):
        if ev.path == "a.txt":
            raise ValueError("bug")
        return real(db, ev, due, ignore)

    monkeypatch.setattr(intake, "apply", apply)
    ix.on_event(ChangeEvent(W, "a.txt"))
    ix.on_event(ChangeEvent(W, "b.txt"))
    drain(ix)
    assert search(ix, "second", mode="bm25") == ["b.txt"]
    assert not ix._pending


def test_a_vector_removed_under_a_query_does_not_fail_it(setup):
    """The indexer may drop a chunk's vector between a query's SQL read and its FAISS read."""
    backing, ix, _ = setup
    write(backing / "a.txt", "supersonic flow over a cone")
    write(backing / "b.txt", "supersonic flow over a wing")
    ix.on_event(ChangeEvent(W, "a.txt"))
    ix.on_event(ChangeEvent(W, "b.txt"))
    drain(ix)
    a_chunks = md.chunk_ids(ix.db, md.get_file(ix.db, "a.txt").id)
    ix.vectors.remove(a_chunks)  # gone from FAISS, still in SQLite: the race, frozen
    assert set(search(ix, "supersonic flow")) == {"a.txt", "b.txt"}


def test_more_results_than_the_candidate_pool(setup):
    backing, ix, _ = setup
    for i in range(260):
        write(backing / f"n{i:03d}.txt", f"nozzle note number {i}")
        ix.on_event(ChangeEvent(W, f"n{i:03d}.txt"))
    drain(ix)
    hits = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search("nozzle", k=300, mode="bm25")
    assert len(hits) == 260


def test_words_first_then_meaning(setup):
    """Issue 13: a file's words are searchable before any of it is embedded; meaning follows."""
    backing, ix, emb = setup
    for i in range(6):
        write(backing / f"n{i}.txt", f"note {i} about the nozzle flow" + (f" and the zq{i}x probe" if i % 2 else ""))
    ix.reconcile()
    drain(ix, meaning=False)
    assert emb.texts == [] and len(ix.vectors) == 0  # nothing embedded yet ...
    hits = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search("zq3x", k=10)
    assert [h.path for h in hits] == ["n3.txt"] and hits[0].unembedded  # ... and found by its words
    assert ix.backfill() == 6 and len(ix.vectors) == 6
    hits = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search("zq3x", k=10)
    assert hits[0].path == "n3.txt" and not hits[0].unembedded
    meaning = index_stats(ix.state_dir).meaning  # what semfs status shows, on either backend
    assert meaning["files"] == meaning["embedded"] == 6 and meaning["chunks_left"] == 0


def test_files_without_vectors_rank_by_their_words_not_last(setup):
    """With half the files embedded, the others are ranked by BM25: a missing dense score is missing, not 0."""
    backing, ix, emb = setup
    for i in range(10):
        extra = " supersonic " * (10 - i)  # n0 holds the word most often, n9 least
        write(backing / f"n{i}.txt", f"wind tunnel run {i}." + extra + f" filler words {i} " * 5)
    for i in range(10):
        write(backing / f"other{i}.txt", f"recipes and gardens {i}, nothing about flight")
    ix.reconcile()
    drain(ix)
    bare = [f"n{i}.txt" for i in range(0, 10, 2)]
    for rel in bare:  # their vectors are not computed yet
        ix.vectors.remove(md.chunk_ids(ix.db, md.get_file(ix.db, rel).id))
    hits = Searcher(ix.backing, ix.db, ix.vectors, ix.embedder, index=ix.store).search("supersonic", k=20)
    got = {h.path: h for h in hits}
    assert set(bare) <= got.keys()
    assert all(got[p].unembedded and got[p].score == got[p].bm25 for p in bare)
    assert [h.path for h in hits if h.unembedded] == bare  # among themselves, in BM25 order
    assert hits[0].path == "n0.txt"  # the strongest keyword match leads, vectors or not
    assert not any(h.unembedded for h in hits if h.path not in bare)


def test_embedding_takes_one_thread_while_the_mount_is_written_to(setup, monkeypatch):
    backing, ix, emb = setup
    asked: list = []

    class Remote(CountingEmbedder):
        takes_threads = True

        def embed(self, texts, threads=None):
            asked.append(threads)
            return super().embed(texts)

    ix.embedder = Remote()
    write(backing / "a.txt", "alpha")
    ix.on_event(ChangeEvent(W, "a.txt"))  # someone is writing
    drain(ix)
    assert asked == [1]
    monkeypatch.setattr(indexer_mod, "BUSY_FOR", 0.0)  # quiet again
    write(backing / "b.txt", "beta")
    ix.reconcile()
    drain(ix)
    assert asked == [1, None]  # all of the worker's threads


def test_progress_while_the_words_are_behind(setup):
    """Query folders say "indexing: N of M files" instead of "nothing matches" while this is set."""
    backing, ix, emb = setup
    for i in range(50):
        write(backing / f"f{i:02d}.txt", f"note {i}")
    assert ix.reconcile() == 50
    ix.batch_files = 10
    ix._note_progress(ix.process_due(now=float("inf")))
    assert ix.progress == (10, 50)
    drain(ix)
    ix._note_progress(0)
    assert ix.progress is None  # caught up
