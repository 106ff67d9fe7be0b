"""The opening (`running`, the first TURN_CHANGE) goes out with the first token, unless the
model is slow to start: then it goes out on its own after OPENING_HOLD_S."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from debates import services
from debates.engine.llm import OfflineAnalystModel
from debates.runs.run import DebateRun
from streaming import protocol
from tests.stubs.events import EventCollector, close_async_db_connections  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_settings", "close_async_db_connections"),
]
OPENING = [protocol.STATUS_UPDATE, protocol.TURN_CHANGE]


class SlowToStartModel(OfflineAnalystModel):
    """The offline analyst, thinking for a while before its first token."""

    think_s: float = 0.2

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        await asyncio.sleep(self.think_s)
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


async def _run(debate_id, llm=None) -> EventCollector:
    async with EventCollector(debate_id) as events:
        assert await DebateRun(debate_id, runner_id="r1", llm=llm).run() == "completed"
        await events.finished.wait()
    assert [e["payload"]["seq"] for e in events.events] == list(range(1, len(events.events) + 1))
    return events


async def test_the_opening_and_the_first_token_are_one_message(claimed, monkeypatch):
    monkeypatch.setattr(services, "OPENING_HOLD_S", 60.0)  # never the reason it goes out
    debate = await sync_to_async(claimed)(max_turns=1)
    events = await _run(debate.id)
    assert events.messages[0] == [*OPENING, protocol.TOKEN_RECEIVED]
    # Later, one event per message (with its usage reading, when one goes out with it).
    assert all(types[1:] in ([], [protocol.USAGE]) for types in events.messages[1:])
    assert any(types == [protocol.TOKEN_RECEIVED] for types in events.messages[1:])


async def test_a_model_slow_to_start_gets_its_opening_sent_first(claimed, monkeypatch):
    # The hold's timer is set before the model starts thinking, so it always fires first.
    monkeypatch.setattr(services, "OPENING_HOLD_S", 0.01)
    debate = await sync_to_async(claimed)(max_turns=1)
    events = await _run(debate.id, llm=SlowToStartModel(seed="slow", tokens_per_s=0))
    assert events.messages[0] == OPENING
    assert events.messages[1] == [protocol.TOKEN_RECEIVED]


async def test_a_model_that_fails_before_its_first_token_still_shows_the_opening(
    claimed, monkeypatch
):
    monkeypatch.setattr(services, "OPENING_HOLD_S", 60.0)

    class BrokenModel(OfflineAnalystModel):
        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
            raise RuntimeError("no tokens today")
            yield  # an async generator

    debate = await sync_to_async(claimed)(max_turns=1)
    async with EventCollector(debate.id) as events:
        status = await DebateRun(debate.id, runner_id="r1", llm=BrokenModel(seed="x")).run()
        await events.finished.wait()
    assert status == "failed"
    assert events.types() == [*OPENING, protocol.STATUS_UPDATE]
    assert events.of(protocol.STATUS_UPDATE)[-1]["status"] == "failed"


async def test_time_to_first_token_is_observed_once_per_run(claimed):
    from prometheus_client import REGISTRY

    name = "debate_time_to_first_token_seconds_count"
    before = REGISTRY.get_sample_value(name) or 0
    debate = await sync_to_async(claimed)(max_turns=2)
    events = await _run(debate.id)
    assert len(events.of(protocol.TOKEN_RECEIVED)) > 1
    assert REGISTRY.get_sample_value(name) == before + 1
