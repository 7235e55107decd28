"""Regenerate the demo shop's products.csv, orders.csv and interactions.csv.

Deterministic (a fixed seed): running it again gives the same files. Every name, brand and
address here is invented for omnigate. Run: ``python -m brain.demo_shop.generate``.
The knowledge/*.md pages and shop.toml are written by hand and not touched.
"""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20250301
TODAY = date(2025, 3, 1)  # the demo shop's "now": orders are placed before it

# category -> (brands, product kinds with (min, max) price, adjectives / model names)
CATALOG: dict[str, tuple[list[str], list[tuple[str, float, float]], list[str]]] = {
    "running shoes": (
        ["Stridewell", "Aerolite", "Trailfox", "Pacer Lab"],
        [
            ("road running shoe", 79, 169),
            ("trail running shoe", 89, 179),
            ("racing flat", 99, 219),
            ("stability running shoe", 89, 159),
            ("cushioned recovery shoe", 59, 119),
        ],
        ["Glide", "Tempo", "Summit", "Drift", "Nimbus", "Vector", "Apex", "Pulse", "Ridge"],
    ),
    "apparel": (
        ["Northpeak", "Stridewell", "Linen & Loom", "Fjordline"],
        [
            ("merino base layer", 45, 95),
            ("running tights", 35, 79),
            ("rain jacket", 89, 249),
            ("fleece hoodie", 49, 99),
            ("technical t-shirt", 19, 45),
            ("running shorts", 25, 55),
            ("down vest", 79, 159),
        ],
        ["Core", "Storm", "Breeze", "Alpine", "Urban", "Coast", "Frost", "Lite"],
    ),
    "outdoor gear": (
        ["Northpeak", "Trailfox", "Campcraft", "Fjordline"],
        [
            ("2-person tent", 149, 399),
            ("sleeping bag", 69, 259),
            ("hiking backpack", 59, 219),
            ("trekking poles", 39, 119),
            ("headlamp", 19, 79),
            ("insulated water bottle", 19, 45),
            ("camping stove", 39, 129),
        ],
        ["Ranger", "Basecamp", "Horizon", "Cirrus", "Timber", "Glacier", "Ember", "Scout"],
    ),
    "electronics accessories": (
        ["Voltline", "Pacer Lab", "Cableworks", "Sonari"],
        [
            ("wireless earbuds", 39, 179),
            ("USB-C charger", 15, 59),
            ("power bank", 25, 89),
            ("GPS sports watch", 129, 449),
            ("phone armband", 12, 29),
            ("bluetooth speaker", 35, 149),
            ("USB-C cable", 8, 25),
        ],
        ["One", "Max", "Mini", "Pro", "Air", "Go", "Edge", "Flex"],
    ),
    "home": (
        ["Hearthly", "Linen & Loom", "Campcraft", "Oakhaven"],
        [
            ("ceramic mug set", 19, 49),
            ("linen bedding set", 79, 189),
            ("cast iron skillet", 29, 79),
            ("scented candle", 12, 35),
            ("wool throw blanket", 49, 129),
            ("bamboo towel set", 29, 69),
            ("desk lamp", 29, 99),
        ],
        ["Nordic", "Harbor", "Meadow", "Stone", "Willow", "Amber", "Sage", "Dune"],
    ),
}
PREFIX = {
    "running shoes": "RUN",
    "apparel": "APP",
    "outdoor gear": "OUT",
    "electronics accessories": "ELE",
    "home": "HOM",
}
COLOURS = ["black", "navy", "forest green", "sand", "grey", "red", "white", "ocean blue"]
FEATURES = {
    "running shoes": [
        "breathable mesh upper",
        "responsive foam midsole",
        "grippy rubber outsole",
        "reflective details",
        "8 mm heel-to-toe drop",
        "wide toe box",
    ],
    "apparel": [
        "quick-drying fabric",
        "flatlock seams",
        "zipped pocket",
        "reflective trim",
        "recycled polyester",
        "machine washable at 30 °C",
    ],
    "outdoor gear": [
        "weighs under a kilo",
        "water-resistant coating",
        "packs small",
        "lifetime repair service",
        "tested down to -5 °C",
        "includes stuff sack",
    ],
    "electronics accessories": [
        "USB-C charging",
        "up to 20 hours of battery",
        "sweat-resistant (IPX4)",
        "fast charging",
        "two-year warranty",
        "works with iOS and Android",
    ],
    "home": [
        "dishwasher safe",
        "made from organic cotton",
        "handmade finish",
        "oven safe to 250 °C",
        "OEKO-TEX certified",
        "natural materials",
    ],
}
FIRST = [
    "anna",
    "ben",
    "carla",
    "david",
    "elif",
    "finn",
    "greta",
    "hugo",
    "ines",
    "jonas",
    "kira",
    "leo",
    "maya",
    "noah",
    "olga",
    "paul",
    "rosa",
    "sami",
    "tara",
    "umar",
]
LAST = [
    "keller",
    "novak",
    "silva",
    "berg",
    "moreau",
    "fischer",
    "costa",
    "larsen",
    "weber",
    "rossi",
    "dahl",
    "meyer",
]
STREETS = [
    "Harbour Street",
    "Linden Avenue",
    "Mill Lane",
    "Station Road",
    "Orchard Way",
    "Kings Row",
    "Canal Walk",
    "Birch Close",
]
TOWNS = ["Bristol", "Leeds", "Utrecht", "Lyon", "Porto", "Graz", "Aarhus", "Ghent"]
CARRIERS = {"DHL": "JD0146{:010d}", "UPS": "1Z9E4{:011d}", "DPD": "0150{:010d}", "GLS": "GL{:09d}"}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


def products(rng: random.Random) -> list[dict[str, object]]:
    """About 300 products over five categories."""
    rows: list[dict[str, object]] = []
    for category, (brands, kinds, models) in CATALOG.items():
        n = 0
        for kind, lo, hi in kinds:
            for model in rng.sample(models, k=min(len(models), 8)):
                brand = rng.choice(brands)
                colour = rng.choice(COLOURS)
                n += 1
                sku = f"{PREFIX[category]}-{n:03d}"
                title = f"{brand} {model} {' '.join(w[0].upper() + w[1:] for w in kind.split())}"
                price = round(rng.uniform(lo, hi) / 5) * 5 - 0.01
                feats = rng.sample(FEATURES[category], k=3)
                desc = f"{brand} {model} {kind} in {colour}: {feats[0]}, {feats[1]} and {feats[2]}."
                stock = 0 if rng.random() < 0.12 else rng.randrange(1, 60)
                rows.append(
                    {
                        "sku": sku,
                        "title": title,
                        "description": desc,
                        "category": category,
                        "price": f"{price:.2f}",
                        "stock": stock,
                        "brand": brand,
                        "image_url": f"/static/img/{_slug(category)}.svg",
                        "url": f"https://shop.example/p/{sku.lower()}-{_slug(title)}",
                    }
                )
    return rows


def orders(rng: random.Random, prods: list[dict[str, object]]) -> list[dict[str, object]]:
    """120 orders, every status, each with a customer email, carrier and tracking number."""
    statuses = (
        ["processing"] * 3 + ["shipped"] * 3 + ["delivered"] * 4 + ["cancelled"] + ["returned"]
    )
    rows: list[dict[str, object]] = []
    for i in range(120):
        # the first five orders cover every status, so tests and docs can name them
        fixed = ["shipped", "processing", "delivered", "cancelled", "returned"]
        status = fixed[i] if i < len(fixed) else statuses[rng.randrange(len(statuses))]
        first, last = FIRST[i % len(FIRST)], rng.choice(LAST)
        email = f"{first}.{last}@example.com"
        placed = TODAY - timedelta(days=rng.randrange(1, 60) if status != "processing" else 1)
        picked = rng.sample(prods, k=rng.randrange(1, 4))
        items = [(str(p["sku"]), rng.randrange(1, 3)) for p in picked]
        total = sum(float(str(p["price"])) * q for p, (_, q) in zip(picked, items, strict=True))
        shipped = carrier = tracking = eta = ""
        if status in ("shipped", "delivered", "returned"):
            s = placed + timedelta(days=rng.randrange(1, 3))
            carrier = rng.choice(list(CARRIERS))
            shipped = s.isoformat()
            tracking = CARRIERS[carrier].format(rng.randrange(10**8, 10**9))
            eta = (s + timedelta(days=rng.randrange(2, 5))).isoformat()
        elif status == "processing":
            eta = (placed + timedelta(days=rng.randrange(4, 7))).isoformat()
        if status == "shipped":  # still on its way: due after the shop's "today"
            eta = (TODAY + timedelta(days=rng.randrange(1, 4))).isoformat()
        address = (
            f"{rng.randrange(1, 120)} {rng.choice(STREETS)}, "
            f"{rng.choice(TOWNS)} {rng.randrange(1000, 9999)}"
        )
        rows.append(
            {
                "order_id": f"OG-{10231 + i * 7}",
                "email": email,
                "status": status,
                "placed_at": placed.isoformat(),
                "shipped_at": shipped,
                "carrier": carrier,
                "tracking_number": tracking,
                "eta": eta,
                "items": ";".join(f"{s}:{q}" for s, q in items),
                "total": f"{total:.2f}",
                "address": address,
            }
        )
    return rows


def interactions(rng: random.Random, prods: list[dict[str, object]]) -> list[dict[str, object]]:
    """Browsing sessions of 200 shoppers, each mostly within one or two favourite categories."""
    by_cat: dict[str, list[dict[str, object]]] = {}
    for p in prods:
        by_cat.setdefault(str(p["category"]), []).append(p)
    cats = list(by_cat)
    rows: list[dict[str, object]] = []
    start = datetime(2024, 9, 1, 8, 0)
    for u in range(200):
        favourites = rng.sample(cats, k=2)
        t = start + timedelta(hours=rng.randrange(0, 24 * 150))
        for _ in range(rng.randrange(4, 16)):
            cat = favourites[0] if rng.random() < 0.7 else rng.choice(favourites + cats)
            p = rng.choice(by_cat[cat])
            t += timedelta(minutes=rng.randrange(1, 600))
            rows.append(
                {
                    "user_id": f"u{u:04d}",
                    "sku": p["sku"],
                    "event": "view",
                    "timestamp": t.isoformat(),
                }
            )
            r = rng.random()
            if r < 0.3:
                t += timedelta(minutes=rng.randrange(1, 30))
                rows.append(
                    {
                        "user_id": f"u{u:04d}",
                        "sku": p["sku"],
                        "event": "cart",
                        "timestamp": t.isoformat(),
                    }
                )
                if r < 0.15:
                    t += timedelta(minutes=rng.randrange(1, 30))
                    rows.append(
                        {
                            "user_id": f"u{u:04d}",
                            "sku": p["sku"],
                            "event": "purchase",
                            "timestamp": t.isoformat(),
                        }
                    )
    return rows


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    """Write the three CSV files next to this script."""
    rng = random.Random(SEED)
    prods = products(rng)
    _write(HERE / "products.csv", prods)
    _write(HERE / "orders.csv", orders(rng, prods))
    _write(HERE / "interactions.csv", interactions(rng, prods))


if __name__ == "__main__":
    main()
