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


def watch_answer(
    viewers: list, token_hist: dict, token_max: float, sample=None, flush_hist=None, storm=None
) -> dict:
    return {
        "viewers": viewers,
        "token_hist": token_hist,
        "token_flush_hist": flush_hist or {},
        "event_hist": {**token_hist, 1: 1},
        "event_flush_hist": {**(flush_hist or {}), 1: 1},
        "storm_hist": storm or {},
        "token_max": token_max,
        "token_frames": sum(token_hist.values()),
        "replayed": 0,
        "sample": sample,
    }


def summary(last, final, status, gaps=(), dups=0, first_token=0.0, close=None, **more) -> dict:
    return {
        "last": last,
        "final": final,
        "status": status,
        "gaps": list(gaps),
        "n_gaps": len(gaps),
        "dups": dups,
        "reordered": 0,
        "first_token": first_token,
        "close": close,
        "reconnects": 0,
        "rehome": [],
        "disrupted": False,
        **more,
    }


def test_analyse_counts_complete_viewers_gaps_duplicates_and_lost_sockets():
    start = epoch(T0) - 0.005
    t0 = epoch(T0)
    # (seq, type, created, turn, token length, published): tokens sent 5 ms after creation
    sample = [
        (1, STATUS_UPDATE, T0, None, 0, t0),
        (2, TURN_CHANGE, "2026-01-01T00:00:00.010Z", 1, 0, t0 + 0.010),
        (3, TOKEN_RECEIVED, "2026-01-01T00:00:00.020Z", 1, 5, t0 + 0.025),
        (4, TOKEN_RECEIVED, "2026-01-01T00:00:00.070Z", 1, 5, t0 + 0.085),
        (5, STATUS_UPDATE, "2026-01-01T00:00:00.100Z", None, 0, t0 + 0.100),
    ]
    complete = summary(5, 5, "completed", first_token=start + 0.020)
    gap = summary(5, 5, "completed", gaps=[3], first_token=start + 0.030)
    lost = summary(2, 0, "", close=1006)
    duplicate = summary(5, 5, "completed", dups=1, first_token=start + 0.040)
    results = [
        watch_answer([complete, gap], {10: 2, 20: 1}, 0.002, sample, flush_hist={5: 3}),
        watch_answer([lost, duplicate], {10: 1, 500: 1}, 0.050, flush_hist={5: 1, 300: 1}),
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
    assert report["token_flush_latency_ms"] == {"p50": 0.55, "p99": 0.55, "count": 5}
    assert report["event_latency_ms"]["p50"] == 1.05
    assert report["first_token_ms"] == {"p50": 30.0, "p99": 40.0, "max": 40.0, "viewers": 3}
    debate = report["debate"]
    assert (debate["final_seq"], debate["final_status"]) == (5, "completed")
    assert (debate["events"], debate["token_frames"], debate["token_chars"]) == (5, 2, 10)
    assert debate["duration_s"] == 0.1
    assert debate["start_to_first_event_ms"] == 5.0
    assert debate["start_to_first_token_event_ms"] == 25.0
    assert debate["start_to_first_token_sent_ms"] == 30.0
    assert debate["token_frame_interval_ms_p50"] == 60.0  # between flushes, not creations
    assert debate["flush_ms_configured"] == 50


def test_analyse_without_a_sample_or_viewers_still_reports():
    report = stats.analyse([watch_answer([], {}, 0.0)], 0.0, viewers=2, flush_ms=50)

    assert report["delivery"]["complete"] == 0
    assert report["delivery"]["viewers_missing_events"] == 2
    assert report["token_latency_ms"]["p50"] is None
    assert report["debate"] == {"final_seq": 0, "final_status": None}


def test_rehoming_reports_the_time_back_and_the_undisturbed_viewers_latency():
    moved = summary(9, 9, "completed", reconnects=2, rehome=[0.4], disrupted=True)
    twice = summary(9, 9, "completed", reconnects=2, rehome=[0.3, 1.2], disrupted=True)
    gave_up = summary(4, 0, "", close=1006, reconnects=30, disrupted=True)
    stayed = summary(9, 9, "completed")
    results = [
        watch_answer([moved, stayed], {}, 0.0, storm={100: 60, 4000: 1}),
        watch_answer([twice, gave_up], {}, 0.0, storm={100: 38, 4000: 1}),
    ]

    report = stats.rehoming(results)

    assert report["viewers_disrupted"] == 3
    assert report["viewers_rehomed"] == 2
    assert report["reconnect_attempts"] == 34
    assert (report["rehome_p50_ms"], report["rehome_p99_ms"]) == (400.0, 1200.0)
    assert report["rehome_max_ms"] == 1200.0
    assert report["others_token_latency_ms"] == {"p50": 10.05, "p99": 400.05, "count": 100}
