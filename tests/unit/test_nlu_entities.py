"""Entities (order ids, emails), label-file reading and scores —
the parts of understanding that need no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from brain.nlu import Nlu, NluDataError, read_labelled, scores


def _nlu() -> Nlu:
    # Entities need no model: an Nlu with no embedder or classifier is enough here.
    return Nlu(embedder=None, classifier=None, order_id_pattern=r"OG-\d{5}")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("where is OG-10231?", ["OG-10231"]),
        ("order og-10238 and OG-10245 please", ["OG-10238", "OG-10245"]),
        ("my order 10231", ["OG-10231"]),  # the digits alone, for a PREFIX-digits pattern
        ("call 0612345678 or see OG-1023", []),
    ],
)
def test_order_ids(text: str, ids: list[str]) -> None:
    assert _nlu().order_ids(text) == ids


def test_emails() -> None:
    text = "It's Ben.Rossi@Example.com. or ben@shop.example"
    assert Nlu.emails(text) == ["ben.rossi@example.com", "ben@shop.example"]
    assert Nlu.emails("no email @ here") == []


def test_read_labelled_autodetects_columns(tmp_path: Path) -> None:
    bitext = tmp_path / "b.csv"
    bitext.write_text("utterance,intent,category\nhi there,greet,X\nbye now,bye,Y\n")
    assert read_labelled(bitext) == (["hi there", "bye now"], ["greet", "bye"])
    banking = tmp_path / "k.csv"
    banking.write_text("text,category\ncard lost,lost_card\n")
    assert read_labelled(banking) == (["card lost"], ["lost_card"])
    odd = tmp_path / "o.csv"
    odd.write_text("a,b\nx,y\n")
    with pytest.raises(NluDataError):
        read_labelled(odd)
    assert read_labelled(odd, "a", "b") == (["x"], ["y"])


def test_scores() -> None:
    got = scores(["a", "a", "b", "b"], ["a", "b", "b", "zzz"])
    assert got["n"] == 4
    assert got["accuracy"] == 0.5
    # F1(a) = 2/3, F1(b) = 1/2; the unseen "zzz" is only a miss of its gold label
    assert got["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-3)
