"""Dead and slow viewers against a real daphne: a client that never answers pings is dropped
by daphne's ping timeout, one that stops reading is dropped by the write-buffer bound; either
way its Viewer row closes and other viewers are unaffected."""

import asyncio
import contextlib
import json
import os
import signal
import time

import pytest
from websockets.asyncio.client import connect

from tests.e2e.servers import ORIGIN, QA_TOKEN, RawSocket, daphne_cluster

pytestmark = pytest.mark.e2e

DEADLINE_S = 120


async def _viewers_seen_by_a_new_viewer(server, debate_id) -> int:
    async with connect(server.ws_url(debate_id), origin=ORIGIN) as ws:
        return json.loads(await ws.recv())["payload"]["viewers"]


async def _until_alone(server, debate_id) -> None:
    """Poll until a new viewer is the debate's only open Viewer row (fails at the deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while await _viewers_seen_by_a_new_viewer(server, debate_id) != 1:
        assert time.monotonic() < deadline, "the dropped viewer's row never closed"
        await asyncio.sleep(0.5)


def _metric(server, name: str) -> float:
    status, body = server.api("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_a_client_that_never_answers_pings_is_dropped(tmp_path):
    with daphne_cluster(tmp_path, 1, ping=(1, 2)) as (server,):
        access = server.token()["access"]
        status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201
        path = f"/ws/debate/{debate['id']}/?token={QA_TOKEN}"
        silent = await asyncio.to_thread(RawSocket.open, server, path)
        try:
            first = await asyncio.to_thread(silent.recv_json)
            assert first["type"] == "DEBATE/CONNECTED"
            assert first["payload"]["viewers"] == 1
            # Reads everything, answers nothing: daphne pings, times out and drops it.
            await asyncio.to_thread(silent.wait_closed, DEADLINE_S)
        finally:
            silent.close()
        await _until_alone(server, debate["id"])
        assert _metric(server, "ws_active_connections") == 0


async def test_a_killed_process_leaves_the_active_connections_gauge(tmp_path):
    with daphne_cluster(tmp_path, 2) as (a, b):
        access = a.token()["access"]
        status, debate = a.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201
        async with (
            connect(a.ws_url(debate["id"]), origin=ORIGIN) as on_a,
            connect(b.ws_url(debate["id"]), origin=ORIGIN) as on_b,
        ):
            await on_a.recv()
            await on_b.recv()
            assert _metric(a, "ws_active_connections") == 2
            # SIGKILL: no cleanup runs in b, its gauge file stays behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(b.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(b.proc.wait, 30)
            assert _metric(a, "ws_active_connections") == 1
