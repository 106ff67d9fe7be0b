"""The WebSocket contract over real sockets against real daphne processes and Redis."""

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.servers import ORIGIN, QA_TOKEN, daphne_cluster, synthetic_debate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two daphne processes sharing a database and Redis."""
    with daphne_cluster(tmp_path_factory.mktemp("ws-protocol"), 2) as servers:
        yield servers


@pytest.fixture(scope="module")
def debate_id(cluster):
    """A finished debate produced by a separate process."""
    access = cluster[0].token()["access"]
    status, debate = cluster[0].api("POST", "/api/debates/", {"asset": "MSFT"}, access)
    assert status == 201
    proc = synthetic_debate(cluster[0].env, debate["id"], turns=2, tokens_per_turn=5, rate=500)
    assert proc.wait(timeout=60) == 0, proc.stdout.read()
    return debate["id"]


@pytest.fixture(scope="module")
def quiet_id(cluster):
    """A pending debate: its sockets get CONNECTED and nothing else until it starts."""
    access = cluster[0].token()["access"]
    status, debate = cluster[0].api("POST", "/api/debates/", {"asset": "AAPL"}, access)
    assert status == 201
    return debate["id"]


async def _refused(url: str, origin: str | None = ORIGIN) -> tuple[int, dict | None]:
    """Connect; return the close code and the DEBATE/ERROR received before it."""
    error = None
    kwargs = {"origin": origin} if origin else {}
    async with connect(url, **kwargs) as ws:
        try:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert message["type"] == "DEBATE/ERROR", message  # never a debate event
                error = message
        except ConnectionClosed as closed:
            return closed.rcvd.code, error
    raise AssertionError("not closed")


async def test_connected_then_the_whole_debate(cluster, debate_id):
    for server in cluster:
        async with connect(server.ws_url(debate_id), origin=ORIGIN) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "DEBATE/CONNECTED"
            assert first["payload"]["status"] == "completed"
            events = [json.loads(await ws.recv()) for _ in range(first["payload"]["lastSeq"])]
            assert [e["payload"]["seq"] for e in events] == list(range(1, len(events) + 1))
            assert events[-1]["payload"]["status"] == "completed"


async def test_a_real_jwt_is_accepted(cluster, debate_id):
    access = cluster[1].token()["access"]
    async with connect(cluster[1].ws_url(debate_id, token=access), origin=ORIGIN) as ws:
        assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"


@pytest.mark.parametrize(
    ("token", "origin", "path_id", "code"),
    [
        (None, ORIGIN, None, 4001),
        ("garbage", ORIGIN, None, 4001),
        (QA_TOKEN, "http://evil.example", None, 4003),
        (QA_TOKEN, None, None, 4003),
        (QA_TOKEN, "null", None, 4003),
        (QA_TOKEN, ORIGIN, "00000000-0000-4000-8000-000000000000", 4004),
        (QA_TOKEN, ORIGIN, "not-a-uuid", 4004),
    ],
)
async def test_refusals_send_an_error_then_the_close_code(
    cluster, debate_id, token, origin, path_id, code
):
    url = cluster[0].ws_url(path_id or debate_id, token=token)
    closed_with, error = await _refused(url, origin)
    assert closed_with == code
    assert error["payload"]["code"] == code


async def test_refresh_token_is_refused(cluster, debate_id):
    refresh = cluster[0].token()["refresh"]
    assert (await _refused(cluster[0].ws_url(debate_id, token=refresh)))[0] == 4001


async def test_bad_frames_over_a_real_socket(cluster, quiet_id):
    async with (
        connect(cluster[0].ws_url(quiet_id), origin=ORIGIN) as ws,
        connect(cluster[0].ws_url(quiet_id), origin=ORIGIN) as other,
    ):
        await ws.recv()
        await other.recv()
        deep = ["[" * 2000 + "]" * 2000, "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000]
        for frame in [b"\x00binary", "{oops", "[1]", '{"type":"DEBATE/X"}', "[" * 3000, *deep]:
            await ws.send(frame)
            error = json.loads(await ws.recv())
            assert error["type"] == "DEBATE/ERROR"
            assert error["payload"]["code"] == 4400
        await ws.send(json.dumps({"type": "DEBATE/PING"}))
        assert json.loads(await ws.recv())["type"] == "DEBATE/PONG"
        await other.send(json.dumps({"type": "DEBATE/PING"}))
        assert json.loads(await other.recv())["type"] == "DEBATE/PONG"


async def test_an_oversize_frame_closes_only_that_socket(cluster, quiet_id):
    async with (
        connect(cluster[0].ws_url(quiet_id), origin=ORIGIN, max_size=None) as big,
        connect(cluster[0].ws_url(quiet_id), origin=ORIGIN) as other,
    ):
        await big.recv()
        await other.recv()
        with contextlib.suppress(ConnectionClosed):
            await big.send("x" * (2 * 1024 * 1024))  # beyond daphne's 1 MiB message limit
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(big.recv(), 10)
        await other.send(json.dumps({"type": "DEBATE/PING"}))
        assert json.loads(await other.recv())["type"] == "DEBATE/PONG"


async def test_metrics_count_both_processes(cluster, quiet_id):
    # A refusal on the other process: its count shows in this process's /metrics.
    assert (await _refused(cluster[1].ws_url(quiet_id, token="garbage")))[0] == 4001
    async with (
        connect(cluster[0].ws_url(quiet_id, last_seq=1), origin=ORIGIN) as a,
        connect(cluster[1].ws_url(quiet_id, last_seq=1), origin=ORIGIN) as b,
    ):
        await a.recv()
        await b.recv()
        status, body = cluster[0].api("GET", "/metrics")
        assert status == 200
        text = body.decode()
        gauge = [line for line in text.splitlines() if line.startswith("ws_active_connections ")]
        assert gauge, text[:2000]
        assert float(gauge[0].split()[1]) >= 2
        assert "ws_reconnections_total" in text
        assert 'ws_errors_total{code="4001"}' in text


async def test_rate_limit_over_real_sockets_is_shared_by_processes(tmp_path):
    with daphne_cluster(tmp_path, 2, WS_RATE_LIMIT="3/minute") as servers:
        access = servers[0].token()["access"]
        status, debate = servers[0].api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201
        for server in [servers[0], servers[1], servers[0]]:
            async with connect(server.ws_url(debate["id"]), origin=ORIGIN) as ws:
                assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"
        spoofed = {"additional_headers": {"X-Forwarded-For": "203.0.113.9"}}
        async with connect(servers[1].ws_url(debate["id"]), origin=ORIGIN, **spoofed) as ws:
            error = json.loads(await ws.recv())
            assert error["payload"]["code"] == 4029
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 4029


async def test_resume_after_the_log_ttl_is_exact_on_the_other_process(cluster):
    """Once the Redis log is gone, the archived log replays the live seqs and texts."""
    import redis

    a, b = cluster
    access = a.token()["access"]
    status, debate = a.api("POST", "/api/debates/", {"asset": "NVDA"}, access)
    assert status == 201
    proc = synthetic_debate(a.env, debate["id"], turns=2, tokens_per_turn=8, rate=500)
    assert proc.wait(timeout=60) == 0, proc.stdout.read()

    async def stream(server, last_seq=None):
        async with connect(server.ws_url(debate["id"], last_seq=last_seq), origin=ORIGIN) as ws:
            first = json.loads(await ws.recv())
            rest = first["payload"]["lastSeq"] - (last_seq or 0)
            return first, [json.loads(await ws.recv()) for _ in range(rest)]

    _first, live = await stream(a)
    assert [e["payload"]["seq"] for e in live] == list(range(1, len(live) + 1))
    prefix = a.env["STREAMING_KEY_PREFIX"]
    client = redis.Redis.from_url(a.env["REDIS_URL"])
    try:  # what EVENT_LOG_TTL_S does
        assert client.delete(f"{prefix}:stream:seq:{debate['id']}") == 1
        assert client.delete(f"{prefix}:stream:log:{debate['id']}") == 1
    finally:
        client.close()
    for last_seq in [None, 1, len(live) // 2, len(live) - 1, len(live)]:
        again_first, again = await stream(b, last_seq)
        assert again_first["payload"]["lastSeq"] == len(live)
        assert again_first["payload"]["reset"] is False
        assert again == live[(last_seq or 0) :]
