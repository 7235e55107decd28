"""brain.product_facts: what a catalog row states, and what a request asks (pure, no model)."""

from __future__ import annotations

import pytest

from brain.product_facts import (
    BATTERY,
    BRIGHTNESS,
    DROP,
    MATERIAL,
    MEASURE,
    PERSONS,
    TEMPERATURE,
    VOLUME,
    WATERPROOF,
    WEIGHT,
    Constraint,
    asked_kinds,
    asked_units,
    attribute_values,
    comparative,
    cut_constraints,
    extract,
    fully_waterproof,
    superlative,
)

TENT = (
    "Ridgeway Nomad 4-person Tent",
    "Tunnel tent for family camping: sleeps 4, waterproof flysheet (3,000 mm), weighs 4.2 kg.",
)
BAG = ("Ridgeway Polar Sleeping Bag", "Mummy bag rated down to -10 °C, 850 g, recycled polyester.")
LAMP = ("Glowline Trek Headlamp", "Rechargeable headlamp, 400 lumens, IPX4 splash resistant.")
PACK = ("Ridgeway Summit 45 L Backpack", "Top-loading pack, weighs under a kilo, nylon ripstop.")
SHOE = ("Pacer Road Shoe", "Road shoe with an 8 mm heel-to-toe drop and breathable mesh upper.")
PHONE = ("Nimbra X5 128 GB", "6.1-inch screen, 8 GB RAM, 4,500 mAh battery, 20 W charging.")


def stated(row: tuple[str, str], kind: str) -> list[tuple[str, float | None]]:
    return [(f.text, f.value) for f in extract(*row) if f.kind == kind]


def test_persons_weight_and_waterproofing_of_a_tent() -> None:
    values = attribute_values(extract(*TENT))
    assert values[PERSONS] == 4.0
    assert values[WEIGHT] == pytest.approx(4.2)
    assert fully_waterproof(extract(*TENT))


def test_temperature_rating_in_celsius_and_grams_in_kilograms() -> None:
    assert stated(BAG, TEMPERATURE) == [("Mummy bag rated down to -10 °C", -10.0)]
    assert stated(BAG, WEIGHT) == [("850 g", 0.85)]
    assert stated(BAG, MATERIAL) == [("recycled polyester", None)]


def test_brightness_and_splash_resistance_is_not_waterproof() -> None:
    assert stated(LAMP, BRIGHTNESS) == [("400 lumens", 400.0)]
    facts = extract(*LAMP)
    assert [f.kind for f in facts if f.kind == WATERPROOF] == [WATERPROOF]
    assert not fully_waterproof(facts)


def test_litres_in_the_title_and_a_weight_bound_in_words() -> None:
    facts = extract(*PACK)
    assert attribute_values(facts)[VOLUME] == 45.0
    weight = next(f for f in facts if f.kind == WEIGHT)
    assert (weight.text, weight.value, weight.bound) == ("weighs under a kilo", 1.0, "max")


def test_drop_in_millimetres() -> None:
    assert stated(SHOE, DROP) == [("an 8 mm heel-to-toe drop", 8.0)]


def test_generic_units_with_thousands_and_labels() -> None:
    values = attribute_values(extract(*PHONE))
    assert values["mAh"] == 4500.0
    assert values["GB ram"] == 8.0
    assert values["GB"] == 128.0  # the largest GB figure
    assert values["in"] == 6.1
    assert values["W"] == 20.0
    assert all(f.kind != BATTERY for f in extract(*PHONE))  # mAh is no battery *life*


def test_a_row_that_states_nothing_measurable_has_no_facts() -> None:
    assert extract("Everyday Tote", "A roomy tote in natural colours.") == []


@pytest.mark.parametrize(
    ("text", "rest", "bound"),
    [
        ("a tent for 4 people, budget 300", "a tent  , budget 300", Constraint(PERSONS, ">=", 4)),
        ("a backpack of at least 40 litres", "a backpack of  ", Constraint(VOLUME, ">=", 40)),
        ("sleeping bag under 1 kg", "sleeping bag  ", Constraint(WEIGHT, "<=", 1)),
        ("a pack under a kilo", "a pack  ", Constraint(WEIGHT, "<=", 1)),
        ("headlamp 300 lumens or more", "headlamp  ", Constraint(BRIGHTNESS, ">=", 300)),
        ("laptop with at least 16gb ram", "laptop with  ", Constraint("GB ram", ">=", 16)),
        ("power bank of at least 20000mah", "power bank of  ", Constraint("mAh", ">=", 20000)),
    ],
)
def test_constraints_are_cut_before_prices(text: str, rest: str, bound: Constraint) -> None:
    assert cut_constraints(text) == (rest, (bound,))


def test_superlatives_and_comparatives() -> None:
    assert superlative("which is the lightest tent?") == (WEIGHT, "asc")
    assert superlative("your warmest sleeping bag") == (TEMPERATURE, "asc")
    assert superlative("the brightest headlamp") == (BRIGHTNESS, "desc")
    assert superlative("cheapest earbuds") == ("price", "asc")
    assert superlative("biggest tent") == ("size", "desc")
    assert superlative("a lighter one") is None
    assert comparative("like that one but smaller") == ("size", "asc")


def test_what_a_question_asks() -> None:
    assert asked_kinds("Is it waterproof?") == [WATERPROOF]
    assert asked_kinds("how heavy is the Polar?") == [WEIGHT]
    assert asked_kinds("do you have it in size 44?") == ["size"]
    assert asked_kinds("how cold can it go") == [TEMPERATURE]
    assert asked_units("how many watts is it") == ["W"]
    assert MEASURE not in asked_kinds("what's the price?")
