"""Reading prompts: the rule-based parser, the local LLM, and how they combine."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

import pytest

from semfs.core.index.indexer import Indexer
from semfs.core.query.prompts import merge_readings, parse_llm, parse_rules
from semfs.core.query.queries import QueryService
from semfs.models.embedder import HashEmbedder
from semfs.models.llm import LLMUnavailable, LocalLLM, ensure_default_model

DATA = json.loads((Path(__file__).parent / "data" / "prompts.json").read_text())
TODAY = dt.date.fromisoformat(DATA["today"])


def field_scores(parsed, want) -> dict[str, bool]:
    words = " ".join(parsed.keywords + [parsed.text]).lower()
    return {
        "time": (parsed.after, parsed.before) == (want["after"], want["before"]),
        "kind": (sorted(parsed.kinds), sorted(parsed.extensions))
        == (sorted(want["kinds"]), sorted(want["extensions"])),
        "keywords": all(k in words for k in want["keywords"]),
    }


def test_prompt_set_is_big_enough():
    assert len(DATA["prompts"]) >= 40


def accuracy(parse) -> dict[str, float]:
    """Field-level accuracy of ``parse`` over the prompt set (scripts/bench_prompts.py reports it)."""
    totals = {"time": 0, "kind": 0, "keywords": 0}
    for case in DATA["prompts"]:
        for f, ok in field_scores(parse(case["prompt"]), case).items():
            totals[f] += ok
    return {f: n / len(DATA["prompts"]) for f, n in totals.items()}


def test_rules_accuracy_on_the_prompt_set():
    acc = accuracy(lambda p: parse_rules(p, TODAY))
    assert acc["time"] >= 0.9 and acc["kind"] >= 0.9 and acc["keywords"] >= 0.9, acc


def test_rules_scope_to_an_existing_folder(tmp_path):
    (tmp_path / "projects").mkdir()
    q = parse_rules("budget notes in projects", TODAY, tmp_path)
    assert q.folder == "projects" and q.text == "budget notes"
    assert parse_rules("budget notes in nowhere", TODAY, tmp_path).folder is None


def test_filters_accept_by_path_date_kind_and_folder(tmp_path):
    q = parse_rules("pdf reports in projects from last march", TODAY, (tmp_path / "projects").mkdir() or tmp_path)
    assert q.accepts("projects/2026-03-04 report.pdf", "pdf", 0)
    assert not q.accepts("projects/2026-05-04 report.pdf", "pdf", 0)  # date in the name wins
    assert not q.accepts("projects/2026-03-04 report.md", "markdown", 0)
    assert not q.accepts("other/2026-03-04 report.pdf", "pdf", 0)
    march = dt.datetime(2026, 3, 20).timestamp() * 1e9
    assert q.accepts("projects/report.pdf", "pdf", int(march))  # else the mtime


def test_prompts_in_other_languages_still_search():
    q = parse_rules("notas sobre la reunión de presupuesto", TODAY)
    assert q.text == "notas sobre la reunión de presupuesto" and "reunión" in q.keywords


class SlowLLM:
    """A model that would read prompts with keywords of its own, seconds late."""

    def __init__(self) -> None:
        self.asked = 0

    def complete_json(self, *a, **k):
        self.asked += 1
        time.sleep(2)
        return {"keywords": ["pasta", "budget"]}


def test_a_late_model_reading_never_renames_a_listed_folder(tmp_path):
    """Issue 12, item 1: the rules read prompts; listings change only when the index does."""
    backing = tmp_path / "b"
    backing.mkdir()
    for i, text in enumerate(["bread dough and yeast", "sourdough bread starter", "weeknight pasta", "budget"]):
        (backing / f"n{i}.txt").write_text(text)
    ix = Indexer(backing, tmp_path / "s", HashEmbedder())
    ix.run_once()
    llm = SlowLLM()
    svc = QueryService(
        backing, tmp_path / "s", HashEmbedder(), vectors=lambda: ix.vectors, generation=lambda: 0, llm=llm
    )
    first = svc.query("how do I make bread")
    assert first and {m.path for m in first} <= {"n0.txt", "n1.txt"}  # the bread files (the hashing
    # embedder's meaning is noise, and "make" is in no file: which of them the cut-off keeps is its business)
    time.sleep(2.5)
    again = svc.query("how do I make bread")
    assert again == first and llm.asked == 0
    assert "n2.txt" not in [m.path for m in again]  # the model's "pasta" is not a reason to list it


def test_corrupt_or_missing_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    for path, needle in ((bad, "cannot load the model"), (tmp_path / "none.gguf", "model file not found")):
        with pytest.raises(LLMUnavailable) as e:
            LocalLLM(path).preload()
        assert needle in str(e.value)


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    model = LocalLLM(ensure_default_model(tmp_path_factory.mktemp("models")))
    model.preload()
    return model


def test_real_llm_reads_a_prompt(llm):
    """gemma-3-270m for real: valid JSON under the grammar, keywords that come from the prompt."""
    full = parse_llm("pdf reports about the roof repair from last week", llm, TODAY, timeout=60, full=True)
    assert full.source == "llm" and full.keywords  # the grammar gave every field, valid or null
    parsed = parse_llm("pdf reports about the roof repair from last week", llm, TODAY, timeout=60)
    assert parsed.source == "llm" and parsed.keywords
    assert any(k.lower() in "pdf reports about the roof repair from last week" for k in parsed.keywords)
    merged = merge_readings(parse_rules("pdf reports about the roof repair from last week", TODAY), parsed)
    assert (merged.after, merged.before, merged.kinds) == ("2026-11-16", "2026-11-23", ["pdf"])
    assert merged.source == "llm+rules"


def test_real_llm_times_out_cleanly(llm):
    with pytest.raises(LLMUnavailable) as e:
        llm.complete_json(
            "Request: x\nJSON: ", {"type": "object", "properties": {"a": {"type": "string"}}}, timeout=0.0001
        )
    assert "did not answer" in str(e.value)


class SlowEmbedder(HashEmbedder):
    """The hashing embedder, 0.3 s per call, counting the prompts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed(self, texts):
        if len(texts) == 1:
            self.calls += 1
            time.sleep(0.3)
        return super().embed(texts)


def test_one_search_for_a_prompt_asked_on_many_threads_at_once(tmp_path):
    """A file manager opening a new query folder asks for it on several FUSE threads at once
    (seen under Thunar: two searches); they share the first one's answer, and so do saved queries."""
    backing = tmp_path / "b"
    backing.mkdir()
    (backing / "bread.txt").write_text("sourdough bread starter")
    ix = Indexer(backing, tmp_path / "s", HashEmbedder())
    ix.run_once()
    emb = SlowEmbedder()
    svc = QueryService(backing, tmp_path / "s", emb, vectors=lambda: ix.vectors, generation=lambda: 0)
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(svc.query("bread starter"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert emb.calls == 1 and len(answers) == 4 and all(a == answers[0] for a in answers) and answers[0]
    svc.save("bread", "bread starter")
    assert svc.saved_query("bread starter") == answers[0] and svc.refresh_saved() == 0  # found already
    assert emb.calls == 1


def test_group_by_phrases_and_groups(tmp_path):
    from semfs.core.query.groups import group_of

    assert parse_rules("budget notes by month").group_by == "month"
    assert parse_rules("budget notes by month").text == "budget notes"
    assert parse_rules("pdf reports grouped by type").group_by == "kind"
    assert parse_rules("notes by Priya").group_by is None and parse_rules("notes by Priya").text == "notes by Priya"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "plan.md").write_text("x")
    os.utime(tmp_path / "notes" / "plan.md", (0, 1_700_000_000))  # November 2023
    assert group_of(tmp_path, "meetings/2026-03-12 review.md", "markdown", "month") == "2026-03"  # the path's date
    assert group_of(tmp_path, "notes/plan.md", "markdown", "month") == "2023-11"  # else its last change
    assert group_of(tmp_path, "notes/plan.md", "markdown", "folder") == "notes"
    assert group_of(tmp_path, "top.txt", "text", "folder") == "(top level)"
    assert group_of(tmp_path, "code/backup.sh", "text", "kind") == "sh"
    assert group_of(tmp_path, "r.pdf", "pdf", "kind") == "pdf"
