"""Exact resume with the engine's real runner (POST /start/) across two daphne processes, and
/metrics aggregated over both processes (PROMETHEUS_MULTIPROC_DIR)."""

import pytest

from tests.e2e.servers import daphne_cluster
from tests.e2e.test_ws_resume import _scenario

pytestmark = pytest.mark.e2e


def _samples(server) -> dict[str, float]:
    status, body = server.api("GET", "/metrics")
    assert status == 200
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_random_drops_with_the_engine_runner(tmp_path):
    """The real runner (POST /start/) in one process; viewers on both."""
    with daphne_cluster(tmp_path, 2, OFFLINE_LLM_TOKENS_PER_S="150") as servers:

        def start(debate_id, access):
            status, body = servers[0].api("POST", f"/api/debates/{debate_id}/start/", None, access)
            assert status == 202, body

        await _scenario(servers, start)

        # The runner (and so the first token) was in process 0; process 1 must report it too.
        for server in servers:
            samples = _samples(server)
            assert samples["debate_time_to_first_token_seconds_count"] >= 1
            assert samples['debate_time_to_first_token_seconds_bucket{le="+Inf"}'] >= 1
            assert samples["ws_event_send_latency_seconds_count"] > 0
            assert samples["ws_reconnections_total"] > 0
            assert samples["ws_messages_sent_total"] > 0
