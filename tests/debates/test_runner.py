"""The debate runner: events, storage, failures, cancel (three ways), stale takeover."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from django.utils import timezone

from debates import lifecycle, services
from debates.engine.market import MarketDataError
from debates.models import Argument, Debate
from debates.runs import errors, launch
from debates.runs.run import DebateRun, local_run
from streaming import protocol
from tests.stubs.events import (
    EventCollector,
    FlakyModel,
    NonStreamingModel,
    close_async_db_connections,  # noqa: F401 - a fixture
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_settings", "close_async_db_connections"),
]


async def test_full_run_publishes_in_order_and_saves_everything(claimed):
    debate = await sync_to_async(claimed)(max_turns=3)
    saved_before_event = []

    async def check_saved(action):
        if action["type"] == protocol.ARGUMENT_COMPLETE:
            turn = action["payload"]["turn"]
            exists = await Argument.objects.filter(debate_id=debate.id, turn=turn).aexists()
            saved_before_event.append(exists)

    async with EventCollector(debate.id, on_event=check_saved) as events:
        status = await DebateRun(debate.id, runner_id="r1").run()
        await events.finished.wait()

    assert status == "completed"
    assert [e["payload"]["seq"] for e in events.events] == list(range(1, len(events.events) + 1))
    assert events.events[0]["type"] == protocol.STATUS_UPDATE
    assert events.events[0]["payload"]["status"] == "running"
    assert events.events[-1]["payload"] == {
        "debateId": str(debate.id),
        "status": "completed",
        "seq": len(events.events),
    }
    turns = events.of(protocol.TURN_CHANGE)
    assert [(t["currentAgent"], t["turn"]) for t in turns] == [
        ("bull", 1),
        ("bear", 2),
        ("bull", 3),
        ("moderator", 4),
    ]
    completes = events.of(protocol.ARGUMENT_COMPLETE)
    assert [(c["agent"], c["turn"]) for c in completes] == [
        ("bull", 1),
        ("bear", 2),
        ("bull", 3),
        ("moderator", 4),
    ]
    assert saved_before_event == [True] * 4
    # Between a TURN_CHANGE and its ARGUMENT_COMPLETE only that turn's tokens, spelling it exactly.
    current, tokens = None, []
    for e in events.events[1:-1]:
        p = e["payload"]
        if e["type"] == protocol.TURN_CHANGE:
            current, tokens = (p["currentAgent"], p["turn"]), []
        elif e["type"] == protocol.TOKEN_RECEIVED:
            assert (p["agent"], p["turn"]) == current
            tokens.append(p["token"])
        elif e["type"] == protocol.ARGUMENT_COMPLETE:
            assert (p["agent"], p["turn"]) == current
            assert p["content"] == "".join(tokens)

    await debate.arefresh_from_db()
    rows = [a async for a in Argument.objects.filter(debate=debate).order_by("turn")]
    assert [(a.turn, a.agent, a.content) for a in rows] == [
        (c["turn"], c["agent"], c["content"]) for c in completes
    ]
    assert debate.verdict["recommendation"] in {"buy", "hold", "sell"}
    assert rows[-1].content.startswith("RECOMMENDATION: " + debate.verdict_recommendation.upper())
    assert debate.market_context["asset"] == "BTC"
    assert debate.market_context["is_sample"] is True
    assert debate.finished_at is not None
    assert debate.error == ""


async def test_failure_ends_failed_with_a_short_error_and_keeps_finished_turns(claimed):
    debate = await sync_to_async(claimed)(max_turns=3)
    async with EventCollector(debate.id) as events:
        run = DebateRun(debate.id, runner_id="r1", llm=FlakyModel(fail_on_turn=2))
        assert await run.run() == "failed"
        await events.finished.wait()
    await debate.arefresh_from_db()
    assert (debate.status, debate.error) == ("failed", "RuntimeError: boom")
    assert [a.turn async for a in Argument.objects.filter(debate=debate)] == [1]
    assert events.events[-1]["payload"]["status"] == "failed"


async def test_market_data_failure_is_clear(claimed):
    class Broken:
        name = "broken"

        async def snapshot(self, asset):
            raise MarketDataError("Market data request failed: HTTP 503.")

    debate = await sync_to_async(claimed)()
    assert await DebateRun(debate.id, runner_id="r1", market_provider=Broken()).run() == "failed"
    await debate.arefresh_from_db()
    assert debate.error == "Market data unavailable: Market data request failed: HTTP 503."


async def test_a_model_that_does_not_stream_still_honours_the_token_contract(claimed):
    debate = await sync_to_async(claimed)(max_turns=1)
    async with EventCollector(debate.id) as events:
        assert await DebateRun(debate.id, runner_id="r1", llm=NonStreamingModel()).run() == (
            "completed"
        )
        await events.finished.wait()
    tokens = "".join(t["token"] for t in events.of(protocol.TOKEN_RECEIVED) if t["turn"] == 1)
    assert tokens == events.of(protocol.ARGUMENT_COMPLETE)[0]["content"]


async def test_cancel_stops_within_a_token_and_drops_the_partial_argument(claimed):
    debate = await sync_to_async(claimed)(max_turns=3)
    after_stop = []

    def observer(action_type, payload):
        run = local_run(debate.id)
        if run is not None and run._stop_reason and action_type == protocol.TOKEN_RECEIVED:
            after_stop.append(payload)

    async def cancel_at_fifth_token(action):
        turn2 = [e for e in events.of(protocol.TOKEN_RECEIVED) if e["turn"] == 2]
        if action["type"] == protocol.TOKEN_RECEIVED and len(turn2) == 5 and not cancelled:
            cancelled.append(await sync_to_async(lifecycle.cancel)(debate=debate, user=None))

    cancelled = []
    async with EventCollector(debate.id, on_event=cancel_at_fifth_token) as events:
        task = launch.launch(
            debate.id, runner_id="r1", llm=FlakyModel(endless_on_turn=2), observer=observer
        )
        assert await task == "cancelled"
        await events.finished.wait()

    assert len(after_stop) <= 1
    assert cancelled[0].status == "cancelled"
    assert [(c["turn"]) for c in events.of(protocol.ARGUMENT_COMPLETE)] == [1]
    assert events.events[-1]["payload"]["status"] == "cancelled"
    await debate.arefresh_from_db()
    assert debate.status == "cancelled"
    assert debate.finished_at is not None
    assert [a.turn async for a in Argument.objects.filter(debate=debate)] == [1]
    assert local_run(debate.id) is None


async def test_cancel_reaches_a_run_that_was_not_launched_here(claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    # Run directly (as manage.py run_debate does), not through launch(): the run registers
    # itself, so the cancel's stop finds it.
    run = DebateRun(debate.id, runner_id="r1", llm=FlakyModel(hang_on_turn=1))

    async def cancel_when_hanging(action):
        if (
            action["type"] == protocol.TOKEN_RECEIVED
            and len(events.of(protocol.TOKEN_RECEIVED)) == 3
        ) and not done:
            done.append(await sync_to_async(lifecycle.cancel)(debate=debate, user=None))

    done = []
    async with EventCollector(debate.id, on_event=cancel_when_hanging) as events:
        assert local_run(debate.id) is None
        assert await run.run() == "cancelled"
        await events.finished.wait()
    assert events.events[-1]["payload"]["status"] == "cancelled"
    assert await Argument.objects.filter(debate=debate).acount() == 0


async def test_cancel_without_any_signal_is_seen_at_the_next_heartbeat(claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    run = DebateRun(debate.id, runner_id="r1", llm=FlakyModel(hang_on_turn=1))

    async def cancel_in_db_only(action):
        if (
            action["type"] == protocol.TOKEN_RECEIVED
            and len(events.of(protocol.TOKEN_RECEIVED)) == 3
        ):
            await Debate.objects.filter(pk=debate.pk).aupdate(status="cancelled")

    with override_settings(DEBATE_HEARTBEAT_S=0.05):
        async with EventCollector(debate.id, on_event=cancel_in_db_only) as events:
            assert await run.run() == "cancelled"
            await events.finished.wait()
    assert events.events[-1]["payload"]["status"] == "cancelled"


async def test_a_runner_that_lost_its_claim_stops_silently(claimed):
    debate = await sync_to_async(claimed)(max_turns=2)
    run = DebateRun(debate.id, runner_id="r1", llm=FlakyModel(hang_on_turn=1))

    async def steal(action):
        if (
            action["type"] == protocol.TOKEN_RECEIVED
            and len(events.of(protocol.TOKEN_RECEIVED)) == 3
        ):
            await Debate.objects.filter(pk=debate.pk).aupdate(runner_id="someone-else")

    with override_settings(DEBATE_HEARTBEAT_S=0.05):
        async with EventCollector(debate.id, on_event=steal) as events:
            assert await run.run() == "running"
            await asyncio.sleep(0)
    finals = [s for s in events.of(protocol.STATUS_UPDATE) if s["status"] != "running"]
    assert finals == []


def _make_stale(debate: Debate, arguments: int, market: dict | None = None) -> None:
    for turn in range(1, arguments + 1):
        agent = "bull" if turn % 2 else "bear"
        Argument.objects.create(debate=debate, turn=turn, agent=agent, content=f"Saved {turn}.")
    Debate.objects.filter(pk=debate.pk).update(
        runner_id="dead", heartbeat_at=timezone.now() - timedelta(hours=1), market_context=market
    )


async def test_stale_debate_is_taken_over_and_resumed_after_its_last_argument(claimed):
    stale = await sync_to_async(claimed)(max_turns=4, runner_id="dead")
    fresh = await sync_to_async(claimed)(max_turns=2, runner_id="alive")
    await sync_to_async(_make_stale)(stale, arguments=2)

    claimed_ids = await sync_to_async(services.debates_take_over_stale)(runner_id="r2")
    assert claimed_ids == [stale.id]
    async with EventCollector(stale.id) as events:
        assert await DebateRun(stale.id, runner_id="r2").run() == "completed"
        await events.finished.wait()
    assert [t["turn"] for t in events.of(protocol.TURN_CHANGE)] == [3, 4, 5]
    rows = [(a.turn, a.agent, a.content) async for a in Argument.objects.filter(debate=stale)]
    assert rows[:2] == [(1, "bull", "Saved 1."), (2, "bear", "Saved 2.")]
    assert [(t, a) for t, a, _ in rows[2:]] == [(3, "bull"), (4, "bear"), (5, "moderator")]
    # The resumed bull answers the saved bear argument, verbatim.
    assert "Saved 2." in rows[2][2]
    await fresh.arefresh_from_db()
    assert (fresh.status, fresh.runner_id) == ("running", "alive")


async def test_takeover_is_exclusive(claimed):
    debate = await sync_to_async(claimed)(runner_id="dead")
    await sync_to_async(_make_stale)(debate, arguments=0)
    first = await sync_to_async(services.debates_take_over_stale)(runner_id="a")
    second = await sync_to_async(services.debates_take_over_stale)(runner_id="b")
    assert (first, second) == ([debate.id], [])


def test_describe_error_is_short_and_clear():
    assert errors.describe_error(RuntimeError("x\nTraceback...")) == "RuntimeError: x"
    assert len(errors.describe_error(ValueError("y" * 5000))) <= errors.MAX_ERROR_CHARS
