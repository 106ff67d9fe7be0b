"""Two daphne processes over three Redis nodes of the test's own (REDIS_URLS), one restarted.

Debates spread over the nodes stream exactly to viewers on both processes; a node restarted
while a debate on another node streams leaves that debate untouched; the restarted node then
carries new debates again; and a debate whose log went with the node replays from its archive
with the live seqs and texts.
"""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streaming import protocol
from streaming.backends import node_index
from tests.e2e.servers import ORIGIN, daphne_cluster, synthetic_debate
from tests.redis_nodes import redis_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

FINAL = set(protocol.FINAL_STATUSES)
NODES = 3


async def _watch(server, debate_id: str) -> list[str]:
    """Every event text of the debate, from seq 1 to its final status; a lost socket resumes
    with lastSeq, as the web page does (a node restart may cost a socket a 4500)."""
    texts: list[str] = []
    for _attempt in range(20):
        last_seq = len(texts) if texts else None
        try:
            async with connect(
                server.ws_url(debate_id, last_seq=last_seq), origin=ORIGIN, open_timeout=30
            ) as ws:
                while True:
                    text = await asyncio.wait_for(ws.recv(), 60)
                    message = json.loads(text)
                    if "seq" not in message.get("payload", {}):
                        continue
                    assert message["payload"]["seq"] == len(texts) + 1, "gap or duplicate"
                    texts.append(text)
                    if message["payload"].get("status") in FINAL:
                        return texts
        except (ConnectionClosed, InvalidStatus, OSError):
            await asyncio.sleep(0.3)
    raise AssertionError(f"debate {debate_id} did not end for a viewer of {server.name()}")


def _debates_on(servers, prefix: str, wanted: list[int]) -> dict[int, str]:
    """Pending debates, one on each wanted node (created until each node has one)."""
    access = servers[0].token()["access"]
    found: dict[int, str] = {}
    for _ in range(200):
        status, debate = servers[0].api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201, debate
        node = node_index(f"{prefix}__group__debate.{debate['id']}", NODES)
        if node in wanted and node not in found:
            found[node] = debate["id"]
        if len(found) == len(wanted):
            return found
    raise AssertionError("no debate landed on some node")


async def _stream(servers, debate_id: str, **produce) -> list[list[str]]:
    """Watch from every process while a producer runs the debate; the texts each saw."""
    watchers = [asyncio.create_task(_watch(server, debate_id)) for server in servers]
    await asyncio.sleep(0.5)
    producer = synthetic_debate(servers[0].env, debate_id, **produce)
    try:
        views = await asyncio.wait_for(asyncio.gather(*watchers), 180)
        # The producer archives the debate after its final status: let it finish.
        assert await asyncio.to_thread(producer.wait, 60) == 0, producer.stdout.read()
        return views
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(timeout=10)


async def test_debates_over_three_nodes_one_restarted(tmp_path):
    with (
        redis_nodes(tmp_path, NODES) as nodes,
        daphne_cluster(tmp_path, 2, redis_url=",".join(n.url for n in nodes)) as servers,
    ):
        prefix = servers[0].env["CHANNEL_LAYER_PREFIX"]
        first = _debates_on(servers, prefix, [0, 1, 2])
        views_of = await asyncio.gather(
            *(_stream(servers, d, turns=2, tokens_per_turn=30) for d in first.values())
        )
        seen = dict(zip(first, views_of, strict=True))  # node -> what each process's viewer saw
        for node, views in seen.items():
            debate_id = first[node]
            assert views[0] == views[1], f"the two processes differ on node {node}"
            assert json.loads(views[0][-1])["payload"]["status"] == "completed"
            keys = nodes[node].keys(f"{prefix}:stream:log:{debate_id}")
            assert keys, f"debate {debate_id}'s log is not on node {node}"
            others = [n for n in nodes if n.index != node]
            assert not any(n.keys(f"{prefix}:stream:*:{debate_id}") for n in others)

        # Node 2 is restarted while a debate on node 0 streams: that debate is untouched.
        second = _debates_on(servers, prefix, [0, 2])
        streaming = asyncio.create_task(
            _stream(servers, second[0], turns=2, tokens_per_turn=60, rate=60)
        )
        await asyncio.sleep(1.5)
        await asyncio.to_thread(nodes[2].restart)
        views = await streaming
        assert views[0] == views[1]
        assert json.loads(views[0][-1])["payload"]["status"] == "completed"

        # The restarted node carries a new debate to both processes.
        views = await _stream(servers, second[2], turns=2, tokens_per_turn=30)
        assert views[0] == views[1]
        assert [json.loads(t)["payload"]["seq"] for t in views[0]] == list(
            range(1, len(views[0]) + 1)
        )
        assert nodes[2].keys(f"{prefix}:stream:log:{second[2]}")

        # The first debate on node 2 lost its log with the node: it replays from its archive,
        # with the live seqs and texts.
        assert not nodes[2].keys(f"{prefix}:stream:log:{first[2]}")
        replay = await _watch(servers[1], first[2])
        live = [json.loads(t) for t in seen[2][0]]
        assert [json.loads(t) for t in replay] == live
        assert live[0]["payload"]["debateId"] == first[2]
