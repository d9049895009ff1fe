"""A folder of 100,000 chunks, indexed for real: the quantised index at its real switch size.

No timing is asserted (this machine is shared); what is checked is that the
answers stay right at this size: each file is found by its own words and
by its own meaning, a deleted file is found by neither, a changed file by
its new words, and a save after a few changes writes a few rows.
"""

from __future__ import annotations

import random

import pytest

from semfs.core.index.indexer import Indexer
from semfs.core.query.search import Searcher
from semfs.models.embedder import HashEmbedder
from semfs.stores import metadata as md
from semfs.stores import segments as sg
from semfs.stores.vectors import IVF_FROM, VectorStore

FILES = 10_000  # of 10 chunks each


def write_files(backing, n: int) -> None:
    rnd = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    for i in range(n):
        paras = ["\n".join(" ".join(rnd.choice(vocab) for _ in range(12)) for _ in range(6)) for _ in range(20)]
        (backing / f"{i:05d}.txt").write_text(f"unique{i} marker{i}\n\n" + "\n\n".join(paras))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    backing, state = root / "b", root / "s"
    backing.mkdir()
    write_files(backing, FILES)
    emb = HashEmbedder(dim=64)
    ix = Indexer(backing, state, emb)
    ix.run_once()
    return backing, state, emb, ix


def top_paths(searcher: Searcher, query: str, mode: str = "hybrid", k: int = 5) -> list[str]:
    return [h.path for h in searcher.search(query, k=k, mode=mode)]


def test_a_hundred_thousand_chunks_are_found_by_word_and_meaning(big):
    backing, state, emb, ix = big
    db = md.open_db(state)
    try:
        assert md.counts(db)["chunks"] >= 100_000 > IVF_FROM
        assert ix.vectors.kind == "ivf" and len(ix.vectors) == md.counts(db)["chunks"]
        s = Searcher(backing, db, ix.vectors, emb)
        for i in (0, 1234, 5555, 9999):
            assert top_paths(s, f"unique{i}")[0] == f"{i:05d}.txt"
            (cid,) = db.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?", [f"{i:05d}.txt"]
            ).fetchone()
            assert ix.vectors.search(ix.vectors.reconstruct(cid), 1)[1].tolist() == [cid]

        before = sg.size_on_disk(state / sg.DIR)
        deleted = {
            cid
            for (cid,) in db.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = '01234.txt'"
            )
        }
        (backing / "01234.txt").unlink()
        for i in range(100):  # a hundred files changed
            p = backing / f"{5000 + i:05d}.txt"
            p.write_text(p.read_text().replace(f"unique{5000 + i} ", f"renamed{5000 + i} "))
        ix.run_once()
        assert "01234.txt" not in top_paths(s, "unique1234")
        assert top_paths(s, "renamed5042")[0] == "05042.txt"
        assert "05042.txt" not in top_paths(s, "unique5042", mode="bm25")
        grew = sg.size_on_disk(state / sg.DIR) - before
        assert grew < 0.05 * before, (grew, before)  # about 1,000 rows of 100,000 (merges aside)

        reader = VectorStore(state, emb.dim, writer=False)  # as `semfs search` opens it
        assert reader.kind == "ivf" and len(reader) == len(ix.vectors)
        q = emb.embed(["w17 w42 w99 w123"])[0]
        assert reader.search(q, 10)[1].tolist() == ix.vectors.search(q, 10)[1].tolist()
        assert len(deleted) == 10 and not deleted & set(reader.ids().tolist())
    finally:
        db.close()
