"""Replays and share links on a real daphne (Redis, a producer process, the archive).

A scripted debate is published by a producer process at a steady token rate, then replayed:
at x10 and x2 (never an event before its time; x2 takes about five times as long as x10, a
ratio of durations rather than a wall-clock threshold), instantly, and resumed inside a replay.
A share link opens that debate's socket without an account, no other debate, and not once
revoked; its token never reaches the server's logs.
"""

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest
from websockets.asyncio.client import connect

from tests.e2e.servers import ORIGIN, QA_TOKEN, daphne_cluster, synthetic_debate

pytestmark = pytest.mark.e2e

MAX_GAP_S = 5.0  # REPLAY_MAX_GAP_S's default


def _socket_url(server, debate_id: str, query: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/debate/{debate_id}/?{query}"


def _epoch(message: dict) -> float:
    return datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")).timestamp()


async def _replay(server, debate_id: str, query: str, stop_after: int | None = None):
    """CONNECTED and the (receipt time, event) of each event until the final status (or
    `stop_after` events, then the connection is dropped without a close frame)."""
    received: list[tuple[float, dict]] = []
    async with connect(_socket_url(server, debate_id, query), origin=ORIGIN) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert first["type"] == "DEBATE/CONNECTED", first
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["type"] == "DEBATE/PING":
                continue
            received.append((time.monotonic(), message))
            if message["payload"]["seq"] == first["payload"]["lastSeq"]:
                break
            if stop_after is not None and len(received) >= stop_after:
                ws.transport.abort()
                break
    return first, received


def _due(events: list[dict], speed: float) -> list[float]:
    """When each event is due after the first, from the timestamps (gaps capped)."""
    offsets, offset = [0.0], 0.0
    for before, after in itertools.pairwise(events):
        offset += min(max(_epoch(after) - _epoch(before), 0.0), MAX_GAP_S) / speed
        offsets.append(offset)
    return offsets


def _assert_never_early(received: list[tuple[float, dict]], speed: float) -> float:
    """Each event arrives no earlier than its time at this speed; return the replay's span."""
    events = [message for _at, message in received]
    start = received[0][0]
    for (at, message), due in zip(received, _due(events, speed), strict=True):
        # 20 ms: the first event's own delivery, which the schedule does not include.
        assert at - start >= due - 0.02, f"seq {message['payload']['seq']} came early"
    return received[-1][0] - start


def _share_get(server, path: str, token: str) -> int:
    request = urllib.request.Request(server.base_url + path, headers={"X-Share-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def _refused(server, debate_id: str, query: str) -> int:
    async with connect(_socket_url(server, debate_id, query), origin=ORIGIN) as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert error["type"] == "DEBATE/ERROR", error
        with pytest.raises(Exception):  # noqa: B017, PT011 - the server closes
            await asyncio.wait_for(ws.recv(), 30)
        return ws.close_code


async def test_replay_paced_instant_resumed_and_shared(tmp_path):
    with daphne_cluster(tmp_path, 1, TOKEN_FLUSH_INTERVAL_MS="0") as (server,):
        access = server.token()["access"]
        status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201, debate
        debate_id = debate["id"]
        # 3 turns of 30 tokens at 15 tokens a second: about 6 s of debate.
        producer = synthetic_debate(server.env, debate_id, turns=3, tokens_per_turn=30, rate=15)
        assert await asyncio.to_thread(producer.wait, 120) == 0, producer.stdout.read()

        # Instant: every event, in order, as streamed.
        first, instant = await _replay(
            server, debate_id, f"token={QA_TOKEN}&replay=1&speed=instant"
        )
        assert first["payload"]["status"] == "completed"
        assert first["payload"]["replay"] == {"speed": "instant", "at": 0}
        events = [message for _at, message in instant]
        assert [e["payload"]["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["payload"]["status"] == "completed"
        assert len(events) >= 3 * 32

        # x10 and x2: the same events, each no earlier than its time.
        _first, fast = await _replay(server, debate_id, f"token={QA_TOKEN}&replay=1&speed=10")
        assert [message for _at, message in fast] == events
        fast_span = _assert_never_early(fast, 10)
        _first, slow = await _replay(server, debate_id, f"token={QA_TOKEN}&replay=1&speed=2")
        assert [message for _at, message in slow] == events
        slow_span = _assert_never_early(slow, 2)
        assert 3.0 <= slow_span / fast_span <= 6.5, (slow_span, fast_span)
        assert instant[-1][0] - instant[0][0] < fast_span

        # Resume inside a replay: drop after 40 events, come back with lastSeq.
        _first, part = await _replay(
            server, debate_id, f"token={QA_TOKEN}&replay=1&speed=10", stop_after=40
        )
        last = part[-1][1]["payload"]["seq"]
        again, rest = await _replay(
            server, debate_id, f"token={QA_TOKEN}&replay=1&speed=10&lastSeq={last}"
        )
        assert again["payload"]["reset"] is False
        assert [m for _at, m in part] + [m for _at, m in rest] == events

        # A share link: this debate without an account, nothing else, and not once revoked.
        status, link = server.api("POST", f"/api/debates/{debate_id}/share-links/", None, access)
        assert status == 201, link
        share = link["token"]
        first, shared = await _replay(server, debate_id, f"share={share}&replay=1&speed=instant")
        assert [message for _at, message in shared] == events
        assert _share_get(server, "/api/shared/debate/", share) == 200
        assert _share_get(server, "/api/debates/", share) == 401
        status, other = server.api("POST", "/api/debates/", {"asset": "BTC"}, access)
        assert await _refused(server, other["id"], f"share={share}") == 4001
        assert await _refused(server, debate_id, "replay=1&speed=3&token=" + QA_TOKEN) == 4400
        # The page's path, mistakenly with the token in it, is logged redacted too.
        assert _share_get(server, f"/shared/{share}", share) == 404
        async with connect(_socket_url(server, debate_id, f"share={share}"), origin=ORIGIN) as ws:
            for _ in range(1 + len(events)):  # CONNECTED and the catch-up
                await asyncio.wait_for(ws.recv(), 30)
            status, _ = await asyncio.to_thread(
                server.api,
                "DELETE",
                f"/api/debates/{debate_id}/share-links/{link['id']}/",
                None,
                access,
            )
            assert status == 204
            # The socket open with the revoked link is closed.
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert error["payload"]["code"] == 4001
            with pytest.raises(Exception):  # noqa: B017, PT011 - the server closes
                await asyncio.wait_for(ws.recv(), 30)
            assert ws.close_code == 4001
        assert await _refused(server, debate_id, f"share={share}") == 4001
        assert _share_get(server, "/api/shared/debate/", share) == 401

        logs = server.logs()
        assert "/shared/[REDACTED]" in logs  # the mistaken path was logged, without the token
        assert "/api/shared/debate/" in logs
        assert share not in logs
