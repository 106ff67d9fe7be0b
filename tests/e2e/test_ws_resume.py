"""Exact resume over real sockets: two daphne processes sharing Redis and one database.

Viewers watch a real debate (started through the REST API, run by the engine's runner in one
process), drop their connection at random points, and reconnect with their last seq to either
process. Each must end with every seq exactly once, in order, and arguments equal to the saved
transcript.
"""

import asyncio
import json
import random

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streaming import protocol
from tests.e2e.servers import ORIGIN, daphne_cluster, synthetic_debate

pytestmark = pytest.mark.e2e

FINAL = set(protocol.FINAL_STATUSES)
VIEWERS = 6
MAX_RECONNECTS = 8


async def _watch(servers, debate_id: str, rng: random.Random, drops: bool = True) -> dict:
    """Watch until the final STATUS_UPDATE, dropping and resuming at random; return the log."""
    received: list[dict] = []
    seen: set[int] = set()
    last_seq = None
    reconnects = 0
    while True:
        server = rng.choice(servers)
        budget = rng.randint(1, 30) if drops and reconnects < MAX_RECONNECTS else 10**9
        try:
            async with connect(
                server.ws_url(debate_id, last_seq=last_seq), origin=ORIGIN, open_timeout=30
            ) as ws:
                first = json.loads(await ws.recv())
                assert first["type"] == "DEBATE/CONNECTED", first
                count = 0
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    if message["type"] == "DEBATE/PING":
                        continue
                    seq = message["payload"]["seq"]
                    assert seq not in seen, f"seq {seq} delivered twice"
                    seen.add(seq)
                    received.append(message)
                    last_seq = seq
                    if (
                        message["type"] == "DEBATE/STATUS_UPDATE"
                        and message["payload"]["status"] in FINAL
                    ):
                        return {"events": received, "reconnects": reconnects}
                    count += 1
                    if count >= budget:
                        if rng.random() < 0.5:
                            ws.transport.abort()  # a dropped network, no close frame
                        break
        except ConnectionClosed:
            pass
        reconnects += 1
        await asyncio.sleep(rng.random() * 0.3)


def _check(events: list[dict], transcript: list[dict]) -> None:
    seqs = [e["payload"]["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "a seq is missing, repeated or out of order"
    arguments = [
        (e["payload"]["turn"], e["payload"]["agent"], e["payload"]["content"])
        for e in events
        if e["type"] == "DEBATE/ARGUMENT_COMPLETE"
    ]
    assert arguments == [(a["turn"], a["agent"], a["content"]) for a in transcript]
    for turn, _agent, content in arguments:
        spelled = "".join(
            e["payload"]["token"]
            for e in events
            if e["type"] == "DEBATE/TOKEN_RECEIVED" and e["payload"]["turn"] == turn
        )
        assert spelled == content


async def _scenario(servers, start) -> None:
    """Viewers with random drops watch a debate that `start(debate_id, access)` sets going."""
    a = servers[0]
    access = a.token()["access"]
    status, debate = a.api("POST", "/api/debates/", {"asset": "AAPL", "maxTurns": 3}, access)
    assert status == 201, debate
    debate_id = debate["id"]

    watchers = [
        asyncio.create_task(_watch(servers, debate_id, random.Random(i))) for i in range(VIEWERS)
    ]
    await asyncio.sleep(0.5)  # most viewers connect before the debate starts, some later
    await asyncio.to_thread(start, debate_id, access)
    results = await asyncio.wait_for(asyncio.gather(*watchers), 300)

    status, saved = a.api("GET", f"/api/debates/{debate_id}/", None, access)
    assert status == 200
    assert saved["status"] == "completed", saved
    transcript = sorted(saved["arguments"], key=lambda arg: arg["turn"])
    assert transcript
    for result in results:
        _check(result["events"], transcript)
    assert sum(r["reconnects"] for r in results) > 0

    # After completion: a late viewer from seq 1, and a resume near the end on the other process.
    late = await _watch(servers, debate_id, random.Random(99), drops=False)
    _check(late["events"], transcript)
    tail = results[0]["events"][-3:]
    async with connect(
        servers[1].ws_url(debate_id, last_seq=tail[0]["payload"]["seq"] - 1), origin=ORIGIN
    ) as ws:
        first = json.loads(await ws.recv())
        assert first["payload"]["status"] == "completed"
        assert first["payload"]["lastSeq"] == tail[-1]["payload"]["seq"]
        again = [json.loads(await ws.recv()) for _ in range(3)]
        assert again == tail


async def test_random_drops_with_a_producer_process(tmp_path):
    """A third process publishes a scripted debate through publish_event (pub/sub layer)."""
    with daphne_cluster(tmp_path, 2) as servers:
        producers = []

        def start(debate_id, access):
            producers.append(synthetic_debate(servers[0].env, debate_id))

        try:
            await _scenario(servers, start)
            assert producers[0].wait(timeout=60) == 0, producers[0].stdout.read()
        finally:
            for proc in producers:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
