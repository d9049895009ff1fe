"""The vector store: exact search for a small index, HNSW past a size, deletes correct in both.

The switch size is lowered here so a test holds a few thousand vectors, not fifty thousand;
the vectors are clustered on the sphere, as embeddings are (uniform random vectors are the
easy case for neither kind).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

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
    monkeypatch.setattr(vs, "HNSW_FROM", 2000)
    monkeypatch.setattr(vs, "FLAT_BELOW", 1000)


def exact_top(ids: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> list[set[int]]:
    return [set(ids[np.argsort(-(x @ v))[:k]].tolist()) for v in q]


def recall(store: VectorStore, ids, x, q, k=10) -> float:
    want = exact_top(ids, x, q, k)
    got = [set(store.search(v, k)[1].tolist()) for v in q]
    return float(np.mean([len(a & b) / k for a, b in zip(got, want)]))


def test_past_the_switch_size_the_index_is_hnsw_with_recall_above_098(tmp_path, small_switch):
    store = VectorStore(tmp_path, DIM)
    x = clustered(3000, 1)
    ids = np.arange(10, 3010, dtype=np.int64)
    store.add(ids[:1500], x[:1500])
    assert store.due() is None and store.maintain() is None and store.kind == "flat"
    store.add(ids[1500:], x[1500:])
    assert store.due() == "hnsw"
    assert store.maintain() == "hnsw" and store.kind == "hnsw" and len(store) == 3000
    q = clustered(100, 2)
    assert recall(store, ids, x, q) >= 0.98
    assert np.allclose(store.reconstruct(int(ids[7])), x[7], atol=1e-6)
    got_ids, got = store.reconstruct_many(ids[:5].tolist())
    assert got_ids.tolist() == ids[:5].tolist() and np.allclose(got, x[:5], atol=1e-6)
    # saved and opened again (as a reader process does): still HNSW, same answers
    store.save()
    again = VectorStore(tmp_path, DIM)
    assert again.kind == "hnsw" and len(again) == 3000
    assert recall(again, ids, x, q) >= 0.98


def test_a_removed_vector_never_comes_back_and_the_graph_is_rebuilt_without_it(tmp_path, small_switch):
    store = VectorStore(tmp_path, DIM)
    x = clustered(3000, 3)
    ids = np.arange(3000, dtype=np.int64)
    store.add(ids, x)
    store.maintain()
    q = clustered(50, 4)
    gone = set(range(0, 3000, 7))
    assert store.remove(gone) == len(gone)
    assert store.remove(gone) == 0  # twice: nothing more to remove
    assert len(store) == 3000 - len(gone)
    for v in q:
        assert not set(store.search(v, 50)[1].tolist()) & gone
    assert store.reconstruct(7) is None and not store.has(7) and store.has(8)
    assert set(store.ids().tolist()) == set(range(3000)) - gone
    assert store.reconstruct_many([7, 8])[0].tolist() == [8]
    with pytest.raises(vs.VectorError):  # chunk ids are never reused; a masked one would be found twice
        store.add([7], x[:1])
    live = np.array(sorted(set(range(3000)) - gone))
    assert recall(store, live, x[live], q) >= 0.98
    assert store.due() is None  # 14% masked: not yet
    more = set(range(1, 3000, 7)) | set(range(2, 3000, 7))
    store.remove(more)
    assert store.due() == "rebuild" and store.maintain() == "rebuild"
    assert store.index.ntotal == len(store) == 3000 - len(gone | more)  # the masked ones left the graph
    live = np.array(sorted(set(range(3000)) - gone - more))
    assert recall(store, live, x[live], q) >= 0.98


def test_below_half_the_switch_size_it_is_exact_again(tmp_path, small_switch):
    store = VectorStore(tmp_path, DIM)
    x = clustered(2500, 5)
    store.add(range(2500), x)
    store.maintain()
    store.remove(range(1800))
    assert store.due() == "flat" and store.maintain() == "flat" and store.kind == "flat"
    assert len(store) == 700 and store.index.ntotal == 700
    q = clustered(20, 6)
    assert recall(store, np.arange(1800, 2500), x[1800:], q) == 1.0


def test_adds_and_removes_during_a_build_are_kept(tmp_path, small_switch, monkeypatch):
    """The build runs outside the lock: what the indexer did meanwhile is replayed on the new graph."""
    store = VectorStore(tmp_path, DIM)
    x = clustered(3000, 7)
    store.add(range(2500), x[:2500])
    building, go_on = threading.Event(), threading.Event()
    real_new = store._new_hnsw

    def slow_new():
        building.set()
        assert go_on.wait(10)
        return real_new()

    monkeypatch.setattr(store, "_new_hnsw", slow_new)
    t = threading.Thread(target=store.maintain)
    t.start()
    assert building.wait(10)
    store.add(range(2500, 3000), x[2500:])  # a new batch of vectors
    store.remove([0, 1, 2, 2600])  # a file deleted: some old, one new
    hits = store.search(x[0], 5)[1].tolist()  # searches go on meanwhile, on the old index
    assert 0 not in hits
    go_on.set()
    t.join(30)
    assert store.kind == "hnsw" and len(store) == 2996
    assert {0, 1, 2, 2600}.isdisjoint(store.ids().tolist())
    assert store.search(x[2700], 1)[1].tolist() == [2700]
    assert 2600 not in store.search(x[2600], 10)[1].tolist()


def test_the_indexer_switches_to_hnsw_by_itself(tmp_path, small_switch):
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
    assert ix.vectors.kind == "hnsw" and len(ix.vectors) == 2100
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
