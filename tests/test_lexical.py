"""The BM25 segments of stores/lexical.py against a plain BM25 computed here, through deletes and merges."""

from __future__ import annotations

import math
import random
import sqlite3
from collections import Counter

import pytest

from semfs.stores import lexical
from semfs.stores import metadata as md

WORDS = "wing flow shock boundary layer heat pressure nozzle jet plate cone supersonic laminar drag lift".split()


@pytest.fixture
def db(tmp_path):
    d = md.open_db(tmp_path / "state")
    yield d
    d.close()


def add(db, path: str, texts: list[str]) -> int:
    """Index one file in its own transaction (so in its own segment)."""
    with md.write(db):
        fid = md.upsert_file(db, path, 0, 0, None, "text", 0, None)
        md.replace_chunks(db, fid, [md.NewChunk(i, 0, 0, t, False) for i, t in enumerate(texts)])
        lexical.post_pending(db)
    return fid


def delete(db, path: str) -> None:
    with md.write(db):
        md.delete_file(db, path)


def reference(db, query: str) -> dict[int, float]:
    """BM25 as FTS5 computes it, straight from the live chunks' text."""
    chunks = {cid: lexical.analyse(text) for cid, text in db.execute("SELECT id, text FROM chunks")}
    chunks = {cid: (tf, n) for cid, (tf, n) in chunks.items() if tf}  # chunks without terms are not in the corpus
    total = len(chunks)
    avgdl = sum(n for _, n in chunks.values()) / total
    out: Counter = Counter()
    for term in lexical.query_terms(query):
        df = sum(1 for tf, _ in chunks.values() if term in tf)
        idf = max(math.log((total - df + 0.5) / (df + 0.5)), 1e-6) if df else 0.0
        for cid, (tf, n) in chunks.items():
            if term in tf:
                f = tf[term]
                out[cid] += idf * f * (lexical.K1 + 1) / (f + lexical.K1 * (1 - lexical.B + lexical.B * n / avgdl))
    return dict(out)


def live_top(db, index, query, n=1000):
    alive = {r[0] for r in db.execute("SELECT id FROM chunks")}
    return {cid: s for cid, s in index.top(db, query, n) if cid in alive}


def random_text(rnd: random.Random) -> str:
    return " ".join(rnd.choice(WORDS + ["the", "of", "and"]) for _ in range(rnd.randint(3, 60)))


def test_scores_are_bm25(db):
    rnd = random.Random(1)
    for i in range(30):
        add(db, f"f{i}.txt", [random_text(rnd) for _ in range(rnd.randint(1, 3))])
    index = lexical.LexicalIndex()
    for q in ("shock wave on a cone", "laminar boundary layer", "heat", "the jet and the nozzle"):
        got, want = live_top(db, index, q), reference(db, q)
        assert got.keys() == {c for c, s in want.items() if s > 0}
        for cid, s in want.items():
            assert got[cid] == pytest.approx(s, rel=1e-4)
    ranked = index.top(db, "heat", 3)
    assert len(ranked) == 3 and [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_deletes_and_merges_keep_scores_exact(db):
    rnd = random.Random(2)
    for i in range(40):  # one segment each: merges must run
        add(db, f"f{i}.txt", [random_text(rnd) for _ in range(2)])
        lexical.maintain(db)
    assert len(db.execute("SELECT id FROM lex_segments").fetchall()) <= lexical.MAX_SEGMENTS
    for i in range(0, 40, 3):
        delete(db, f"f{i}.txt")
    add(db, "f1.txt", ["replaced text about drag and lift"])  # replaced content: old postings dead
    index = lexical.LexicalIndex()
    q = "drag lift flow"
    want = reference(db, q)
    before = live_top(db, index, q)
    # until a merge, document frequencies still count dead postings (as in Lucene); the ranking is close
    assert before.keys() == {c for c, s in want.items() if s > 0}
    lexical.maintain(db)
    dead = db.execute("SELECT sum(dead) FROM lex_segments").fetchone()[0]
    segs = db.execute("SELECT n, dead FROM lex_segments").fetchall()
    assert all(d <= lexical.MAX_DEAD * n for n, d in segs), segs
    # a full rewrite: no dead posting left anywhere
    assert lexical._merge(db, [s[0] for s in db.execute("SELECT id FROM lex_segments")])
    assert db.execute("SELECT count(*), sum(dead) FROM lex_segments").fetchone() == (1, 0)
    after = live_top(db, index, q)
    assert after.keys() == want.keys()
    for cid, s in want.items():
        assert after[cid] == pytest.approx(s, rel=1e-4)
    live = db.execute("SELECT count(*), sum(lex_len) FROM chunks WHERE lex_segment > 0").fetchone()
    assert db.execute("SELECT sum(n - dead), sum(total_len - dead_len) FROM lex_segments").fetchone() == live
    assert dead is not None


def test_a_deleted_file_is_dropped_even_when_its_postings_remain(db):
    add(db, "keep.txt", ["supersonic nozzle"])
    add(db, "gone.txt", ["supersonic nozzle supersonic nozzle"])
    delete(db, "gone.txt")
    index = lexical.LexicalIndex()
    ids = [c for c, _ in index.top(db, "supersonic nozzle", 1)]
    assert len(ids) == 2  # one wanted plus one for the dead chunk, which ranks first
    keep = db.execute(
        "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = 'keep.txt'"
    ).fetchone()[0]
    assert keep in ids


def test_tokens_fold_accents_split_underscores_and_stem(db):
    add(db, "a.txt", ["Le café_crème était bouillant", "Running experiments"])
    index = lexical.LexicalIndex()
    assert index.top(db, "cafe creme", 5)
    assert index.top(db, "run", 5)
    assert index.top(db, "the of and", 5) == []  # stop words only: nothing to rank by
    assert index.top(db, "", 5) == []
    assert lexical.analyse("Hello, hello_World 42")[1] == 4


def test_chunks_without_words_are_not_in_the_corpus(db):
    add(db, "photo.jpg", [""])
    assert db.execute("SELECT lex_segment FROM chunks").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM lex_segments").fetchone() == (0,)
    delete(db, "photo.jpg")  # nothing to count as dead


def test_an_fts5_database_is_migrated(tmp_path, monkeypatch):
    """A state dir written before migration 5 (chunk text in FTS5) gets segments and name rows."""
    state = tmp_path / "state"
    monkeypatch.setattr(md, "MIGRATIONS", md.MIGRATIONS[:4])
    old = md.open_db(state)
    with md.write(old):
        old.execute("INSERT INTO files (path, size, mtime_ns, kind) VALUES ('docs/wind_tunnel.txt', 1, 1, 'text')")
        old.execute(
            "INSERT INTO chunks (file_id, ordinal, start, end, text, has_vector) "
            "VALUES (1, 0, 0, 9, 'hypersonic flow', 0)"
        )
        old.execute("INSERT INTO chunks_fts (rowid, text, name) VALUES (1, 'hypersonic flow', 'docs wind tunnel txt')")
    old.close()
    monkeypatch.undo()
    db = md.open_db_readonly(state)  # as `semfs search` opens it: migrated first
    assert lexical.LexicalIndex().top(db, "hypersonic", 5) == [(1, pytest.approx(1e-6 * 2.2 / (1 + 1.2), rel=1e-3))]
    assert db.execute("SELECT rowid FROM names_fts WHERE names_fts MATCH 'tunnel'").fetchall() == [(1,)]
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT * FROM chunks_fts")
    db.close()


def test_a_segment_id_is_never_given_again(db):
    """The read side caches each segment's arrays by id: an id reused after its segment was
    dropped served the old arrays for the new segment (an IndexError in a query folder)."""
    index = lexical.LexicalIndex()
    add(db, "a.txt", ["wing flow"])
    add(db, "b.txt", ["wing lift"])
    assert live_top(db, index, "wing")  # both segments cached
    delete(db, "b.txt")
    lexical.maintain(db)  # the newest segment, all dead, is dropped
    add(db, "c.txt", ["wing drag", "wing jet", "wing cone"])
    got = live_top(db, index, "wing")
    assert got.keys() == reference(db, "wing").keys() and len(got) == 4


def test_the_top_chunks_are_the_same_when_the_common_terms_are_looked_up_only_for_the_leaders(db, monkeypatch):
    """MaxScore: once the rare terms' best scores beat what the common ones could still add, the
    common terms are added only to the chunks that can still make the top. The top n and their
    scores must be those of scoring every posting (a reference computed here, from the text)."""
    rnd = random.Random(7)
    vocab = [f"t{i}" for i in range(400)]
    zipf = [1 / (i + 1) for i in range(len(vocab))]  # a few words in most chunks, most words in few
    for f in range(60):
        add(db, f"f{f}.txt", [" ".join(rnd.choices(vocab, zipf, k=rnd.randint(20, 80))) for _ in range(50)])
    pruned = []
    real = lexical.LexicalIndex._accumulate

    def spy(self, *a, **kw):
        cand = real(self, *a, **kw)
        pruned.append(cand is not None)
        return cand

    monkeypatch.setattr(lexical, "PRUNE_FROM", 0)  # (3,000 chunks: prune as a large folder would)
    monkeypatch.setattr(lexical.LexicalIndex, "_accumulate", spy)
    index = lexical.LexicalIndex()
    for q in range(40):
        query = " ".join(rnd.sample(vocab[:40], 6) + rnd.sample(vocab[100:], 1))  # common words and a rare one
        want = reference(db, query)
        got = index.top(db, query, 20)
        best = sorted(want.values(), reverse=True)[:20]
        assert len(got) == len(best) and all(abs(s - b) < 1e-3 for (_, s), b in zip(got, best)), query
        assert all(abs(want[cid] - s) < 1e-3 for cid, s in got)
    assert sum(pruned) >= 20  # (most queries were cut short: the test tests the cut)
