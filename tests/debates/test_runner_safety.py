"""Runner safety: nothing leaves a debate `running` forever, nothing leaks, events follow saves."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from debates import services
from debates.engine.state import ArgumentItem
from debates.models import Argument, Debate
from debates.runs import launch
from debates.runs import run as run_module
from debates.runs.run import DebateRun
from streaming import control, protocol
from tests.stubs.events import (
    EventCollector,
    FlakyModel,
    close_async_db_connections,  # noqa: F401 - a fixture
)
from tradeapp.instance import process_id

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_settings", "close_async_db_connections"),
]


async def test_a_model_that_hangs_mid_turn_fails_the_debate_instead_of_heartbeating_forever(
    claimed,
):
    debate = await sync_to_async(claimed)(max_turns=3)
    with override_settings(DEBATE_HEARTBEAT_S=0.05, DEBATE_IDLE_TIMEOUT_S=0.3):
        async with EventCollector(debate.id) as events:
            run = DebateRun(debate.id, runner_id="r1", llm=FlakyModel(hang_on_turn=2))
            assert await run.run() == "failed"
            await events.finished.wait()
    await debate.arefresh_from_db()
    assert debate.status == "failed"
    assert debate.error == "No progress for 0.3 s: the LLM or a service stalled."
    assert [a.turn async for a in Argument.objects.filter(debate=debate)] == [1]
    assert events.events[-1]["payload"]["status"] == "failed"


def test_the_default_idle_timeout_outlasts_every_openai_retry_and_a_slow_offline_rate():
    with override_settings(OPENAI_TIMEOUT_S=30, OPENAI_MAX_RETRIES=2, OFFLINE_LLM_TOKENS_PER_S=0.5):
        assert run_module.idle_timeout_s() == 60 + 90 + 2
    with override_settings(DEBATE_IDLE_TIMEOUT_S=7):
        assert run_module.idle_timeout_s() == 7


async def test_a_runaway_model_fails_the_debate(claimed, monkeypatch):
    monkeypatch.setattr(run_module, "MAX_ARGUMENT_CHARS", 300)
    debate = await sync_to_async(claimed)()
    run = DebateRun(debate.id, runner_id="r1", llm=FlakyModel(endless_on_turn=1))
    assert await run.run() == "failed"
    await debate.arefresh_from_db()
    assert debate.error == "LLM answer too long: turn 1 passed 300 characters."
    assert not await Argument.objects.filter(debate=debate).aexists()


async def test_a_cancellation_nobody_asked_for_fails_the_debate(claimed):
    def observer(action_type, payload):
        if action_type == protocol.TOKEN_RECEIVED:
            raise asyncio.CancelledError  # as a library might, with nobody cancelling the run

    debate = await sync_to_async(claimed)()
    assert await DebateRun(debate.id, runner_id="r1", observer=observer).run() == "failed"
    await debate.arefresh_from_db()
    assert (debate.status, debate.error) == ("failed", "The run was cancelled unexpectedly.")


async def test_shutting_down_the_process_leaves_the_debate_to_be_taken_over(claimed):
    debate = await sync_to_async(claimed)()
    task = asyncio.create_task(
        DebateRun(debate.id, runner_id="r1", llm=FlakyModel(hang_on_turn=1)).run()
    )
    for _ in range(1000):
        await asyncio.sleep(0)
        if await Debate.objects.filter(pk=debate.pk, market_context__isnull=False).aexists():
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await debate.arefresh_from_db()
    assert (debate.status, debate.runner_id) == ("running", "r1")  # resumed by the janitor


async def test_a_final_status_that_cannot_be_published_still_ends_the_run(claimed, monkeypatch):
    real = services.publish_events

    async def flaky_publish(debate_id, events, **kwargs):
        if events == [(protocol.STATUS_UPDATE, {"status": "completed"})]:
            raise ConnectionError("redis went away")
        return await real(debate_id, events, **kwargs)

    monkeypatch.setattr(services, "publish_events", flaky_publish)
    debate = await sync_to_async(claimed)(max_turns=1)
    assert await DebateRun(debate.id, runner_id="r1").run() == "completed"
    await debate.arefresh_from_db()
    assert debate.status == "completed"


async def test_text_that_differs_from_its_tokens_restarts_the_turn_before_it_completes(claimed):
    debate = await sync_to_async(claimed)()
    seen = []

    def observer(action_type, payload):
        seen.append((action_type, payload))

    run = DebateRun(debate.id, runner_id="r1", observer=observer)
    run._turn, run._agent = 1, "bull"
    item = ArgumentItem(turn=1, agent="bull", content="The real text.")
    await run._complete(item, "Something else ", None)
    assert [(t, p.get("turn")) for t, p in seen] == [
        (protocol.TURN_CHANGE, 1),
        (protocol.TOKEN_RECEIVED, 1),
        (protocol.ARGUMENT_COMPLETE, 1),
    ]
    assert seen[1][1]["token"] == seen[2][1]["content"] == "The real text."
    seen.clear()
    item = ArgumentItem(turn=2, agent="bear", content="Streamed, then the rest.")
    await run._complete(item, "Streamed, ", None)
    assert [(t, p.get("token")) for t, p in seen] == [
        (protocol.TOKEN_RECEIVED, "then the rest."),
        (protocol.ARGUMENT_COMPLETE, None),
    ]
    assert [a.turn async for a in Argument.objects.filter(debate=debate)] == [1, 2]


async def test_a_stop_sent_over_the_control_channel_stops_the_run(claimed, redis_url):
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"t{uuid.uuid4().hex[:10]}"},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers, REDIS_URL=redis_url):
        debate = await sync_to_async(claimed)(runner_id=process_id())
        layer = get_channel_layer()
        tokens, hanging = [], asyncio.Event()

        def observer(action_type, payload):
            if action_type == protocol.TOKEN_RECEIVED:
                tokens.append(payload)
                if len(tokens) == 3:
                    hanging.set()

        model = FlakyModel(hang_on_turn=1, hang_after_tokens=3)
        task = asyncio.create_task(DebateRun(debate.id, llm=model, observer=observer).run())
        try:
            await hanging.wait()
            # The model hangs mid-turn: only a stop can end the run now. It travels through
            # Redis as it would from another process: published to this process's group.
            await Debate.objects.filter(pk=debate.pk).aupdate(status="cancelled")
            message = {"type": "debate.stop", "debate": str(debate.id), "reason": "cancelled"}
            await layer.group_send(control.group_for(process_id()), message)
            assert await task == "cancelled"
            assert len(layer.channels) == 1  # one control subscription for the whole process
        finally:
            await control.stop_listening()
            await layer.flush()


def test_a_runner_that_cannot_be_launched_fails_the_debate(auth_client, user, monkeypatch):
    def broken_launch(debate_id, **kwargs):
        raise RuntimeError("no event loop")

    monkeypatch.setattr(launch, "launch", broken_launch)
    debate = services.debate_create(asset="ETH", max_turns=1, created_by=user)
    resp = auth_client.post(f"/api/debates/{debate.id}/start/")
    assert resp.status_code == 202
    assert resp.json() == {"id": str(debate.id), "status": "failed"}
    debate.refresh_from_db()
    assert (debate.status, debate.error) == ("failed", "The runner could not be started.")
    assert debate.finished_at is not None


async def test_a_cancel_swallowed_under_the_run_still_ends_it_as_a_shutdown(claimed, monkeypatch):
    started, swallowed = asyncio.Event(), asyncio.Event()

    async def drive_swallowing_cancels(self):
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.set()  # as a library that waits for its thread and returns might

    monkeypatch.setattr(DebateRun, "_drive", drive_swallowing_cancels)
    debate = await sync_to_async(claimed)()
    task = asyncio.create_task(DebateRun(debate.id, runner_id="r1").run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert swallowed.is_set()
    await debate.arefresh_from_db()
    assert (debate.status, debate.runner_id) == ("running", "r1")  # never "completed"


async def test_a_graph_that_stops_before_the_verdict_fails_the_debate(claimed, monkeypatch):
    class ShortGraph:
        async def astream(self, state, config, stream_mode):
            return
            yield  # an async generator that ends at once

    monkeypatch.setattr(run_module, "build_graph", lambda llm: ShortGraph())
    debate = await sync_to_async(claimed)()
    assert await DebateRun(debate.id, runner_id="r1").run() == "failed"
    await debate.arefresh_from_db()
    assert debate.status == "failed"
    assert debate.error.startswith("UnfinishedGraphError: the graph stopped at turn 1")
