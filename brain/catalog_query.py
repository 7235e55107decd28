"""Understand a product request: "running shoes under 100", "something like the last one but
cheaper", "Sonari earbuds between 50 and 80".

Pure (no model, no I/O): the recommender and the dialogue both import it. ``parse_query``
turns text into a ``CatalogQuery`` of *hard* filters (category, brand, price window) plus the
words left over, which the recommender embeds to rank whatever passes the filters.

Only phrases that clearly name a catalog category or brand become filters; a vague word
("something for running") stays in ``text`` and only influences ranking, because a wrong
hard filter hides every right product while a wrong ranking word merely reorders them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from brain.product_facts import Constraint, cut_constraints, superlative

# --- price phrases ------------------------------------------------------------------------

# A number as people type prices: 100 · 99.99 · 1,299 · 1.299,50 · 12,50 · 1.5k
_NUM = r"(\d+(?:[.,]\d+)*(?:\s?k\b)?)"
_CUR = r"(?:[$€£¥₹]|rs\.?|inr|usd|eur|gbp)"
_CUR_AFTER = r"(?:\s*(?:[$€£¥₹]|eur(?:os?)?|usd|dollars?|bucks|gbp|pounds?|inr|rupees?|rs\b))?"
_AMOUNT = rf"{_CUR}?\s*{_NUM}{_CUR_AFTER}"

_MAX_STRICT = r"under|below|less\s+than|cheaper\s+than|lower\s+than|beneath|<"
_MAX_INCL = (
    r"up\s+to|at\s+most|max(?:imum)?|no\s+more\s+than|not\s+more\s+than|"
    r"(?:my\s+)?budget\s+(?:is\s+|of\s+)?|<="
)
_MIN_STRICT = r"over|above|more\s+than|pricier\s+than|higher\s+than|>"
_MIN_INCL = r"at\s+least|min(?:imum)?|from|starting\s+at|>="
_AROUND = r"around|about|approx(?:imately)?|roughly|circa|near|~"

# (pattern, kind) tried in this order; each match is cut out of the text before the next.
_PRICE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\bbetween\s+{_AMOUNT}\s+(?:and|-|to)\s+{_AMOUNT}", re.I), "range"),
    (re.compile(rf"\bfrom\s+{_AMOUNT}\s+(?:to|-|until)\s+{_AMOUNT}", re.I), "range"),
    # "50-80", "€50 – €80", "50 to 80 eur"; not "2-person", not "size 42-44"
    (
        re.compile(
            rf"(?<![\w.,])(?<!size\s)({_CUR}?\s*\d+(?:[.,]\d+)*{_CUR_AFTER})\s*(?:-|–)\s*"
            rf"({_CUR}?\s*\d+(?:[.,]\d+)*{_CUR_AFTER})(?![\w-])",
            re.I,
        ),
        "range_bare",
    ),
    (re.compile(rf"(?:\b|(?<=\s)|^)(?:{_MAX_INCL})\s*{_AMOUNT}", re.I), "max_incl"),
    (re.compile(rf"(?:\b|(?<=\s)|^)(?:{_MAX_STRICT})\s*{_AMOUNT}", re.I), "max_strict"),
    (re.compile(rf"(?:\b|(?<=\s)|^)(?:{_MIN_INCL})\s*{_AMOUNT}", re.I), "min_incl"),
    (re.compile(rf"(?:\b|(?<=\s)|^)(?:{_MIN_STRICT})\s*{_AMOUNT}", re.I), "min_strict"),
    (re.compile(rf"(?:\b|(?<=\s)|^)(?:{_AROUND})\s*{_AMOUNT}", re.I), "around"),
    (re.compile(rf"{_AMOUNT}\s+or\s+(?:less|under|below|cheaper)\b", re.I), "max_incl"),
    (re.compile(rf"{_AMOUNT}\s+or\s+(?:more|over|above)\b", re.I), "min_incl"),
]
# "around 60" means 60 ± this fraction.
AROUND_TOLERANCE = 0.2

_CHEAPER = re.compile(
    r"\b(?:cheaper|less\s+expensive|lower[-\s]priced|more\s+affordable|less\s+pricey|"
    r"lower\s+price|cheaper\s+one|not\s+so\s+expensive|too\s+expensive)\b",
    re.I,
)
_SIMILAR = re.compile(
    r"\b(?:similar(?:\s+to)?|alternatives?|more\s+like|"
    r"(?:something\s+|anything\s+|one\s+|ones\s+)?like\s+(?:the\s+last\s+one|the\s+last|"
    r"that\s+one|this\s+one|those|these|that|this|it)|"
    r"same\s+(?:kind|type|style)(?:\s+of)?)\b",
    re.I,
)
_IN_STOCK = re.compile(r"\b(?:in\s+stock|available(?:\s+now)?|on\s+hand)\b", re.I)

# Words that carry no product meaning; left out of ``text`` so that "show me something
# cheaper" has no subject of its own and inherits the previous one.
STOPWORDS = frozenset(
    """a an the i i'm i'd i'll i've im id me my we our you your please pls some something
    anything any one ones need needs want wants wanted would like looking look for show find
    get got buy
    have has do does did can could should recommend recommendation recommendations suggest
    suggestion give us is are was be to of in on at with and or but also else other another
    more less price priced prices cost costs costing that this these those it them there
    what which how much many hi hello hey thanks thank okay ok good nice new again now last
    just really very cheap expensive something's stuff thing things item items product
    then instead rather only too so well yes no yeah sure let let's see
    products options option maybe around about under over below above between budget than
    eur euro euros usd dollar dollars gbp pound pounds inr rupee rupees bucks k s
    what's whats popular bestseller bestsellers best selling seller sellers trending right
    shop store customers people buying bought sell sells selling carry stock stocked offer
    kind type sort cheapest lightest heaviest warmest brightest biggest largest roomiest
    smallest priciest lighter heavier warmer brighter bigger larger smaller""".split()
)

# Everyday words mapped to words catalogs use in category names. Only single words: a
# multi-word category is still matched through its head noun ("trainers" -> "shoe" ->
# "running shoes").
SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "sneaker": ("shoe",),
    "trainer": ("shoe",),
    "runner": ("shoe",),
    "footwear": ("shoe",),
    "kick": ("shoe",),
    "clothes": ("apparel", "clothing"),
    "clothing": ("apparel",),
    "garment": ("apparel", "clothing"),
    "outfit": ("apparel", "clothing"),
    "jogging": ("running",),
    "jog": ("running",),
    "electronic": ("electronics",),
    "gadget": ("electronics",),
    "tech": ("electronics",),
    "camping": ("outdoor",),
    "hiking": ("outdoor",),
    "trekking": ("outdoor",),
    "kitchen": ("home",),
    "household": ("home",),
    "homeware": ("home",),
    "housewares": ("home",),
    "tee": ("t-shirt", "tshirt"),
    "tshirt": ("t-shirt",),
    "headphone": ("earbud", "headset"),
    "earphone": ("earbud", "headphone"),
    "headset": ("headphone", "earbud"),
    "mobile": ("phone",),
    "cellphone": ("phone",),
    "notebook": ("laptop",),
    "laptop": ("notebook",),
    "tv": ("television",),
    "television": ("tv",),
    "couch": ("sofa",),
    "sofa": ("couch",),
    "trouser": ("pant",),
    "pant": ("trouser",),
    "jumper": ("sweater",),
    "sweater": ("jumper",),
    "hoody": ("hoodie",),
    "rucksack": ("backpack",),
    "backpack": ("rucksack",),
    "toy": ("toys", "game"),
    "game": ("games",),
}

_TOKEN = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


@dataclass(frozen=True)
class CatalogQuery:
    """A parsed product request. Prices are in the shop's currency."""

    text: str = ""  # content words left for semantic ranking ("" = no subject of its own)
    category: str | None = None  # best matching catalog category
    categories: tuple[str, ...] = ()  # every category accepted; () = any
    brands: tuple[str, ...] = ()  # catalog brand names, as the catalog spells them; () = any
    min_price: float | None = None
    max_price: float | None = None
    min_inclusive: bool = True  # "from 50" keeps 50; "over 50" does not
    max_inclusive: bool = True  # "up to 80" keeps 80; "under 80" does not
    cheaper: bool = False  # "cheaper", "less expensive": below the last shown product(s)
    similar: bool = False  # "like the last one", "similar": near the last shown product(s)
    in_stock: bool = True  # always: the shop never recommends what it cannot sell
    # Bounds on what rows state ("for 4 people", "under 1 kg"): (kind, op, value) triples
    # (see ``product_facts.Constraint``); plain tuples so that the query serialises.
    constraints: tuple[tuple[str, str, float], ...] = ()
    superlative: tuple[str, str] | None = None  # ("weight", "asc") for "the lightest"

    @property
    def has_subject(self) -> bool:
        """Whether the request names what it wants (words, category or brand) by itself."""
        return bool(self.text or self.categories or self.brands)

    @property
    def has_filters(self) -> bool:
        """Whether the request sets a price window."""
        return self.min_price is not None or self.max_price is not None

    @property
    def is_follow_up(self) -> bool:
        """A refinement of the previous request ("cheaper", "under 50 then?", "like that
        one"). A bare "recommend me something" is not: it starts afresh."""
        refines = self.has_filters or bool(self.constraints) or self.superlative is not None
        return self.cheaper or self.similar or (not self.has_subject and refines)

    def bounds(self) -> list[Constraint]:
        """The constraints as ``Constraint`` objects."""
        return [Constraint(kind, op, float(value)) for kind, op, value in self.constraints]

    def price_ok(self, price: float) -> bool:
        """Whether ``price`` lies in the asked window."""
        if self.min_price is not None and (
            price < self.min_price or (price == self.min_price and not self.min_inclusive)
        ):
            return False
        return self.max_price is None or not (
            price > self.max_price or (price == self.max_price and not self.max_inclusive)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for session slots)."""
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["brands"] = list(self.brands)
        d["constraints"] = [list(c) for c in self.constraints]
        d["superlative"] = list(self.superlative) if self.superlative else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CatalogQuery:
        """Inverse of ``to_dict``; unknown keys are ignored."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("categories", "brands"):
            if key in known:
                known[key] = tuple(known[key] or ())
        if "constraints" in known:
            known["constraints"] = tuple(
                (str(k), str(op), float(v)) for k, op, v in known["constraints"] or ()
            )
        if known.get("superlative"):
            kind, direction = known["superlative"]
            known["superlative"] = (str(kind), str(direction))
        return cls(**known)

    def merged_into(self, previous: CatalogQuery) -> CatalogQuery:
        """This follow-up applied on top of ``previous``: what this one says wins, the rest
        (subject, category, brand, price window) carries over."""
        new = replace(
            previous,
            cheaper=self.cheaper,
            similar=self.similar,
        )
        if self.text:
            new = replace(new, text=self.text)
        if self.categories:
            new = replace(new, category=self.category, categories=self.categories)
        if self.brands:
            new = replace(new, brands=self.brands)
        if self.min_price is not None:
            new = replace(new, min_price=self.min_price, min_inclusive=self.min_inclusive)
        if self.max_price is not None:
            new = replace(new, max_price=self.max_price, max_inclusive=self.max_inclusive)
        if self.constraints:
            kinds = {c[0] for c in self.constraints}
            kept = tuple(c for c in previous.constraints if c[0] not in kinds)
            new = replace(new, constraints=kept + self.constraints)
        return replace(new, superlative=self.superlative or previous.superlative)


def wants_other(text: str) -> bool:
    """Whether a message asks for another product than the one it names: "cheaper",
    "similar", "an alternative", "like X but …"."""
    return bool(_CHEAPER.search(text) or _SIMILAR.search(text) or _LIKE_BUT.search(text))


_LIKE_BUT = re.compile(r"like.*but|instead of", re.I)


def singular(word: str) -> str:
    """A crude English singular, enough to match "shoes" with "shoe", "accessories" with
    "accessory" (applied to both query and catalog words, so it need only be consistent)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-case word tokens ("T-Shirt" -> "t-shirt"; "&" and punctuation dropped)."""
    return _TOKEN.findall(text.lower())


def parse_price(raw: str) -> float | None:
    """Parse a typed price: "1,299" -> 1299; "1.299,50" -> 1299.5; "12,50" -> 12.5;
    "1.5k" -> 1500."""
    s = re.sub(r"[^\d.,k]", "", raw.lower())
    mult = 1000.0 if s.endswith("k") else 1.0
    s = s.rstrip("k")
    if not s:
        return None
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(\.\d{3})+(,\d+)?", s):
        s = s.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d+,\d{1,2}", s):
        s = s.replace(",", ".")
    s = s.replace(",", "")
    try:
        return float(s) * mult
    except ValueError:
        return None


def category_terms(
    titled: Iterable[tuple[str, str]], brands: Iterable[str] = (), min_count: int = 2
) -> dict[str, str]:
    """Words that name a category without being its name, learned from the catalog: every
    title word (singular) seen at least ``min_count`` times and only ever in one category,
    e.g. "tent" -> "outdoor gear", "earbud" -> "electronics accessories".

    ``titled`` yields (title, category) pairs. Brand words are left out (a brand spans
    categories even when this catalog happens not to).
    """
    brand_words = {singular(t) for b in brands for t in tokens(b)}
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    names: set[str] = set()
    for title, category in titled:
        names.add(category)
        for word in {singular(t) for t in tokens(title)}:
            if len(word) >= 3 and not word.isdigit() and word not in STOPWORDS:
                seen[word][category] += 1
    terms = {
        word: next(iter(cats))
        for word, cats in seen.items()
        if len(cats) == 1 and sum(cats.values()) >= min_count and word not in brand_words
    }
    # A word of a category's name ("electronics" in "electronics accessories") names that
    # category too, unless other categories' titles use it ("running" in "running tights").
    for category in names:
        for word in (singular(t) for t in tokens(category)):
            if len(word) >= 3 and word not in STOPWORDS and set(seen.get(word, {})) <= {category}:
                terms.setdefault(word, category)
    return terms


def parse_query(
    text: str,
    categories: Sequence[str],
    brands: Sequence[str],
    category_terms: Mapping[str, str] | None = None,
) -> CatalogQuery:
    """Parse a product request against the catalog's own categories and brands.

    ``category_terms`` (optional, from ``category_terms()``) maps product words to the
    category that holds them, for catalogs whose categories are broad ("apparel").
    """
    rest, bounds = cut_constraints(text)  # first: "under 1 kg" is no price
    best = superlative(rest)
    rest, prices = _cut_prices(rest)
    cheaper = bool(_CHEAPER.search(rest))
    rest = _CHEAPER.sub(" ", rest)
    similar = bool(_SIMILAR.search(rest))
    rest = _SIMILAR.sub(" ", rest)
    rest = _IN_STOCK.sub(" ", rest)

    toks = tokens(rest)
    forms = [word_forms(t) for t in toks]
    cats = _match_categories(forms, categories, category_terms or {})
    found_brands = _match_brands(toks, brands)
    content = [t for t in toks if t not in STOPWORDS and not t.isdigit()]
    return CatalogQuery(
        text=" ".join(content),
        category=cats[0] if cats else None,
        categories=tuple(cats),
        brands=tuple(found_brands),
        cheaper=cheaper,
        similar=similar,
        constraints=tuple((c.kind, c.op, c.value) for c in bounds),
        superlative=best,
        **prices,
    )


def word_forms(token: str) -> set[str]:
    """A query word plus its singular and synonyms."""
    s = singular(token)
    out = {token, s}
    for key in (token, s):
        for syn in SYNONYMS.get(key, ()):
            out.update((syn, singular(syn)))
    return out


def _cut_prices(text: str) -> tuple[str, dict[str, Any]]:
    """Find the price window in ``text``; returns the text without the price phrases."""
    out: dict[str, Any] = {}
    rest = text
    for pattern, kind in _PRICE_PATTERNS:
        m = pattern.search(rest)
        if m is None:
            continue
        values = [parse_price(g) for g in m.groups() if g]
        nums = [v for v in values if v is not None]
        if not nums:
            continue
        rest = rest[: m.start()] + " " + rest[m.end() :]
        if kind.startswith("range") and len(nums) >= 2:
            lo, hi = sorted(nums[:2])
            out.update(min_price=lo, max_price=hi, min_inclusive=True, max_inclusive=True)
        elif kind == "around":
            v = nums[0]
            out.update(
                min_price=round(v * (1 - AROUND_TOLERANCE), 2),
                max_price=round(v * (1 + AROUND_TOLERANCE), 2),
                min_inclusive=True,
                max_inclusive=True,
            )
        elif kind.startswith("max") and "max_price" not in out:
            out.update(max_price=nums[0], max_inclusive=kind == "max_incl")
        elif kind.startswith("min") and "min_price" not in out:
            out.update(min_price=nums[0], min_inclusive=kind == "min_incl")
    return rest, out


def _match_categories(
    forms: list[set[str]], categories: Sequence[str], terms: Mapping[str, str]
) -> list[str]:
    """Categories the words name: the whole name (3), its head noun (2) or a catalog term
    that lives in one category only (2). Partial words ("running" alone) never filter."""
    score: dict[str, int] = {}
    for cat in categories:
        ctoks = [singular(t) for t in tokens(cat)]
        if not ctoks:
            continue
        if _contains_phrase(forms, ctoks):
            score[cat] = 3
        elif any(ctoks[-1] in f for f in forms):
            score[cat] = 2
    for f in forms:
        for form in f:
            named = terms.get(form)
            if named is not None and named in categories:
                score[named] = max(score.get(named, 0), 2)
    if not score:
        return []
    best = max(score.values())
    # Keep the order of the catalog's category list so the result is deterministic.
    return [c for c in categories if score.get(c) == best]


def _contains_phrase(forms: list[set[str]], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(all(phrase[k] in forms[i + k] for k in range(n)) for i in range(len(forms) - n + 1))


def _match_brands(toks: list[str], brands: Sequence[str]) -> list[str]:
    """Catalog brands whose every word appears, in order, in the request."""
    found = []
    for brand in brands:
        btoks = tokens(brand)
        if btoks and _contains_phrase([{t} for t in toks], btoks):
            found.append(brand)
    return found
