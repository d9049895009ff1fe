"""Giving the heap's free pages back to the system.

glibc keeps the pages of freed memory for the next allocation; after a
large transient (a walk of 600k files, a grouping of them, a batch of
MiniLM's attention tensors) a long-lived process stays that much larger.
"""

from __future__ import annotations

import ctypes


def give_back() -> None:
    """``malloc_trim(0)``: a few milliseconds; nothing where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
