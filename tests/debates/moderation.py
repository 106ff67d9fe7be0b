"""Helpers of the moderator-control tests: wait for events and heartbeats, act at an event."""

import asyncio

from asgiref.sync import sync_to_async

from debates.models import Debate
from streaming import protocol


async def heartbeats(debate_id, count: int) -> None:
    """Wait until the run has proved itself alive `count` more times (never a fixed delay)."""
    seen = None
    while count > 0:
        beat = (
            await Debate.objects.filter(pk=debate_id)
            .values_list("heartbeat_at", flat=True)
            .afirst()
        )
        if seen is not None and beat != seen:
            count -= 1
        seen = beat
        await asyncio.sleep(0.01)


def once(condition, action):
    """An EventCollector callback running `action` (sync, in a thread) at the first match."""
    done = []

    async def on_event(event):
        if not done and condition(event):
            done.append(event)
            await sync_to_async(action)()

    return on_event


class Seen:
    """An EventCollector callback: runs the given callbacks, and sets an asyncio.Event per
    predicate at the first event that matches it."""

    def __init__(self, *callbacks) -> None:
        self.callbacks = callbacks
        self.waiters: list = []

    def when(self, predicate) -> asyncio.Event:
        flag = asyncio.Event()
        self.waiters.append((predicate, flag))
        return flag

    async def __call__(self, event) -> None:
        for callback in self.callbacks:
            await callback(event)
        for predicate, flag in self.waiters:
            if predicate(event):
                flag.set()


def of_type(action_type):
    return lambda e: e["type"] == action_type


def nth_token(n: int):
    count = [0]

    def match(event) -> bool:
        count[0] += event["type"] == protocol.TOKEN_RECEIVED
        return count[0] >= n

    return match


def first_token_of(turn):
    return lambda e: e["type"] == protocol.TOKEN_RECEIVED and e["payload"]["turn"] == turn
