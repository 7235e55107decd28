"""Entities (order ids, emails), the out-of-scope decision, label-file reading and scores —
the parts of understanding that need no model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brain.nlu import Nlu, NluDataError, read_intent, read_labelled, scores


def _nlu() -> Nlu:
    # Entities need no model: an Nlu with no embedder or intent model is enough here.
    return Nlu(
        embedder=None,  # type: ignore[arg-type]
        model=None,  # type: ignore[arg-type]
        order_id_pattern=r"OG-\d{5}",
        threshold=0.5,
        oos_threshold=1.0,
    )


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


def test_a_confident_intent_is_the_decision() -> None:
    got = read_intent(["out_of_scope", "track_order"], np.array([0.1, 0.9]), threshold=0.5)
    assert (got.name, got.decision, got.unsure) == ("track_order", "track_order", False)


def test_an_unsure_intent_is_rejected_as_out_of_scope() -> None:
    labels = ["cancel_order", "out_of_scope", "track_order"]
    got = read_intent(labels, np.array([0.35, 0.25, 0.4]), threshold=0.5)
    assert got.name == "track_order" and got.unsure
    assert got.decision == "out_of_scope"
    assert [name for name, _ in got.ranked] == ["track_order", "cancel_order", "out_of_scope"]


def test_a_model_without_out_of_scope_rejects_nothing() -> None:
    got = read_intent(["card_arrival", "lost_card"], np.array([0.45, 0.55]), threshold=0.9)
    assert got.decision == "lost_card"


def test_a_message_half_placed_out_of_scope_is_rejected_though_an_intent_is_on_top() -> None:
    labels = ["out_of_scope", "track_order", "get_refund"]
    got = read_intent(labels, np.array([0.3, 0.6, 0.1]), threshold=0.3, oos_threshold=0.25)
    assert got.name == "track_order"
    assert got.decision == "out_of_scope"
