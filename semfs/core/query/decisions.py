"""Decisions and actions as a file marks them: what a summary of minutes must keep (issue 24, item 7).

Minutes mark them in a few ways, and each is read here:

- a heading or a bare line naming a section ("## Decisions", "Decisions",
  "Agreed:", "Action items"), whose list items and sentences follow it;
- a label opening a line or a sentence ("Decision: the release moves ...",
  "We agreed: ...", "To do: a; b; c"), which holds to the end of its line,
  its items split at semicolons;
- the date of the next meeting ("Next review: end of June.");
- outside such a section, a sentence that says so ("Decided to learn to
  sail ...") or gives someone a task ("Sam will tell support ...", "Wei to
  renegotiate ...").

Dates are not a section of their own: a line that names a day counts for
more when the key points are chosen.

A line that only names a role ("Attendees: ...", "Chair: ...") says who
was there, not what was said, and is no key point.
"""

from __future__ import annotations

import re
from typing import Optional

DECISION, ACTION, NEXT = "decision", "action", "next"

_DECISION_WORDS = (
    r"decisions?(?: made)?|decided|we (?:agreed|decided)|agreed|agreements?|resolutions?|resolved|outcomes?"
)
_ACTION_WORDS = r"actions?|action (?:items?|points?)|next steps?|to ?dos?|follow[- ]ups?|tasks"
_SECTION = re.compile(rf"^(?:#+\s*)?(?:\d+[.)]\s*)?({_DECISION_WORDS}|{_ACTION_WORDS})\s*:?\s*$", re.I)
_INLINE = re.compile(rf"^({_DECISION_WORDS}|{_ACTION_WORDS})\s*:\s*(\S.*)$", re.I)
_NEXT = re.compile(r"^next (?:meeting|review|call|session|sync|check-in)\b", re.I)
_WHO = re.compile(r"^(?:attendees|(?:also )?present|participants|apologies|chair|minutes taken by)\s*:", re.I)
_DECIDED = re.compile(r"^(?:(?:we|i|they) )?(?:decided|agreed) (?:to|that|on)\b", re.I)
# "Sam will tell support", "Wei to renegotiate", "Noor owns the list": someone's task, said as a sentence
_OWNED = re.compile(
    r"^(?!(?i:wants?|needs?|plans?|hopes?|tries|try|likes?|wish(?:es)?|asks?|seems?|going|used|has|have|had|is|was"
    r"|are|were|how|what|when|where|why|up|back|due|time|nothing|something)\b)"
    r"(?:[A-Z][a-z]+|He|She|They|We)(?: [A-Z][a-z]+)? (?:will|to|is to|needs to|owns|must)\b(?! be\b)",
)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)? {_MONTHS}(?!\w)|{_MONTHS} \d{{1,2}}\b|\d{{4}}-\d{{2}}-\d{{2}}"
    r"|by (?:mon|tues|wednes|thurs|fri|satur|sun)day|end of (?:the )?(?:week|month|\w+ary|march|april|may|june|july"
    r"|august|\w+ber))",
    re.I,
)


def _role(label: str) -> str:
    return DECISION if re.fullmatch(_DECISION_WORDS, label.strip(), re.I) else ACTION


def section(line: str) -> Optional[str]:
    """The role of the items under ``line``, if it is a heading or bare line naming decisions or actions."""
    m = _SECTION.match(line.strip())
    return _role(m.group(1)) if m else None


def label(text: str) -> Optional[tuple[str, str]]:
    """The role a label opening ``text`` names ("To do: a; b"), and the text after it."""
    m = _INLINE.match(text.strip())
    return (_role(m.group(1)), m.group(2)) if m else None


def items(text: str) -> list[str]:
    """The items of a labelled line: "pay the deposit; clear the cupboards" is two."""
    return [i.strip() for i in text.split("; ") if i.strip()]


def said(sentence: str) -> Optional[str]:
    """The role of a sentence that is, by its own words, a decision, a task or the next meeting's date."""
    s = sentence.strip()
    if _NEXT.match(s):
        return NEXT
    if _DECIDED.match(s):
        return DECISION
    if _OWNED.match(s):
        return ACTION
    return None


def who(sentence: str) -> bool:
    """Whether ``sentence`` only says who took part."""
    return bool(_WHO.match(sentence.strip()))


def dated(sentence: str) -> bool:
    """Whether ``sentence`` names a day ("1 December", "by Friday", "end of June")."""
    return bool(_DATE.search(sentence))
