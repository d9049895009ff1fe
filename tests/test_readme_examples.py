"""The README's examples, run line by line against a mount of the demo folder, as they are written.

Run as the mounting user (as_user.py): ``mkdir`` of a saved query, ``mv`` and ``rmdir`` are
what an ordinary account gets, not what root is let through. The only changes to the text are
the paths (BACKING, and the demo's ``mnt``) and, in the history block, the example version
names and times, which are replaced by the ones this run made.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import start_mount, wait_for

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def block_after(heading_text: str) -> list[str]:
    """The command lines of the first ```sh block after ``heading_text``."""
    rest = README.split(heading_text, 1)[1]
    body = re.search(r"```sh\n(.*?)```", rest, re.S)
    assert body, heading_text
    lines = []
    for line in body.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    return lines


def run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def demo(tmp_path):
    backing = tmp_path / "demo"
    shutil.copytree(ROOT / "demo", backing)
    m = start_mount(backing, tmp_path / "mnt")
    try:
        wait_for(lambda: " 0 queued" in run(f"semfs status {m.mnt}", tmp_path).stdout, timeout=60, what="indexed")
        yield tmp_path, backing
    finally:
        m.unmount()


def test_prompts_are_paths(demo):
    cwd, backing = demo
    topics = cwd / "mnt" / "topics"
    wait_for(lambda: len(os.listdir(topics)) > 1, timeout=60, what="the demo grouped in topics/")
    out = {}
    for line in block_after("## Prompts are paths"):
        r = run(line.replace("BACKING", str(backing)), cwd)
        assert r.returncode == 0, (line, r.stderr)
        out[line.split("#")[0].strip()] = r.stdout
    assert "budget review" in out['ls "mnt/query/notes about the budget meeting last march/"']
    assert '"snippet"' in out['cat "mnt/query/notes about the budget meeting last march/.results.json"']
    assert out["ls mnt/similar/recipes/sourdough.md/"].strip()
    assert "01-" in out["ls mnt/topics/*/"]
    saved = os.listdir(cwd / "mnt" / "query")
    assert "budget notes" in saved and "weekly" not in saved and "monday" not in saved  # renamed, then forgotten


def test_history_and_rollback(demo):
    cwd, _ = demo
    notes = cwd / "mnt" / "notes.txt"
    for text in ("first\n", "second\n", "third\n"):
        notes.write_text(text)
    h = cwd / "mnt" / "history" / "notes.txt"
    wait_for(lambda: len(os.listdir(h)) == 2, what="two versions")
    first = sorted(os.listdir(h))[0]
    stamp = re.search(r"(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)", first)
    assert stamp
    for line in block_after("The live file is always the newest state."):
        line = line.replace("0001 2026-11-26T10-15-03.txt", first)
        line = line.replace('"2026-11-26 10:15"', f'"{stamp[1]} {stamp[2]}:{stamp[3]}:59"')
        r = run(line, cwd)
        # diff exits 1 when the files differ, which is what the example shows
        assert r.returncode == (1 if line.startswith("diff ") else 0), (line, r.stdout, r.stderr)
    assert notes.read_text() in ("first\n", "second\n", "third\n")
