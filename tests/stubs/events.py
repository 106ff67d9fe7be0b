"""Test helpers: observe a debate's published events on the channel layer; scripted chat models."""

import asyncio
import json

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer
from django.db import connections
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from debates.engine.llm import OfflineAnalystModel, read_brief, tokenize
from streaming import protocol

FINAL = set(protocol.FINAL_STATUSES)
BIG_LAYER = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 100000}}
}


def decode(message: dict) -> list[dict]:
    """The actions inside a channel-layer message."""
    return [json.loads(text) for _, text in protocol.layer_events(message)]


class EventCollector:
    """Joins the group "debate.<id>" like a consumer would and records every action, in order."""

    def __init__(self, debate_id, on_event=None) -> None:
        self.debate_id = str(debate_id)
        self.on_event = on_event
        self.events: list[dict] = []
        self.messages: list[list[str]] = []  # the action types of each channel-layer message
        self.finished = asyncio.Event()

    async def __aenter__(self) -> "EventCollector":
        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(protocol.group_name(self.debate_id), self.channel)
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.layer.group_discard(protocol.group_name(self.debate_id), self.channel)

    async def _read(self) -> None:
        while True:
            actions = decode(await self.layer.receive(self.channel))
            self.messages.append([action["type"] for action in actions])
            for action in actions:
                self.events.append(action)
                if self.on_event is not None:
                    await self.on_event(action)
                if action["type"] == protocol.STATUS_UPDATE and (
                    action["payload"]["status"] in FINAL
                ):
                    self.finished.set()

    def of(self, action_type: str) -> list[dict]:
        """Payloads of one type."""
        return [e["payload"] for e in self.events if e["type"] == action_type]

    def types(self) -> list[str]:
        """The sequence of event types."""
        return [e["type"] for e in self.events]


class FlakyModel(OfflineAnalystModel):
    """The offline analyst, except on chosen turns: raise, or stream a few tokens then hang."""

    fail_on_turn: int = 0
    hang_on_turn: int = 0
    hang_after_tokens: int = 3
    endless_on_turn: int = 0

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        turn = read_brief(messages)["turn"]
        if turn == self.fail_on_turn:
            raise RuntimeError("boom")
        if turn == self.endless_on_turn:
            for i in range(100_000):
                await asyncio.sleep(0)
                yield ChatGenerationChunk(message=AIMessageChunk(content=f"w{i} "))
        tokens = tokenize(self.answer(messages))
        for i, token in enumerate(tokens):
            if turn == self.hang_on_turn and i == self.hang_after_tokens:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
            info = {"finish_reason": "stop"} if i == len(tokens) - 1 else None
            yield ChatGenerationChunk(message=AIMessageChunk(content=token), generation_info=info)


class NonStreamingModel(BaseChatModel):
    """A model that cannot stream: the runner must still publish its text as tokens."""

    @property
    def _llm_type(self) -> str:
        return "non-streaming"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        text = OfflineAnalystModel(seed="n").answer(messages)
        msg = AIMessage(content=text, response_metadata={"finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=msg)])


@pytest.fixture
def close_async_db_connections():
    """Close the connection async ORM calls opened in asgiref's shared worker thread.

    Otherwise PostgreSQL refuses to drop the test database at the end of the session.
    """
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
