#!/usr/bin/env python3
"""Prompt reading accuracy: the rule-based parser and the local LLM, side by side.

Runs every prompt of tests/data/prompts.json (with its fixed "today")
through ``parse_rules``, through ``parse_llm`` (gemma-3-270m with the
JSON grammar) and through the combination the mount uses (rules for time,
kind and folder; the model's keywords added), and prints field-level
accuracy: the time range exactly right, the kind/extensions exactly right,
and every expected keyword present.

    .venv/bin/python scripts/bench_prompts.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    import test_prompts as t

    from semfs.core.query.prompts import merge_readings, parse_llm, parse_rules
    from semfs.models.llm import LLMUnavailable, LocalLLM, ensure_default_model

    llm = LocalLLM(ensure_default_model(Path(tempfile.mkdtemp(prefix="semfs-models-"))))
    llm.preload()

    def run(full: bool):
        parses, times, failures = {}, [], 0
        for c in t.DATA["prompts"]:
            t0 = time.perf_counter()
            try:
                parses[c["prompt"]] = parse_llm(c["prompt"], llm, t.TODAY, timeout=60, full=full)
            except LLMUnavailable:
                failures += 1
                parses[c["prompt"]] = parse_rules("", t.TODAY)  # wrong on every field
            times.append(time.perf_counter() - t0)
        return parses, statistics.median(times), failures

    full, full_s, full_fail = run(full=True)
    kw, kw_s, kw_fail = run(full=False)
    rows = [
        ("rules", t.accuracy(lambda p: parse_rules(p, t.TODAY))),
        ("LLM alone: keywords, time range, kind (gemma-3-270m, JSON grammar)", t.accuracy(lambda p: full[p])),
        (
            "as the mount reads: rules + the LLM's keywords",
            t.accuracy(lambda p: merge_readings(parse_rules(p, t.TODAY), kw[p])),
        ),
    ]
    print(
        f"{len(t.DATA['prompts'])} prompts, today = {t.TODAY}. LLM median per prompt: {full_s:.2f} s asking for all "
        f"fields ({full_fail} without valid JSON), {kw_s:.2f} s asking for keywords only ({kw_fail} without)\n"
    )
    print("| parser | time range | kind | keywords |")
    print("|---|---:|---:|---:|")
    for name, acc in rows:
        print(f"| {name} | {acc['time']:.2f} | {acc['kind']:.2f} | {acc['keywords']:.2f} |")


if __name__ == "__main__":
    main()
