"""The track record on a real daphne: a debate's verdict is priced by its run and resolved by the
serving process's own timer (the janitor), then shown over REST."""

import asyncio
import time
from datetime import datetime

import pytest

from debates.engine.market import SampleMarketData
from tests.e2e.servers import daphne_cluster

pytestmark = pytest.mark.e2e

WAIT_S = 120


def _poll(server, access: str, path: str, done, what: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status, body = server.api("GET", path, token=access)
        assert status == 200, body
        if done(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{what} within {WAIT_S} s; last: {body}\n{server.log_tail()}")


def test_a_verdict_is_priced_then_resolved_by_the_serving_processs_timer(tmp_path):
    with daphne_cluster(
        tmp_path,
        1,
        use_redis=False,
        OFFLINE_LLM_TOKENS_PER_S="0",
        VERDICT_RESOLVE_INTERVAL_S="1",
        DB_CONN_MAX_AGE="0",  # one connection per request thread on PostgreSQL, none kept
    ) as (server,):
        access = server.token()["access"]
        status, debate = server.api(
            "POST",
            "/api/debates/",
            {"asset": "SOL", "maxTurns": 2, "verdictHorizonS": 3600},
            token=access,
        )
        assert status == 201, debate
        assert debate["verdictHorizonS"] == 3600
        path = f"/api/debates/{debate['id']}/"
        assert server.api("POST", f"{path}start/", token=access)[0] == 202
        done = _poll(server, access, path, lambda d: d["status"] == "completed", "no verdict")
        forecast = done["forecast"]
        assert forecast["source"] == "sample"
        assert forecast["isSample"] is True
        assert forecast["resolvedAt"] is None  # due in an hour
        _, record = server.api("GET", "/api/track-record/?asset=SOL", token=access)
        assert (record["overall"]["pending"], record["sampleData"]) == (1, True)

        # The hour passes (for this verdict): the serving process's janitor resolves it.
        server.shell(
            "from datetime import timedelta\n"
            "from django.utils import timezone\n"
            "from debates.models import Forecast\n"
            f"Forecast.objects.filter(pk='{debate['id']}').update(\n"
            "    made_at=timezone.now() - timedelta(hours=1), due_at=timezone.now())\n"
        )
        resolved = _poll(
            server, access, path, lambda d: d["forecast"]["resolvedAt"], "not resolved"
        )["forecast"]
        due_at = datetime.fromisoformat(resolved["dueAt"].replace("Z", "+00:00"))
        as_of = datetime.fromisoformat(done["market"]["asOf"].replace("Z", "+00:00"))
        exit_price = asyncio.run(SampleMarketData().price_at("SOL", due_at, series_end=as_of))
        assert resolved["exitPrice"] == exit_price
        assert resolved["returnPct"] == pytest.approx(
            (exit_price - forecast["price"]) / forecast["price"] * 100
        )
        assert resolved["hit"] in (True, False)
        _, record = server.api("GET", "/api/track-record/?asset=SOL", token=access)
        overall = record["overall"]
        assert (overall["pending"], overall["resolved"], overall["total"]) == (0, 1, 1)
        assert overall["meanBrier"] == pytest.approx(resolved["brier"])
