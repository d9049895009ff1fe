"""topics/: the files grouped by meaning (issue 25, item 1).

The grouping itself on vectors made for the purpose and on a real index
(the hash embedder), then the demo folder through a real mount with MiniLM.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semfs.cli import cli
from semfs.core.index.indexer import Indexer
from semfs.core.topics import cluster, naming, service
from semfs.core.topics.corpus import Corpus
from semfs.core.topics.corpus import read as read_corpus
from semfs.core.topics.tree import build, from_arrays, quality, to_arrays
from semfs.fs.virtual.topics import HINT
from semfs.models.embedder import HashEmbedder
from semfs.stores import reads, topicfile
from semfs.stores.backends import index_for

from helpers import minilm_demo, start_mount, wait_for

SUBJECTS = {
    "garden": "tomato compost soil seedlings watering trellis mulch",
    "boat": "sail mast keel harbour anchor rigging tide",
    "tax": "invoice receipts deduction refund accountant ledger vat",
}


def _corpus(per: int = 10, dim: int = 32, seed: int = 0) -> tuple[Corpus, list[str]]:
    """``per`` files of each subject: vectors near the subject's own direction, texts of its words."""
    rng = np.random.default_rng(seed)
    centres = cluster.normalised(rng.normal(size=(len(SUBJECTS), dim)))
    vecs, texts, truth = [], {}, []
    for s, (subject, words) in enumerate(SUBJECTS.items()):
        for i in range(per):
            vecs.append(centres[s] + 0.15 * rng.normal(size=dim))
            ws = words.split()
            texts[len(truth) + 1] = f"Notes {i}: " + " ".join(ws[(i + j) % len(ws)] for j in range(5)) + " and more."
            truth.append(subject)
    ids = np.arange(1, len(truth) + 1, dtype=np.int64)
    paths = [f"{t}/{i}.txt" for i, t in zip(ids, truth)]
    c = Corpus(
        ids, [f"sha{i}" for i in ids], paths, cluster.normalised(np.array(vecs)), lambda fs: {f: texts[f] for f in fs}
    )
    return c, truth


def test_three_subjects_make_three_topics_named_by_their_own_words():
    c, truth = _corpus()
    tree = build(c)
    assert tree is not None and len(tree.topics) == 3  # chosen by silhouette from the ladder
    texts = c.texts(c.ids.tolist())
    for t in tree.topics:
        files = [f for f, _ in tree.members(t.id)]
        assert len({truth[f - 1] for f in files}) == 1, t  # one subject each
        subject = truth[files[0] - 1]
        assert len(t.words) == naming.WORDS and set(t.words) <= set(SUBJECTS[subject].split()), t
        assert all(any(w in texts[f] for f in files) for w in t.words)  # every word is in its files
    again = build(c)
    assert [t.words for t in again.topics] == [t.words for t in tree.topics]  # seeded: the same


def test_a_new_file_joins_the_nearest_topic_and_nothing_is_renamed():
    c, truth = _corpus()
    tree = build(c)
    boat = next(t.id for t in tree.topics if "sail" in t.words or "mast" in t.words or "keel" in t.words)
    near_boat = cluster.normalised(c.vectors[10:11] * 0.9 + 0.1 * c.vectors[11:12])
    new = Corpus(np.array([99], dtype=np.int64), ["sha99"], ["boat/new.txt"], near_boat, c.texts)
    present = {int(f): s for f, s in zip(c.ids, c.shas)}
    del present[1]  # a garden file is gone
    present[99] = "sha99"
    moved, changes = tree.updated(new, present)
    assert changes == 2 and [t.words for t in moved.topics] == [t.words for t in tree.topics]
    assert 1 not in moved.ids.tolist() and moved.leaf[moved.ids.tolist().index(99)] == boat
    assert moved.meta["changes"] == 2
    # a changed file (its sha differs) is placed again; an unchanged one stays where it was
    present[2] = "changed"
    again, n = moved.updated(Corpus(np.array([2]), ["changed"], ["garden/2.txt"], c.vectors[1:2], c.texts), present)
    assert n == 1 and sorted(again.ids.tolist()) == sorted(moved.ids.tolist())


def test_the_silhouette_is_scikit_learns():
    from sklearn.metrics import silhouette_score

    c, truth = _corpus(per=7)
    labels = np.array([list(SUBJECTS).index(t) for t in truth])
    labels[0] = 1  # one file in the wrong group
    ours = cluster.silhouette(c.vectors, labels)
    assert ours == pytest.approx(silhouette_score(c.vectors, labels, metric="cosine"), abs=1e-5)


def test_the_ladder_is_a_handful_for_a_small_folder_and_at_most_max_k():
    assert cluster.ladder(5) == []  # too few files to group
    assert cluster.ladder(31) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert max(cluster.ladder(100_000)) == cluster.MAX_K and min(cluster.ladder(100_000)) == cluster.MAX_K


def test_a_large_folder_is_a_tree_of_two_levels():
    c, truth = _corpus(per=500)  # 1,500 files: 18 to 24 topics, those of over SPLIT files split again
    tree = build(c)
    tops = tree.children(-1)
    assert 18 <= len(tops) <= cluster.MAX_K and any(tree.children(t.id) for t in tops), len(tops)
    leaves = [t for t in tree.topics if not tree.children(t.id)]
    assert sorted(f for t in leaves for f, _ in tree.members(t.id)) == c.ids.tolist()  # each file in one leaf
    for t in tops:
        kids = tree.children(t.id)
        if kids:
            assert {f for f, _ in tree.members(t.id)} == {f for k in kids for f, _ in tree.members(k.id)}
            assert len({k.name for k in kids}) == len(kids)  # siblings are told apart
    assert len({t.name for t in tops}) == len(tops)
    for t in leaves:
        assert len({truth[f - 1] for f, _ in tree.members(t.id)}) == 1  # a leaf is of one subject


def test_the_topics_file_round_trips_and_a_damaged_one_is_no_grouping(tmp_path):
    c, _ = _corpus()
    tree = build(c)
    topicfile.save(tmp_path, *to_arrays(tree))
    assert oct(os.stat(tmp_path / topicfile.NAME).st_mode & 0o777) == "0o600"
    back = from_arrays(*topicfile.load(tmp_path))
    assert back.topics == tree.topics and back.shas == tree.shas and back.meta["quality"] == tree.meta["quality"]
    assert np.array_equal(back.leaf, tree.leaf) and np.allclose(back.centroids, tree.centroids)
    (tmp_path / topicfile.NAME).write_bytes(b"PK\x03\x04 not a zip at all")
    assert topicfile.load(tmp_path) is None


def _write(backing: Path, subject: str, i: int) -> None:
    ws = SUBJECTS[subject].split()
    (backing / f"{subject}-{i}.txt").write_text(" ".join(ws[(i + j) % len(ws)] for j in range(6)) + f" note {i}\n")


def test_regrouping_waits_for_enough_change_a_real_gain_and_nobody_looking(tmp_path, monkeypatch):
    backing, state = tmp_path / "b", tmp_path / "s"
    backing.mkdir()
    for subject in ("garden", "boat"):
        for i in range(8):
            _write(backing, subject, i)
    Indexer(backing, state, HashEmbedder()).run_once()
    store = index_for(state)
    db, vectors = store.open_db_readonly(), store.vectors(HashEmbedder().dim, writer=False)
    tree, what = service.step(None, db, vectors, may_regroup=True)
    assert what == "built" and len(tree.topics) == 2
    same, what = service.step(tree, db, vectors, may_regroup=True)
    assert same is tree and what == ""  # nothing changed
    db.close()
    for i in range(8):  # a third subject arrives: 8 of 24 files, past REGROUP_SHARE
        _write(backing, "tax", i)
    Indexer(backing, state, HashEmbedder()).run_once()
    db, vectors = store.open_db_readonly(), store.vectors(HashEmbedder().dim, writer=False)
    held, what = service.step(tree, db, vectors, may_regroup=False)  # a topic folder is open
    assert what == "updated" and held.topics == tree.topics and len(held.ids) == 24
    new, what = service.step(held, db, vectors, may_regroup=True)
    assert what == "regrouped" and len(new.topics) == 3, [t.words for t in new.topics]
    assert new.meta["quality"] >= quality(held, read_corpus(db, vectors)) + service.MARGIN
    # as much change again, but more of the same subjects: the grouping stays (kept, and checked)
    db.close()
    for i in range(8, 14):
        _write(backing, "boat", i)
    Indexer(backing, state, HashEmbedder()).run_once()
    db, vectors = store.open_db_readonly(), store.vectors(HashEmbedder().dim, writer=False)
    kept, what = service.step(new, db, vectors, may_regroup=True)
    assert what == "kept" and kept.topics == new.topics and kept.meta["changes"] == 0 and kept.meta["files"] == 30
    db.close()


def test_a_topic_folder_open_or_listed_lately_holds_the_grouping(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "HOLD", 0.3)
    t = service.Topics(tmp_path, index_for(tmp_path), vectors=lambda: None)
    assert not t.looked_at()
    done = t.look()
    time.sleep(0.4)
    assert t.looked_at()  # open
    done()
    assert t.looked_at()  # listed lately
    time.sleep(0.4)
    assert not t.looked_at()


def test_semfs_topics_on_a_folder_that_is_not_mounted(tmp_path, monkeypatch):
    backing = tmp_path / "b"
    backing.mkdir()
    for subject in SUBJECTS:
        for i in range(6):
            _write(backing, subject, i)
    r = CliRunner().invoke(cli, ["topics", str(backing)])
    assert r.exit_code == 1 and "no index yet" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert CliRunner().invoke(cli, ["index", str(backing)]).exit_code == 0
    r = CliRunner().invoke(cli, ["topics", str(backing), "--json"])
    assert r.exit_code == 0, r.output
    found = json.loads(r.output)["topics"]
    assert len(found) == 3 and sorted(len(t["files"]) for t in found) == [6, 6, 6]
    for t in found:
        subjects = {f["path"].split("-")[0] for f in t["files"]}
        assert len(subjects) == 1 and set(t["name"].split()) <= set(SUBJECTS[subjects.pop()].split()), t
    r = CliRunner().invoke(cli, ["topics", str(backing), "--files", "2"])
    assert r.exit_code == 0 and r.output.count("... and 4 more") == 3, r.output
    assert CliRunner().invoke(cli, ["topics", str(backing), "--files", "-1"]).exit_code == 2


def _names(mnt: Path) -> set[str]:
    return {n for n in os.listdir(mnt / "topics") if n != HINT}


def test_demo_topics_follow_its_folders_are_named_by_their_words_and_stay(tmp_path, monkeypatch):
    """MiniLM for real on the demo, through a mount run as the user the suite runs as."""
    with minilm_demo(tmp_path, monkeypatch) as (backing, mnt):
        assert (mnt / "topics" / HINT).read_text().startswith("Each folder here is a topic")
        wait_for(lambda: _names(mnt), timeout=240, what="the demo grouped")
        every = lambda: sum(len(os.listdir(mnt / "topics" / n)) for n in _names(mnt))  # noqa: E731
        wait_for(lambda: every() == 31, timeout=30, what="every file in a topic")
        names = _names(mnt)
        assert 3 <= len(names) <= 10, names
        where: dict[str, str] = {}  # file -> its topic
        for name in names:
            entries = sorted(os.listdir(mnt / "topics" / name))
            assert entries and entries[0].startswith("01-"), (name, entries)
            text = ""
            for e in entries:
                link = mnt / "topics" / name / e
                real = Path(os.path.realpath(link))
                assert real.is_file() and mnt in real.parents, (link, real)  # a link into the mirror
                rel = real.relative_to(mnt).as_posix()
                where[rel] = name
                text += real.read_text().lower()
            for word in name.split():
                assert word in text, (name, word)  # every word of a name is in its files
        assert len(where) == 31  # each file in one topic
        folder = {rel: rel.split("/")[0] for rel in where}
        mates = [rel for rel in where if sum(folder[o] == folder[rel] for o in where) > 1]
        with_mate = [r for r in mates if any(folder[o] == folder[r] and where[o] == where[r] for o in where if o != r)]
        # most files share their topic with a file of their own folder (0.73 measured: docs/BENCHMARKS.md)
        assert len(with_mate) / len(mates) >= 0.6, (len(with_mate), len(mates), where)
        recipes = {where[r] for r in where if r.startswith("recipes/")}
        assert len(recipes) == 1, recipes
        # a new file joins a topic; the others keep their names
        (mnt / "recipes" / "focaccia.md").write_text(
            "# Focaccia\n\nFlour, water, salt, olive oil and yeast. Knead, let it rise two hours, dimple it, "
            "bake at 220C for 25 minutes with rosemary and garlic.\n"
        )

        def joined():
            return [n for n in _names(mnt) if any(e.endswith("-focaccia.md") for e in os.listdir(mnt / "topics" / n))]

        wait_for(joined, timeout=60, what="the new file in a topic")
        assert _names(mnt) == names and joined() == list(recipes), (joined(), recipes)
        r = CliRunner().invoke(cli, ["topics", str(mnt), "--json"])
        assert r.exit_code == 0, r.output
        printed = json.loads(r.output)["topics"]
        assert {t["name"] for t in printed} == names
        assert sum(len(t["files"]) for t in printed) == 32
        # a deleted file leaves its topic at once
        os.unlink(mnt / "recipes" / "focaccia.md")
        assert not joined()


def test_a_regrouping_waits_while_a_topic_folder_is_open(tmp_path, monkeypatch):
    """Through a mount: a third subject arrives while a topic folder is open; its files join the
    old topics, and the grouping is made again only after the folder is closed (and the hold,
    2 s here, is over)."""
    monkeypatch.setenv("SEMFS_TOPICS_HOLD", "2")
    backing, mnt, log = tmp_path / "b", tmp_path / "m", tmp_path / "mount.log"
    backing.mkdir()
    for subject in ("garden", "boat"):
        for i in range(8):
            _write(backing, subject, i)
    m = start_mount(backing, mnt, log=log)
    try:
        wait_for(lambda: len(_names(mnt)) == 2, timeout=60, what="two topics")
        names = _names(mnt)
        fd = os.open(mnt / "topics" / sorted(names)[0], os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(8):
                _write(mnt, "tax", i)

            def placed() -> int:
                return sum(len(os.listdir(mnt / "topics" / n)) for n in _names(mnt))

            wait_for(lambda: placed() == 24, timeout=60, what="the new files in the old topics")
            time.sleep(2 * 2 + 3 * 3)  # past the hold of a listing, three looks of the topics thread
            assert _names(mnt) == names and "topics regrouped" not in log.read_text()
        finally:
            os.close(fd)
        # (polled in the log: a listing of topics/ is a look, which would hold it again)
        wait_for(lambda: "topics regrouped" in log.read_text(), timeout=30, what="the regrouping, once closed")
        assert len(_names(mnt)) == 3
    finally:
        m.unmount()


def test_a_folder_of_more_files_than_the_sample_is_grouped_from_a_sample_and_every_file_placed(tmp_path, monkeypatch):
    """Past ``corpus.SAMPLE`` files the grouping is made from a random sample and the other files
    join their nearest topic in batches: every file is in a topic, no topic mixes two subjects."""
    from semfs.core.topics import corpus as corpus_mod

    monkeypatch.setattr(corpus_mod, "SAMPLE", 120)
    backing, state = tmp_path / "b", tmp_path / "s"
    backing.mkdir()
    for subject in ("garden", "boat", "tax"):
        for i in range(100):
            _write(backing, subject, i)
    Indexer(backing, state, HashEmbedder()).run_once()
    store = index_for(state)
    db, vectors = store.open_db_readonly(), store.vectors(HashEmbedder().dim, writer=False)
    sizes = []
    real_read = corpus_mod.read

    def read(*a, **kw):
        sizes.append(len(got := real_read(*a, **kw)))
        return got

    monkeypatch.setattr(corpus_mod, "read", read)
    try:
        tree, what = service.step(None, db, vectors, may_regroup=True)
        assert max(sizes) <= 120 and sum(sizes) == 300  # never every file's vector at once
        assert what == "built" and len(tree.ids) == 300 and tree.meta["changes"] == 0 and tree.meta["files"] == 300
        assert not service.due(tree)  # (placing the rest is not a change to regroup for)
        path = {fid: p for fid, p, _ in reads.every_file(db)}
        subjects: dict[int, set[str]] = {}
        for fid, leaf in zip(tree.ids.tolist(), tree.leaf.tolist()):
            top = tree.topics[leaf].parent if tree.topics[leaf].parent >= 0 else leaf
            subjects.setdefault(top, set()).add(path[fid].split("-")[0])
        assert all(len(s) == 1 for s in subjects.values()), subjects
        assert set().union(*subjects.values()) == {"garden", "boat", "tax"}
    finally:
        db.close()
