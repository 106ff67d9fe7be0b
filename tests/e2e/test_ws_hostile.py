"""Hostile clients against a real daphne: paths that are no debate's socket, a client flooding
valid frames, and clients that vanish during set-up."""

import asyncio
import base64
import json
import os
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streaming import protocol
from tests.e2e.servers import ORIGIN, QA_TOKEN, daphne_cluster, synthetic_debate

pytestmark = pytest.mark.e2e

FLOOD = 5_000
DEADLINE_S = 60  # only to fail a hung test


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with daphne_cluster(tmp_path_factory.mktemp("ws-hostile"), 1) as (daphne,):
        yield daphne


def new_debate(server) -> str:
    status, debate = server.api(
        "POST", "/api/debates/", {"asset": "AAPL"}, server.token()["access"]
    )
    assert status == 201
    return debate["id"]


async def _until_closed(ws) -> tuple[list[dict], int]:
    messages = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S)))
    except ConnectionClosed as closed:
        return messages, closed.rcvd.code


@pytest.mark.parametrize(
    "path",
    [
        "/ws/debate/{id}",  # no trailing slash
        "/ws/debate/" + "a" * 65 + "/",  # an id over 64 characters
        "/ws/debate/{id}/more/",
        "/ws/unknown/",
    ],
)
async def test_a_path_that_is_no_debate_socket_is_a_typed_4004_not_an_http_500(server, path):
    url = f"ws://127.0.0.1:{server.port}{path.format(id=new_debate(server))}?token={QA_TOKEN}"
    async with connect(url, origin=ORIGIN) as ws:
        messages, code = await _until_closed(ws)
    assert code == 4004
    assert [m["payload"]["code"] for m in messages] == [4004]


async def test_a_client_flooding_pings_is_cut_off_and_another_viewer_gets_every_event(server):
    debate_id = new_debate(server)
    async with (
        connect(server.ws_url(debate_id), origin=ORIGIN, max_queue=None) as viewer,
        connect(server.ws_url(debate_id), origin=ORIGIN, max_queue=None) as flooder,
    ):
        assert json.loads(await viewer.recv())["type"] == protocol.CONNECTED
        assert json.loads(await flooder.recv())["type"] == protocol.CONNECTED
        producer = synthetic_debate(server.env, debate_id, turns=3, tokens_per_turn=60, rate=300)
        ping = json.dumps({"type": protocol.PING})
        sent = 0
        with_close = None
        try:
            for _ in range(FLOOD):
                await flooder.send(ping)
                sent += 1
        except ConnectionClosed as closed:
            with_close = closed.rcvd.code if closed.rcvd else None
        answers, code = await _until_closed(flooder)
        events = []
        while not events or events[-1]["payload"].get("status") != "completed":
            message = json.loads(await asyncio.wait_for(viewer.recv(), DEADLINE_S))
            if message["type"] in protocol.EVENT_TYPES:
                events.append(message)
        assert producer.wait(timeout=DEADLINE_S) == 0, producer.stdout.read()
    assert code == 1008 or with_close == 1008
    kinds = [a["type"] if a["type"] != protocol.ERROR else a["payload"]["code"] for a in answers]
    pongs = kinds.count(protocol.PONG)
    assert pongs <= 25, f"{pongs} PONGs for {sent} PINGs: not limited"  # the burst, and a refill
    assert 4429 in kinds
    assert kinds[-1] == 1008
    # The other viewer got every event of the debate, once, in order.
    assert [e["payload"]["seq"] for e in events] == list(range(1, len(events) + 1))
    tokens = [e for e in events if e["type"] == protocol.TOKEN_RECEIVED]
    assert sum(len(t["payload"]["token"].split()) for t in tokens) == 3 * 60


def _handshake_then_vanish(port: int, path: str) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {ORIGIN}\r\n\r\n"
        ).encode()
    )
    sock.close()


async def test_clients_vanishing_during_set_up_are_neither_errors_nor_4500s(server):
    debate_id = new_debate(server)
    logged_before = {path: path.stat().st_size for path in (server.stdout_path, server.stderr_path)}
    for _ in range(50):
        _handshake_then_vanish(server.port, f"/ws/debate/{debate_id}/?token={QA_TOKEN}")
    # A socket opened after them is served: the set-ups that lost their client are over.
    async with connect(server.ws_url(debate_id), origin=ORIGIN) as ws:
        assert json.loads(await ws.recv())["type"] == protocol.CONNECTED
    status, metrics = server.api("GET", "/metrics")
    assert status == 200
    assert b'ws_errors_total{code="4500"}' not in metrics
    logged_since = b"".join(path.read_bytes()[size:] for path, size in logged_before.items())
    assert b" ERROR " not in logged_since
