"""``semfs mcp``: a folder's search, summaries and versions for agents, over the Model Context Protocol.

The server speaks MCP over stdio (the official ``mcp`` SDK). It serves one
folder: a mountpoint or a backing folder, named when it starts. It reads the
index the running mount keeps (SQLite in WAL mode, read beside the daemon as
``semfs search`` does), or the folder's own index when it is not mounted.

Tools, each a thin call into the library, as the CLI's commands are:

- ``search``: the files a prompt finds, best first, each with its score
  (the probability that it is relevant), its passages with line numbers and
  the files of identical content listed with it; as a query folder lists
  them (the cut-off), or ``past_cutoff`` for the whole ranking;
- ``similar``: the files closest in meaning to one file;
- ``summary``: a file's summary, decisions and actions;
- ``topics``: the files grouped by meaning, as ``topics/`` shows them;
- ``history``, ``diff``: a file's kept versions and what changed;
- ``rollback``: a dry run (the diff) unless ``confirm`` is true;
- ``read``: a file's text (PDF and Word files as their text), by lines.

Every path is relative to the folder (or absolute inside it): a path that
leaves it, a symlink on the way or a file the user who runs the server may
not read is an error, and nothing is read or written. The resource
``semfs://file/{path}`` is a file's text, as ``read`` gives it.

Errors are tool errors with the library's one-line messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import time
from functools import wraps
from typing import Any, Callable, Literal, Optional

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from .core.paths import place
from .errors import InvalidRequest, message

MAX_LINES = 400  # lines ``read`` gives at once, unless asked for fewer
_WHY = {
    errno.ELOOP: "a symlink is on the way",
    errno.EXDEV: "a symlink is on the way",
    errno.EINVAL: "not a regular file",
}


class Folder:
    """The one folder a server serves: its backing folder, state, and (on first use) index."""

    def __init__(self, folder: str, state_dir: Optional[str] = None) -> None:
        loc = place(folder, state_dir)
        if loc.rel:
            raise InvalidRequest(f"{folder} is inside {loc.backing}: serve the folder itself")
        self.backing, self.state_dir = loc.backing, loc.state_dir
        self._index = None
        self._queries = None

    def rel(self, path: str) -> str:
        """``path`` (relative to the folder, or absolute inside it or its mountpoint) as a path
        relative to the backing folder; refused if it leaves it."""
        if not path or "\0" in path:
            raise InvalidRequest("give a path of a file in the folder")
        loc = place(str(self.backing))
        p = os.path.normpath(path)
        for root in (str(self.backing), str(loc.mountpoint) if loc.mountpoint else None):
            if root and os.path.isabs(p) and (p == root or p.startswith(root + os.sep)):
                p = os.path.relpath(p, root)
                break
        if os.path.isabs(p) or p == ".." or p.startswith(".." + os.sep) or p == ".":
            raise InvalidRequest(f"{path} is not a file of {self.backing}")
        return p

    def index(self):
        from .core.index.service import Index
        from .core.state import semfs_home
        from .models.embedder import query_embedder

        if self._index is None:
            self._index = Index(str(self.backing), query_embedder(semfs_home()), str(self.state_dir))
        return self._index

    def queries(self):
        from .core.query.queries import QueryService

        if self._queries is None:
            idx = self.index()
            self._queries = QueryService(
                idx.backing, idx.state_dir, idx.searcher.embedder, vectors=lambda: idx.vectors, index=idx.store
            )
        return self._queries

    # -- what the tools do ---------------------------------------------------

    def search(self, prompt: str, k: int, mode: str, past_cutoff: bool) -> dict[str, Any]:
        from .core.query.cutoff import for_embedder
        from .core.query.pipeline import answer
        from .core.query.queries import matches

        if not prompt.strip():
            raise InvalidRequest("the prompt is empty")
        if k < 1:
            raise InvalidRequest("k must be at least 1")
        idx = self.index()
        cut = None if past_cutoff else for_embedder(idx.searcher.embedder.name)
        res = answer(idx.searcher, prompt, k, backing=idx.backing, cut=cut, mode=mode)
        out: dict[str, Any] = {"prompt": prompt, "results": [m.row() for m in matches(res.hits, res.degraded)]}
        if res.degraded:
            out["note"] = f"ranked by its words alone ({res.degraded})"
        elif not res.hits:
            out["note"] = "no file matches well enough to be listed: past_cutoff=true gives the whole ranking"
        return out

    def similar(self, path: str, k: int) -> dict[str, Any]:
        rel = self.rel(path)
        if not (self.backing / rel).is_file():
            raise InvalidRequest(f"not a file: {rel}")
        found = self.queries().similar(rel)[:k]
        return {"path": rel, "results": [m.row() for m in found]}

    def topics(self, files: int) -> dict[str, Any]:
        from .core.topics.service import folder_topics

        if files < 0:
            raise InvalidRequest("files must be 0 or more")

        def cut(ts: list[dict]) -> list[dict]:
            out = []
            for t in ts:
                more = len(t["files"]) - files
                out.append({"name": t["name"], "size": len(t["files"]), "files": t["files"][:files],
                            **({"more": more} if more > 0 else {}),
                            **({"topics": cut(t["topics"])} if "topics" in t else {})})  # fmt: skip
            return out

        return {"topics": cut(folder_topics(str(self.backing), str(self.state_dir)))}

    def summary(self, path: str, use_llm: bool) -> str:
        from .core.query.service import summarise_file

        return summarise_file(self.rel(path), str(self.backing), use_llm=use_llm, state_dir=str(self.state_dir))

    def history(self, path: str) -> dict[str, Any]:
        from .core.versions import service as versions

        rel = self.rel(path)
        rows, _ = versions.history(rel, str(self.backing), state_dir=str(self.state_dir))
        return {"path": rel, "versions": [
            {"version": c.version, "kept_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.time)),
             "size": c.size, "origin": c.origin, "change": c.note}
            for c in rows
        ]}  # fmt: skip

    def diff(self, path: str, v1: Optional[int], v2: Optional[int]) -> str:
        from .core.versions import service as versions

        return versions.diff(self.rel(path), str(self.backing), v1, v2, state_dir=str(self.state_dir))

    def rollback(self, path: str, version: Optional[int], steps: Optional[int], confirm: bool) -> dict[str, Any]:
        from .core.versions import service as versions

        if (version is None) == (steps is None):
            raise InvalidRequest("give exactly one of version and steps")
        rel = self.rel(path)
        diff, v = versions.rollback(
            rel, str(self.backing), version=version, steps=steps, dry_run=not confirm, state_dir=str(self.state_dir)
        )
        if not confirm:
            return {"path": rel, "version": v.version, "written": False, "diff": diff,
                    "note": "a dry run: nothing was written; call again with confirm=true to restore"}  # fmt: skip
        return {"path": rel, "version": v.version, "written": True}

    def read(self, path: str, start: int, lines: int) -> dict[str, Any]:
        from .core.index.extract import MAX_BYTES, extract_bytes
        from .core.readfile import TooLarge, open_beneath, read_whole

        rel = self.rel(path)
        if start < 1 or lines < 1:
            raise InvalidRequest("start and lines must be at least 1")
        try:
            with open_beneath(str(self.backing), rel) as f:
                data = read_whole(f, MAX_BYTES)
        except OSError as e:  # a symlink on the way (ELOOP, EXDEV), not a regular file (EINVAL), ...
            why = _WHY.get(e.errno or 0) or e.strerror or str(e)
            raise InvalidRequest(f"{rel} is not read: {why}") from None
        except TooLarge:
            raise InvalidRequest(f"{rel} is over the {MAX_BYTES}-byte limit of what is read") from None
        text = extract_bytes(data, rel).text
        every = text.splitlines()
        shown = every[start - 1 : start - 1 + min(lines, MAX_LINES)]
        return {"path": rel, "start": start, "end": start + len(shown) - 1, "total_lines": len(every),
                "text": "\n".join(shown)}  # fmt: skip


# Every tool runs on this one thread: the SDK runs a plain function on any thread of its pool, and
# the index's SQLite connections belong to the thread that opened them. (One client, one call at
# a time: nothing waits longer for it.)
_ONE_THREAD = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="semfs-mcp")


def _one_line(fn: Callable, error=ToolError) -> Callable:
    """``fn`` as a coroutine on the tools' thread, the library's errors as MCP errors with its
    one-line message (anything else: a crash)."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            text = message(e)
            if text is None:
                raise
            raise error(text) from None

    @wraps(fn)
    async def call(*args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(_ONE_THREAD, lambda: run(*args, **kwargs))

    return call


def server(folder: Folder) -> MCPServer:
    """An MCP server of ``folder``'s tools and files."""
    mcp = MCPServer(
        "semfs",
        instructions=f"Search, summaries and versions of the files of {folder.backing}. Paths are relative to it. "
        "search finds files by meaning and words; read gives a file's lines; rollback writes only with confirm=true.",
    )

    @mcp.tool()
    @_one_line
    def search(
        prompt: str, k: int = 10, mode: Literal["hybrid", "bm25", "dense"] = "hybrid", past_cutoff: bool = False
    ) -> dict[str, Any]:
        """Files that match a prompt (words and meaning), best first, with the lines that matched.

        A prompt is read as a query folder reads it: "in 2025", "pdf", "in notes/" filter by time,
        kind and folder. Each result: path, score (the estimated probability that it is relevant,
        comparable across prompts), snippet, passages [{line, text}], and "also"/"alike": files of
        identical or nearly identical text, listed once. Only the files that match well enough are
        listed, at most k; past_cutoff=true gives the whole ranking (k of them)."""
        return folder.search(prompt, k, mode, past_cutoff)

    @mcp.tool()
    @_one_line
    def similar(path: str, k: int = 10) -> dict[str, Any]:
        """The files closest in meaning to the file at path (relative to the folder), best first."""
        return folder.similar(path, k)

    @mcp.tool()
    @_one_line
    def topics(files: int = 10) -> dict[str, Any]:
        """The folder's files grouped by meaning, the largest topic first: {topics: [{name, size,
        files: [{path, score}], more, topics}]}. A name is a few words the topic's files use and
        the others seldom; files are best examples first, at most `files` per topic ("more": how
        many are left out); a large topic holds sub-topics instead of files."""
        return folder.topics(files)

    @mcp.tool()
    @_one_line
    def summary(path: str, use_llm: bool = True) -> str:
        """A short summary of a file: what it is, its key points, its decisions and actions."""
        return folder.summary(path, use_llm)

    @mcp.tool()
    @_one_line
    def history(path: str) -> dict[str, Any]:
        """The kept versions of a file, oldest first: {path, versions: [{version, kept_at, size, origin,
        change}]}."""
        return folder.history(path)

    @mcp.tool()
    @_one_line
    def diff(path: str, v1: Optional[int] = None, v2: Optional[int] = None) -> str:
        """Unified diff of a file from version v1 (default: the newest kept) to v2 (default: now)."""
        return folder.diff(path, v1, v2)

    @mcp.tool()
    @_one_line
    def rollback(
        path: str, version: Optional[int] = None, steps: Optional[int] = None, confirm: bool = False
    ) -> dict[str, Any]:
        """Restore a file to a kept version (give version, or steps back). A dry run unless confirm is
        true: it returns the diff from now to that version and writes nothing. The content it
        replaces is kept as a version too."""
        return folder.rollback(path, version, steps, confirm)

    @mcp.tool()
    @_one_line
    def read(path: str, start: int = 1, lines: int = MAX_LINES) -> dict[str, Any]:
        """A file's text from line start, at most `lines` lines (400 at most): text, start, end,
        total_lines. PDF and Word files are read as their text."""
        return folder.read(path, start, lines)

    @mcp.resource("semfs://file/{+path}", mime_type="text/plain")
    @_one_line_resource
    def file(path: str) -> str:
        """A file of the folder, as text."""
        got = folder.read(path, 1, MAX_LINES)
        return got["text"]

    return mcp


def _one_line_resource(fn: Callable) -> Callable:
    return _one_line(fn, ResourceError)


def serve(folder: str, state_dir: Optional[str] = None) -> None:
    """Serve ``folder`` over stdio until the client hangs up."""
    server(Folder(folder, state_dir)).run("stdio")
