"""Redis broken for real under a running daphne: the test's own redis-server, killed mid-debate
and restarted empty, or restarted while idle.

A short outage is ridden out (the run waits, retrying with backoff): the debate completes with
every argument saved once and every viewer ends with the whole transcript; handshakes during the
outage get DEBATE/ERROR 4503 and close 4503, never an HTTP 500; /readyz says 503, then 200;
pooled connections recover (the next viewer and the next debate work). Past
SERVICE_RETRY_LIMIT_S the debate fails with an error naming the service and no address, and its
final status reaches the viewer once Redis is back.
"""

import asyncio
import json
import re
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streaming import protocol
from tests.e2e.servers import ORIGIN, daphne_cluster
from tests.faults.viewer import Viewer
from tests.redis_nodes import redis_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

OUTAGE_S = 10
ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+|localhost|:\d{3,5}\b")


def _start(server, turns: int, access: str | None = None) -> tuple[str, str]:
    """A started debate of `turns` turns: (id, access token)."""
    access = access or server.token()["access"]
    status, debate = server.api(
        "POST", "/api/debates/", {"asset": "AAPL", "maxTurns": turns}, access
    )
    assert status == 201, debate
    status, body = server.api("POST", f"/api/debates/{debate['id']}/start/", None, access)
    assert status == 202, body
    return debate["id"], access


def _debate(server, debate_id: str, access: str) -> dict:
    status, debate = server.api("GET", f"/api/debates/{debate_id}/", None, access)
    assert status == 200, debate
    return debate


async def _handshake_during_outage(server, debate_id: str) -> tuple[dict, int]:
    """A new socket while Redis is down: its DEBATE/ERROR and close code (an HTTP status fails)."""
    try:
        async with connect(server.ws_url(debate_id), origin=ORIGIN, open_timeout=30) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            return error, closed.value.rcvd.code
    except InvalidStatus as exc:
        raise AssertionError(f"handshake refused with HTTP {exc.response.status_code}") from exc


async def _wait_for(predicate, timeout_s: float = 60) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


def _assert_transcript(viewer: Viewer, debate: dict) -> None:
    """The viewer ends with every saved argument, and the database has each turn once."""
    turns = [a["turn"] for a in debate["arguments"]]
    assert turns == list(range(1, len(turns) + 1)), f"turns saved: {turns}"
    saved = {a["turn"]: a["content"] for a in debate["arguments"]}
    assert viewer.arguments() == saved


async def test_redis_killed_mid_debate_is_ridden_out(tmp_path):
    with (
        redis_nodes(tmp_path, 1) as (node,),
        daphne_cluster(tmp_path, 1, redis_url=node.url, OFFLINE_LLM_TOKENS_PER_S="60") as servers,
    ):
        server = servers[0]
        debate_id, access = _start(server, turns=4)
        viewer = Viewer(servers, debate_id)
        watching = asyncio.create_task(viewer.watch())
        await _wait_for(lambda: viewer.arguments())  # the first argument is out: mid-debate

        await asyncio.to_thread(node.stop)
        try:
            error, code = await _handshake_during_outage(server, debate_id)
            assert error["type"] == protocol.ERROR, error
            assert error["payload"]["code"] == 4503
            assert code == 4503
            assert not ADDRESS.search(json.dumps(error))
            assert server.api("GET", "/readyz")[0] == 503
            # A debate started during the outage is accepted and waits for Redis too (signing
            # in needs Redis, for its throttle: 503 meanwhile).
            assert (
                server.api("POST", "/api/auth/token/", {"username": "x", "password": "y"})[0] == 503
            )
            during, _access = _start(server, turns=1, access=access)
            await asyncio.sleep(OUTAGE_S)  # the outage itself
        finally:
            await asyncio.to_thread(node.start)  # back, empty
        back_at = time.monotonic()

        await watching
        resumed_after = min(at for at in viewer.arrived if at > back_at) - back_at
        print(f"events flowed again {resumed_after:.2f} s after Redis came back")
        debate = _debate(server, debate_id, access)
        assert debate["status"] == "completed", debate["error"]
        assert viewer.final_status() == "completed"
        assert debate["verdict"] is not None
        _assert_transcript(viewer, debate)
        assert server.api("GET", "/readyz")[0] == 200
        started_during = await Viewer(servers, during).watch()
        assert started_during.final_status() == "completed"

        # Pooled connections recovered: the next debate and its viewer work at once.
        second, access = _start(server, turns=1)
        fresh = await Viewer(servers, second).watch()
        assert fresh.closes == []
        assert fresh.final_status() == "completed"


async def test_redis_restarted_while_idle_pools_recover(tmp_path):
    with (
        redis_nodes(tmp_path, 1) as (node,),
        daphne_cluster(tmp_path, 1, redis_url=node.url, OFFLINE_LLM_TOKENS_PER_S="0") as servers,
    ):
        server = servers[0]
        first, access = _start(server, turns=1)  # every pool has connections now
        assert (await Viewer(servers, first).watch()).final_status() == "completed"

        await asyncio.to_thread(node.restart)

        assert server.api("GET", "/readyz")[0] == 200
        # The first viewer after the restart gets its debate (no 4500), and the next debate runs.
        replay = await Viewer(servers, first).watch()
        assert replay.closes == []
        assert replay.errors == []
        assert replay.final_status() == "completed"
        second, access = _start(server, turns=1)
        viewer = await Viewer(servers, second).watch()
        assert viewer.closes == []
        assert viewer.final_status() == "completed"
        assert _debate(server, second, access)["status"] == "completed"


async def test_redis_down_past_the_limit_fails_and_tells_every_viewer(tmp_path):
    with (
        redis_nodes(tmp_path, 1) as (node,),
        daphne_cluster(
            tmp_path,
            1,
            redis_url=node.url,
            OFFLINE_LLM_TOKENS_PER_S="60",
            SERVICE_RETRY_LIMIT_S="3",
        ) as servers,
    ):
        server = servers[0]
        debate_id, access = _start(server, turns=6)
        viewer = Viewer(servers, debate_id)
        watching = asyncio.create_task(viewer.watch())
        await _wait_for(lambda: viewer.arguments())

        await asyncio.to_thread(node.stop)

        try:
            await _wait_for(lambda: _debate(server, debate_id, access)["status"] != "running")
            debate = _debate(server, debate_id, access)
        finally:
            await asyncio.to_thread(node.start)
        assert debate["status"] == "failed"
        assert "event service (Redis)" in debate["error"], debate["error"]
        assert not ADDRESS.search(debate["error"]), debate["error"]

        await watching  # the final status was re-sent until it reached the viewer
        assert viewer.final_status() == "failed"
        _assert_transcript(viewer, debate)


async def test_pubsub_connections_killed_lose_nothing_and_the_end_is_not_late(tmp_path):
    # Pings (and the hub's tick) every 60 s: only the quick tail repair can bring the end in time.
    with (
        redis_nodes(tmp_path, 1) as (node,),
        daphne_cluster(
            tmp_path,
            1,
            redis_url=node.url,
            OFFLINE_LLM_TOKENS_PER_S="60",
            WS_PING_INTERVAL_S="60",
        ) as servers,
    ):
        server = servers[0]
        debate_id, access = _start(server, turns=2)
        viewer = Viewer(servers, debate_id)
        watching = asyncio.create_task(viewer.watch(timeout_s=40))
        # From the verdict's turn on, the subscriber is killed again and again: what is
        # published meanwhile (the verdict, the final status) is lost from pub/sub.
        await _wait_for(lambda: len(viewer.arguments()) >= 2)
        client = node.client()
        kills = 0
        try:
            while not watching.done():
                kills += client.client_kill_filter(_type="pubsub")
                await asyncio.sleep(0.1)
        finally:
            client.close()
        await watching
        assert kills > 0
        debate = _debate(server, debate_id, access)
        assert debate["status"] == "completed"
        assert viewer.final_status() == "completed"
        _assert_transcript(viewer, debate)
