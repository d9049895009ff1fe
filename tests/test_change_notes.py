"""Change notes without a mount: diff stats, the grounding check, the cache."""

from __future__ import annotations

from semfs.core import change_notes as cn
from semfs.stores import metadata as md


class ScriptedLLM:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls = 0

    def complete_text(self, prompt, timeout, max_tokens=120, stop=None) -> str:
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
    before, after = b"Launch: May\n", b"Launch: July\n"
    good = ScriptedLLM("delayed the launch to July")
    assert cn.note(db, good, "m", before, after) == ("delayed the launch to July (+1 -1 lines)", True)
    assert cn.note(db, good, "m", before, after)[0].startswith("delayed") and good.calls == 1  # cached
    bad = ScriptedLLM("changed the price from 20 USD to 25 USD")
    assert cn.note(db, bad, "other", before, after) == ("+1 -1 lines", False)
    assert cn.note(db, bad, "other", before, after) == ("+1 -1 lines", False) and bad.calls == 1  # asked once
    assert cn.note(db, None, "m", before, after) == ("+1 -1 lines", False)  # no model
    assert cn.note(db, good, "m", None, after)[0] == "(a version's content is unreadable)"
    db.close()
