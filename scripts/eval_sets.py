#!/usr/bin/env python3
"""Evaluation collections of this machine's own text, with the questions in tests/data/eval/.

Two collections, built from what a Debian system ships (so the questions
are not tuned to a corpus anyone here wrote):

- ``changelogs``: each package's ``changelog.Debian.gz``, its first 6 KB
  (the recent entries). Packages built from one source share one text:
  duplicates are part of the test.
- ``manpages``: sections 1, 5 and 8 of the manual, rendered at 80 columns.

Judgements: a changelog question names a fragment of its answering line,
and every file that holds it is relevant; a man page question names its
pages. Run alone, this checks the sets: every answer is found, and the
"no-shared-words" questions share no content word with their answer's
line (by a 5-letter stem, so "crash" and "crashing" count as shared).

    .venv/bin/python scripts/eval_sets.py [--work DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "eval"
CHANGELOG_BYTES = 6144
MAN_SECTIONS = ("man1", "man5", "man8")
MAN_SKIP = ("gcloud", "kubectl")  # thousands of near-identical pages of two tools

_WORD = re.compile(r"[a-z0-9]+")
STOP = set(
    "a an and are as at be been but by can could did do does for from had has have how i in into is it its "
    "may me my no not now of on one or our so some than that the their them then there these they this to "
    "too was we were what when where which while who whose why will with would you your yet also only "
    "after before once again more most other such very get got".split()
)


def build(name: str, folder: Path) -> Path:
    """The collection ``name`` written into ``folder`` (once: a folder already built is kept)."""
    done = folder / ".built"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if name == "changelogs":
        for log in sorted(Path("/usr/share/doc").glob("*/changelog.Debian.gz")):
            try:
                with gzip.open(log) as f:
                    text = f.read(CHANGELOG_BYTES).decode("utf-8", "replace")
            except OSError:
                continue
            (folder / f"{log.parent.name}.txt").write_text(text)
    elif name == "manpages":
        for sec in MAN_SECTIONS:
            for page in sorted(Path("/usr/share/man", sec).iterdir()):
                if page.name.startswith(MAN_SKIP) or page.is_symlink() or not page.name.endswith(".gz"):
                    continue
                out = subprocess.run(
                    ["man", "-l", str(page)],
                    capture_output=True,
                    env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "", "LC_ALL": "C.UTF-8"},
                )
                text = subprocess.run(["col", "-bx"], input=out.stdout, capture_output=True).stdout.decode(
                    "utf-8", "replace"
                )
                if text.strip():
                    (folder / f"{page.name[:-3]}.txt").write_text(text)
    else:
        raise SystemExit(f"unknown collection {name!r}")
    done.write_text("")
    return folder


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def questions(name: str) -> list[dict]:
    return json.loads((DATA / f"{name}.json").read_text())["questions"]


def judgements(name: str, folder: Path) -> list[set[str]]:
    """For each question of ``name``, the file names (relative to ``folder``) that answer it."""
    qs = questions(name)
    if name == "manpages":
        return [{f"{p}.txt" for p in q["pages"] if (folder / f"{p}.txt").exists()} for q in qs]
    texts = {p.name: _fold(p.read_text()) for p in folder.glob("*.txt")}
    return [{n for n, t in texts.items() if _fold(q["answer"]) in t} for q in qs]


def distinct_texts(folder: Path) -> dict[str, str]:
    """file name -> a key shared by files of identical text (for counting distinct answers)."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.txt")}


def _stems(text: str) -> set[str]:
    return {
        w[:5] for w in _WORD.findall(text.lower().replace("-", " ").replace("_", " ")) if w not in STOP and len(w) > 1
    }


def answer_line(q: dict, folder: Path, relevant: set[str]) -> str:
    """The whole line (with its continuation) that holds a changelog question's answer."""
    frag = _fold(q["answer"])
    for name in sorted(relevant):
        lines = (folder / name).read_text().splitlines()
        for i, line in enumerate(lines):
            joined = _fold(" ".join(lines[i : i + 4]))
            if frag[:30] in _fold(line) and frag in joined:
                return " ".join(lines[i : i + 4])
    return q["answer"]


def check(work: Path) -> int:
    bad = 0
    for name in ("changelogs", "manpages"):
        folder = build(name, work / name)
        qs, rel = questions(name), judgements(name, folder)
        n_files = len(list(folder.glob("*.txt")))
        print(f"{name}: {n_files} files, {len(qs)} questions")
        for q, r in zip(qs, rel):
            if not r:
                print(f"  no answer found: {q['q']!r}")
                bad += 1
            if q.get("set") == "no-shared-words" and r:
                shared = _stems(q["q"]) & _stems(answer_line(q, folder, r))
                if shared:
                    print(f"  shares {sorted(shared)} with its answer: {q['q']!r}")
                    bad += 1
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/semfs-eval")
    args = ap.parse_args()
    sys.exit(1 if check(Path(args.work)) else 0)


if __name__ == "__main__":
    main()
