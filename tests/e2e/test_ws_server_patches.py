"""A real daphne runs with every streaming.server patch: the viewer's events are written by the
fast path (ws_fast_path_frames_total), and the access log is redacted from the first scope on."""

import asyncio
import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from bench.launcher import Server, free_port
from streaming import protocol
from streaming.server import PATCHES
from tests.e2e.servers import ORIGIN, QA_TOKEN, daphne_cluster, synthetic_debate

pytestmark = pytest.mark.e2e

DEADLINE_S = 120
FINAL = set(protocol.FINAL_STATUSES)


def _samples(server, name: str) -> list[tuple[dict, float]]:
    """Every sample of `name` in the server's /metrics: (labels, value)."""
    status, body = server.api("GET", "/metrics")
    assert status == 200
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name
    ]


def _fast_path_frames(server) -> float:
    return sum(value for _, value in _samples(server, "ws_fast_path_frames_total"))


async def test_a_daphne_viewer_is_served_by_the_fast_path(tmp_path):
    with daphne_cluster(tmp_path, 1) as (server,):
        access = server.token()["access"]
        status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201, debate
        async with connect(server.ws_url(debate["id"]), origin=ORIGIN) as ws:
            assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"
            # The consumer answers a client frame only once its connect handler has finished,
            # i.e. once it is live: every event from here on is a fan-out write.
            await ws.send(json.dumps({"type": "DEBATE/PING"}))
            assert json.loads(await ws.recv())["type"] == "DEBATE/PONG"
            before = _fast_path_frames(server)
            producer = synthetic_debate(server.env, debate["id"])
            received = 0
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
                received += 1
                payload = message["payload"]
                if message["type"] == "DEBATE/STATUS_UPDATE" and payload["status"] in FINAL:
                    break
        assert await asyncio.to_thread(producer.wait, 60) == 0, producer.stdout.read()
        assert received > 3 * 3  # tokens are coalesced, each turn has at least three events
        # The count is flushed to the counter once a second.
        deadline = time.monotonic() + DEADLINE_S
        while _fast_path_frames(server) - before < received:
            assert time.monotonic() < deadline, (
                f"fast path wrote {_fast_path_frames(server) - before} of {received} frames"
            )
            await asyncio.sleep(0.5)
        active = {
            labels["patch"]: value for labels, value in _samples(server, "server_patch_active")
        }
        assert active == {patch.name: 1.0 for patch in PATCHES}


def _spawn_unprobed(cluster) -> Server:
    """Another daphne of the cluster whose first scope is the test's own (no /healthz probe):
    started, then waited for by its "Listening" log line."""
    server = Server(cluster, len(cluster.servers), free_port())
    server.spawn()
    deadline = time.monotonic() + DEADLINE_S
    while "Listening on TCP address" not in server.logs():
        assert server.alive(), server.log_tail()
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)
    return server


async def test_the_first_request_a_daphne_serves_is_redacted_in_its_access_log(
    tmp_path,
):
    with daphne_cluster(tmp_path, 1) as (probed,):
        access = probed.token()["access"]
        status, debate = probed.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201, debate
        server = _spawn_unprobed(probed.cluster)
        try:
            server.api("GET", f"/api/debates/?token={access}")  # the first scope it serves
            url = server.ws_url(debate["id"], token=QA_TOKEN)
            async with connect(url, origin=ORIGIN) as ws:
                assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"
        finally:
            server.stop()
        logs = server.logs()
        assert "WSCONNECT" in logs  # daphne's access log
        assert "GET /api/debates/?token=[REDACTED]" in logs
        for secret in [access, QA_TOKEN]:
            assert secret not in logs
