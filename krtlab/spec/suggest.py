"""Did-you-mean suggestions shared by every error message (krtlab's one helper: the proto,
runtime, deploy and notebook modules all build theirs here)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "did_you_mean"]


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates close to ``word`` (difflib, cutoff 0.6), best first."""
    pool = [c for c in dict.fromkeys(candidates) if c != word]
    found = difflib.get_close_matches(word, pool, n=n)  # its default cutoff: 0.6
    if not found:  # case-only or prefix differences difflib misses
        lowered = {c.lower(): c for c in pool}
        if word.lower() in lowered:
            found = [lowered[word.lower()]]
    return found


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """``"did you mean 'gpu'?"`` (``'a', 'b' or 'c'`` for several) or None when nothing is
    close."""
    found = close_matches(word, candidates)
    if not found:
        return None
    quoted = [repr(f) for f in found]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"did you mean {listed}?"
