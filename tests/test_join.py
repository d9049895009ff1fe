"""semfs join: one file from several, written through the mount, indexed and versioned (issue 25, item 3)."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from semfs.cli import cli
from semfs.core.query.join import join_texts
from tests.helpers import wait_for


def test_join_by_heading_is_a_join_on_the_headings():
    a = "# Review\n\nintro a\n\n## Decisions\n- cut travel\n\n## Risks\nlate forecast\n"
    b = "Notes first.\n\n## decisions\n- offsite at the office\n"
    assert join_texts([("a.md", a), ("b.md", b)], by_heading=True) == (
        "# Joined by heading: a.md, b.md\n\n"
        "## (before any heading)\n\n### b.md\n\nNotes first.\n\n"
        "## Review\n\n### a.md\n\nintro a\n\n"
        "## Decisions\n\n### a.md\n\n- cut travel\n\n### b.md\n\n- offsite at the office\n\n"
        "## Risks\n\n### a.md\n\nlate forecast\n"
    )
    assert join_texts([("a.md", "one\n"), ("b.md", "two")]) == "# a.md\n\none\n\n# b.md\n\ntwo\n"


def test_semfs_join_writes_through_the_mount_so_the_result_is_indexed_and_versioned(mount):
    mnt, backing = mount.mnt, mount.backing
    (mnt / "a.md").write_text("Quokka census on the island.\n")
    (mnt / "b.txt").write_text("Wallaby sightings by the lake.\n")
    out = backing / "joined.md"  # named in the backing folder: written through the mount all the same
    r = CliRunner().invoke(cli, ["join", str(mnt / "a.md"), str(backing / "b.txt"), "-o", str(out)])
    assert r.exit_code == 0 and r.output == f"joined 2 files into {mnt / 'joined.md'}\n", r.output
    assert out.read_text() == "# a.md\n\nQuokka census on the island.\n\n# b.txt\n\nWallaby sightings by the lake.\n"

    def listed(prompt: str) -> list[str]:
        return [x["path"] for x in json.loads((mnt / "query" / prompt / ".results.json").read_text())["results"]]

    wait_for(lambda: "joined.md" in listed("quokka wallaby"), what="the joined file indexed")
    r = CliRunner().invoke(cli, ["join", str(mnt / "a.md"), "-o", str(mnt / "joined.md")])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "exists" in r.output, r.output
    assert "Wallaby" in out.read_text()  # untouched
    r = CliRunner().invoke(cli, ["join", str(mnt / "a.md"), "-o", str(mnt / "joined.md"), "--force"])
    assert r.exit_code == 0 and "Wallaby" not in out.read_text()
    wait_for(lambda: len(os.listdir(mnt / "history" / "joined.md")) >= 1, what="the replaced content kept")
    r = CliRunner().invoke(cli, ["join", str(mnt / "nope.md"), "-o", str(mnt / "x.md")])
    assert r.exit_code == 1 and r.output == f"Error: not a file: {mnt / 'nope.md'}\n" and not (mnt / "x.md").exists()
    if os.geteuid() != 0:  # (root reads it)
        (mnt / "secret.md").write_text("mine")
        os.chmod(mnt / "secret.md", 0)
        r = CliRunner().invoke(cli, ["join", str(mnt / "secret.md"), "-o", str(mnt / "x.md")])
        assert (
            r.output == f"Error: cannot read {mnt / 'secret.md'}: Permission denied\n" and not (mnt / "x.md").exists()
        )
