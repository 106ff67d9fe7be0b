"""The benchmark's statistics: percentiles, 0.1 ms histograms merged over clients, delivery."""

from datetime import datetime

from bench import stats
from streaming.protocol import STATUS_UPDATE, TOKEN_RECEIVED, TURN_CHANGE

T0 = "2026-01-01T00:00:00.000Z"


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_percentile_rounds_to_the_nearest_rank_and_is_none_when_empty():
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 0.0) == 1.0
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 3.0
    assert stats.percentile([4.0, 1.0, 3.0, 2.0], 1.0) == 4.0


def test_percentile_from_hist_gives_the_bucket_middle_in_ms():
    assert stats.percentile_from_hist({}, 0.5) is None
    hist = {10: 3, 20: 1, 500: 1}  # 0.1 ms buckets: 1.0, 2.0 and 50.0 ms
    assert stats.percentile_from_hist(hist, 0.5) == 1.05
    assert stats.percentile_from_hist(hist, 0.99) == 2.05
    assert stats.percentile_from_hist(hist, 1.0) == 50.05


def test_merged_adds_the_counts_of_every_client():
    results = [{"errors": {"timeout": 2}}, {"errors": {"timeout": 1, "refused": 4}}, {"errors": {}}]
    assert stats.merged(results, "errors") == {"timeout": 3, "refused": 4}
    assert stats.merge_counts({10: 1}, {10: 2, 20: 1}) == {10: 3, 20: 1}


def test_timing_pools_the_times_of_every_client():
    results = [{"times": [0.010, 0.030]}, {"times": [0.020]}, {"times": []}]
    assert stats.timing(results) == {"p50_ms": 20.0, "p99_ms": 30.0}


def watch_answer(viewers: list, token_hist: dict, token_max: float, sample=None) -> dict:
    return {
        "viewers": viewers,
        "token_hist": token_hist,
        "event_hist": {**token_hist, 1: 1},
        "token_max": token_max,
        "token_frames": sum(token_hist.values()),
        "sample": sample,
    }


def test_analyse_counts_complete_viewers_gaps_duplicates_and_lost_sockets():
    start = epoch(T0) - 0.005
    sample = [
        (1, STATUS_UPDATE, T0, None, 0),
        (2, TURN_CHANGE, "2026-01-01T00:00:00.010Z", 1, 0),
        (3, TOKEN_RECEIVED, "2026-01-01T00:00:00.020Z", 1, 5),
        (4, TOKEN_RECEIVED, "2026-01-01T00:00:00.070Z", 1, 5),
        (5, STATUS_UPDATE, "2026-01-01T00:00:00.100Z", None, 0),
    ]
    # (lastSeq, final seq, final status, gaps, gap count, dups, reordered, first token, close)
    complete = (5, 5, "completed", [], 0, 0, 0, start + 0.020, None)
    gap = (5, 5, "completed", [3], 1, 0, 0, start + 0.030, None)
    lost = (2, 0, "", [], 0, 0, 0, 0.0, 1006)
    duplicate = (5, 5, "completed", [], 0, 1, 0, start + 0.040, None)
    results = [
        watch_answer([complete, gap], {10: 2, 20: 1}, 0.002, sample),
        watch_answer([lost, duplicate], {10: 1, 500: 1}, 0.050),
    ]

    report = stats.analyse(results, start, viewers=5, flush_ms=50)

    delivery = report["delivery"]
    assert delivery["complete"] == 1
    assert delivery["complete_share"] == 0.2
    assert delivery["viewers_missing_events"] == 3  # the gap, the lost socket, the silent one
    assert delivery["missing_events"] == 1 + 3
    assert delivery["duplicates"] == 1
    assert delivery["close_codes"] == {"1006": 1}
    assert delivery["missing_sample"] == [
        {"gaps": [3], "lastSeq": 5, "missingAfterLast": 0},
        {"gaps": [], "lastSeq": 2, "missingAfterLast": 3},
    ]
    assert report["token_latency_ms"] == {"p50": 1.05, "p99": 2.05, "max": 50.0, "frames": 5}
    assert report["event_latency_ms"]["p50"] == 1.05
    assert report["first_token_ms"] == {"p50": 30.0, "p99": 40.0, "max": 40.0, "viewers": 3}
    debate = report["debate"]
    assert (debate["final_seq"], debate["final_status"]) == (5, "completed")
    assert (debate["events"], debate["token_frames"], debate["token_chars"]) == (5, 2, 10)
    assert debate["duration_s"] == 0.1
    assert debate["start_to_first_event_ms"] == 5.0
    assert debate["start_to_first_token_event_ms"] == 25.0
    assert debate["token_frame_interval_ms_p50"] == 50.0
    assert debate["flush_ms_configured"] == 50


def test_analyse_without_a_sample_or_viewers_still_reports():
    report = stats.analyse([watch_answer([], {}, 0.0)], 0.0, viewers=2, flush_ms=50)

    assert report["delivery"]["complete"] == 0
    assert report["delivery"]["viewers_missing_events"] == 2
    assert report["token_latency_ms"]["p50"] is None
    assert report["debate"] == {"final_seq": 0, "final_status": None}
