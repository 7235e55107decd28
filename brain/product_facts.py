"""What a catalog row states about its product, read by unit and keyword: "8 mm heel-to-toe
drop", "tested down to -5 °C", "2-person", "weighs under a kilo", "water-resistant coating",
"recycled polyester", "600 lumens", "30 L" — and what a customer asks about ("is it
waterproof?", "how heavy is it?", "for 4 people", "at least 40 litres", "the lightest").

Pure (no model, no I/O). Works for any pack: nothing here names a product, only units,
measured properties and materials. A property the row does not state is absent, never
guessed: the dialogue then says the product page does not say.

Values are kept in one base unit per kind (kg, l, °C, lm, mm, h, persons), so rows that
write "900 g" and "1.2 kg" compare.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# --- kinds of facts ------------------------------------------------------------------------

WATERPROOF = "waterproof"
WEIGHT = "weight"
PERSONS = "persons"
VOLUME = "volume"
TEMPERATURE = "temperature"  # a rating: "tested down to -5 °C", "comfort 2 °C"
BRIGHTNESS = "brightness"
DROP = "drop"
BATTERY = "battery"
MATERIAL = "material"
SIZE = "size"
MEASURE = "measure"  # any other "number + unit" the row states

# Kinds with a number, and the unit their values are kept in (for "under 1 kg" and sorting).
NUMERIC_KINDS: dict[str, str] = {
    WEIGHT: "kg",
    PERSONS: "persons",
    VOLUME: "l",
    TEMPERATURE: "°C",
    BRIGHTNESS: "lm",
    DROP: "mm",
    BATTERY: "h",
}

# How a kind is named in an answer ("the product page doesn't say {what}").
KIND_NAMES: dict[str, str] = {
    WATERPROOF: "whether it is waterproof",
    WEIGHT: "what it weighs",
    PERSONS: "how many people it is for",
    VOLUME: "its capacity in litres",
    TEMPERATURE: "its temperature rating",
    BRIGHTNESS: "how bright it is",
    DROP: "its heel-to-toe drop",
    BATTERY: "its battery life",
    MATERIAL: "what it is made of",
    SIZE: "which sizes it comes in",
}


@dataclass(frozen=True)
class Fact:
    """One thing a row states. ``text`` is the row's own words (its clause), which is what
    an answer quotes; ``value`` is in ``NUMERIC_KINDS[kind]`` (None for non-numeric kinds);
    ``bound`` is "max" for "under a kilo", "min" for "at least 40 l", "" for an exact value."""

    kind: str
    text: str
    value: float | None = None
    bound: str = ""
    unit: str = ""  # the base unit of ``value``: kg, l, °C… or a generic unit (GB, mAh, W)
    label: str = ""  # for a generic unit, the word after it: "ram" in "16 GB RAM"


# --- reading a row -------------------------------------------------------------------------

_NUM = r"(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:[.,]\d+)?)"  # 20,000 · 1.12 · 12,5
_WORD_NUMBERS = {"a": 1.0, "an": 1.0, "one": 1.0, "half a": 0.5, "two": 2.0, "three": 3.0}
_WORD_NUM = r"(half\s+an?|an?|one|two|three)"
_BOUND_MAX = re.compile(r"\b(?:under|below|less\s+than|up\s+to|max(?:imum)?|at\s+most)\s*$", re.I)
_BOUND_MIN = re.compile(r"\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|from)\s*$", re.I)

# (unit pattern, kind, factor to the base unit); tried on "number + unit" in each clause.
# Temperatures are converted by ``_celsius``; length units are kept in mm.
_UNITS: list[tuple[str, str, float]] = [
    (r"kg|kgs|kilo(?:gram)?s?", WEIGHT, 1.0),
    (r"g|grams?|gr", WEIGHT, 0.001),
    (r"lbs?|pounds?", WEIGHT, 0.4536),
    (r"oz|ounces?", WEIGHT, 0.02835),
    (r"l|litres?|liters?|ltr", VOLUME, 1.0),
    (r"ml|millilitres?|milliliters?", VOLUME, 0.001),
    (r"[-\s]?(?:persons?|people|man|men|p)\b", PERSONS, 1.0),
    (r"lm|lumens?", BRIGHTNESS, 1.0),
    (r"mm|millimet(?:re|er)s?", DROP, 1.0),
    (r"hours?|hrs?|h", BATTERY, 1.0),
    (r"days?", BATTERY, 24.0),
    (r"°\s?c|º\s?c|degrees?\s?c(?:elsius)?|°\s?f|degrees?\s?f(?:ahrenheit)?", TEMPERATURE, 1.0),
]
_UNIT_RES = [
    (re.compile(rf"(?<![\w.,]){_NUM}[\s-]?(?:{unit})(?![a-z°])", re.I), kind, factor)
    for unit, kind, factor in _UNITS
]
# Other units of the trade, kept as generic facts: (pattern, unit symbol, factor).
GENERIC_UNITS: list[tuple[str, str, float]] = [
    (r"tb", "GB", 1000.0),
    (r"gb", "GB", 1.0),
    (r"mah", "mAh", 1.0),
    (r"wh", "Wh", 1.0),
    (r"kw", "W", 1000.0),
    (r"w|watts?", "W", 1.0),
    (r"v|volts?", "V", 1.0),
    (r"inch(?:es)?|in\b|\"|″", "in", 1.0),
    (r"db", "dB", 1.0),
    (r"khz", "Hz", 1000.0),
    (r"hz", "Hz", 1.0),
    (r"mp|megapixels?", "MP", 1.0),
    (r"cm", "cm", 1.0),
    (r"m|metres?|meters?", "m", 1.0),
    (r"atm", "ATM", 1.0),
    (r"mm", "mm", 1.0),
    (r"hours?|hrs?|h", "h", 1.0),
    (r"°\s?c|º\s?c|degrees?\s?c(?:elsius)?", "°C", 1.0),
    (r"ports?", "ports", 1.0),
    (r"devices?", "devices", 1.0),
]
_GENERIC_RES = [
    (re.compile(rf"(?<![\w.,]){_NUM}[\s-]?(?:{unit})(?![a-z])\s*([a-z][\w-]*)?", re.I), sym, f)
    for unit, sym, f in GENERIC_UNITS
]
_WORD_KILO = re.compile(rf"\b{_WORD_NUM}\s+(kilo(?:gram)?|litre|liter|pound)\b", re.I)
_SLEEPS = re.compile(r"\b(?:sleeps|fits|seats)\s+(\d+)\b", re.I)
# A temperature is a rating only in these words; "washable at 30 °C" is not one.
_RATING = re.compile(r"\b(?:down\s+to|rated|rating|comfort|limit|extreme|lower|minus)\b", re.I)
_DROP_WORDS = re.compile(r"\bdrop\b|\boffset\b", re.I)
_BATTERY_WORDS = re.compile(r"\bbattery|\bruntime|\bplay(?:back|time)|\bcharge\b", re.I)
_WATER = re.compile(
    r"\b(?:water[-\s]?proof|water[-\s]?resistant|water[-\s]?repellent|rain[-\s]?proof|"
    r"splash[-\s]?proof|sweat[-\s]?(?:proof|resistant)|ip[x\d]\d|dwr|gore-?tex|"
    r"waterproofing|water[-\s]resistance)\b",
    re.I,
)
_FULLY_WATERPROOF = re.compile(r"\bwater[-\s]?proof\b|\bip[x\d][78]\b|\bgore-?tex\b", re.I)
# Materials are a closed vocabulary of the trade, not of any one catalog.
MATERIALS = (
    "organic cotton", "cotton", "recycled polyester", "polyester", "nylon", "ripstop",
    "merino wool", "merino", "wool", "cashmere", "linen", "silk", "leather", "suede",
    "fleece", "down", "elastane", "spandex", "lycra", "bamboo", "hemp", "canvas", "denim",
    "mesh", "rubber", "foam", "silicone", "plastic", "glass", "ceramic", "porcelain",
    "stoneware", "cast iron", "stainless steel", "steel", "aluminium", "aluminum", "titanium",
    "carbon", "carbon fibre", "carbon fiber", "wood", "oak", "walnut", "beech", "cork",
    "marble", "concrete", "copper", "brass", "gore-tex", "softshell", "polycarbonate", "abs",
    "acrylic", "velvet", "jute", "wax", "soy wax", "beeswax",
)  # fmt: skip
_MATERIAL = re.compile(
    r"\b(?:" + "|".join(re.escape(m) for m in sorted(MATERIALS, key=len, reverse=True)) + r")\b"
    r"(?!\s+to\b)",  # "tested down to -5 °C" is no down filling
    re.I,
)
_SIZES = re.compile(
    r"\bsizes?\b|\b(?:eu|uk|us)\s?\d{1,2}(?:[.,]5)?\b|\b(?:xxs|xs|xl|xxl|xxxl)\b", re.I
)
# (a comma inside "20,000" splits nothing)
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:[:;]|(?<!\d),|,(?!\d{3}\b)|\.\s|\band\b|\bwith\b|\(|\))\s*", re.I
)


def clauses(text: str) -> list[str]:
    """A description cut into the short statements an answer may quote."""
    return [c.strip(" .") for c in _CLAUSE_SPLIT.split(text) if c and c.strip(" .")]


def extract(title: str, description: str) -> list[Fact]:
    """Every fact the title and description state, in their order."""
    out: list[Fact] = []
    for clause in clauses(description):
        out += _clause_facts(clause)
    # The title's facts, unless the description states them too; a material in the title
    # is quoted as the material alone ("merino"), not as the whole title.
    described = description.lower()
    for fact in _clause_facts(title):
        if fact.kind == MATERIAL:
            for m in _MATERIAL.finditer(title):
                if m.group(0).lower() not in described:
                    out.append(Fact(MATERIAL, m.group(0).lower()))
        elif fact.value is None or f"{fact.value:g}" not in described:
            out.append(fact)
    return _dedupe(out)


def _clause_facts(clause: str) -> list[Fact]:
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []
    for pattern, kind, factor in _UNIT_RES:
        for m in pattern.finditer(clause):
            if any(a <= m.start() < b for a, b in taken):
                continue
            number = _number(m.group(1))
            if number is None:
                continue
            kind_here = _refine(kind, clause, m.group(0))
            if kind_here is None:
                continue
            if kind_here == MEASURE:
                continue  # a "plain" mm / h / °C: left to the generic units below
            value = _celsius(number, m.group(0)) if kind == TEMPERATURE else number * factor
            bound = _bound(clause[: m.start()])
            unit = NUMERIC_KINDS.get(kind_here, "")
            facts.append(Fact(kind_here, clause, round(value, 4), bound, unit))
            taken.append((m.start(), m.end()))
    for m in _WORD_KILO.finditer(clause):
        unit = m.group(2).lower()
        kind = VOLUME if unit.startswith("lit") else WEIGHT
        factor = 0.4536 if unit == "pound" else 1.0
        number = _WORD_NUMBERS.get(re.sub(r"\s+", " ", m.group(1).lower()), 1.0)
        facts.append(Fact(kind, clause, round(number * factor, 4), _bound(clause[: m.start()])))
    for m in _SLEEPS.finditer(clause):
        facts.append(Fact(PERSONS, clause, float(m.group(1))))
    for pattern, sym, factor in _GENERIC_RES:
        for m in pattern.finditer(clause):
            number = _number(m.group(1))
            if number is None or any(a <= m.start() < b for a, b in taken):
                continue
            label = (m.group(2) or "").lower().removesuffix("s")
            bound = _bound(clause[: m.start()])
            facts.append(Fact(MEASURE, clause, round(number * factor, 4), bound, sym, label))
            taken.append((m.start(), m.end()))
    if _WATER.search(clause):
        facts.append(Fact(WATERPROOF, clause))
    if _MATERIAL.search(clause):
        facts.append(Fact(MATERIAL, clause))
    if _SIZES.search(clause):
        facts.append(Fact(SIZE, clause))
    return facts


def _refine(kind: str, clause: str, matched: str) -> str | None:
    """The kind a unit stands for in this clause: mm is a drop only with "drop" (else a
    plain measure), hours are battery life only near "battery", °C a rating only in rating
    words. None: the number is not a fact of that kind (e.g. "1 h" inside a word)."""
    if kind == DROP and not _DROP_WORDS.search(clause):
        return MEASURE
    if kind == BATTERY and not _BATTERY_WORDS.search(clause):
        return MEASURE
    if kind == TEMPERATURE and not _RATING.search(clause):
        return MEASURE
    if kind == PERSONS and re.fullmatch(r"-?\d+(?:[.,]\d+)?\s?p", matched, re.I):
        return None  # "4p" alone is too ambiguous (4 pack? 4 pieces?)
    return kind


def _number(raw: str) -> float | None:
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        raw = raw.replace(",", "")  # 20,000
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        return None


def _celsius(value: float, matched: str) -> float:
    return (value - 32) * 5 / 9 if re.search(r"f", matched, re.I) else value


def _bound(before: str) -> str:
    if _BOUND_MAX.search(before):
        return "max"
    if _BOUND_MIN.search(before):
        return "min"
    return ""


def _dedupe(facts: Iterable[Fact]) -> list[Fact]:
    seen: set[tuple[str, str, float | None]] = set()
    out = []
    for f in facts:
        key = (f.kind, f.text.lower(), f.value)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def measure_key(unit: str, label: str = "") -> str:
    """The attribute name of a generic measure: "GB ram", or the unit alone ("mAh")."""
    return f"{unit} {label}" if label else unit


def attribute_values(facts: Sequence[Fact]) -> dict[str, float]:
    """A row's numeric attributes by name: each numeric kind (its first stated value), each
    generic unit (its largest value: "512 GB" over "16 GB") and each unit + label."""
    out: dict[str, float] = {}
    for f in facts:
        if f.value is None:
            continue
        if f.kind in NUMERIC_KINDS:
            out.setdefault(f.kind, f.value)
        elif f.kind == MEASURE and f.unit:
            out[f.unit] = max(out.get(f.unit, f.value), f.value)
            if f.label:
                out.setdefault(measure_key(f.unit, f.label), f.value)
    return out


def numeric(facts: Sequence[Fact], kind: str) -> float | None:
    """The value of ``kind`` the facts state (the first), or None."""
    return next((f.value for f in facts if f.kind == kind and f.value is not None), None)


def fully_waterproof(facts: Sequence[Fact]) -> bool:
    """Whether the row says waterproof (not merely water- or sweat-resistant)."""
    return any(f.kind == WATERPROOF and _FULLY_WATERPROOF.search(f.text) for f in facts)


# --- reading a question --------------------------------------------------------------------

# What a question asks about, by the words people use for it.
_ASKS: list[tuple[str, re.Pattern[str]]] = [
    (WATERPROOF, re.compile(r"\bwater|\brain\b|\bwet\b|\bsplash|\bip\s?x?\d|\bshower", re.I)),
    (WEIGHT, re.compile(r"\bweigh|\bheavy|\bheavier|\bgrams?\b|\bkilos?\b|\bkg\b", re.I)),
    (PERSONS, re.compile(r"\bpeople\b|\bpersons?\b|\bsleeps?\b|\bhow many (?:can|fit)", re.I)),
    (VOLUME, re.compile(r"\blit(?:re|er)s?\b|\bcapacity\b|\bvolume\b|\bhold\b|\bhow big", re.I)),
    (
        TEMPERATURE,
        re.compile(r"\bwarm|\bcold\b|\btemperature|\bdegrees?\b|\bwinter\b|\bfreez", re.I),
    ),
    (BRIGHTNESS, re.compile(r"\bbright|\blumens?\b", re.I)),
    (DROP, re.compile(r"\bdrop\b|\bheel[-\s]to[-\s]toe\b|\boffset\b", re.I)),
    (BATTERY, re.compile(r"\bbattery|\bhow long does (?:it|the charge) last|\bruntime", re.I)),
    (
        MATERIAL,
        re.compile(r"\bmade (?:of|from)\b|\bmaterials?\b|\bfabric\b|\bwhat'?s it made", re.I),
    ),
    (SIZE, re.compile(r"\bsizes?\b|\bfits?\b.*\b(?:me|feet|foot)\b|\bin (?:a )?\d{2}\b", re.I)),
]


# Generic units a question asks about, by the words people use for them.
_ASK_UNITS: list[tuple[str, re.Pattern[str]]] = [
    ("W", re.compile(r"\bwatts?\b|\bwattage\b|\bpower output\b", re.I)),
    ("mAh", re.compile(r"\bmah\b|\bbattery capacity\b", re.I)),
    ("GB", re.compile(r"\bgb\b|\bstorage\b|\bram\b|\bmemory\b|\bgigabytes?\b", re.I)),
    ("in", re.compile(r"\binch(?:es)?\b|\bscreen size\b|\bhow big is the screen\b", re.I)),
    ("dB", re.compile(r"\bdb\b|\bdecibels?\b|\bnoise cancell?ing\b", re.I)),
    ("Hz", re.compile(r"\bhz\b|\brefresh rate\b", re.I)),
    ("MP", re.compile(r"\bmegapixels?\b|\bmp\b|\bcamera\b", re.I)),
    ("ports", re.compile(r"\bports?\b|\bhow many devices\b", re.I)),
]


def asked_units(text: str) -> list[str]:
    """Generic units a question asks about ("how many watts" → W)."""
    return [unit for unit, pattern in _ASK_UNITS if pattern.search(text)]


def asked_kinds(text: str) -> list[str]:
    """The kinds of fact a question asks about, in the order of ``_ASKS``."""
    return [kind for kind, pattern in _ASKS if pattern.search(text)]


@dataclass(frozen=True)
class Constraint:
    """A bound a request puts on a stated property: (kind, ">=" or "<=", value in the
    kind's base unit), e.g. "for 4 people" → (persons, >=, 4)."""

    kind: str
    op: str
    value: float

    def ok(self, value: float) -> bool:
        """Whether a product stating ``value`` meets the bound."""
        return value >= self.value if self.op == ">=" else value <= self.value


_AT_LEAST = r"(?:at\s+least|min(?:imum)?|more\s+than|over|above|from)"
_AT_MOST = (
    r"(?:under|below|less\s+than|at\s+most|max(?:imum)?|up\s+to|no\s+more\s+than|lighter\s+than)"
)
_UNIT_ALT = "|".join(
    [unit for unit, kind, _ in _UNITS if kind != PERSONS] + [unit for unit, _, _ in GENERIC_UNITS]
)
_LABEL = r"(?:\s+(?!or\b|and\b|under\b|below\b|for\b|with\b)[a-z][\w-]*)?"
_COUNT = r"(\d+|two|three|four|five|six)"
_AMOUNT_UNIT = rf"(?<![\w.-]){_NUM}\s?(?:{_UNIT_ALT})"
_CONSTRAINT_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b{_AT_LEAST}\s+{_NUM}\s?(?:{_UNIT_ALT})(?![a-z°]){_LABEL}", re.I), ">="),
    (re.compile(rf"\b{_AT_MOST}\s+{_NUM}\s?(?:{_UNIT_ALT})(?![a-z°]){_LABEL}", re.I), "<="),
    (re.compile(rf"\b{_AT_MOST}\s+{_WORD_NUM}\s+(?:kilo(?:gram)?|litre|liter)s?\b", re.I), "<="),
    (re.compile(rf"\b{_AT_LEAST}\s+{_WORD_NUM}\s+(?:kilo(?:gram)?|litre|liter)s?\b", re.I), ">="),
    (re.compile(rf"\bfor\s+{_COUNT}\s+(?:people|persons?|adults)\b", re.I), ">="),
    (re.compile(r"\b(\d+)[-\s]?(?:person|people|man)\b", re.I), ">="),
    (re.compile(r"\bsleeps\s+(\d+)\b", re.I), ">="),
    (re.compile(rf"{_AMOUNT_UNIT}\s+or\s+(?:more|bigger|larger)\b", re.I), ">="),
    (re.compile(rf"{_AMOUNT_UNIT}\s+or\s+(?:less|lighter|under)\b", re.I), "<="),
]  # fmt: skip
_COUNT_WORDS = {"two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0}


def cut_constraints(text: str) -> tuple[str, tuple[Constraint, ...]]:
    """Bounds on stated properties in a request, and the text without them (so that
    "under 1 kg" is not read as a price of 1)."""
    found: list[Constraint] = []
    rest = text
    for pattern, op in _CONSTRAINT_RES:
        while (m := pattern.search(rest)) is not None:
            facts = _clause_facts(m.group(0))
            raw = m.group(1).lower()
            kind, value = _constraint_value(facts, raw, m.group(0))
            rest = rest[: m.start()] + " " + rest[m.end() :]
            if kind is not None and value is not None:
                found.append(Constraint(kind, op, value))
    return rest, tuple(found)


def _constraint_value(facts: list[Fact], raw: str, phrase: str) -> tuple[str | None, float | None]:
    numeric_facts = [f for f in facts if f.kind in NUMERIC_KINDS and f.value is not None]
    if numeric_facts:
        return numeric_facts[0].kind, numeric_facts[0].value
    generic = [f for f in facts if f.kind == MEASURE and f.value is not None]
    if generic:
        return measure_key(generic[0].unit, generic[0].label), generic[0].value
    if re.search(r"people|person|adult|man|sleeps", phrase, re.I):
        value = _COUNT_WORDS.get(raw) or _number(raw)
        return PERSONS, value
    if re.search(r"°|degree", phrase, re.I):
        number = _number(raw)
        return (TEMPERATURE, _celsius(number, phrase)) if number is not None else (None, None)
    return None, None


# Superlatives: (pattern, kind, direction). "price" is the row's price column; "size" ranks
# by the first of persons / volume a candidate states.
SUPERLATIVES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"\bcheapest\b|\bleast expensive\b|\blowest[-\s]price", re.I), "price", "asc"),
    (
        re.compile(r"\bmost expensive\b|\bpriciest\b|\bhighest[-\s]price|\btop of the range", re.I),
        "price",
        "desc",
    ),
    (re.compile(r"\blightest\b", re.I), WEIGHT, "asc"),
    (re.compile(r"\bheaviest\b", re.I), WEIGHT, "desc"),
    (re.compile(r"\bwarmest\b", re.I), TEMPERATURE, "asc"),
    (re.compile(r"\bbrightest\b", re.I), BRIGHTNESS, "desc"),
    (re.compile(r"\bbiggest\b|\blargest\b|\broomiest\b", re.I), "size", "desc"),
    (re.compile(r"\bsmallest\b|\bmost compact\b", re.I), "size", "asc"),
    (re.compile(r"\blongest battery\b|\bbattery lasts longest\b", re.I), BATTERY, "desc"),
]
# "like X but lighter": the same directions, relative to X.
COMPARATIVES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"\blighter\b", re.I), WEIGHT, "asc"),
    (re.compile(r"\bheavier\b", re.I), WEIGHT, "desc"),
    (re.compile(r"\bwarmer\b", re.I), TEMPERATURE, "asc"),
    (re.compile(r"\bbrighter\b", re.I), BRIGHTNESS, "desc"),
    (re.compile(r"\bbigger\b|\blarger\b|\broomier\b", re.I), "size", "desc"),
    (re.compile(r"\bsmaller\b|\bmore compact\b", re.I), "size", "asc"),
]
SIZE_KINDS = (PERSONS, VOLUME, "in")  # people, litres, screen inches


def superlative(text: str) -> tuple[str, str] | None:
    """(kind, "asc" | "desc") of "the cheapest / lightest / warmest…" in a request."""
    return _first(SUPERLATIVES, text)


def comparative(text: str) -> tuple[str, str] | None:
    """(kind, "asc" | "desc") of "lighter / bigger / warmer…" ("like X but lighter")."""
    return _first(COMPARATIVES, text)


def _first(table: list[tuple[re.Pattern[str], str, str]], text: str) -> tuple[str, str] | None:
    for pattern, kind, direction in table:
        if pattern.search(text):
            return kind, direction
    return None
