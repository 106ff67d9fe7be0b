"""Sockets that are no debate's, and clients that send too many frames: typed errors, never a
failed route, and other viewers unaffected."""

import pytest
from channels.testing import WebsocketCommunicator

from streaming import protocol
from streaming.publisher import publish_event
from streaming.ratelimit import FrameBudget
from tests.streaming.conftest import ORIGIN, QA_TOKEN, application, connect, expect_refusal

pytestmark = pytest.mark.django_db(transaction=True)


def raw_communicator(path: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, path, headers=[(b"origin", ORIGIN.encode())])
    comm.scope["client"] = ("127.0.0.1", 50000)
    return comm


@pytest.mark.parametrize(
    "path",
    [
        "/ws/debate/5b1c8a9e-1f2e-4c1e-9b9e-111111111111",  # no trailing slash
        "/ws/debate/" + "a" * 65 + "/",  # an id over 64 characters
        "/ws/debate/5b1c8a9e-1f2e-4c1e-9b9e-111111111111/extra/",
        "/ws/nothing/",
        "/",
    ],
)
async def test_a_path_that_is_no_debate_socket_is_4004(path):
    await expect_refusal(raw_communicator(f"{path}?token={QA_TOKEN}"), 4004)


async def test_unknown_paths_count_against_the_connection_rate_limit(ws_settings):
    ws_settings.WS_RATE_LIMIT = "2/minute"
    for _ in range(2):
        await expect_refusal(raw_communicator(f"/ws/nothing/?token={QA_TOKEN}"), 4004)
    await expect_refusal(raw_communicator(f"/ws/nothing/?token={QA_TOKEN}"), 4029)


async def test_unknown_paths_still_check_origin_and_token():
    await expect_refusal(raw_communicator("/ws/nothing/"), 4001)
    comm = WebsocketCommunicator(application, f"/ws/nothing/?token={QA_TOKEN}")
    comm.scope["client"] = ("127.0.0.1", 50000)
    await expect_refusal(comm, 4003)


async def test_frames_past_the_rate_get_4429_then_the_socket_closes_1008(debate, ws_settings):
    ws_settings.WS_CLIENT_FRAMES_PER_S = 0.001  # the burst, then (practically) nothing
    ws_settings.WS_CLIENT_FRAMES_BURST = 5
    flooder, _ = await connect(debate.id)
    viewer, _ = await connect(debate.id)
    for _ in range(5):
        await flooder.send_json_to({"type": protocol.PING})
        assert (await flooder.receive_json_from(timeout=5))["type"] == protocol.PONG
    for _ in range(protocol.MAX_BAD_FRAMES):
        await flooder.send_json_to({"type": protocol.PING})
        error = await flooder.receive_json_from(timeout=5)
        assert error["type"] == protocol.ERROR
        assert error["payload"]["code"] == 4429
        assert error["payload"]["reason"] == "too_many_frames"
    await flooder.send_json_to({"type": protocol.PING})
    error = await flooder.receive_json_from(timeout=5)
    assert error["payload"] == {
        "code": 1008,
        "message": "Too many invalid frames.",
        "reason": "too_many_frames",
    }
    assert await flooder.receive_output(timeout=5) == {"type": "websocket.close", "code": 1008}
    # The other viewer of the debate is unaffected.
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    event = await viewer.receive_json_from(timeout=5)
    assert event["type"] == protocol.STATUS_UPDATE
    assert event["payload"]["seq"] == 1
    await viewer.send_json_to({"type": protocol.PING})
    assert (await viewer.receive_json_from(timeout=5))["type"] == protocol.PONG
    await viewer.disconnect()


def test_the_budget_refills_at_the_rate(settings):
    settings.WS_CLIENT_FRAMES_PER_S = 10
    settings.WS_CLIENT_FRAMES_BURST = 2
    clock = [1000.0]
    budget = FrameBudget(clock=lambda: clock[0])
    allowed = []
    for step in range(6):
        if step == 3:
            clock[0] += 0.1  # one frame's worth at 10 per second
        allowed.append(budget.allow())
    assert allowed == [True, True, False, True, False, False]
    clock[0] += 60
    assert [budget.allow() for _ in range(3)] == [True, True, False]  # never past the burst


def test_zero_frames_per_second_means_no_limit(settings):
    settings.WS_CLIENT_FRAMES_PER_S = 0
    budget = FrameBudget()
    assert all(budget.allow() for _ in range(10_000))
