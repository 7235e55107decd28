"""The shop's data: products, orders and knowledge passages.

``StoreBackend`` is the interface the brain uses (the dialogue flows and the recommender rely
on its record types and methods); ``PackStore`` (a store pack folder, the README's "Store pack")
is the default implementation. A shop plugs in its own order API by implementing
``StoreBackend``.
"""

from __future__ import annotations

import abc
import csv
import re
import threading
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path


class StorePackError(Exception):
    """A store pack is broken. The message names the file, the line and the problem."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"store pack: {where}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class ShopInfo:
    name: str
    currency: str
    order_id_pattern: str
    support_email: str
    support_hours: str
    support_phone: str = ""  # optional in shop.toml


@dataclass(frozen=True)
class ProductRecord:
    sku: str
    title: str
    description: str
    category: str
    price: float
    stock: int
    brand: str = ""
    image_url: str = ""
    url: str = ""


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    email: str
    status: str  # processing · shipped · delivered · cancelled · returned
    placed_at: date
    shipped_at: date | None
    carrier: str
    tracking_number: str
    eta: date | None
    items: tuple[tuple[str, int], ...]  # (sku, qty)
    total: float
    # Optional ``address`` column of orders.csv (an extension of the pack format): the
    # shipping address the customer may change while the order is still processing.
    address: str = ""


@dataclass(frozen=True)
class Passage:
    """One ``##`` section of a knowledge file."""

    source: str  # file name, e.g. "returns.md"
    title: str
    text: str


@dataclass(frozen=True)
class Interaction:
    user_id: str
    sku: str
    event: str  # view · cart · purchase
    timestamp: str


class StoreBackend(abc.ABC):
    """What the brain may read and do in a shop."""

    @property
    @abc.abstractmethod
    def info(self) -> ShopInfo: ...

    @abc.abstractmethod
    def products(self) -> list[ProductRecord]:
        """The whole catalog."""

    @abc.abstractmethod
    def product(self, sku: str) -> ProductRecord | None: ...

    @abc.abstractmethod
    def order(self, order_id: str) -> OrderRecord | None: ...

    @abc.abstractmethod
    def orders_for_email(self, email: str) -> list[OrderRecord]: ...

    @abc.abstractmethod
    def cancel_order(self, order_id: str) -> OrderRecord:
        """Cancel an order in a status that allows it; returns the updated order."""

    @abc.abstractmethod
    def change_address(self, order_id: str, address: str) -> OrderRecord: ...

    @abc.abstractmethod
    def passages(self) -> list[Passage]: ...

    @abc.abstractmethod
    def interactions(self) -> list[Interaction]: ...

    def version(self) -> str:
        """Changes whenever the catalog changes (used to cache catalog embeddings)."""
        return ""


ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled", "returned")
# Only an order not yet handed to the carrier can be cancelled or re-addressed.
CANCELLABLE = ("processing",)
READDRESSABLE = ("processing",)
EVENTS = ("view", "cart", "purchase")

_SHOP_KEYS = ("name", "currency", "order_id_pattern", "support_email", "support_hours")
_PRODUCT_COLS = ("sku", "title", "description", "category", "price", "stock")
_ORDER_COLS = (
    "order_id", "email", "status", "placed_at", "shipped_at", "carrier",
    "tracking_number", "eta", "items", "total",
)  # fmt: skip
_INTERACTION_COLS = ("user_id", "sku", "event", "timestamp")


class OrderActionError(Exception):
    """An order cannot be cancelled or re-addressed in its current status."""

    def __init__(self, order_id: str, status: str, action: str) -> None:
        super().__init__(f"order {order_id} is {status}: cannot {action}")
        self.order_id = order_id
        self.status = status
        self.action = action


class PackStore(StoreBackend):
    """A store pack folder (the README's "Store pack"), validated and loaded into memory.

    The pack is read-only demo data: ``cancel_order`` and ``change_address`` change the
    in-memory copy of this process only, never the files. A real shop implements
    ``StoreBackend`` on top of its order API instead.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise StorePackError(str(self.path), None, "store pack folder does not exist")
        self._info = _load_shop(self.path / "shop.toml")
        self._pattern = re.compile(self._info.order_id_pattern)
        self._products = _load_products(self.path / "products.csv")
        self._orders = _load_orders(self.path / "orders.csv", self._pattern, self._products)
        self._passages = _load_knowledge(self.path / "knowledge")
        self._interactions = _load_interactions(self.path / "interactions.csv", self._products)
        self._lock = threading.Lock()  # worker threads may act on orders at the same time
        import hashlib

        digest = hashlib.sha256((self.path / "products.csv").read_bytes())
        self._version = digest.hexdigest()[:16]

    @property
    def info(self) -> ShopInfo:
        return self._info

    @property
    def order_id_regex(self) -> re.Pattern[str]:
        """The compiled ``order_id_pattern`` of shop.toml."""
        return self._pattern

    def products(self) -> list[ProductRecord]:
        """The whole catalog, in file order."""
        return list(self._products.values())

    def product(self, sku: str) -> ProductRecord | None:
        """One product by SKU, or None."""
        return self._products.get(sku)

    def order(self, order_id: str) -> OrderRecord | None:
        """One order by id, or None."""
        return self._orders.get(order_id)

    def orders_for_email(self, email: str) -> list[OrderRecord]:
        """Every order placed with ``email`` (case-insensitive)."""
        key = email.strip().lower()
        return [o for o in self._orders.values() if o.email.lower() == key]

    def cancel_order(self, order_id: str) -> OrderRecord:
        """Cancel a processing order (in memory); ``OrderActionError`` in any other status."""
        with self._lock:
            order = self._existing(order_id)
            if order.status not in CANCELLABLE:
                raise OrderActionError(order_id, order.status, "cancel")
            order = self._orders[order_id] = replace(order, status="cancelled", eta=None)
            return order

    def change_address(self, order_id: str, address: str) -> OrderRecord:
        """Set a processing order's shipping address (in memory); else ``OrderActionError``."""
        with self._lock:
            order = self._existing(order_id)
            if order.status not in READDRESSABLE:
                raise OrderActionError(order_id, order.status, "change the address")
            order = self._orders[order_id] = replace(order, address=address.strip())
            return order

    def passages(self) -> list[Passage]:
        """Every ``##`` section of the knowledge files."""
        return list(self._passages)

    def interactions(self) -> list[Interaction]:
        """The optional interaction log (empty when the pack has none)."""
        return list(self._interactions)

    def version(self) -> str:
        """A hash of products.csv."""
        return self._version

    def _existing(self, order_id: str) -> OrderRecord:
        order = self._orders.get(order_id)
        if order is None:
            raise KeyError(order_id)
        return order


def load_store(path: Path | str) -> PackStore:
    """Load and validate a store pack; raises ``StorePackError`` naming file, line, problem."""
    return PackStore(path)


# --- loading and validation ---------------------------------------------------------------


def _load_shop(path: Path) -> ShopInfo:
    if not path.is_file():
        raise StorePackError(path.name, None, "file is missing")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise StorePackError(
            path.name, int(m.group(1)) if m else None, f"bad TOML: {exc}"
        ) from None
    values: dict[str, str] = {}
    for key in _SHOP_KEYS:
        line = _toml_line(text, key)
        if key not in data:
            raise StorePackError(path.name, None, f"key {key!r} is missing")
        if not isinstance(data[key], str) or not data[key].strip():
            raise StorePackError(path.name, line, f"key {key!r} must be a non-empty string")
        values[key] = data[key].strip()
    try:
        re.compile(values["order_id_pattern"])
    except re.error as exc:
        line = _toml_line(text, "order_id_pattern")
        raise StorePackError(
            path.name, line, f"order_id_pattern is not a valid regex: {exc}"
        ) from None
    phone = data.get("support_phone")
    if phone is not None:
        line = _toml_line(text, "support_phone")
        if not isinstance(phone, str) or not re.search(r"\d", phone):
            raise StorePackError(path.name, line, "support_phone must be a phone number string")
        values["support_phone"] = phone.strip()
    if "@" not in values["support_email"]:
        line = _toml_line(text, "support_email")
        raise StorePackError(path.name, line, "support_email is not an email address")
    return ShopInfo(**values)


def _toml_line(text: str, key: str) -> int | None:
    for no, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return no
    return None


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a CSV file whose header holds ``required``."""
    if not path.is_file():
        raise StorePackError(path.name, None, "file is missing")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise StorePackError(path.name, 1, f"header lacks column(s): {', '.join(missing)}")
        out: list[tuple[int, dict[str, str]]] = []
        try:
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise StorePackError(path.name, line, "more fields than the header has")
                if any(v is None for v in row.values()):
                    raise StorePackError(path.name, line, "fewer fields than the header has")
                out.append((line, {k: (v or "").strip() for k, v in row.items()}))
        except csv.Error as exc:
            raise StorePackError(path.name, reader.line_num, f"bad CSV: {exc}") from None
    return out


def _float(file: str, line: int, col: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise StorePackError(file, line, f"{col} {value!r} is not a number") from None
    if not x >= 0 or x == float("inf"):  # also catches NaN
        raise StorePackError(file, line, f"{col} {value!r} must be a number >= 0")
    return x


def _int(file: str, line: int, col: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise StorePackError(file, line, f"{col} {value!r} is not an integer") from None
    if n < 0:
        raise StorePackError(file, line, f"{col} {value!r} must be >= 0")
    return n


def _date(file: str, line: int, col: str, value: str, optional: bool) -> date | None:
    if not value:
        if optional:
            return None
        raise StorePackError(file, line, f"{col} is empty")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise StorePackError(
            file, line, f"{col} {value!r} is not an ISO date (YYYY-MM-DD)"
        ) from None


def _require(file: str, line: int, row: dict[str, str], cols: tuple[str, ...]) -> None:
    for col in cols:
        if not row.get(col):
            raise StorePackError(file, line, f"{col} is empty")


def _load_products(path: Path) -> dict[str, ProductRecord]:
    products: dict[str, ProductRecord] = {}
    for line, row in _rows(path, _PRODUCT_COLS):
        _require(path.name, line, row, ("sku", "title", "category"))
        sku = row["sku"]
        if sku in products:
            raise StorePackError(path.name, line, f"duplicate sku {sku!r}")
        products[sku] = ProductRecord(
            sku=sku,
            title=row["title"],
            description=row["description"],
            category=row["category"],
            price=_float(path.name, line, "price", row["price"]),
            stock=_int(path.name, line, "stock", row["stock"]),
            brand=row.get("brand", ""),
            image_url=row.get("image_url", ""),
            url=row.get("url", ""),
        )
    if not products:
        raise StorePackError(path.name, None, "no products")
    return products


def _parse_items(
    file: str, line: int, value: str, products: dict[str, ProductRecord]
) -> tuple[tuple[str, int], ...]:
    items: list[tuple[str, int]] = []
    for part in value.split(";"):
        sku, sep, qty = part.strip().rpartition(":")
        if not sep or not sku:
            raise StorePackError(file, line, f"items part {part!r} is not SKU:QTY")
        if sku not in products:
            raise StorePackError(file, line, f"items name unknown sku {sku!r}")
        n = _int(file, line, "item quantity", qty)
        if n == 0:
            raise StorePackError(file, line, f"item quantity of {sku!r} is 0")
        items.append((sku, n))
    return tuple(items)


def _load_orders(
    path: Path, pattern: re.Pattern[str], products: dict[str, ProductRecord]
) -> dict[str, OrderRecord]:
    orders: dict[str, OrderRecord] = {}
    f = path.name
    for line, row in _rows(path, _ORDER_COLS):
        _require(f, line, row, ("order_id", "email", "status", "items"))
        oid = row["order_id"]
        if oid in orders:
            raise StorePackError(f, line, f"duplicate order_id {oid!r}")
        if not pattern.fullmatch(oid):
            raise StorePackError(f, line, f"order_id {oid!r} does not match order_id_pattern")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", row["email"]):
            raise StorePackError(f, line, f"email {row['email']!r} is not an email address")
        if row["status"] not in ORDER_STATUSES:
            raise StorePackError(
                f, line, f"status {row['status']!r} is not one of {', '.join(ORDER_STATUSES)}"
            )
        orders[oid] = OrderRecord(
            order_id=oid,
            email=row["email"],
            status=row["status"],
            placed_at=_date(f, line, "placed_at", row["placed_at"], optional=False) or date.min,
            shipped_at=_date(f, line, "shipped_at", row["shipped_at"], optional=True),
            carrier=row["carrier"],
            tracking_number=row["tracking_number"],
            eta=_date(f, line, "eta", row["eta"], optional=True),
            items=_parse_items(f, line, row["items"], products),
            total=_float(f, line, "total", row["total"]),
            address=row.get("address", ""),
        )
    return orders


def _load_knowledge(folder: Path) -> list[Passage]:
    if not folder.is_dir():
        raise StorePackError("knowledge/", None, "folder is missing")
    passages: list[Passage] = []
    for md in sorted(folder.glob("*.md")):
        passages.extend(_sections(md))
    if not passages:
        raise StorePackError("knowledge/", None, "no '## ' section in any knowledge/*.md file")
    return passages


def _sections(md: Path) -> list[Passage]:
    out: list[Passage] = []
    title: str | None = None
    body: list[str] = []
    start = 0

    def flush() -> None:
        if title is None:
            return
        text = "\n".join(body).strip()
        if not text:
            raise StorePackError(f"knowledge/{md.name}", start, f"section {title!r} is empty")
        out.append(Passage(source=md.name, title=title, text=text))

    for no, line in enumerate(md.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("## "):
            flush()
            title, body, start = line[3:].strip(), [], no
        elif title is not None and not line.startswith("# "):
            body.append(line)
    flush()
    return out


def _load_interactions(path: Path, products: dict[str, ProductRecord]) -> list[Interaction]:
    if not path.exists():
        return []  # optional file
    from datetime import datetime

    out: list[Interaction] = []
    for line, row in _rows(path, _INTERACTION_COLS):
        _require(path.name, line, row, _INTERACTION_COLS)
        if row["event"] not in EVENTS:
            raise StorePackError(
                path.name, line, f"event {row['event']!r} is not one of {', '.join(EVENTS)}"
            )
        if row["sku"] not in products:
            raise StorePackError(path.name, line, f"unknown sku {row['sku']!r}")
        try:
            datetime.fromisoformat(row["timestamp"])
        except ValueError:
            raise StorePackError(
                path.name, line, f"timestamp {row['timestamp']!r} is not ISO 8601"
            ) from None
        out.append(Interaction(row["user_id"], row["sku"], row["event"], row["timestamp"]))
    return out
