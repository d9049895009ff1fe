"""``topics/``: the files grouped by meaning, a folder per topic named by its words.

``topics/<words>/`` lists a topic's files as relative symlinks, best
examples first (``01-<name>``, nearest the topic's centre first), or, for
a large topic, its sub-topics as folders. The grouping is made and kept in
the background (:mod:`semfs.core.topics`): a listing reads it and never
searches, so a walk of the mount costs no search and no model.

A caller sees a topic only if it may read one of its files, and of the
topic's name only the words that occur in files it may read (a name made
only of the others' words is shown as ``topic <n>``). While a topic folder
is open, or was listed in the last ten minutes, the grouping is not
redone, so the names a person sees keep resolving.
"""

from __future__ import annotations

import errno
from typing import Callable, Optional

import mfusepy

from ...core.query.queries import Match
from ...core.topics import naming
from ...core.topics.tree import Topic, Tree
from .base import Context, VHandle, VStat, enoent, target
from .results import Entry, named

HINT = "HOW TOPICS WORK.txt"
HINT_TEXT = """\
Each folder here is a topic: files of this drive that are alike in meaning,
named by words their files use most and the other topics' files seldom.
A folder lists its files best examples first, or, for a large topic, its
sub-topics. New and changed files join the nearest topic within seconds of
being indexed; the whole grouping is made again only when that improves it.
The same from a shell: semfs topics BACKING
"""
CHECK = 32  # files of a topic checked at a time for one the caller may read


class TopicsFolder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def _topics(self):
        return self.ctx.queries.topics

    def _tree(self) -> Optional[Tree]:
        return self._topics.tree if self._topics is not None else None

    # -- what a caller sees --------------------------------------------------

    def _shown(self, tree: Tree, parent: int) -> dict[str, Topic]:
        """The topics under ``parent`` (-1: the top) this caller sees, by the names it sees them by."""
        out: dict[str, Topic] = {}
        for t in tree.children(parent):
            name = self._name_for_caller(tree, t)
            if name is None:
                continue
            if name in out or name == HINT:
                name = f"{name} (topic {t.id + 1})"
            out[name] = t
        return out

    def _name_for_caller(self, tree: Tree, t: Topic) -> Optional[str]:
        """The topic's name with the words of files this caller may read; None if it may read none."""
        privileged = self.ctx.access.privileged()
        if privileged:  # (every file is its to see: no file read, no disk checked; a topic left empty is not shown)
            return t.name if tree.size(t.id) else None
        members = [f for f, _ in tree.members(t.id)]
        want = (1 << len(t.words)) - 1
        have = 0
        seen_one = False
        for start in range(0, len(members), CHECK):
            part = members[start : start + CHECK]
            paths = self._topics.paths(part)
            here = [p for p in (paths.get(f) for f in part) if p is not None and self.ctx.is_file(p)]
            ok = set(self.ctx.access.readable(here))
            if not ok:
                continue
            seen_one = True
            texts = self._topics.texts([f for f in part if paths.get(f) in ok])
            for text in texts.values():
                have |= naming.holds(text, list(t.words))
            if have == want:
                return t.name
        if not seen_one:
            return None
        words = [w for i, w in enumerate(t.words) if have >> i & 1]
        return " ".join(words) if words else f"topic {t.id + 1}"

    def _files(self, tree: Tree, t: Topic) -> list[Entry]:
        """A leaf's files the caller may read, best examples first, named as listed."""
        members = tree.members(t.id)
        paths = self._topics.paths([f for f, _ in members])
        found = [
            Match(paths[f], round(s, 4), "", "topic") for f, s in members if f in paths and self.ctx.is_file(paths[f])
        ]
        ok = set(self.ctx.access.readable([m.path for m in found]))
        return named([m for m in found if m.path in ok])

    def _at(self, parts: list[str]) -> tuple[Optional[Tree], Optional[Topic], list[str]]:
        """(the tree, the topic the leading parts name, the parts below it); ENOENT if they name none."""
        tree = self._tree()
        if not parts:
            return tree, None, []
        if tree is None:
            raise enoent()
        top = self._shown(tree, -1).get(parts[0])
        if top is None:
            raise enoent()
        if len(parts) > 1 and tree.children(top.id):
            sub = self._shown(tree, top.id).get(parts[1])
            if sub is None:
                raise enoent()
            return tree, sub, parts[2:]
        return tree, top, parts[1:]

    # -- the protocol ---------------------------------------------------------

    def stat(self, path: str, parts: list[str]) -> VStat:
        if parts == [HINT]:
            return self.ctx.nodes.file(path, len(HINT_TEXT.encode()))
        tree, topic, rest = self._at(parts)
        if not rest:
            return self.ctx.nodes.dir(path)
        if tree is None or topic is None or len(rest) != 1 or tree.children(topic.id):
            raise enoent()
        e = self._entry(tree, topic, rest[0])
        if e is None:
            raise enoent()
        return self.ctx.nodes.link(path, target(len(parts), e))

    def _entry(self, tree: Tree, topic: Topic, name: str) -> Optional[Entry]:
        return self.ctx.entry(("topics", topic.id, topic.words), lambda: self._files(tree, topic), name, cheap=True)

    def listing(self, base: str, parts: list[str]) -> dict[str, VStat]:
        tree, topic, rest = self._at(parts)
        if rest:
            raise enoent()
        if tree is None:
            return {HINT: self.stat(f"{base}/{HINT}", [HINT])} if not parts else {}
        if topic is None:
            shown = self._shown(tree, -1)
            return {HINT: self.stat(f"{base}/{HINT}", [HINT]), **{n: self.ctx.nodes.dir(f"{base}/{n}") for n in shown}}
        if tree.children(topic.id):
            return {n: self.ctx.nodes.dir(f"{base}/{n}") for n in self._shown(tree, topic.id)}
        found = self._files(tree, topic)
        self.ctx.seen.note(("topics", topic.id, topic.words), found)
        return {e.name: self.ctx.nodes.link(f"{base}/{e.name}", target(len(parts) + 1, e)) for e in found}

    def hold(self, parts: list[str]) -> Optional[Callable[[], None]]:
        """While a folder of topics/ is open, the grouping stays as it is (its names are seen)."""
        return self._topics.look() if self._topics is not None else None

    def open(self, path: str, parts: list[str]) -> VHandle:
        if parts == [HINT]:
            return VHandle(data=HINT_TEXT.encode())
        raise enoent()  # (the kernel follows the links itself)

    def readlink(self, parts: list[str]) -> str:
        tree, topic, rest = self._at(parts[:-1]) if parts else (None, None, ["x"])
        if tree is not None and topic is not None and not rest and not tree.children(topic.id):
            e = self._entry(tree, topic, parts[-1])
            if e is not None:
                return target(len(parts), e)
        raise mfusepy.FuseOSError(errno.EINVAL)
