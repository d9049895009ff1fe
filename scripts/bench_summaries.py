#!/usr/bin/env python3
"""Summaries, before and after (issue 12): coverage of hand-written key points, and unfaithful statements.

For each of the 40 files of tests/data/summaries/keypoints.json (the demo
folder plus notes, code, minutes, a .docx and a PDF in tests/data/summaries,
and five meeting notes with decisions and actions, issue 24):

- before: the one sentence gemma-3-270m completed ("About ..."), as semfs
  summarised until now;
- after: what ``summary/<file>`` shows now (semfs.core.query.summaries),
  with the model's gist where the file has no title;
- after, no model: the same without the model.

A key point is covered when, for each of its groups of words, one of the
alternatives appears in the summary. A statement (a line, or the one
sentence) is unfaithful when it holds a number or a name (a capitalised
word not first in its line) that the file does not hold. ``--show`` prints
every summary for reading by eye.

    .venv/bin/python scripts/bench_summaries.py [--show]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def covered(summary: str, point: dict) -> bool:
    s = summary.lower()
    return all(any(alt.lower() in s for alt in group) for group in point["terms"])


def unfaithful(summary: str, source: str) -> list[str]:
    bad = []
    for line in [ln for ln in summary.splitlines() if ln.strip()]:
        words = re.findall(r"[^\W_]+(?:[.,'’-][^\W_]+)*", line.lstrip("- "))
        names = [w for w in words[1:] if w[0].isupper()]
        numbers = [w for w in words if any(c.isdigit() for c in w)]
        if any(tok not in source for tok in names + numbers):
            bad.append(line)
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", action="store_true", help="print every summary")
    args = ap.parse_args()

    from semfs.core.index.extract import extract_bytes
    from semfs.core.query import summaries as s
    from semfs.models.llm import LocalLLM, ensure_default_model

    llm = LocalLLM(ensure_default_model(Path(tempfile.mkdtemp(prefix="semfs-models-"))))
    llm.preload()
    data = json.loads((ROOT / "tests" / "data" / "summaries" / "keypoints.json").read_text())
    rows: dict[str, list] = {"before: one sentence by the model": [], "after": [], "after, no model": []}
    times: dict[str, list[float]] = {k: [] for k in rows}
    for f in data["files"]:
        path = ROOT / f["path"]
        text = extract_bytes(path.read_bytes(), path.name).text
        flat = " ".join(text.split())[: s.MAX_CHARS]
        t0 = time.perf_counter()
        about = llm.complete_text(s._PROMPT.format(text=flat), timeout=60, max_tokens=48, stop=["\n"]).strip()
        before = f"About {about}" if about else "(the model had nothing to say)"
        times["before: one sentence by the model"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        gist = None
        if not s.title_of(text, f["path"]):
            gist = llm.complete_text(s._PROMPT.format(text=flat), timeout=60, max_tokens=s.MAX_TOKENS, stop=["\n"])
        after = s.compose(text, f["path"], gist)
        times["after"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain = s.compose(text, f["path"], None)
        times["after, no model"].append(time.perf_counter() - t0)
        for key, summary in zip(rows, (before, after, plain)):
            rows[key].append((f, summary, text))
        if args.show:
            print(f"== {f['path']}\n-- before: {before}\n-- after:\n{after}\n")

    n_files = len(data["files"])
    n_points = sum(len(f["points"]) for f in data["files"])
    n_dec = sum(bool(p.get("decision")) for f in data["files"] for p in f["points"])
    print(f"{n_files} files, {n_points} key points, {n_dec} of them decisions, actions or dates\n")
    print("| summary | key points covered | decisions, actions, dates covered | files with all points "
          "| unfaithful statements | lines (mean) | characters (mean) | seconds per file (median) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, got in rows.items():
        cov = sum(covered(sm, p) for f, sm, _ in got for p in f["points"])
        dec = sum(covered(sm, p) for f, sm, _ in got for p in f["points"] if p.get("decision"))
        full = sum(all(covered(sm, p) for p in f["points"]) for f, sm, _ in got)
        bad = [(f["path"], ln) for f, sm, src in got for ln in unfaithful(sm, src)]
        lines = statistics.mean(len(sm.splitlines()) for _, sm, _ in got)
        chars = statistics.mean(len(sm) for _, sm, _ in got)
        print(f"| {key} | {cov}/{n_points} ({cov / n_points:.0%}) | {dec}/{n_dec} ({dec / n_dec:.0%}) "
              f"| {full}/{n_files} | {len(bad)} | {lines:.1f} "
              f"| {chars:.0f} | {statistics.median(times[key]):.2f} |")  # fmt: skip
        for path, line in bad:
            print(f"  unfaithful ({key}): {path}: {line}", file=sys.stderr)
        held = [(f, sm) for f, sm, _ in got if f.get("held_out")]
        if held:
            hp = [covered(sm, p) for f, sm in held for p in f["points"]]
            hd = [covered(sm, p) for f, sm in held for p in f["points"] if p.get("decision")]
            print(
                f"|   of which the {len(held)} held-out files | {sum(hp)}/{len(hp)} | {sum(hd)}/{len(hd)} "
                f"| {sum(all(covered(sm, p) for p in f['points']) for f, sm in held)}/{len(held)} | | | | |"
            )
        if key == "after":
            for f, sm, _ in got:
                for p in f["points"]:
                    if not covered(sm, p):
                        print(f"  missed ({key}): {f['path']}: {p['point']}", file=sys.stderr)


if __name__ == "__main__":
    main()
