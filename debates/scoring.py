"""Scoring a verdict against the market: realised return, direction hit, Brier score, bins.

Pure functions (no ORM): services store what they compute, selectors aggregate the same rules
in the database, and the tests check both against hand-computed values.
"""

import math
from dataclasses import dataclass

CALIBRATION_BINS = 10  # confidence bins of 0.1: [0, 0.1), [0.1, 0.2) ... [0.9, 1.0]


@dataclass(frozen=True)
class Outcome:
    """What a resolved verdict scored; ``hit`` and ``brier`` are None for an unparsed one."""

    return_pct: float
    hit: bool | None
    brier: float | None


def realised_return_pct(entry: float, exit: float) -> float:
    """Simple return from the verdict's price to the price at its due time, in percent."""
    if entry <= 0:
        raise ValueError("a verdict's price must be positive")
    return (exit - entry) / entry * 100.0


def direction_hit(recommendation: str, return_pct: float, band_pct: float) -> bool:
    """buy hits above +band, sell below -band, hold inside [-band, +band]."""
    if recommendation == "buy":
        return return_pct > band_pct
    if recommendation == "sell":
        return return_pct < -band_pct
    if recommendation == "hold":
        return -band_pct <= return_pct <= band_pct
    raise ValueError(f"unknown recommendation {recommendation!r}")


def brier_score(confidence: float, hit: bool) -> float:
    """(confidence - hit)^2, confidence in [0, 1], hit 1 or 0: 0 is perfect, 1 the worst."""
    return (confidence - (1.0 if hit else 0.0)) ** 2


def calibration_bin(confidence: float, bins: int = CALIBRATION_BINS) -> int:
    """The bin of a confidence: floor(confidence * bins), 1.0 in the top bin."""
    return min(math.floor(confidence * bins), bins - 1)


def score(
    *,
    recommendation: str,
    confidence: float,
    parsed: bool,
    entry: float,
    exit: float,
    band_pct: float,
) -> Outcome:
    """Score one verdict; an unparsed one gets its return only (it is counted apart)."""
    ret = realised_return_pct(entry, exit)
    if not parsed:
        return Outcome(return_pct=ret, hit=None, brier=None)
    hit = direction_hit(recommendation, ret, band_pct)
    return Outcome(return_pct=ret, hit=hit, brier=brier_score(confidence, hit))
