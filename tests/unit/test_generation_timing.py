"""How the generation service's admission estimates one decoding step from the steps it ran."""

from __future__ import annotations

import pytest

from brain.generation import AdmissionTiming


def test_no_steps_yet_estimates_nothing() -> None:
    assert AdmissionTiming().step_s(4) == 0.0


def test_steps_of_one_batch_size_scale_with_the_rows() -> None:
    timing = AdmissionTiming()
    for _ in range(10):
        timing.add_step(2, 0.1)
    assert timing.step_s(4) == pytest.approx(0.2)
    assert timing.step_s(1) == pytest.approx(0.1)  # never below what was measured


def test_steps_of_several_sizes_fit_a_fixed_cost_plus_a_cost_per_row() -> None:
    timing = AdmissionTiming()
    for rows in (1, 2, 4, 8):
        timing.add_step(rows, 0.05 + 0.01 * rows)
    assert timing.step_s(16) == pytest.approx(0.21)


def test_a_long_reply_is_the_90th_percentile_of_recent_ones() -> None:
    timing = AdmissionTiming()
    assert timing.reply_tokens(unknown=64) == 64  # nothing finished yet
    for tokens in range(1, 11):
        timing.add_reply(tokens * 10)
    assert timing.reply_tokens(unknown=64) == 100
