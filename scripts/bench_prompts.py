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

    from semfs.core.prompts import parse_llm, parse_rules
    from semfs.core.queries import _merge
    from semfs.models.llm import LLMUnavailable, LocalLLM, ensure_default_model

    llm = LocalLLM(ensure_default_model(Path(tempfile.mkdtemp(prefix="semfs-models-"))))
    times: list[float] = []
    failures = 0

    def by_llm(p):
        nonlocal failures
        t0 = time.perf_counter()
        try:
            return parse_llm(p, llm, t.TODAY, timeout=60)
        except LLMUnavailable:
            failures += 1
            return parse_rules("", t.TODAY)  # counts as wrong on every field
        finally:
            times.append(time.perf_counter() - t0)

    llm_parses = {c["prompt"]: by_llm(c["prompt"]) for c in t.DATA["prompts"]}
    rows = [
        ("rules", t.accuracy(lambda p: parse_rules(p, t.TODAY))),
        ("LLM (gemma-3-270m, JSON grammar)", t.accuracy(lambda p: llm_parses[p])),
        ("combined (as the mount reads prompts)", t.accuracy(lambda p: _merge(parse_rules(p, t.TODAY), llm_parses[p]))),
    ]
    print(f"{len(t.DATA['prompts'])} prompts, today = {t.TODAY}; LLM: {statistics.median(times):.2f} s per prompt (median), "
          f"{failures} without valid JSON\n")
    print("| parser | time range | kind | keywords |")
    print("|---|---:|---:|---:|")
    for name, acc in rows:
        print(f"| {name} | {acc['time']:.2f} | {acc['kind']:.2f} | {acc['keywords']:.2f} |")


if __name__ == "__main__":
    main()
