"""Where a debate started from a sync view runs: its own thread with Redis, else the server loop."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from debates import runner
from tests.stubs.events import close_async_db_connections  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_settings", "close_async_db_connections"),
]


async def _start_from_a_view(debate_id):
    """Launch as the start view does: sync code in a thread under this (server) loop."""
    future = await sync_to_async(runner.launch)(debate_id)
    run = runner.local_run(debate_id)
    status = await asyncio.wrap_future(future)
    return run, status


async def test_with_redis_the_debate_runs_on_the_runner_thread(claimed, redis_url, redis_prefix):
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": redis_prefix},
        }
    }
    with override_settings(
        REDIS_URL=redis_url, CHANNEL_LAYERS=layers, STREAMING_KEY_PREFIX=redis_prefix
    ):
        debate = await sync_to_async(claimed)(max_turns=1, runner_id=runner.PROCESS_RUNNER_ID)
        run, status = await _start_from_a_view(debate.id)
    assert status == "completed"
    assert run.loop is runner._runner_loop()
    assert run.loop is not asyncio.get_running_loop()


@pytest.mark.parametrize("own_thread", [True, False])
async def test_without_redis_or_when_turned_off_it_runs_on_the_server_loop(
    claimed, redis_url, own_thread
):
    redis = "" if own_thread else redis_url  # either cause alone keeps it on the server loop
    with override_settings(REDIS_URL=redis, DEBATE_RUNNER_OWN_THREAD=own_thread):
        debate = await sync_to_async(claimed)(max_turns=1, runner_id=runner.PROCESS_RUNNER_ID)
        run, status = await _start_from_a_view(debate.id)
    assert status == "completed"
    assert run.loop is asyncio.get_running_loop()
