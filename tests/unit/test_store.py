"""The store pack loader: the demo pack loads; a broken pack fails naming file, line, problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from brain.config import DEMO_STORE
from brain.store import OrderActionError, PackStore, StorePackError, load_store


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A writable copy of the demo pack."""
    return Path(shutil.copytree(DEMO_STORE, tmp_path / "shop"))


def _edit_line(path: Path, line_no: int, old: str, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert old in lines[line_no - 1]
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")


def _fails(pack: Path) -> StorePackError:
    with pytest.raises(StorePackError) as info:
        load_store(pack)
    return info.value


def test_demo_pack_loads() -> None:
    store = load_store(DEMO_STORE)
    assert isinstance(store, PackStore)
    assert len(store.products()) >= 200
    assert {p.category for p in store.products()} >= {"running shoes", "apparel", "home"}
    assert any(p.stock == 0 for p in store.products())
    statuses = {o.status for o in store.orders_for_email("anna.dahl@example.com")}
    assert statuses  # the first order's owner
    all_statuses = {store.order(f"OG-{10231 + 7 * i}").status for i in range(5)}  # type: ignore[union-attr]
    assert all_statuses == {"processing", "shipped", "delivered", "cancelled", "returned"}
    assert {p.source for p in store.passages()} >= {"returns.md", "shipping.md", "refunds.md"}
    assert store.interactions()
    assert store.version()


def test_bad_price_names_file_and_line(pack: Path) -> None:
    line3 = (pack / "products.csv").read_text().splitlines()[2]
    price = line3.split(",")[-5]  # sku,title,"description",category,price,stock,brand,img,url
    _edit_line(pack / "products.csv", 3, f",{price},", ",-4.5,")
    err = _fails(pack)
    assert (err.file, err.line) == ("products.csv", 3)
    assert "price" in err.problem
    assert "products.csv:3" in str(err)


def test_unknown_status(pack: Path) -> None:
    _edit_line(pack / "orders.csv", 2, ",shipped,", ",lost,")
    err = _fails(pack)
    assert (err.file, err.line) == ("orders.csv", 2)
    assert "status 'lost'" in err.problem


def test_missing_file(pack: Path) -> None:
    (pack / "orders.csv").unlink()
    err = _fails(pack)
    assert err.file == "orders.csv"
    assert "missing" in err.problem


def test_bad_regex(pack: Path) -> None:
    toml = pack / "shop.toml"
    toml.write_text(toml.read_text().replace('"OG-\\\\d{5}"', '"OG-(\\\\d{5}"'))
    err = _fails(pack)
    assert err.file == "shop.toml"
    assert err.line is not None and "order_id_pattern" in err.problem


def test_missing_shop_key(pack: Path) -> None:
    toml = pack / "shop.toml"
    toml.write_text("\n".join(x for x in toml.read_text().splitlines() if "currency" not in x))
    err = _fails(pack)
    assert "'currency' is missing" in err.problem


def test_support_phone_is_optional_and_checked(pack: Path) -> None:
    assert load_store(pack).info.support_phone == ""  # the demo shop has none
    toml = pack / "shop.toml"
    toml.write_text(toml.read_text() + 'support_phone = "+49 30 1234 5678"\n')
    assert load_store(pack).info.support_phone == "+49 30 1234 5678"
    toml.write_text(toml.read_text().replace('"+49 30 1234 5678"', '"call us"'))
    err = _fails(pack)
    assert err.file == "shop.toml" and err.line is not None and "support_phone" in err.problem


def test_unknown_sku_in_items(pack: Path) -> None:
    _edit_line(pack / "orders.csv", 4, "RUN-021:1", "NOPE-1:1")
    err = _fails(pack)
    assert (err.file, err.line) == ("orders.csv", 4)
    assert "NOPE-1" in err.problem


def test_bad_date_and_duplicate_sku(pack: Path, tmp_path: Path) -> None:
    _edit_line(pack / "orders.csv", 2, "2025-02-01", "01/02/2025")
    assert "ISO date" in _fails(pack).problem
    other = Path(shutil.copytree(DEMO_STORE, tmp_path / "other"))
    products = other / "products.csv"
    lines = products.read_text().splitlines()
    products.write_text("\n".join([*lines, lines[1]]) + "\n")
    err = _fails(other)
    assert err.line == len(lines) + 1 and "duplicate sku" in err.problem


def test_knowledge_needs_a_section(pack: Path) -> None:
    for md in (pack / "knowledge").glob("*.md"):
        md.write_text(md.read_text().replace("## ", "### "))
    err = _fails(pack)
    assert err.file == "knowledge/" and "##" in err.problem


def test_bad_interaction_event(pack: Path) -> None:
    _edit_line(pack / "interactions.csv", 5, ",view,", ",like,")
    err = _fails(pack)
    assert (err.file, err.line) == ("interactions.csv", 5)


def test_cancel_and_change_address_only_while_processing() -> None:
    store = load_store(DEMO_STORE)
    processing = next(o for o in store.orders_for_email("ben.rossi@example.com"))
    assert processing.status == "processing"
    moved = store.change_address(processing.order_id, "1 New Road, Graz 8010")
    assert moved.address == "1 New Road, Graz 8010"
    assert store.cancel_order(processing.order_id).status == "cancelled"
    with pytest.raises(OrderActionError):
        store.cancel_order(processing.order_id)
    # in memory only: a fresh load sees the pack unchanged
    assert load_store(DEMO_STORE).order(processing.order_id).status == "processing"  # type: ignore[union-attr]
