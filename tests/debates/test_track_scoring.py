"""Scoring a verdict: return, direction hit inside and outside the band, Brier score, bins."""

import pytest

from debates import scoring


def test_realised_return_hand_computed():
    assert scoring.realised_return_pct(100.0, 103.0) == pytest.approx(3.0)
    assert scoring.realised_return_pct(200.0, 199.0) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="positive"):
        scoring.realised_return_pct(0.0, 1.0)


@pytest.mark.parametrize(
    ("recommendation", "return_pct", "hit"),
    [
        ("buy", 3.0, True),
        ("buy", 1.0, False),  # on the band's edge: not above it
        ("buy", 0.5, False),
        ("buy", -2.0, False),
        ("sell", -2.0, True),
        ("sell", -1.0, False),
        ("sell", 2.0, False),
        ("hold", 0.5, True),
        ("hold", 1.0, True),  # the band is inclusive for hold
        ("hold", -1.0, True),
        ("hold", 1.5, False),
        ("hold", -1.5, False),
    ],
)
def test_direction_hit_with_a_one_percent_band(recommendation, return_pct, hit):
    assert scoring.direction_hit(recommendation, return_pct, 1.0) is hit


def test_brier_score_hand_computed():
    assert scoring.brier_score(0.8, True) == pytest.approx(0.04)
    assert scoring.brier_score(0.8, False) == pytest.approx(0.64)
    assert scoring.brier_score(0.3, True) == pytest.approx(0.49)
    assert scoring.brier_score(1.0, True) == 0.0
    assert scoring.brier_score(1.0, False) == 1.0


@pytest.mark.parametrize(
    ("confidence", "bin_"),
    [(0.0, 0), (0.05, 0), (0.1, 1), (0.35, 3), (0.7, 7), (0.99, 9), (1.0, 9)],
)
def test_calibration_bins_of_a_tenth(confidence, bin_):
    assert scoring.calibration_bin(confidence) == bin_


def test_an_unparsed_verdict_gets_its_return_but_no_score():
    outcome = scoring.score(
        recommendation="hold", confidence=0.0, parsed=False, entry=100.0, exit=100.5, band_pct=1.0
    )
    assert outcome.return_pct == pytest.approx(0.5)
    assert (outcome.hit, outcome.brier) == (None, None)
    scored = scoring.score(
        recommendation="hold", confidence=0.0, parsed=True, entry=100.0, exit=100.5, band_pct=1.0
    )
    assert (scored.hit, scored.brier) == (True, 1.0)
