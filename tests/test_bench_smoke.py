"""Smoke test of `manage.py bench_stream`: a tiny real run, report structure, complete delivery."""

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.redis, pytest.mark.e2e]


def test_bench_stream_small_run_reports_complete_delivery(redis_url, tmp_path):
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "bench_stream",
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
            f"--json={report_path}",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=58,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())

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
    assert report["servers"]["alive_at_end"] == [True]
    for pid in report["servers"]["pids"]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
