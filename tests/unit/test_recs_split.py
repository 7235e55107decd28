"""The inner split that the recommender tunes itself on: only the validation users lose
their last item, and those items are what they are validated on."""

from __future__ import annotations

from brain.recs_bundle import inner_split


def test_only_validation_users_lose_their_last_item() -> None:
    seqs = [[u * 10 + k for k in range(1, 2 + u % 4)] for u in range(100)]  # 1..4 items
    train, stop, blend = inner_split(seqs, valid_users=10, seed=0)
    assert len(stop) == len(blend) == 10 and not set(stop) & set(blend)
    held = set(stop) | set(blend)
    for u, (seq, kept) in enumerate(zip(seqs, train, strict=True)):
        if u in held:
            assert len(seq) >= 2 and kept == seq[:-1]  # its last item is never trained on
        else:
            assert kept == seq  # everyone else's history stays whole


def test_a_small_log_holds_out_one_user_each() -> None:
    seqs = [[1, 2], [3, 4, 5], [6], [7, 8]]
    train, stop, blend = inner_split(seqs, valid_users=4000, seed=1)
    assert len(stop) == len(blend) == 1  # three histories of two or more items: one each
    assert train[2] == [6]  # a single item has nothing to hold out


def test_a_log_smaller_than_the_validation_size_keeps_half_its_histories_whole() -> None:
    seqs = [[u, u + 100] for u in range(1, 41)]
    train, stop, blend = inner_split(seqs, valid_users=4000, seed=0)
    assert len(stop) == len(blend) == 10
    assert sum(t == s for t, s in zip(train, seqs, strict=True)) == 20


def test_the_seed_draws_other_validation_users() -> None:
    seqs = [[u, u + 1000] for u in range(1, 500)]
    a = inner_split(seqs, valid_users=50, seed=0)[1]
    b = inner_split(seqs, valid_users=50, seed=1)[1]
    assert set(a) != set(b)
