"""The vector store: exact search for a small index, IVF-SQ8 past a size; segments on disk.

The switch size is lowered here so a test holds a few thousand vectors, not fifty thousand;
the vectors are clustered on the sphere, as embeddings are (uniform random vectors are the
easy case for neither kind).
"""

from __future__ import annotations

import hashlib
import os
import threading

import numpy as np
import pytest

from semfs.stores import segments as sg
from semfs.stores import vectors as vs
from semfs.stores.vectors import VectorStore

DIM = 64


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.8 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def small_switch(monkeypatch):
    monkeypatch.setattr(vs, "IVF_FROM", 2000)
    monkeypatch.setattr(vs, "FLAT_BELOW", 1000)


def exact_top(ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> list[set[int]]:
    return [set(ids[np.argsort(-(x @ v))[:k]].tolist()) for v in q]


def recall(store: VectorStore, ids, x, q, k=10) -> float:
    want = exact_top(ids, x, q, k)
    got = [set(store.search(v, k)[1].tolist()) for v in q]
    return float(np.mean([len(a & b) / k for a, b in zip(got, want)]))


def quantised(tmp_path, n: int, seed: int) -> tuple[VectorStore, np.ndarray]:
    """A store of ``n`` clustered vectors (ids 0 to n - 1), switched to IVF and saved."""
    store = VectorStore(tmp_path, DIM)
    x = clustered(n, seed)
    store.add(range(n), x)
    assert store.maintain() == "ivf" and store.kind == "ivf"
    store.save()
    return store, x


def files(store: VectorStore) -> set[str]:
    return set(os.listdir(store.dir))


def test_past_the_switch_size_the_index_is_quantised_with_recall_above_097(tmp_path, small_switch):
    store = VectorStore(tmp_path, DIM)
    x = clustered(6000, 1)
    ids = np.arange(10, 6010, dtype=np.int64)
    store.add(ids[:1500], x[:1500])
    assert store.due() is None and store.maintain() is None and store.kind == "flat"
    store.add(ids[1500:], x[1500:])
    assert store.due() == "ivf"
    assert store.maintain() == "ivf" and store.kind == "ivf" and len(store) == 6000
    q = clustered(100, 2)
    assert recall(store, ids, x, q) >= 0.97
    scores, found = store.search(q[0], 10)
    assert np.allclose(scores, x[found - 10] @ q[0], atol=1e-5)  # ranked on the floats, not the codes
    assert list(scores) == sorted(scores, reverse=True)
    assert np.array_equal(store.reconstruct(int(ids[7])), x[7])
    got_ids, got = store.reconstruct_many(ids[:5].tolist())
    assert got_ids.tolist() == ids[:5].tolist() and np.array_equal(got, x[:5])
    # opened again (as a reader process does): quantised from the codes on disk, same answers
    again = VectorStore(tmp_path, DIM, writer=False)
    assert again.kind == "ivf" and len(again) == 6000 and again._codec == store._codec
    assert recall(again, ids, x, q) >= 0.97
    assert [again.search(v, 10)[1].tolist() for v in q[:10]] == [store.search(v, 10)[1].tolist() for v in q[:10]]


def test_a_removed_vector_never_comes_back(tmp_path, small_switch):
    store, x = quantised(tmp_path, 3000, 3)
    q = clustered(50, 4)
    gone = set(range(0, 3000, 7))
    assert store.remove(gone) == len(gone)
    assert store.remove(gone) == 0  # twice: nothing more to remove
    assert len(store) == 3000 - len(gone)
    live = np.array(sorted(set(range(3000)) - gone))

    def check(s: VectorStore) -> None:
        for v in q:
            assert not set(s.search(v, 50)[1].tolist()) & gone
        assert s.reconstruct(7) is None and not s.has(7) and s.has(8)
        assert set(s.ids().tolist()) == set(live.tolist())
        assert s.reconstruct_many([7, 8])[0].tolist() == [8]
        assert s.present([6, 7, 8, 99999]) == {6, 8}
        assert recall(s, live, x[live], q) >= 0.97

    check(store)
    store.save()
    check(VectorStore(tmp_path, DIM))
    store.add([7], x[7:8])  # (chunk ids are never reused, but the store does not rely on it)
    assert store.has(7) and len(store) == 3000 - len(gone) + 1
    store.save()
    assert VectorStore(tmp_path, DIM).has(7)


def test_a_vector_added_again_replaces_the_old_one(tmp_path):
    store = VectorStore(tmp_path, DIM)
    x = clustered(20, 5)
    store.add(range(10), x[:10])
    store.save()
    store.add([3], x[15:16])
    assert len(store) == 10 and np.array_equal(store.reconstruct(3), x[15])
    store.save()
    again = VectorStore(tmp_path, DIM)
    assert len(again) == 10 and np.array_equal(again.reconstruct(3), x[15])
    assert again.search(x[15], 1)[1].tolist() == [3]


def test_below_half_the_switch_size_it_is_exact_again_and_its_codes_go(tmp_path, small_switch):
    store, x = quantised(tmp_path, 2500, 5)
    assert any(n.endswith(".faiss") for n in files(store))
    store.remove(range(1800))
    assert store.due() == "flat" and store.maintain() == "flat" and store.kind == "flat"
    assert len(store) == 700 and store.index.ntotal == 700
    assert not any(".ivf-" in n or n.endswith(".faiss") for n in files(store))
    q = clustered(20, 6)
    assert recall(store, np.arange(1800, 2500), x[1800:], q) == 1.0


def test_adds_and_removes_during_training_are_kept(tmp_path, small_switch, monkeypatch):
    """Training runs outside the lock: what the indexer did meanwhile is in the new index."""
    store = VectorStore(tmp_path, DIM)
    x = clustered(3000, 7)
    store.add(range(2500), x[:2500])
    training, go_on = threading.Event(), threading.Event()
    real_sample = store._sample

    def slow_sample(n):
        training.set()
        assert go_on.wait(10)
        return real_sample(n)

    monkeypatch.setattr(store, "_sample", slow_sample)
    t = threading.Thread(target=store.maintain)
    t.start()
    assert training.wait(10)
    store.add(range(2500, 3000), x[2500:])  # a new batch of vectors
    store.remove([0, 1, 2, 2600])  # a file deleted: some old, one new
    hits = store.search(x[0], 5)[1].tolist()  # searches go on meanwhile, on the old index
    assert 0 not in hits
    store.save()  # and saves: a segment of its own, encoded at the swap
    go_on.set()
    t.join(30)
    assert store.kind == "ivf" and len(store) == 2996
    assert {0, 1, 2, 2600}.isdisjoint(store.ids().tolist())
    assert store.search(x[2700], 1)[1].tolist() == [2700]
    assert 2600 not in store.search(x[2600], 10)[1].tolist()
    again = VectorStore(tmp_path, DIM)
    assert again.kind == "ivf" and len(again) == 2996 and again.search(x[2700], 1)[1].tolist() == [2700]


def test_a_save_writes_what_changed_not_the_whole_index(tmp_path, small_switch):
    store, x = quantised(tmp_path, 5000, 8)
    before = {n: os.stat(store.dir / n).st_size for n in files(store)}
    store.add(range(5000, 5010), clustered(10, 9))
    store.remove([1, 2, 3])
    assert store.save() and not store.save()  # (nothing new: nothing written)
    new = {n: os.stat(store.dir / n).st_size for n in files(store) if n not in before}
    written = sum(v for n, v in new.items() if n != sg.MANIFEST)
    # one segment (13 ids, 10 vectors) and its codes; no old file rewritten
    assert written < 10 * (4 * DIM + 8 + DIM + 2) + 13 * 8 + 200, new
    assert all(os.stat(store.dir / n).st_size == size for n, size in before.items() if n != sg.MANIFEST)
    again = VectorStore(tmp_path, DIM)
    assert len(again) == 5007 and again.has(5009) and not again.has(2)


def test_a_crash_between_a_segment_and_its_manifest_loses_only_that_segment(tmp_path, monkeypatch):
    store = VectorStore(tmp_path, DIM)
    x = clustered(40, 10)
    store.add(range(20), x[:20])
    store.save()
    store.add(range(20, 40), x[20:])
    store.remove([0])

    def crash(*a, **kw):
        raise OSError("the machine went down")

    monkeypatch.setattr(sg, "write_manifest", crash)
    with pytest.raises(OSError):
        store.save()  # the segment is written, the manifest is not
    monkeypatch.undo()
    unnamed = files(store)
    again = VectorStore(tmp_path, DIM)  # the segment no manifest names: ignored, and swept
    assert len(again) == 20 and again.has(0) and not again.has(25)
    assert len(files(again)) == len(unnamed) - 1
    assert again.reconcile(set(range(1, 40))) == set(range(20, 40))  # to be embedded again
    assert not again.has(0)


def test_a_damaged_segment_is_dropped_and_its_vectors_embedded_again(tmp_path):
    store = VectorStore(tmp_path, DIM)
    x = clustered(60, 11)
    for part in range(3):  # three segments of 20
        store.add(range(20 * part, 20 * part + 20), x[20 * part : 20 * part + 20])
        store.save()
    first, second, third = (store.dir / (s.name + ".vec") for s in store._segs)
    with open(second, "r+b") as f:  # its vectors: an open does not read them; the writer checks them later
        f.seek(os.path.getsize(second) - 100)
        f.write(os.urandom(50))
    with open(third, "r+b") as f:  # its head: seen at open
        f.seek(40)
        f.write(b"\xff" * 8)
    again = VectorStore(tmp_path, DIM)
    assert len(again) == 40 and again.take_lost() == 20 and not third.exists()
    assert again.due() == "verify"
    while again.maintain() == "verify":
        pass
    assert len(again) == 20 and again.take_lost() == 20 and not second.exists() and first.exists()
    assert again.search(x[25], 1)[1].tolist() != [25]
    assert len(VectorStore(tmp_path, DIM)) == 20


def test_many_saves_are_merged_and_mostly_removed_segments_rewritten(tmp_path):
    store = VectorStore(tmp_path, DIM)
    x = clustered(600, 12)
    for i in range(30):
        store.add(range(20 * i, 20 * i + 20), x[20 * i : 20 * i + 20])
        store.save()
    assert len(store._segs) == 30 and store.due() == "compact"
    while store.maintain() == "compact":
        pass
    assert len(store._segs) <= vs.MAX_SEGMENTS
    assert len([n for n in files(store) if n.endswith(".vec")]) == len(store._segs)
    store.remove(range(0, 600, 2))
    store.save()
    assert store.due() == "compact" and store.maintain() == "compact"
    assert len(store._segs) == 1 and store._segs[0].rows == 300
    q = clustered(20, 13)
    live = np.arange(1, 600, 2)
    again = VectorStore(tmp_path, DIM)
    assert set(again.ids().tolist()) == set(live.tolist())
    assert recall(again, live, x[live], q) == 1.0
    assert np.array_equal(again.reconstruct(599), x[599])


def test_every_vector_replaced_drops_the_old_segments(tmp_path):
    """Another embedder: every vector removed, then added anew; the old files go at once."""
    store = VectorStore(tmp_path, DIM)
    x = clustered(100, 14)
    store.add(range(100), x)
    store.save()
    store.remove(store.ids())
    store.add(range(100), x[::-1])
    store.save()
    assert len(store._segs) == 2 and store._segs[0].rows == 0  # (an empty segment: everything went)
    assert np.array_equal(VectorStore(tmp_path, DIM).reconstruct(0), x[99])


def test_a_whole_index_file_of_before_is_moved_to_segments(tmp_path):
    import faiss

    x = clustered(300, 15)
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    old.add_with_ids(x, np.arange(1000, 1300, dtype=np.int64))
    data = faiss.serialize_index(old).tobytes()
    (tmp_path / vs.INDEX_NAME).write_bytes(data + b"semfs-sha256" + hashlib.sha256(data).digest())
    reader = VectorStore(tmp_path, DIM, writer=False)  # a reader reads it and writes nothing
    assert len(reader) == 300 and not (tmp_path / sg.DIR).exists()
    store = VectorStore(tmp_path, DIM)
    assert len(store) == 300 and not (tmp_path / vs.INDEX_NAME).exists()
    assert np.array_equal(VectorStore(tmp_path, DIM).reconstruct(1042), x[42])


def test_a_reader_never_writes(tmp_path):
    store = VectorStore(tmp_path, DIM)
    store.add(range(10), clustered(10, 16))
    store.save()
    before = {n: os.stat(store.dir / n).st_mtime_ns for n in files(store)}
    reader = VectorStore(tmp_path, DIM, writer=False)
    reader.add([50], clustered(1, 17))
    assert not reader.save() and reader.due() is None
    assert {n: os.stat(store.dir / n).st_mtime_ns for n in files(store)} == before


def test_a_damaged_manifest_starts_a_new_index(tmp_path):
    store = VectorStore(tmp_path, DIM)
    store.add(range(10), clustered(10, 18))
    store.save()
    (store.dir / sg.MANIFEST).write_text("{not json")
    again = VectorStore(tmp_path, DIM)
    assert again.rebuilt and len(again) == 0
    again.add([1], clustered(1, 19))
    again.save()
    assert len(files(again)) == 2  # the new segment and manifest; the old files swept


def test_the_indexer_switches_to_ivf_by_itself(tmp_path, small_switch):
    """The pipeline: enough files for the switch, indexed; search still finds each by its words and meaning."""
    from semfs.core.index.indexer import Indexer
    from semfs.core.query.search import Searcher
    from semfs.models.embedder import HashEmbedder
    from semfs.stores import metadata as md

    backing = tmp_path / "b"
    backing.mkdir()
    words = [f"w{i:04d}" for i in range(2100)]
    for i, w in enumerate(words):
        (backing / f"{i:04d}.txt").write_text(f"{w} {words[(i * 7) % len(words)]}\n")
    emb = HashEmbedder(dim=DIM)
    ix = Indexer(backing, tmp_path / "state", emb)
    ix.run_once()
    assert ix.vectors.kind == "ivf" and len(ix.vectors) == 2100
    (backing / "0005.txt").unlink()
    ix.run_once()
    db = md.open_db(tmp_path / "state")
    try:
        s = Searcher(backing, db, ix.vectors, emb)
        found = 0
        for name in ("0042.txt", "0777.txt", "1500.txt", "2099.txt"):
            (cid,) = db.execute("SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?", [name])
            vec = ix.vectors.reconstruct(cid[0])
            hits = s.dense(vec[None, :], 5)
            paths = {db.execute("SELECT path FROM files WHERE id = ?", [f]).fetchone()[0] for f in hits}
            found += name in paths
            assert "0005.txt" not in paths
        assert found == 4
        assert s.search("w0005", k=10, mode="bm25") == []  # gone from the words too
    finally:
        db.close()


def test_a_codec_of_another_kind_is_trained_again(tmp_path, small_switch):
    store, x = quantised(tmp_path, 3000, 20)
    manifest = sg.read_manifest(store.dir)
    manifest["codec"]["kind"] = "something older"
    sg.write_manifest(store.dir, manifest)
    again = VectorStore(tmp_path, DIM)
    assert again.kind == "flat" and again.due() == "ivf" and again.maintain() == "ivf"
    assert recall(again, np.arange(3000), x, clustered(30, 21)) >= 0.97
