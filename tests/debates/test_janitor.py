"""A serving process's janitor takes over a stale debate at once and resumes it."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.utils import timezone

from debates import janitor
from debates.models import Argument, Debate, DebateStatus
from debates.runs import launch
from tests.stubs.events import BIG_LAYER, close_async_db_connections  # noqa: F401 - a fixture
from tradeapp.instance import process_id

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]


def _stale_debate() -> Debate:
    debate = Debate.objects.create(
        asset="ETH",
        max_turns=2,
        status=DebateStatus.RUNNING,
        runner_id="dead-process",
        heartbeat_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(hours=1),
    )
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Saved before the crash.")
    return debate


async def test_the_janitor_resumes_a_stale_debate_at_once_and_starts_once_per_loop():
    with override_settings(
        OFFLINE_LLM_TOKENS_PER_S=0,
        TOKEN_FLUSH_INTERVAL_MS=0,
        DEBATE_STALE_AFTER_S=30,
        CHANNEL_LAYERS=BIG_LAYER,
    ):
        debate = await sync_to_async(_stale_debate)()
        tasks_before = set(janitor._tasks)
        janitor.ensure_janitor()
        janitor.ensure_janitor()  # the first scope of every request calls it: one task
        started = [t for t in janitor._tasks - tasks_before if not t.done()]
        assert len(started) == 1
        try:
            for _ in range(600):
                await debate.arefresh_from_db()
                if debate.status != DebateStatus.RUNNING:
                    break
                await asyncio.sleep(0.05)
            assert debate.status == DebateStatus.COMPLETED
            assert debate.runner_id == process_id()
            turns = [(a.turn, a.agent) async for a in Argument.objects.filter(debate=debate)]
            assert turns == [(1, "bull"), (2, "bear"), (3, "moderator")]
        finally:
            for task in [*started, *launch._tasks]:
                task.cancel()
            await asyncio.gather(*started, *launch._tasks, return_exceptions=True)
