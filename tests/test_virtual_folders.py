"""Each kind of virtual folder on its own, without a mount.

The folders are plain objects (:mod:`semfs.fs.virtual`): given a
context with a backing folder, an access check, a query service and
versions, they answer stat, list, open and readlink. Here the query
service is a stand-in that returns fixed matches, the access check one
that refuses named paths, and versions are real.
"""

from __future__ import annotations

import errno
import json
import os
import stat

import mfusepy
import pytest

from semfs.core.query.queries import Match
from semfs.core.versions.keeper import Versions
from semfs.fs.virtual.base import Context, Nodes
from semfs.fs.virtual.kinds import KINDS
from semfs.fs.virtual.query import HINT
from semfs.fs.virtual.results import MATCHES_FILE, NOTHING, RESULTS_FILE, results_json


class Access:
    """Everything readable but ``denied``; privileged when nothing is denied."""

    def __init__(self, *denied: str) -> None:
        self.denied = set(denied)

    def privileged(self) -> bool:
        return not self.denied

    def _ok(self, rel: str) -> bool:
        return not any(rel == d or rel.startswith(d + "/") for d in self.denied)

    def can(self, rel: str, mode: int = os.R_OK) -> bool:
        return self._ok(rel)

    def readable(self, rels, mode: int = os.R_OK, limit: int = 0):
        ok = [r for r in rels if self._ok(r)]
        return ok[:limit] if limit else ok


class Queries:
    k = 2

    def __init__(self) -> None:
        self.saved_queries: dict[str, str] = {}
        self.asked: list[str] = []
        self.progress = None

    def indexing(self):
        return self.progress

    def meaning_behind(self) -> int:
        return 0

    def query(self, prompt: str):
        self.asked.append(prompt)
        return [Match("notes/a.md", 0.9, "about a"), Match("b.md", 0.5, "about b"), Match("notes/c.md", 0.1, "about c")]

    def similar(self, rel: str):
        return [m for m in self.query(rel) if m.path != rel]

    def saved_query(self, prompt: str):
        return self.query(prompt)

    def saved(self):
        return list(self.saved_queries)

    def saved_prompt(self, name: str):
        return self.saved_queries.get(name)

    def save(self, name: str, prompt: str) -> None:
        self.saved_queries[name] = prompt

    def unsave(self, name: str) -> bool:
        return self.saved_queries.pop(name, None) is not None

    def summary(self, rel: str) -> bytes:
        return f"About {rel}.\n".encode()

    def cached_summary_size(self, rel: str):
        return 42 if rel == "b.md" else None


@pytest.fixture
def backing(tmp_path):
    root = tmp_path / "b"
    (root / "notes").mkdir(parents=True)
    for rel in ("notes/a.md", "b.md", "notes/c.md"):
        (root / rel).write_text(rel)
    return root


def folder(kind: str, backing, access=None, versions=None):
    ctx = Context(str(backing), access or Access(), Nodes(0), Queries(), versions)
    return {k.name: k for k in KINDS}[kind].load()(ctx)


def test_every_folder_class_is_a_registered_kind_with_its_own_option():
    """A new kind is one module and one entry in KINDS: the mount's --<kind>-root comes from it."""
    import importlib
    import inspect
    import pkgutil

    from click.testing import CliRunner

    import semfs.fs.virtual as package
    from semfs.cli import cli

    classes = set()
    for info in pkgutil.iter_modules(package.__path__):
        if info.name == "base":  # the protocol and the helpers the kinds share
            continue
        module = importlib.import_module(f"semfs.fs.virtual.{info.name}")
        classes |= {
            c for _, c in inspect.getmembers(module, inspect.isclass)
            if c.__module__ == module.__name__ and all(hasattr(c, m) for m in ("stat", "listing", "open"))
        }  # fmt: skip
    assert classes == {k.load() for k in KINDS}
    help_text = CliRunner().invoke(cli, ["mount", "--help"]).output
    assert all(f"--{k.name}-root" in help_text for k in KINDS)


def errno_of(fn, *args) -> int:
    with pytest.raises(mfusepy.FuseOSError) as e:
        fn(*args)
    return e.value.errno


def test_query_folder_lists_named_links_and_results(backing):
    q = folder("query", backing)
    stats = q.listing("/query/notes", ["notes"])
    assert list(stats) == ["01-a.md", "02-b.md", RESULTS_FILE, MATCHES_FILE]  # k = 2 of the 3 matches
    assert stat.S_ISLNK(stats["01-a.md"].st_mode)
    assert q.readlink(["notes", "01-a.md"]) == "../../notes/a.md"
    data = json.loads(q.open("/query/notes/.results.json", ["notes", RESULTS_FILE]).data)["results"]
    assert [r["path"] for r in data] == ["notes/a.md", "b.md"] and data[0]["retrieval"] == "hybrid"
    assert stat.S_ISDIR(q.stat("/query/x%2Fy", ["x%2Fy"]).st_mode)
    for probe in ([".hidden"], ["desktop.ini"], ["notes", ".directory"], ["a", "b", "c"]):
        assert errno_of(q.stat, "/query/p", probe) == errno.ENOENT
    # listed and .results.json read: a listed link is read without a search, and no probe searched
    assert q.ctx.queries.asked == ["notes"] * 2


def test_query_folder_saves_and_forgets(backing):
    q = folder("query", backing)
    q.mkdir(["budget notes"])
    assert list(q.listing("/query", [])) == [HINT, "budget notes"]
    assert b"new folder" in q.open(f"/query/{HINT}", [HINT]).data
    assert errno_of(q.mkdir, [HINT]) == errno.EEXIST
    q.listing("/query/budget notes", ["budget notes"])
    assert q.ctx.queries.asked[-1] == "budget notes"
    q.rmdir(["budget notes"])
    assert errno_of(q.rmdir, ["budget notes"]) == errno.ENOENT
    assert errno_of(q.mkdir, [".x"]) == errno.EROFS
    assert errno_of(q.mkdir, ["a", "b"]) == errno.EROFS


def test_query_folder_filters_and_renumbers_per_caller(backing):
    q = folder("query", backing, access=Access("notes/a.md"))
    assert list(q.listing("/query/p", ["p"])) == ["01-b.md", "02-c.md", RESULTS_FILE, MATCHES_FILE]
    data = q.open("/query/p/.results.json", ["p", RESULTS_FILE]).data
    assert b"notes/a.md" not in data and b"about a" not in data
    assert errno_of(q.readlink, ["p", "01-a.md"]) == errno.EINVAL


def test_similar_folder_mirrors_the_tree_and_lists_results(backing):
    s = folder("similar", backing)
    root = s.listing("/similar", [])
    assert sorted(root) == ["b.md", "notes"] and stat.S_ISLNK(root["b.md"].st_mode)
    assert s.readlink(["b.md"]) == ".b.md.of"
    top = s.listing("/similar/notes", ["notes"])
    # files are links to their results folders: walkers (find, du) do not follow them
    assert sorted(top) == ["a.md", "c.md"] and all(stat.S_ISLNK(v.st_mode) for v in top.values())
    assert s.readlink(["notes", "a.md"]) == ".a.md.of"  # a hidden sibling, at the link's own depth
    assert s.ctx.queries.asked == []  # no search so far
    stats = s.listing("/similar/notes/.a.md.of", ["notes", ".a.md.of"])
    assert list(stats) == ["01-b.md", "02-c.md", RESULTS_FILE, MATCHES_FILE]  # never the file itself
    # from similar/notes/.a.md.of/ and from similar/notes/a.md/ alike: three up is the mount's root
    assert s.readlink(["notes", ".a.md.of", "01-b.md"]) == "../../../b.md"
    assert stat.S_ISLNK(s.stat("/similar/notes/.a.md.of/02-c.md", ["notes", ".a.md.of", "02-c.md"]).st_mode)
    assert stat.S_ISDIR(s.stat("/similar/.b.md.of", [".b.md.of"]).st_mode)
    assert errno_of(s.stat, "/similar/nope.md", ["nope.md"]) == errno.ENOENT
    assert errno_of(s.stat, "/similar/.nope.md.of", [".nope.md.of"]) == errno.ENOENT


def test_similar_and_summary_hide_what_the_caller_cannot_read(backing):
    for kind in ("similar", "summary"):
        f = folder(kind, backing, access=Access("notes"))
        assert errno_of(f.stat, f"/{kind}/notes", ["notes"]) == errno.ENOENT
        assert errno_of(f.stat, f"/{kind}/notes/a.md", ["notes", "a.md"]) == errno.ENOENT
    s = folder("summary", backing, access=Access("notes/a.md"))
    assert sorted(s.listing("/summary/notes", ["notes"])) == ["c.md"]


def test_summary_folder(backing):
    s = folder("summary", backing)
    listed = s.listing("/summary", [])
    # files are links to their summaries: find -type f, du and grep -r do not follow them
    assert sorted(listed) == ["b.md", "notes"] and stat.S_ISLNK(listed["b.md"].st_mode)
    assert s.readlink(["notes", "a.md"]) == "../.of/notes/a.md"
    assert s.stat("/summary/.of/b.md", [".of", "b.md"]).st_size == 42  # cached: its true size
    assert s.stat("/summary/.of/notes/a.md", [".of", "notes", "a.md"]).st_size == 0  # not yet: direct I/O
    h = s.open("/summary/.of/notes/a.md", [".of", "notes", "a.md"])
    assert h.data == b"About notes/a.md.\n" and h.direct
    assert errno_of(s.open, "/summary/notes", ["notes"]) == errno.EISDIR
    assert s.listing("/summary/.of", [".of"]) == {}


def test_history_folder(backing, tmp_path):
    vs = Versions(backing, tmp_path / "state")
    for text in ("one", "two"):
        vs.keep("notes/a.md", "write")
        (backing / "notes" / "a.md").write_text(text)
    h = folder("history", backing, versions=vs)
    assert list(h.listing("/history", [])) == ["notes"]
    names = list(h.listing("/history/notes/a.md", ["notes", "a.md"]))
    assert len(names) == 2 and names[0].startswith("0001 ") and names[0].endswith(".md")
    assert h.open(f"/history/notes/a.md/{names[0]}", ["notes", "a.md", names[0]]).data == b"notes/a.md"
    assert h.open(f"/history/notes/a.md/{names[1]}", ["notes", "a.md", names[1]]).data == b"one"
    assert errno_of(h.open, "/history/notes/a.md", ["notes", "a.md"]) == errno.EISDIR
    hidden = folder("history", backing, access=Access("notes/a.md"), versions=vs)
    assert list(hidden.listing("/history/notes", ["notes"])) == []
    assert errno_of(hidden.open, f"/history/notes/a.md/{names[0]}", ["notes", "a.md", names[0]]) == errno.ENOENT
    os.unlink(backing / "notes" / "a.md")  # a deleted file's history: only for the privileged
    assert errno_of(hidden.stat, "/history/notes/a.md", ["notes", "a.md"]) == errno.ENOENT
    assert stat.S_ISDIR(h.stat("/history/notes/a.md", ["notes", "a.md"]).st_mode)


def test_results_say_how_far_indexing_is(backing):
    q = folder("query", backing)
    q.ctx.queries.progress = (412, 1400)
    doc = json.loads(q.open("/query/p/.results.json", ["p", RESULTS_FILE]).data)
    assert doc["note"] == "indexing: 412 of 1,400 files; listing may grow" and doc["results"]
    q.ctx.queries.progress = None
    assert "note" not in json.loads(q.open("/query/p/.results.json", ["p", RESULTS_FILE]).data)
    assert json.loads(results_json([]))["note"] == NOTHING  # nothing found, and nothing left to index
