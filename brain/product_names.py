"""Find the products a message names, loosely: "the Trailfox Apex Trail", "apex trail",
"the Pacer Lab Pulse", "trailfx apex" (a typo) — learned from the catalog's own titles and
brands, for any pack.

A product is named through its *head*: the first word of its title after the brand
("Apex" in "Trailfox Apex Trail Running Shoe"), the word that tells it from its brand's other
products. A mention is a run of the message's words around a head word that matches the
title around it: brand words before, title words after. "Trailfox tents" or "trail running
shoes" name no head, so they stay product searches.

Typos are mended with single edits (a letter dropped, added, changed or two swapped) against
the catalog's vocabulary, by the deletion-neighbour method (SymSpell), so looking a word up
costs a few dictionary probes, not a pass over the catalog.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from brain.catalog_query import STOPWORDS, singular, tokens

# A single head word names a product on its own only if it is this long and one product has
# it (shorter words collide with everyday words).
MIN_LONE_HEAD = 5
MIN_FUZZY_LEN = 5
# Words after a name that may skip title words ("the Sonari Go earbuds").
LOOSE_WINDOW = 3


@dataclass(frozen=True)
class Mention:
    """Products one stretch of the message names: one index when it is unambiguous, several
    when they tie ("the Trailfox Apex": four products share that name)."""

    start: int  # token positions in the message
    end: int
    products: tuple[int, ...]  # catalog indices, catalog order


class NameIndex:
    """Title words of every product, indexed by head word and by single-edit neighbours."""

    def __init__(self, titles: Sequence[str], brands: Sequence[str]) -> None:
        self.titles = [words_of(title) for title in titles]
        self.brand_len: list[int] = []
        self.by_head: dict[str, list[int]] = defaultdict(list)
        for i, (words, brand) in enumerate(zip(self.titles, brands, strict=True)):
            btoks = [singular(t) for t in tokens(brand)]
            n = len(btoks) if btoks and words[: len(btoks)] == btoks else 0
            self.brand_len.append(n)
            if n < len(words):
                self.by_head[words[n]].append(i)
        self.vocab = {w for words in self.titles for w in words}
        self._deletes: dict[str, set[str]] = defaultdict(set)
        for word in self.vocab:
            if len(word) >= MIN_FUZZY_LEN - 1:
                for d in _deletes(word):
                    self._deletes[d].add(word)

    def normalise(self, words: Sequence[str]) -> list[str]:
        """Message words (singular), with a typo mended to the catalog word one edit away
        when exactly one such word exists."""
        out = []
        for w in words:
            if w in self.vocab or len(w) < MIN_FUZZY_LEN or w in STOPWORDS or w.isdigit():
                out.append(w)
                continue
            near = set(self._deletes.get(w, ()))
            for d in _deletes(w):
                if d in self.vocab:
                    near.add(d)
                near |= self._deletes.get(d, set())
            out.append(next(iter(near)) if len(near) == 1 else w)
        return out

    def mentions(self, text: str) -> list[Mention]:
        """The products ``text`` names, in the order it names them."""
        words = self.normalise(words_of(text))
        found: list[Mention] = []
        for i, word in enumerate(words):
            cands = self.by_head.get(word)
            if not cands or (found and i < found[-1].end):
                continue
            # best: most title words matched, then fewest left unmatched ("the Sonique Drift
            # earbuds" is the plain Drift, not the Drift Pro)
            best: tuple[int, int] = (0, 0)
            best_span = (i, i + 1)
            tied: list[int] = []
            for p in cands:
                start, end, matched = self._span(p, words, i)
                score = (matched, matched - len(self.titles[p]))
                if score > best:
                    best, best_span, tied = score, (start, end), [p]
                elif score == best:
                    tied.append(p)
            lone = best[0] == 1 and len(cands) == 1 and len(word) >= MIN_LONE_HEAD
            if best[0] >= 2 or lone:
                found.append(Mention(best_span[0], best_span[1], tuple(sorted(tied))))
        return found

    def _span(self, p: int, words: Sequence[str], i: int) -> tuple[int, int, int]:
        """The run of ``words`` around position ``i`` (product ``p``'s head) that matches
        its title: brand words right before, title words right after, then up to
        ``LOOSE_WINDOW`` more words that are later title words in order ("the Sonari Go
        earbuds" for "Sonari Go Wireless Earbuds"). Returns (start, end, title words
        matched)."""
        title, head = self.titles[p], self.brand_len[p]
        start = i
        while start > 0 and head - (i - start) - 1 >= 0:
            if words[start - 1] != title[head - (i - start) - 1]:
                break
            start -= 1
        end = i + 1
        while end < len(words) and head + (end - i) < len(title):
            if words[end] != title[head + (end - i)]:
                break
            end += 1
        matched = end - start
        t = head + (end - i)  # next title word not yet matched
        for j in range(end, min(end + LOOSE_WINDOW, len(words))):
            if words[j] in title[t:]:
                t = title.index(words[j], t) + 1
                end = j + 1
                matched += 1
        return start, end, matched


_NUMBER_UNIT = re.compile(r"^(\d+(?:\.\d+)?)([a-z]{1,4})$")


def words_of(text: str) -> list[str]:
    """Singular lower-case words, a number glued to its unit cut in two ("128gb" → "128",
    "gb") so that it matches a title's "128 GB"."""
    out: list[str] = []
    for t in tokens(text):
        m = _NUMBER_UNIT.match(t)
        out += [m.group(1), m.group(2)] if m else [singular(t)]
    return out


def _deletes(word: str) -> set[str]:
    return {word[:k] + word[k + 1 :] for k in range(len(word))}
