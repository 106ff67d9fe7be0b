"""A real load balancer: Debian's nginx with docker/nginx.conf in front of two daphne processes.

Through the proxy: the WebSocket upgrade and REST work; with WS_TRUSTED_PROXIES=1 the client's
address is the one nginx saw (X-Forwarded-For's last entry), so a forged header neither hides a
client from the rate limit nor lands in its Viewer row; and a viewer whose backend stops
reconnects through the same proxy with lastSeq, lands on the other backend and resumes exactly.
"""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streaming import protocol
from tests.e2e.proxy import nginx_in_front_of
from tests.e2e.servers import ORIGIN, QA_TOKEN, daphne_cluster, synthetic_debate

pytestmark = pytest.mark.e2e

RATE_LIMIT = 4  # new connections per client address and minute, for this cluster
FINAL = set(protocol.FINAL_STATUSES)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    """Two daphne processes trusting one proxy, and nginx in front of them."""
    run_dir = tmp_path_factory.mktemp("balanced")
    with (
        daphne_cluster(
            run_dir, 2, WS_TRUSTED_PROXIES="1", WS_RATE_LIMIT=f"{RATE_LIMIT}/minute"
        ) as servers,
        nginx_in_front_of(run_dir / "nginx", servers) as proxy,
    ):
        yield servers, proxy


def _create_debate(server) -> str:
    access = server.token()["access"]
    status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL", "maxTurns": 2}, access)
    assert status == 201, debate
    return debate["id"]


def _path(debate_id: str, last_seq: int | None = None) -> str:
    query = f"?token={QA_TOKEN}" + (f"&lastSeq={last_seq}" if last_seq is not None else "")
    return f"/ws/debate/{debate_id}/{query}"


def _connect(proxy, debate_id, source: str, forwarded: str | None = None, last_seq=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return connect(
        proxy.ws_url(_path(debate_id, last_seq)),
        origin=ORIGIN,
        additional_headers=headers,
        local_addr=(source, 0),
        open_timeout=30,
    )


def _viewer_rows(server, debate_id: str) -> list[list[str]]:
    out = server.shell(
        "import json; from streaming.models import Viewer; print(json.dumps([[v.client_ip, "
        f"v.process] for v in Viewer.objects.filter(debate_id='{debate_id}').order_by('pk')]))"
    )
    return json.loads(out.strip().splitlines()[-1])


async def test_http_and_the_websocket_upgrade_go_through_nginx(balanced):
    servers, proxy = balanced
    debate_id = _create_debate(servers[0])
    async with _connect(proxy, debate_id, "127.0.0.21") as ws:
        first = json.loads(await ws.recv())
    assert first["type"] == protocol.CONNECTED
    assert first["payload"]["debateId"] == debate_id
    assert first["payload"]["status"] == "pending"
    status, body = await asyncio.to_thread(
        servers[0].api, "GET", f"/api/debates/{debate_id}/", None, servers[0].token()["access"]
    )
    assert status == 200
    assert body["id"] == debate_id


async def test_the_client_address_is_the_one_nginx_saw_and_forged_headers_change_nothing(
    balanced,
):
    servers, proxy = balanced
    debate_id = _create_debate(servers[0])
    codes = []
    for attempt in range(RATE_LIMIT + 1):
        # Each attempt forges a different address: the limit still counts the real client.
        async with _connect(proxy, debate_id, "127.0.0.22", f"203.0.113.{attempt + 1}") as ws:
            codes.append(json.loads(await ws.recv()))
    assert [c["type"] for c in codes[:RATE_LIMIT]] == [protocol.CONNECTED] * RATE_LIMIT
    assert codes[RATE_LIMIT]["type"] == protocol.ERROR
    assert codes[RATE_LIMIT]["payload"]["code"] == protocol.Close.RATE_LIMITED

    # Another client forging the limited client's address is not limited by it.
    async with _connect(proxy, debate_id, "127.0.0.23", "127.0.0.22") as ws:
        assert json.loads(await ws.recv())["type"] == protocol.CONNECTED

    rows = await asyncio.to_thread(_viewer_rows, servers[0], debate_id)
    assert [ip for ip, _process in rows] == ["127.0.0.22"] * RATE_LIMIT + ["127.0.0.23"]


async def _read_until_closed(ws, received: list[dict]) -> None:
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if "seq" in message.get("payload", {}):
                received.append(message)
    except ConnectionClosed:
        return


async def test_a_viewer_whose_backend_stops_resumes_exactly_on_the_other_one(balanced):
    servers, proxy = balanced
    debate_id = _create_debate(servers[0])
    received: list[dict] = []
    async with _connect(proxy, debate_id, "127.0.0.24") as ws:
        assert json.loads(await ws.recv())["type"] == protocol.CONNECTED
        rows = await asyncio.to_thread(_viewer_rows, servers[0], debate_id)
        pid = int(rows[0][1].split(":")[1])
        first, other = sorted(servers, key=lambda server: server.proc.pid != pid)
        assert first.proc.pid == pid
        producer = synthetic_debate(first.env, debate_id, turns=2, tokens_per_turn=80, rate=40)
        try:
            while len(received) < 10:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if "seq" in message.get("payload", {}):
                    received.append(message)
            await asyncio.to_thread(first.stop)  # its backend goes away mid-debate
            await _read_until_closed(ws, received)
            last_seq = received[-1]["payload"]["seq"]

            async with _connect(proxy, debate_id, "127.0.0.24", last_seq=last_seq) as again:
                hello = json.loads(await again.recv())
                assert hello["type"] == protocol.CONNECTED
                while received[-1]["payload"].get("status") not in FINAL:
                    message = json.loads(await asyncio.wait_for(again.recv(), 60))
                    if "seq" in message.get("payload", {}):
                        received.append(message)
        finally:
            producer.kill()
            producer.wait(timeout=10)
            if not first.alive():
                await asyncio.to_thread(first.start)  # the module's other tests use it
    seqs = [m["payload"]["seq"] for m in received]
    assert seqs == list(range(1, len(seqs) + 1)), "a seq is missing, repeated or out of order"
    assert received[-1]["payload"]["status"] == "completed"
    rows = await asyncio.to_thread(_viewer_rows, other, debate_id)
    assert int(rows[-1][1].split(":")[1]) == other.proc.pid  # the resumed socket is the other's
