"""Title search: the words a title is found by, normalised once when it is written and again for a query.

Normalising in Python (not in SQL) makes PostgreSQL and SQLite (the demo) match alike: accents and
width variants are folded away (Unicode NFKD, combining marks dropped), case is folded, and every
character that is neither a letter nor a digit separates words. So "Pokémon: Mew", its "Mew" in
full-width letters or not, is "pokemon mew".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def search_words(text: str) -> list[str]:
    """The words of `text` as search compares them."""
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "".join(ch if ch.isalnum() else " " for ch in bare.casefold()).split()


def search_text(names: Iterable[str]) -> str:
    """Every name's words, each distinct name once: the column a search matches its words against."""
    normalised = dict.fromkeys(" ".join(search_words(name)) for name in names)
    return " ".join(name for name in normalised if name)
