"""Exact resume with the engine's real runner (POST /start/) across two daphne processes."""

import pytest

from tests.e2e.servers import daphne_cluster
from tests.e2e.test_ws_resume import _scenario

pytestmark = pytest.mark.e2e


async def test_random_drops_with_the_engine_runner(tmp_path):
    """The real runner (POST /start/) in one process; viewers on both."""
    with daphne_cluster(tmp_path, 2, OFFLINE_LLM_TOKENS_PER_S="150") as servers:

        def start(debate_id, access):
            status, body = servers[0].api("POST", f"/api/debates/{debate_id}/start/", None, access)
            assert status == 202, body

        await _scenario(servers, start)
