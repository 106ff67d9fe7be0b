"""A debate's budget on a real daphne: a viewer sees it conclude early, then the verdict."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from streaming import protocol
from tests.e2e.servers import ORIGIN, daphne_cluster

pytestmark = pytest.mark.e2e


async def _watch_to_the_end(ws) -> list[dict]:
    events = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message["type"] == protocol.PING:
            continue
        events.append(message)
        payload = message["payload"]
        if (
            message["type"] == protocol.STATUS_UPDATE
            and payload["status"] in protocol.FINAL_STATUSES
        ):
            return events


async def test_a_token_budget_stops_the_debate_and_the_moderator_concludes(tmp_path):
    with daphne_cluster(tmp_path, 1, OFFLINE_LLM_TOKENS_PER_S="300", USAGE_EVERY_N_TOKENS="10") as (
        server,
    ):
        access = server.token()["access"]
        status, debate = server.api(
            "POST", "/api/debates/", {"asset": "BTC", "maxTurns": 6, "budgetTokens": 30}, access
        )
        assert status == 201, debate
        assert debate["budgetTokens"] == 30
        async with connect(server.ws_url(debate["id"]), origin=ORIGIN, open_timeout=30) as ws:
            connected = json.loads(await ws.recv())
            assert connected["type"] == protocol.CONNECTED
            status, body = server.api("POST", f"/api/debates/{debate['id']}/start/", None, access)
            assert status == 202, body
            events = await _watch_to_the_end(ws)

        by_type = {}
        for event in events:
            by_type.setdefault(event["type"], []).append(event["payload"])
        # The viewer was told why, before the moderator's turn, and got the verdict.
        assert [c["reason"] for c in by_type[protocol.CONCLUDING]] == ["budget"]
        done = [(a["agent"], a["turn"]) for a in by_type[protocol.ARGUMENT_COMPLETE]]
        assert done == [("bull", 1), ("moderator", 2)]
        types = [e["type"] for e in events]
        moderator_turn = next(
            i
            for i, e in enumerate(events)
            if e["type"] == protocol.TURN_CHANGE and e["payload"]["currentAgent"] == "moderator"
        )
        assert types.index(protocol.CONCLUDING) < moderator_turn
        assert by_type[protocol.STATUS_UPDATE][-1]["status"] == "completed"
        # The meter: readings every 10 tokens and at each argument's end, the budget with them.
        readings = by_type[protocol.USAGE]
        assert readings[0]["perAgent"]["bull"]["completionTokens"] == 10
        assert readings[0]["budget"] == {"tokens": 30, "cost": None}
        assert all(r["total"]["cost"] == 0.0 for r in readings)  # the offline model is free

        status, detail = server.api("GET", f"/api/debates/{debate['id']}/", None, access)
        assert status == 200
        assert detail["conclusionReason"] == "budget"
        assert detail["verdict"]["recommendation"] in ("buy", "hold", "sell")
        assert [a["agent"] for a in detail["arguments"]] == ["bull", "moderator"]
        # The last reading is the saved total.
        total = detail["usage"]["total"]
        assert readings[-1]["total"] == total
        assert total["promptTokens"] == sum(a["promptTokens"] for a in detail["arguments"])
        assert total["completionTokens"] == sum(a["completionTokens"] for a in detail["arguments"])
