"""Change notes without a mount: diff stats, the grounding check, the cache."""

from __future__ import annotations

import os

from semfs.core.versions import notes as cn
from semfs.stores import metadata as md
from semfs.stores.catalog import Catalog


class ScriptedLLM:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls = 0

    def complete_text(self, prompt, timeout, max_tokens=120, stop=None, background=False) -> str:
        self.calls += 1
        assert "-Launch: May\n+Launch: July" in prompt
        return self.answer


def test_diff_stat():
    assert cn.diff_stat(b"a\nb\n", b"a\nc\nd\n") == "+2 -1 lines"
    assert cn.diff_stat(b"same", b"same") == "no change in the text"
    assert cn.diff_stat(b"\xff\xfe", b"\x00") == "binary content: 2 -> 1 bytes"


def test_grounded():
    diff = "-Launch: May\n+Launch: July 2027"
    assert cn.grounded("moved the launch to July 2027", diff)
    assert not cn.grounded("changed the price from 20 USD to 25 USD", diff)  # an example, copied
    assert not cn.grounded("moved the launch to 12 July", diff)  # a number the diff does not hold


def test_notes_are_cached_and_ungrounded_ones_dropped(tmp_path):
    db = md.open_db(tmp_path)
    catalog = Catalog(lambda: db)
    before, after = b"Launch: May\n", b"Launch: July\n"
    good = ScriptedLLM("delayed the launch to July")
    assert cn.note(catalog, good, "m", before, after) == ("delayed the launch to July (+1 -1 lines)", True)
    assert cn.note(catalog, good, "m", before, after)[0].startswith("delayed") and good.calls == 1  # cached
    bad = ScriptedLLM("changed the price from 20 USD to 25 USD")
    assert cn.note(catalog, bad, "other", before, after) == ("+1 -1 lines", False)
    assert cn.note(catalog, bad, "other", before, after) == ("+1 -1 lines", False) and bad.calls == 1  # asked once
    assert cn.note(catalog, None, "m", before, after) == ("+1 -1 lines", False)  # no model
    assert cn.note(catalog, good, "m", None, after)[0] == "(a version's content is unreadable)"
    db.close()


def test_large_content_gets_a_size_stat_not_a_diff():
    big = b"line\n" * 300_000  # 1.5 MB: difflib would take minutes
    assert cn.diff_body(big, big + b"more\n") is None
    assert cn.diff_stat(big, big + b"more\n") == f"large content: {len(big)} -> {len(big) + 5} bytes"


def test_pairs_of_new_versions_only(tmp_path):
    from semfs.core.versions.keeper import Versions

    backing = tmp_path / "b"
    backing.mkdir()
    vs = Versions(backing, tmp_path / "s")
    f = backing / "a.txt"
    for i, text in enumerate(["one\n", "two\n", "three\n"]):
        f.write_text(text)
        os.utime(f, ns=(i * 10**9 + 1, i * 10**9 + 1))
        if i < 2:
            vs.keep("a.txt", "write")
    (v1, v2) = vs.history("a.txt")
    assert [(v.version, b, a) for v, b, a in cn.pairs(vs, "a.txt")] == [
        (1, b"one\n", b"two\n"),
        (2, b"two\n", b"three\n"),
    ]
    assert [(v.version, b, a) for v, b, a in cn.pairs(vs, "a.txt", newer_than=v1.time)] == [(2, b"two\n", b"three\n")]
