"""A topic's name: the few words that tell its files apart from its siblings'.

A word scores by how often the group's files use it against how often
all the sibling groups' files do (class-based TF-IDF, as BERTopic names
its topics), among the words that several of the group's files hold.
Words are the index's own (lower-cased, accent-folded, stop words out),
compared by their stem and shown as the group's files spell them most
often. Every word of a name occurs in the group's files, and
:func:`holds` says which files hold which word, so a caller is shown only
the words of files it may read (see :mod:`semfs.fs.virtual.topics`).
"""

from __future__ import annotations

import math
from collections import Counter

from ...stores.lexical import STOPWORDS, stem_of, words

WORDS = 3  # words in a name
COMMON = 0.5  # a word held by more than this share of all the siblings' files names none of them
TEXT_WORDS = 400  # words of each file read for its topic's name
# words in every kind of file that tell no topic apart
_BLAND = frozenset(
    """also may might must shall one two three new use used using like get got make made see way well
    much many still yet just need needs want etc via per thing things something lot lots including half
    day days week weeks month months year years time times first last next today tomorrow yesterday
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split()
)


_SKIP = STOPWORDS | _BLAND


def terms(text: str) -> Counter:
    """``"stem spelling"`` -> its count, for the content words of ``text``'s opening."""
    ws = [w for w in words(text[: TEXT_WORDS * 12])[:TEXT_WORDS] if len(w) >= 3 and w.isalpha() and w not in _SKIP]
    stems = stem_of(list(set(ws)))
    return Counter(stems[w] + " " + w for w in ws)


def name_groups(
    per_file: list[list[Counter]], n_words: int = WORDS, unwanted: frozenset = frozenset()
) -> list[list[str]]:
    """The name words of each group of files (``per_file[g]``: the :func:`terms` of each of its
    files), distinct between siblings, without the stems ``unwanted`` (their parent's)."""
    counts = [_counts(files) for files in per_file]
    everywhere: Counter = Counter()
    held: Counter = Counter()  # stem -> files of all the groups that hold it
    for tf, holding, _ in counts:
        everywhere.update(tf)
        held.update(holding)
    total = sum(len(files) for files in per_file)
    # a word most files of every group use ("debian" in changelogs, "options" in man pages) tells none apart
    common = {s for s, n in held.items() if n > COMMON * total} if total >= 10 else set()
    common |= unwanted
    average = sum(sum(tf.values()) for tf, _, _ in counts) / max(len(counts), 1)
    names: list[list[str]] = []
    taken: set[frozenset[str]] = set()
    for (tf, holding, spelling), files in zip(counts, per_file):
        ranked = _ranked(tf, holding, spelling, everywhere, average, len(files), common)
        extra = n_words
        name = ranked[:extra]
        while frozenset(name) in taken and extra < len(ranked):
            extra += 1  # a sibling has these words: one more tells them apart
            name = ranked[:extra]
        taken.add(frozenset(name))
        names.append(name)
    return names


def _counts(files: list[Counter]) -> tuple[Counter, Counter, dict[str, Counter]]:
    """(stem -> its count in the group, stem -> files holding it, stem -> its spellings)."""
    tf: Counter = Counter()
    holding: Counter = Counter()
    spelling: dict[str, Counter] = {}
    for spelled in files:
        seen = set()
        for key, count in spelled.items():
            stem, word = key.split(" ", 1)
            tf[stem] += count
            spelling.setdefault(stem, Counter())[word] += count
            seen.add(stem)
        holding.update(seen)
    return tf, holding, spelling


def _ranked(
    tf: Counter,
    holding: Counter,
    spelling: dict[str, Counter],
    everywhere: Counter,
    average: float,
    n: int,
    common: set[str],
) -> list[str]:
    """A group's words, best name first: class-based TF-IDF (BERTopic's c-TF-IDF), among the
    words that several of its files hold."""
    total = max(sum(tf.values()), 1)
    least = 2 if n >= 4 else 1  # a word of one file out of many names no topic

    def score(stem: str) -> float:
        return tf[stem] / total * math.log(1 + average / everywhere[stem])

    stems = [s for s in tf if holding[s] >= least and s not in common] or [s for s in tf if s not in common] or list(tf)
    stems.sort(key=lambda s: (-score(s), s))
    return [spelling[s].most_common(1)[0][0] for s in stems]


def stems(name) -> frozenset:
    """The stems of a name's words."""
    return frozenset(stem_of(list(set(name))).values())


def holds(text: str, name: list[str]) -> int:
    """Which words of ``name`` the text holds: bit i for ``name[i]``."""
    have = {key.split(" ", 1)[0] for key in terms(text)}
    want = stem_of(list(set(name)))
    return sum(1 << i for i, w in enumerate(name) if want[w] in have)
