"""Moderator controls across two real daphne processes sharing Redis and one database.

The debate runs in process A; its controls are sent over REST to process B (so they reach the
run through the control channel); viewers watch on both. A pause stops every token until the
resume; a question asked while paused is answered by the next turn; a pause survives SIGKILL of
the running process (B's janitor takes the debate over, still paused), and the question is
answered once, by the turn B writes again.
"""

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect

from streaming import protocol
from tests.e2e.servers import ORIGIN, daphne_cluster

pytestmark = pytest.mark.e2e

WAIT_S = 120  # bounds a hung wait, never a timed assertion
ANSWER = "To the moderator's question"
ENV = {
    "OFFLINE_LLM_TOKENS_PER_S": "25",
    "WS_PING_INTERVAL_S": "1",
    "DEBATE_HEARTBEAT_S": "0.5",
    "DEBATE_STALE_AFTER_S": "2",
    "DEBATE_PAUSE_MAX_S": "600",
    "DEBATE_CONTROL_RATE": "1000/minute",
    "DB_CONN_MAX_AGE": "0",
}


class Viewer:
    """A WebSocket viewer of one debate on one server, recording every message in order."""

    def __init__(self, server, debate_id: str) -> None:
        self.server, self.debate_id = server, debate_id
        self.messages: list[dict] = []
        self.changed = asyncio.Event()

    async def __aenter__(self) -> "Viewer":
        self.ws = await connect(self.server.ws_url(self.debate_id), origin=ORIGIN, open_timeout=30)
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.ws.close()

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                self.messages.append(json.loads(text))
                self.changed.set()

    async def until(self, predicate, after: int = 0) -> int:
        """Wait for a message (from index `after` on) that matches; return its index."""

        async def find() -> int:
            while True:
                for i in range(after, len(self.messages)):
                    if predicate(self.messages[i]):
                        return i
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(find(), WAIT_S)

    def events(self, start: int = 0, end: int | None = None) -> list[dict]:
        return [m for m in self.messages[start:end] if "seq" in m.get("payload", {})]


def of(action_type, **fields):
    def match(message) -> bool:
        payload = message.get("payload", {})
        return message["type"] == action_type and all(
            payload.get(k) == v for k, v in fields.items()
        )

    return match


def token_of_turn(turn: int):
    return lambda m: m["type"] == protocol.TOKEN_RECEIVED and m["payload"]["turn"] == turn


async def pings(viewer: Viewer, count: int, after: int) -> int:
    """Wait for `count` heartbeats after index `after` (time passing, as the viewer sees it)."""
    for _ in range(count):
        after = await viewer.until(of(protocol.PING), after) + 1
    return after


def control(server, access: str, debate_id: str, action: str, body: dict | None = None):
    status, data = server.api("POST", f"/api/debates/{debate_id}/{action}/", body, access)
    assert status in (201, 202), (action, status, data, server.log_tail())
    return data


def types(messages: list[dict]) -> list[str]:
    return [m["type"] for m in messages]


async def test_pause_question_and_a_kill_while_paused_across_two_processes(tmp_path):
    with daphne_cluster(tmp_path, 2, **ENV) as (a, b):
        access = a.token()["access"]
        status, debate = a.api("POST", "/api/debates/", {"asset": "BTC", "maxTurns": 4}, access)
        assert status == 201, debate
        debate_id = debate["id"]
        async with Viewer(a, debate_id) as on_a, Viewer(b, debate_id) as on_b:
            await on_a.until(of(protocol.CONNECTED))
            await on_b.until(of(protocol.CONNECTED))
            status, _ = a.api("POST", f"/api/debates/{debate_id}/start/", None, access)
            assert status == 202  # the run is A's
            await on_b.until(token_of_turn(1))

            # Pause through B: both viewers hear it, and no token comes for two heartbeats.
            control(b, access, debate_id, "pause")
            paused = {v: await v.until(of(protocol.PAUSED)) for v in (on_a, on_b)}
            for v in (on_a, on_b):
                await pings(v, 2, paused[v])
            question = control(b, access, debate_id, "ask", {"text": "<b>Is RSI</b> stretched?"})
            for v in (on_a, on_b):
                shown = await v.until(of(protocol.QUESTION, questionId=question["id"]))
                assert v.messages[shown]["payload"]["text"] == "<b>Is RSI</b> stretched?"
            control(b, access, debate_id, "resume")
            for v in (on_a, on_b):
                resumed = await v.until(of(protocol.RESUMED), paused[v])
                assert protocol.TOKEN_RECEIVED not in types(v.messages[paused[v] : resumed])

            # The turn after the one that was paused answers the question first.
            answering = question["turn"] + 1
            resumed = await on_b.until(of(protocol.RESUMED), paused[on_b])
            first = await on_b.until(token_of_turn(answering), resumed)
            assert on_b.messages[first]["payload"]["token"].startswith("To")

            # Paused mid-answer, then the running process is killed: B takes over, still paused.
            control(b, access, debate_id, "pause")
            paused_again = await on_b.until(of(protocol.PAUSED), first)
            a.kill()
            await asyncio.to_thread(a.proc.wait, 30)
            taken = await on_b.until(of(protocol.STATUS_UPDATE, status="running"), paused_again)
            repaused = await on_b.until(of(protocol.PAUSED), taken)
            after_kill = await pings(on_b, 3, repaused)
            assert protocol.TOKEN_RECEIVED not in types(on_b.messages[paused_again:after_kill])
            status, row = b.api("GET", f"/api/debates/{debate_id}/", None, access)
            assert row["pausedAt"] is not None
            assert [q["answeredInTurn"] for q in row["questions"]] == [None]

            control(b, access, debate_id, "resume")
            await on_b.until(of(protocol.RESUMED), repaused)
            await on_b.until(of(protocol.STATUS_UPDATE, status="completed"), repaused)

        status, saved = b.api("GET", f"/api/debates/{debate_id}/", None, access)
        assert saved["status"] == "completed", saved
        arguments = saved["arguments"]
        assert [a["turn"] for a in arguments] == [1, 2, 3, 4, 5]
        answers = [a["turn"] for a in arguments if a["content"].startswith(ANSWER)]
        assert answers == [answering]
        assert [q["answeredInTurn"] for q in saved["questions"]] == [answering]
        # B's viewer saw every seq once, in order, and each turn's last run of tokens spells
        # the saved argument (the taken-over turn restarted at its TURN_CHANGE).
        events = on_b.events()
        seqs = [e["payload"]["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        text: dict[int, str] = {}
        for e in events:
            p = e["payload"]
            if e["type"] == protocol.TURN_CHANGE:
                text[p["turn"]] = ""
            elif e["type"] == protocol.TOKEN_RECEIVED:
                text[p["turn"]] += p["token"]
        assert {a["turn"]: a["content"] for a in arguments} == text
