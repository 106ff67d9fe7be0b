"""No token in any log line of a real daphne process (access log, Django's, ours)."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.servers import ORIGIN, QA_TOKEN, daphne_cluster

pytestmark = pytest.mark.e2e


async def test_tokens_never_reach_the_logs(tmp_path):
    with daphne_cluster(tmp_path, 1, LOG_LEVEL="DEBUG") as (server,):
        pair = server.token()
        access, refresh = pair["access"], pair["refresh"]
        status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201
        async with connect(server.ws_url(debate["id"], token=access), origin=ORIGIN) as ws:
            assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"
        async with connect(server.ws_url(debate["id"], token=QA_TOKEN), origin=ORIGIN) as ws:
            assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"
        for token in [refresh, access + "tampered"]:
            async with connect(server.ws_url(debate["id"], token=token), origin=ORIGIN) as ws:
                assert json.loads(await ws.recv())["payload"]["code"] == 4001
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
        server.api("GET", f"/api/debates/?token={access}")
        server.api("GET", f"/no-such-page/?token={access}")
        # Other names, and a JWT anywhere in a path (found by probing a running server).
        server.api("GET", f"/api/debates/?jwt={access}")
        server.api("GET", f"/api/debates/?page=1&access_token={access}")
        server.api("GET", f"/no-such-page/{access}/")
        server.api("GET", f"/api/debates/{access}/")
        server.stop()
        logs = server.logs()
        assert "WSCONNECT" in logs  # the access log was captured
        assert "token=[REDACTED]" in logs
        for secret in [access, refresh, QA_TOKEN, access.split(".")[2]]:
            assert secret not in logs
