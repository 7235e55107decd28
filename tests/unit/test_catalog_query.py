"""brain.catalog_query: prices, categories, brands, follow-ups (pure, no model)."""

from __future__ import annotations

import pytest

from brain.catalog_query import CatalogQuery, category_terms, parse_price, parse_query, singular

CATEGORIES = ["running shoes", "apparel", "outdoor gear", "electronics accessories", "home"]
BRANDS = ["Aerolite", "Linen & Loom", "Northpeak", "Pacer Lab", "Sonari"]
TITLES = [
    ("Aerolite Glide Road Running Shoe", "running shoes"),
    ("Pacer Lab Pulse Trail Running Shoe", "running shoes"),
    ("Northpeak Storm Rain Jacket", "apparel"),
    ("Linen & Loom Core Running Tights", "apparel"),
    ("Northpeak Alpine Rain Jacket", "apparel"),
    ("Northpeak Ranger 2-person Tent", "outdoor gear"),
    ("Northpeak Scout 2-person Tent", "outdoor gear"),
    ("Sonari Go Wireless Earbuds", "electronics accessories"),
    ("Sonari Max Wireless Earbuds", "electronics accessories"),
    ("Linen & Loom Meadow Ceramic Mug Set", "home"),
    ("Linen & Loom Sage Ceramic Mug Set", "home"),
]
TERMS = category_terms(TITLES, BRANDS)


def q(text: str) -> CatalogQuery:
    return parse_query(text, CATEGORIES, BRANDS, TERMS)


@pytest.mark.parametrize(
    ("text", "lo", "hi", "lo_incl", "hi_incl"),
    [
        ("I need running shoes under 100", None, 100.0, True, False),
        ("below $80", None, 80.0, True, False),
        ("less than 50", None, 50.0, True, False),
        ("up to €120", None, 120.0, True, True),
        ("between 50 and 80", 50.0, 80.0, True, True),
        ("between 80 and 50", 50.0, 80.0, True, True),
        ("jackets 50-80", 50.0, 80.0, True, True),
        ("from 20 to 30 eur", 20.0, 30.0, True, True),
        ("over 200", 200.0, None, False, True),
        ("at least 150", 150.0, None, True, True),
        ("around 60", 48.0, 72.0, True, True),
        ("about 1,299", 1039.2, 1558.8, True, True),
        ("50 or less", None, 50.0, True, True),
        ("a tent under 1.5k", None, 1500.0, True, False),
    ],
)
def test_price_windows(
    text: str, lo: float | None, hi: float | None, lo_incl: bool, hi_incl: bool
) -> None:
    got = q(text)
    assert (got.min_price, got.max_price) == (lo, hi)
    assert (got.min_inclusive, got.max_inclusive) == (lo_incl, hi_incl)


@pytest.mark.parametrize(
    "text", ["2-person tent", "size 42-44 running shoes", "Sonari Max earbuds", "an iPhone 13 case"]
)
def test_numbers_that_are_not_prices(text: str) -> None:
    got = q(text)
    assert got.min_price is None and got.max_price is None


def test_parse_price_formats() -> None:
    assert parse_price("1,299") == 1299.0
    assert parse_price("1.299,50") == 1299.5
    assert parse_price("12,50") == 12.5
    assert parse_price("$ 99.99") == 99.99
    assert parse_price("1.5k") == 1500.0


def test_price_ok_respects_strictness() -> None:
    under = q("under 100")
    assert under.price_ok(99.99) and not under.price_ok(100.0)
    upto = q("up to 100")
    assert upto.price_ok(100.0) and not upto.price_ok(100.01)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("running shoes", "running shoes"),
        ("a pair of trainers", "running shoes"),  # synonym -> head noun "shoe"
        ("sneakers for the trail", "running shoes"),
        ("rain jacket", "apparel"),  # catalog term: "jacket" only in apparel titles
        ("some clothes", "apparel"),  # synonym of the category name
        ("tents", "outdoor gear"),
        ("camping stuff", "outdoor gear"),
        ("headphones", "electronics accessories"),  # synonym -> earbud -> catalog term
        ("gadgets", "electronics accessories"),
        ("something for my kitchen", "home"),
        ("mugs", "home"),
    ],
)
def test_categories(text: str, category: str) -> None:
    got = q(text)
    assert got.category == category
    assert got.categories == (category,)


def test_vague_word_is_not_a_filter() -> None:
    # "running" is both shoes and tights: ranking only, never a hard filter.
    got = q("something for running")
    assert got.categories == ()
    assert got.text == "running"


def test_brands_matched_whole() -> None:
    assert q("Sonari or Pacer Lab earbuds").brands == ("Pacer Lab", "Sonari")
    assert q("linen & loom mugs").brands == ("Linen & Loom",)
    assert q("linen bedding").brands == ()  # one word of a two-word brand is not the brand


def test_cheaper_and_similar() -> None:
    got = q("something like the last one but cheaper")
    assert got.cheaper and got.similar
    assert not got.has_subject and got.is_follow_up
    assert q("less expensive please").cheaper
    assert q("similar to that").similar
    assert not q("I would like running shoes").similar


def test_follow_up_merges_into_previous() -> None:
    first = q("Northpeak rain jacket under 200")
    follow = q("between 100 and 150 then")
    assert follow.is_follow_up
    merged = follow.merged_into(first)
    assert merged.categories == ("apparel",)
    assert merged.brands == ("Northpeak",)
    assert (merged.min_price, merged.max_price) == (100.0, 150.0)
    assert not q("recommend me something").is_follow_up


def test_round_trip_through_slots() -> None:
    got = q("Sonari earbuds between 50 and 80")
    assert CatalogQuery.from_dict(got.to_dict()) == got


def test_singular() -> None:
    assert [singular(w) for w in ["shoes", "accessories", "boxes", "dresses", "gas"]] == [
        "shoe",
        "accessory",
        "box",
        "dress",
        "gas",
    ]
