"""The soak's short variant (``python -m bench.soak --minutes N`` is the long one): debates back
to back, viewers churning over two processes, one process restarted twice. Afterwards no open
Viewer row, no group still subscribed, no Redis key without a TTL, every debate completed with
each turn once, no viewer saw a gap or a repeat, and the untouched process's memory is back within
the stated margin."""

import pytest

from bench.soak import SoakOptions, soak
from tests.e2e.servers import require_redis

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


async def test_a_short_soak_leaves_nothing_behind(tmp_path):
    options = SoakOptions(
        minutes=1.0,
        servers=2,
        viewers=12,
        debates=2,
        turns=2,
        restarts=2,
        redis_url=require_redis(),
        run_dir=tmp_path,
    )
    report = await soak(options)
    print(report)
    assert report["completed"] == report["debates"] >= 2, report
    assert report["turns_not_saved_once"] == [], report
    assert report["tally"]["violations"] == [], report
    assert report["tally"]["restarts"] == 2
    assert report["tally"]["connections"] > options.viewers
    assert report["tally"]["resumes"] > 0
    assert report["open_viewer_rows"] == 0, report
    assert report["subscribed_groups"] == [], report
    assert report["keys_without_ttl"] == [], report
    assert report["log_keys_past_ttl"] == [], report
    assert report["rss_growth_mib"] <= options.memory_margin_mib, report
    assert report["ok"]
