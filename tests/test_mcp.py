"""semfs mcp: an MCP client session from the official SDK, talking to the server over stdio (issue 25, item 4)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from click.testing import CliRunner
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from semfs.cli import cli
from tests.helpers import wait_for

TOOLS = {"search", "similar", "summary", "topics", "history", "diff", "rollback", "read"}


def session(folder, steps):
    """Run ``steps(client)`` in a client session with ``semfs mcp FOLDER``; its result."""

    async def go():
        server = StdioServerParameters(
            command=sys.executable, args=["-m", "semfs", "mcp", str(folder)], env=dict(os.environ)
        )
        async with Client(server) as client:
            return await steps(client)

    return asyncio.run(go())


def text(result) -> str:
    return "".join(c.text for c in result.content)


def data(result):
    assert not result.is_error, text(result)
    return result.structured_content if result.structured_content is not None else json.loads(text(result))


def test_an_agent_searches_summarises_and_rolls_back_through_mcp(mount):
    mnt, backing = mount.mnt, mount.backing
    (mnt / "recipes").mkdir()
    (mnt / "recipes" / "soup.md").write_text("# Soup\n\nRed lentil soup with cumin.\nSimmer twenty minutes.\n")
    f = mnt / "plan.md"
    f.write_text("first plan\n")
    f.write_text("second plan\n")
    (backing / "outside-link").symlink_to("/etc/hostname")  # put in BACKING behind the mount's back
    (backing / "private.txt").write_text("not yours")
    os.chmod(backing / "private.txt", 0)
    wait_for(lambda: "lentil" in json.dumps(json.loads((mnt / "query" / "lentil" / ".results.json").read_text())))

    async def steps(c):
        got = {"tools": {t.name for t in (await c.list_tools()).tools}}
        got["search"] = data(await c.call_tool("search", {"prompt": "lentil cumin", "k": 5}))
        for _ in range(8):  # the SDK runs tools on any thread of a pool: the index's connections are one thread's
            assert data(await c.call_tool("search", {"prompt": "lentil cumin", "k": 5})) == got["search"]
        got["similar"] = data(await c.call_tool("similar", {"path": "recipes/soup.md"}))
        got["summary"] = text(await c.call_tool("summary", {"path": "recipes/soup.md", "use_llm": False}))
        got["history"] = data(await c.call_tool("history", {"path": "plan.md"}))
        got["dry"] = data(await c.call_tool("rollback", {"path": "plan.md", "steps": 1}))
        got["after_dry"] = f.read_text()
        got["done"] = data(await c.call_tool("rollback", {"path": str(mnt / "plan.md"), "steps": 1, "confirm": True}))
        got["read"] = data(await c.call_tool("read", {"path": "recipes/soup.md", "start": 3, "lines": 1}))
        got["resource"] = (await c.read_resource("semfs://file/recipes/soup.md")).contents[0].text
        got["bad"] = {
            "outside": await c.call_tool("read", {"path": "../" + backing.name + "/plan.md"}),
            "absolute": await c.call_tool("read", {"path": "/etc/passwd"}),
            "symlink": await c.call_tool("read", {"path": "outside-link"}),
            "private": await c.call_tool("read", {"path": "private.txt"}),
            "version": await c.call_tool("rollback", {"path": "plan.md", "version": 99, "confirm": True}),
            "both": await c.call_tool("rollback", {"path": "plan.md"}),
            "empty": await c.call_tool("search", {"prompt": "  "}),
            "similar": await c.call_tool("similar", {"path": "/etc/hostname"}),
            "topics": await c.call_tool("topics", {"files": -1}),
        }
        got["after_bad"] = f.read_text()
        return got

    got = session(mnt, steps)
    assert got["tools"] == TOOLS
    first = got["search"]["results"][0]
    assert (
        first["path"] == "recipes/soup.md" and {"line": 3, "text": "Red lentil soup with cumin."} in first["passages"]
    )
    assert got["similar"]["path"] == "recipes/soup.md"
    assert "recipes/soup.md" not in [r["path"] for r in got["similar"]["results"]]
    assert got["summary"].startswith("Notes: Soup\n- Red lentil soup with cumin.")
    kept = got["history"]["versions"]
    assert [v["version"] for v in kept] == [1] and kept[0]["size"] == len("first plan\n"), kept
    assert got["dry"]["written"] is False and "-second plan\n+first plan" in got["dry"]["diff"]
    assert got["after_dry"] == "second plan\n"  # a dry run writes nothing
    assert got["done"] == {"path": "plan.md", "version": 1, "written": True}
    assert got["read"]["text"] == "Red lentil soup with cumin." and got["read"]["total_lines"] == 4
    assert got["resource"].startswith("# Soup\n")
    for name, result in got["bad"].items():
        if name == "private" and os.geteuid() == 0:
            continue  # root reads it, as it would directly
        message = text(result)
        assert result.is_error and "\n" not in message, (name, message)
    assert "is not a file of" in text(got["bad"]["outside"]) and "is not a file of" in text(got["bad"]["absolute"])
    assert "a symlink is on the way" in text(got["bad"]["symlink"])
    if os.geteuid() != 0:
        assert "private.txt is not read: Permission denied" in text(got["bad"]["private"])
    assert "99" in text(got["bad"]["version"]) and "exactly one of version and steps" in text(got["bad"]["both"])
    assert got["after_bad"] == "first plan\n"  # what the confirmed rollback wrote, and nothing since
    wait_for(lambda: len(os.listdir(mnt / "history" / "plan.md")) == 2, what="the rollback kept as a version")
    r = CliRunner().invoke(cli, ["mcp", str(mnt / "recipes")])
    assert r.exit_code == 1 and "serve the folder itself" in r.output and r.output.count("\n") == 1, r.output


def test_mcp_serves_a_folder_that_is_not_mounted(tmp_path):
    backing = tmp_path / "b"
    (backing / "notes").mkdir(parents=True)
    (backing / "notes" / "wing.md").write_text("Lift and drag of a swept wing at high speed.")
    assert CliRunner().invoke(cli, ["index", str(backing)]).exit_code == 0

    async def steps(c):
        return data(await c.call_tool("search", {"prompt": "swept wing", "past_cutoff": True}))

    assert [r["path"] for r in session(backing, steps)["results"]] == ["notes/wing.md"]
    r = CliRunner().invoke(cli, ["mcp", str(backing / "notes" / "wing.md")])
    assert r.exit_code == 1 and r.output == f"Error: not a directory: {backing / 'notes' / 'wing.md'}\n"


def test_an_agent_reads_the_topics_of_a_folder(tmp_path):
    backing = tmp_path / "b"
    backing.mkdir()
    subjects = {
        "garden": "tomato compost soil seedlings watering trellis mulch",
        "boat": "sail mast keel harbour anchor rigging tide",
        "tax": "invoice receipts deduction refund accountant ledger vat",
    }
    for subject, words in subjects.items():
        ws = words.split()
        for i in range(6):
            (backing / f"{subject}-{i}.txt").write_text(" ".join(ws[(i + j) % 7] for j in range(6)) + "\n")
    assert CliRunner().invoke(cli, ["index", str(backing)]).exit_code == 0

    async def steps(c):
        return data(await c.call_tool("topics", {"files": 2}))

    got = session(backing, steps)["topics"]
    assert len(got) == 3 and all(t["size"] == 6 and len(t["files"]) == 2 and t["more"] == 4 for t in got), got
    for t in got:
        (subject,) = {f["path"].split("-")[0] for f in t["files"]}
        assert set(t["name"].split()) <= set(subjects[subject].split()), t
    printed = json.loads(CliRunner().invoke(cli, ["topics", str(backing), "--json"]).output)["topics"]
    assert [t["name"] for t in printed] == [t["name"] for t in got]  # what semfs topics prints
