"""Summaries: what a file is and its key points, in its own words (issue 12, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semfs.core.index.extract import extract_bytes
from semfs.core.query.summaries import compose, grounded_gist, kind_of, title_of
from semfs.stores import local
from semfs.stores import metadata as md

ROOT = Path(__file__).parent.parent
FILES = json.loads((ROOT / "tests" / "data" / "summaries" / "keypoints.json").read_text())["files"]


def test_a_gist_with_a_word_the_file_lacks_is_dropped():
    todo = (ROOT / "demo" / "inbox" / "todo.txt").read_text()
    assert grounded_gist("the landlord's refusal to renew the lease.", todo) is None  # "refusal": not in it
    assert grounded_gist("the lease renewal and the bike's brake", todo) == "the lease renewal and the bike's brake"
    assert compose(todo, "inbox/todo.txt", "the landlord's refusal to renew the lease").splitlines()[0] == "List"


def test_kind_and_title():
    minutes = (ROOT / "demo" / "meetings" / "2026-03-26 budget follow-up.md").read_text()
    assert kind_of(minutes, "meetings/2026-03-26 budget follow-up.md") == "Meeting notes"
    assert title_of(minutes, "x.md") == "Budget follow-up — 26 March 2026"
    pasta = (ROOT / "demo" / "recipes" / "weeknight pasta.txt").read_text()
    assert kind_of(pasta, "recipes/weeknight pasta.txt") == "Notes"  # "(20 minutes)" is not a meeting
    assert kind_of("# Soup\n\nSimmer twenty minutes.\n", "soup.md") == "Notes"  # nor "twenty minutes"
    assert kind_of("Minutes of the AGM, 3 May\n", "agm.txt") == "Meeting notes"
    code = (ROOT / "demo" / "code" / "fetch_rates.py").read_text()
    assert compose(code, "code/fetch_rates.py").splitlines() == [
        "Python code: Fetch yesterday's exchange rates from a CSV export and print EUR conversions.",
        "- Defines load_rates.",
    ]


@pytest.mark.parametrize("f", FILES, ids=[f["path"] for f in FILES])
def test_every_line_of_a_summary_is_the_files_own(f):
    """Each key line is (a cut of) a line or sentence of the file, or one of the two semfs writes
    itself from it (a log's span, a code file's definitions); at most four key lines, then at most
    five decisions and five actions under their labels."""
    path = ROOT / f["path"]
    text = extract_bytes(path.read_bytes(), path.name).text
    lines = compose(text, f["path"]).splitlines()
    labels = [i for i, ln in enumerate(lines) if ln in ("Decisions:", "Actions:")]
    points = lines[1 : labels[0] if labels else None]
    assert 1 <= len(points) <= 4, lines
    for a, b in zip(labels, labels[1:] + [len(lines)]):
        assert 1 <= b - a - 1 <= 5, lines
    flat = " ".join(text.replace("**", "").split())
    for line in [ln for i, ln in enumerate(lines[1:], 1) if i not in labels]:
        assert line.startswith("- ")
        body = line[2:]
        if body.startswith("Defines "):
            assert all(f"def {n}" in flat or f"class {n}" in flat for n in body[8:].rstrip(".").split(", "))
            continue
        if " entries, " in body:
            assert all(tok in flat for tok in body.split()[2::2]), body  # its first and last dates
            continue
        for part in body.rstrip("…").split("; "):
            assert part in flat, (part, f["path"])


def test_decisions_and_actions_are_kept_under_their_labels():
    """The budget review's two decisions sat under a bare "Decisions" line below four bullets and
    were left out (issue 24, item 7); a labelled line's items, a "Decision:" sentence and someone's
    task said as a sentence count too, and a who-was-there line is no key point."""
    review = (ROOT / "demo" / "meetings" / "2026-03-12 budget review.md").read_text()
    lines = compose(review, "meetings/2026-03-12 budget review.md").splitlines()
    got = lines[lines.index("Decisions:") :]
    assert got == [
        "Decisions:",
        "- Travel budget cut by a third for Q2.",
        "- The offsite in May goes ahead, but at the office, not a hotel.",
        "Actions:",
        "- Wei to renegotiate the storage contract (reserved capacity instead of on-demand).",
        "- Priya circulates the revised forecast by 20 March.",
    ]
    assert not any(ln.startswith("- Attendees") for ln in lines)
    call = (
        "Call with the builder, 10 Feb\n\nThe worktop is late. Decision: tiles stay grey.\n"
        "To do: pay the deposit by Friday; clear the cupboards.\nMarek will order the worktop.\n"
        "Wants to start on 2 March.\n"
    )
    assert compose(call, "call.txt").splitlines() == [
        "Meeting notes: Call with the builder, 10 Feb",
        "- The worktop is late.",
        "- Wants to start on 2 March.",
        "Decisions:",
        "- tiles stay grey.",
        "Actions:",
        "- pay the deposit by Friday",
        "- clear the cupboards.",
        "- Marek will order the worktop.",
    ]
    many = "# Plan\n\n## Actions\n" + "".join(f"- task number {i}\n" for i in range(1, 8))
    assert compose(many, "plan.md").splitlines()[-2:] == ["- task number 5", "- (and 2 more)"]


def test_summaries_are_cached_per_content_and_format(tmp_path):
    from semfs.core.query.summaries import FORMAT, summarise

    class Model:
        model_path = Path("m.gguf")
        calls = 0

        def complete_text(self, prompt, **kw):
            Model.calls += 1
            return " the new year"

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "day.md").write_text("New year, new notebook. Run twice a week.")
    db = md.open_db(tmp_path / "s")
    first = summarise(tmp_path / "b", "day.md", db, Model(), "m.gguf")
    assert first == "Notes, about the new year\n- New year, new notebook.\n- Run twice a week."
    assert summarise(tmp_path / "b", "day.md", db, Model(), "m.gguf") == first and Model.calls == 1
    assert local.get_summary(
        db, __import__("hashlib").sha256(b"New year, new notebook. Run twice a week.").hexdigest(), f"m.gguf:{FORMAT}"
    )
    db.close()


def test_a_titled_file_needs_no_model_and_is_cached(tmp_path):
    """The model only writes a gist for an untitled file: a titled one is summarised without asking
    it, unmarked, and cached (it was marked "no model" and made again on every read)."""
    from semfs.core.query.summaries import summarise

    class Model:
        model_path = Path("m.gguf")

        def complete_text(self, prompt, **kw):
            raise AssertionError("asked the model for a titled file")

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "plan.md").write_text("# Trip plan\n\nTwo weeks in March.")
    db = md.open_db(tmp_path / "s")
    text = summarise(tmp_path / "b", "plan.md", db, Model(), "m.gguf")
    assert text == "Notes: Trip plan\n- Two weeks in March."
    assert db.execute("SELECT count(*) FROM summaries").fetchone()[0] == 1
    db.close()
