"""The "did you mean" of every message that names something unknown (a key, a feature, a column, an account id,
a segment value): one rule, so a name typed in another letter case is caught everywhere alike. Rooted in the
lowest layer, importing nothing of the project, so `features`, `models` and `pipeline` all use it."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

NAME_CUTOFF = 0.6
"""difflib's own cutoff: a name picked from a fixed, short list (settings keys, features) may be further off."""


def closest(name: str, known: Iterable[str], cutoff: float | None = NAME_CUTOFF) -> str | None:
    """The one of `known` that `name` was meant to be: the first (in `known`'s order) that is `name` but for letter
    case, the spaces between words (a page or a chat collapses 'Ñandú  SA' to 'Ñandú SA') and Unicode form (a
    composed or decomposed 'é'); else the most like it, so compared, with a difflib ratio of at least `cutoff`.
    `cutoff=None` offers look-alikes only: an account id a letter away from the one typed is another account."""
    key = _spelling(name)
    spellings: dict[str, str] = {}
    for candidate in known:
        spelt = _spelling(candidate)
        if spelt == key:
            return candidate
        if cutoff is not None:  # ids are many (a million accounts): keep their spellings only when compared
            spellings.setdefault(spelt, candidate)
    if cutoff is None:
        return None
    near = difflib.get_close_matches(key, list(spellings), n=1, cutoff=cutoff)
    return spellings[near[0]] if near else None


def did_you_mean(name: str, known: Iterable[str], cutoff: float | None = NAME_CUTOFF, *, clause: bool = False) -> str:
    """`closest` as a message says it: " (did you mean 'x'?)" after the name, or with `clause` "; did you mean 'x'?"
    ending the message; "" when nothing is close. Quoted by repr, so a tab or a trailing space in it is seen."""
    meant = closest(name, known, cutoff)
    if meant is None:
        return ""
    return f"; did you mean {meant!r}?" if clause else f" (did you mean {meant!r}?)"


def _spelling(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
