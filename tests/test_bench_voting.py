"""The voting scenario's figures: tally latency per (vote, viewer) pair, worked out by hand."""

from bench.voting import Voting, side_of


def test_tally_latency_is_the_first_tally_with_the_votes_version_after_its_answer():
    voting = Voting(["http://127.0.0.1:1"], "d", ["t1", "t2", "t3"], window_s=2.0)
    voting.started, voting.finished = 100.0, 102.0
    voting.accepted = [(100.0, 1), (100.5, 2), (101.0, 3)]
    voting.request_s = [0.01, 0.02, 0.03]
    voting.codes = {"200": 3}
    results = [
        {
            "viewers": [
                # Saw version 2 at 100.3 and 3 at 101.4: latencies 0.3, 0 (before the answer,
                # so 0), 0.4.
                {"votes": [(100.3, 2), (101.4, 3)]},
                # Saw only version 1 (0.1 s after its answer): votes 2 and 3 never reached it.
                {"votes": [(100.1, 1)]},
            ]
        }
    ]
    report = voting.report(results)
    assert report["accepted"] == 3
    assert report["accepted_per_s"] == 1.5
    tally = report["tally_latency_ms"]
    assert (tally["pairs"], tally["never_seen"]) == (4, 2)
    assert tally["max"] == 400.0
    assert tally["p50"] == 300.0  # of 0, 100, 300 and 400 ms (the upper middle)
    assert report["votes_frames_per_viewer"] == {"mean": 1.5, "max": 2}
    assert report["viewers_with_final_tally"] == 1


def test_two_voters_in_three_back_the_bull():
    assert [side_of(i) for i in range(6)] == ["bear", "bull", "bull", "bear", "bull", "bull"]
