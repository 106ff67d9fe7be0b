"""Where a debate started from a sync view runs: its own thread with Redis, else the server loop."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.utils import timezone

from debates import janitor
from debates.models import Debate
from debates.runs import launch
from debates.runs.run import local_run
from tests.stubs.events import close_async_db_connections  # noqa: F401 - a fixture
from tradeapp.instance import process_id

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_settings", "close_async_db_connections"),
]


async def _start_from_a_view(debate_id):
    """Launch as the start view does: sync code in a thread under this (server) loop."""
    future = await sync_to_async(launch.launch)(debate_id)
    run = local_run(debate_id)
    status = await asyncio.wrap_future(future)
    return run, status


def _redis_settings(redis_url, redis_prefix):
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": redis_prefix},
        }
    }
    return override_settings(
        REDIS_URL=redis_url, CHANNEL_LAYERS=layers, STREAMING_KEY_PREFIX=redis_prefix
    )


async def test_with_redis_the_debate_runs_on_the_runner_thread(claimed, redis_url, redis_prefix):
    with _redis_settings(redis_url, redis_prefix):
        debate = await sync_to_async(claimed)(max_turns=1, runner_id=process_id())
        run, status = await _start_from_a_view(debate.id)
    assert status == "completed"
    assert run.loop is launch.runner_loop()
    assert run.loop is not asyncio.get_running_loop()


async def test_without_redis_it_runs_on_the_server_loop(claimed):
    with override_settings(REDIS_URL=""):
        debate = await sync_to_async(claimed)(max_turns=1, runner_id=process_id())
        run, status = await _start_from_a_view(debate.id)
    assert status == "completed"
    assert run.loop is asyncio.get_running_loop()


async def test_with_redis_a_taken_over_debate_runs_on_the_runner_thread(
    claimed, redis_url, redis_prefix
):
    with _redis_settings(redis_url, redis_prefix), override_settings(DEBATE_STALE_AFTER_S=30):
        debate = await sync_to_async(claimed)(max_turns=1, runner_id="dead-process")
        await Debate.objects.filter(pk=debate.pk).aupdate(
            heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        sweeper = asyncio.create_task(janitor.janitor())
        try:
            for _ in range(600):
                run = local_run(debate.id)
                future = launch.background_future(debate.id)
                if run is not None and future is not None:
                    break
                await asyncio.sleep(0.05)
            assert await asyncio.wrap_future(future) == "completed"
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
    assert run.runner_id == process_id()
    assert run.loop is launch.runner_loop()
