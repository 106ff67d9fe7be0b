"""Smoke tests of `manage.py bench_stream`: tiny real runs, report structure, complete delivery,
and a server killed under its viewers."""

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.redis, pytest.mark.e2e]


def bench_stream(report_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run manage.py bench_stream with these options; its process (which must succeed) and its
    JSON report."""
    proc = subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "bench_stream",
            *args,
            f"--json={report_path}",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(report_path.read_text())


def test_bench_stream_small_run_reports_complete_delivery(redis_url, tmp_path):
    report_path = tmp_path / "report.json"
    proc, report = bench_stream(
        report_path,
        "--workers=1",
        "--viewers=5",
        "--clients=1",
        "--turns=1",
        "--rate=400",
        "--flush-ms=20",
        "--warmup=0.2",
        "--connect-count=10",
        "--connect-rate=50",
        f"--redis-url={redis_url}",
        "--timeout=50",
    )

    assert report["ok"] is True
    assert report["debate"]["status"] == "completed"
    delivery = report["delivery"]
    assert delivery["viewers"] == 5
    assert delivery["complete"] == 5
    assert delivery["complete_share"] == 1
    assert delivery["missing_events"] == 0
    assert delivery["duplicates"] == 0
    assert delivery["close_codes"] == {}
    assert report["connect"]["connected"] == 5
    assert report["setup"]["connected"] == 10
    assert report["setup"]["errors"] == {}
    # Every token frame of every viewer was timed; every viewer saw a first token.
    assert report["debate"]["final_seq"] >= report["debate"]["events"] > 0
    assert report["token_latency_ms"]["frames"] == 5 * report["debate"]["token_frames"] > 0
    assert report["first_token_ms"]["viewers"] == 5
    for section, keys in {
        "token_latency_ms": ["p50", "p99", "max"],
        "first_token_ms": ["p50", "p99"],
        "setup": ["p50_ms", "p99_ms", "rate_per_s"],
        "server_resources": ["cpu_pct", "cpu_pct_per_1k_connections", "mb_per_1k_connections"],
    }.items():
        for key in keys:
            assert report[section][key] is not None, (section, key)
    assert report["debate"]["flush_ms_configured"] == 20
    # The table goes to stdout too, and nothing is left running (the command cleans up).
    assert "token latency p50 / p99 / max ms" in proc.stdout
    # Production -> receipt includes the coalescing wait that flush -> receipt leaves out.
    flushed = report["token_flush_latency_ms"]
    assert flushed["count"] == report["token_latency_ms"]["frames"]
    assert flushed["p50"] <= report["token_latency_ms"]["p50"]
    assert report["servers"]["alive_at_end"] == [True]
    for pid in report["servers"]["pids"]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_server_killed_under_its_viewers_loses_none_of_them(redis_url, tmp_path):
    report_path = tmp_path / "kill.json"
    proc, report = bench_stream(
        report_path,
        "--workers=2",
        "--viewers=30",
        "--clients=1",
        "--turns=3",
        "--rate=100",
        "--flush-ms=20",
        "--warmup=0.2",
        "--connect-count=0",
        "--kill-server=1",
        "--kill-at=1",
        f"--redis-url={redis_url}",
        "--timeout=90",
    )

    kill = report["kill"]
    assert kill["killed"] is True
    assert kill["viewers_on_it"] == 15
    # Every viewer of the killed server came back on the other one and resumed exactly.
    assert kill["viewers_disrupted"] == kill["viewers_rehomed"] == 15
    assert kill["rehome_p99_ms"] is not None
    assert kill["others_token_latency_ms"]["count"] > 0
    delivery = report["delivery"]
    assert delivery["complete"] == 30
    assert (delivery["missing_events"], delivery["duplicates"]) == (0, 0)
    assert delivery["reconnects"] >= 15
    assert report["servers"]["alive_at_end"] == [True, False]
    assert "re-home p50 / p99 / max ms" in proc.stdout


def test_bench_stream_voting_scenario_counts_votes_and_tally_latency(redis_url, tmp_path):
    _proc, report = bench_stream(
        tmp_path / "report.json",
        "--workers=1",
        "--viewers=4",
        "--clients=1",
        "--source=publisher",
        "--tokens-per-turn=400",  # 8 s of tokens: the votes (3 to 5 s) fall while it streams
        "--turns=1",
        "--rate=50",
        "--warmup=0.2",
        "--connect-count=0",
        "--voters=12",
        "--vote-window=2",
        "--vote-delay=3",
        f"--redis-url={redis_url}",
        "--timeout=80",
    )
    assert report["ok"] is True
    votes = report["votes"]
    assert (votes["voters"], votes["accepted"], votes["answers"]) == (12, 12, {"200": 12})
    assert votes["accepted_per_s"] > 0
    # Every viewer saw every accepted vote in a tally, and the final one.
    assert votes["tally_latency_ms"]["pairs"] == 4 * 12
    assert votes["tally_latency_ms"]["never_seen"] == 0
    assert votes["tally_latency_ms"]["p99"] is not None
    assert votes["viewers_with_final_tally"] == 4
    assert 0 < votes["votes_frames_per_viewer"]["max"] <= 12
    # Token frames split into those received during the votes and the others.
    during, outside = (
        votes["token_latency_during_votes_ms"],
        votes["token_latency_outside_votes_ms"],
    )
    assert during["count"] + outside["count"] == report["token_latency_ms"]["frames"] > 0
