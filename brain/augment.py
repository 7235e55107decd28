"""How customers really type: a deterministic augmenter for intent training data.

Written training sentences are tidy ("Could you help me cancel my order?"); customers write
"cancel my oder pls" or "refund AB-1234 me@mail.com". ``noisy`` rewrites a sentence with one
to three such changes — lower case, no punctuation, typos, a fragment instead of a sentence,
"pls"/"u", UK or US spelling, an order number or email address put in — chosen by the
``random.Random`` it is given, so a seeded generator always yields
the same training set (the intent model's cache key depends on it).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

# Keys next to each other on a QWERTY keyboard: the typos fingers make.
_NEIGHBOURS = {
    "a": "qsz", "b": "vgn", "c": "xdv", "d": "sfe", "e": "wrd", "f": "dgr", "g": "fht",
    "h": "gjy", "i": "uok", "j": "hku", "k": "jli", "l": "kop", "m": "nk", "n": "bmh",
    "o": "ipl", "p": "ol", "q": "wa", "r": "etf", "s": "adw", "t": "ryg", "u": "yij",
    "v": "cbf", "w": "qes", "x": "zcs", "y": "tuh", "z": "xa",
}  # fmt: skip
# British and American spellings (and a few words that differ), both ways.
_SPELLINGS = {
    "cancelled": "canceled", "cancelling": "canceling", "colour": "color",
    "favourite": "favorite", "centre": "center", "organise": "organize",
    "realise": "realize", "authorise": "authorize", "catalogue": "catalog",
    "jewellery": "jewelry", "cheque": "check", "enrolment": "enrollment",
    "postcode": "zip code", "mobile": "cell", "parcel": "package", "post": "mail",
    "apologise": "apologize", "customise": "customize", "licence": "license",
}  # fmt: skip
_SPELLING_RE = re.compile(
    r"\b(" + "|".join(sorted({*_SPELLINGS, *_SPELLINGS.values()}, key=len, reverse=True)) + r")\b",
    re.I,
)
_SWAP = {**_SPELLINGS, **{v: k for k, v in _SPELLINGS.items()}}
# Chat shorthand.
_SHORT = {
    "please": "pls", "you": "u", "your": "ur", "are": "r", "thanks": "thx",
    "because": "cuz", "with": "w/", "want to": "wanna", "going to": "gonna",
}  # fmt: skip
_SHORT_RE = re.compile(r"\b(" + "|".join(sorted(_SHORT, key=len, reverse=True)) + r")\b", re.I)
# The polite wrapper around what is wanted ("could you help me ..."): dropped in fragments.
_WRAPPER = re.compile(
    r"^\s*(hi|hello|hey)?[,!. ]*("
    r"(can|could|would|will) (you|u) (please )?"
    r"(help me( to)?|tell me( how)?( to)?|show me( how)?( to)?)?"
    r"|i (want|need|would like|wanna|'d like|have) to"
    r"|i (want|need|would like|'d like)"
    r"|(how|where|what) (can|could|do|should) i"
    r"|help me( to)?|i'm trying to|i am trying to|is it possible to|i don't know how to"
    r"|(i )?(need|want) (some )?(help|assistance|support)( with| to)?"
    r")\s+",
    re.I,
)
_PUNCT = re.compile(r"[?!.,;:\"()]")
_NUMBER = re.compile(r"\b\d{5,}\b")
# Labels whose messages are about no order: their variants never get an order number.
NO_REFERENCE = frozenset({"out_of_scope", "greeting", "goodbye", "thanks"})
_MAIL_HOSTS = ("gmail.com", "example.com", "mail.de", "outlook.fr", "web.co.uk")
_FILLERS = ("pls", "plz", "please", "asap", "thx", "help")


def _lower(text: str, rng: random.Random) -> str:
    return text.lower()


def _no_punctuation(text: str, rng: random.Random) -> str:
    out = _PUNCT.sub("", text)
    if rng.random() < 0.5:
        out = out.replace("'", "")  # "dont", "cant", "im"
    return re.sub(r"\s+", " ", out).strip()


def _typo(text: str, rng: random.Random) -> str:
    for _ in range(rng.choice((1, 1, 2))):  # hurried typing often misspells two words
        text = _one_typo(text, rng)
    return text


def _one_typo(text: str, rng: random.Random) -> str:
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # two letters swapped
        w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
    elif kind == 1:  # a letter dropped
        w = w[:j] + w[j + 1 :]
    elif kind == 2:  # a letter doubled
        w = w[:j] + w[j] + w[j:]
    else:  # the key next to it
        near = _NEIGHBOURS.get(w[j].lower())
        if near:
            w = w[:j] + rng.choice(near) + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def _fragment(text: str, rng: random.Random) -> str:
    out = _WRAPPER.sub("", text, count=1)
    if out != text and out:
        return out
    words = text.split()
    if len(words) > 6:  # a long sentence cut to its second half: the request itself
        return " ".join(words[len(words) // 3 :])
    return text


def _filler(text: str, rng: random.Random) -> str:
    word = rng.choice(_FILLERS)
    return f"{word} {text}" if rng.random() < 0.3 else f"{text} {word}"


def _shorthand(text: str, rng: random.Random) -> str:
    def sub(m: re.Match[str]) -> str:
        return _SHORT[m.group(0).lower()] if rng.random() < 0.7 else m.group(0)

    return _SHORT_RE.sub(sub, text)


def _spelling(text: str, rng: random.Random) -> str:
    return _SPELLING_RE.sub(lambda m: _SWAP[m.group(0).lower()], text)


def _order_id(rng: random.Random) -> str:
    """An order number in one of the shapes shops give them ("AB-12345", "XY-2025-001234",
    "#482913", "1048213")."""
    prefix = "".join(rng.choice("ABCDEFGHKLMNOPRSTWXZ") for _ in range(rng.choice((2, 3))))
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 7)))
    shape = rng.randrange(4)
    if shape == 0:
        return f"{prefix}-{digits}"
    if shape == 1:
        return f"{prefix}-20{rng.randint(19, 27)}-{digits}"
    return f"#{digits}" if shape == 2 else digits


def _email(rng: random.Random) -> str:
    name = "".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(rng.randint(3, 8)))
    sep = rng.choice(("", ".", "_"))
    last = "".join(rng.choice("abcdeghiklmnorstuy") for _ in range(rng.randint(0, 6)))
    return f"{name}{sep if last else ''}{last}@{rng.choice(_MAIL_HOSTS)}"


def _reference(text: str, rng: random.Random) -> str:
    """The order number written the shop's way, or an order number and/or email added:
    customers put them in whatever they ask ("refund AB-1234 me@mail.com")."""
    if _NUMBER.search(text) and rng.random() < 0.5:
        return _NUMBER.sub(lambda m: _order_id(rng), text, count=1)
    extra = rng.choice((_order_id(rng), _email(rng), f"{_order_id(rng)} {_email(rng)}"))
    return f"{text} {extra}"


_OPS: Sequence[Callable[[str, random.Random], str]] = (
    _lower,
    _no_punctuation,
    _typo,
    _typo,
    _fragment,
    _filler,
    _shorthand,
    _spelling,
)


def noisy(text: str, rng: random.Random, references: bool = True) -> str:
    """``text`` as a hurried customer might type it: one to three changes drawn from ``rng``
    (an order number or email put in only with ``references``).

    May return ``text`` unchanged when no drawn change applies (a one-word message has no
    fragment); the result is never empty.
    """
    ops = [*_OPS, _reference] if references else list(_OPS)
    out = text
    for op in rng.sample(ops, k=rng.randint(1, 3)):
        out = op(out, rng)
    return out.strip() or text


def augment(
    texts: Sequence[str], labels: Sequence[str], copies: int, seed: int
) -> tuple[list[str], list[str]]:
    """The rows followed by ``copies`` noisy variants of each (duplicates left out)."""
    rng = random.Random(seed)
    out_texts, out_labels = list(texts), list(labels)
    seen = {t.lower() for t in texts}
    for _ in range(copies):
        for text, label in zip(texts, labels, strict=True):
            variant = noisy(text, rng, references=label not in NO_REFERENCE)
            if variant.lower() not in seen:
                seen.add(variant.lower())
                out_texts.append(variant)
                out_labels.append(label)
    return out_texts, out_labels
